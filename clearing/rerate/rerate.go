package rerate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/clearing/cardmac"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// MaxAmountKop is the largest amount a tariff can hold: a tap claiming
// more cannot be right under any tariff.
const MaxAmountKop = store.MaxAmountKop

// ClockTolerance is how far apart validators' clocks may be before the
// card's chain of rides is taken to contradict a ride's time.
const ClockTolerance = time.Minute

// State is what clearing does with a judged ride.
type State string

// States. The values are stored.
const (
	// Paid: the ride proved right; clearing pays what it claims.
	Paid State = "paid"
	// Held: clearing does not pay it; a person releases or rejects it.
	Held State = "held"
	// Waiting: clearing lacks a fact it waits for; not paid meanwhile,
	// judged again when the fact arrives. A person may decide it too.
	Waiting State = "waiting"
	// NotOwed: the card did not commit the ride, so nothing is owed.
	NotOwed State = "not-owed"
	// Released: a person released it; paid as re-rated.
	Released State = "released"
	// Rejected: a person rejected it; never paid.
	Rejected State = "rejected"
)

// Decided reports whether a person decided the ride.
func (s State) Decided() bool { return s == Released || s == Rejected }

// Open reports whether a person may still decide the ride.
func (s State) Open() bool { return s == Held || s == Waiting }

// Reasons of held, waiting and unowed rides, as stored and shown.
const (
	ReasonAmountInvalid    = "amount-invalid"
	ReasonOverTariff       = "over-tariff"
	ReasonTariffUnknown    = "tariff-unknown"
	ReasonCategoryUnknown  = "category-unknown"
	ReasonCarrierUnknown   = "carrier-unknown"
	ReasonRouteNotRun      = "route-not-run"
	ReasonContradicted     = "contradicted-by-card"
	ReasonEvidenceFork     = "evidence-fork"
	ReasonEvidenceMismatch = "evidence-mismatch"
	ReasonEvidencePending  = "evidence-pending"
	ReasonCommitUnknown    = "commit-unknown"
	ReasonNotCommitted     = "not-committed"
	ReasonRegistryBehind   = "registry-behind"
	ReasonBenefitRevoked   = "benefit-revoked"
	ReasonNotEntitled      = "not-entitled"
	ReasonOverQuota        = "over-quota"
	ReasonDiffers          = "differs"
	// The card's Transaction MAC (EV2/EV3 cards, clearing/cardmac).
	ReasonCardMACInvalid   = "card-mac-invalid"
	ReasonCardMACMissing   = "card-mac-missing"
	ReasonCardMACUnproven  = "card-mac-unproven"
	ReasonCardMACUnchecked = "card-mac-unchecked"
)

// Key names a tap.
type Key struct {
	Device string
	Seq    uint64
}

// KeyOf returns t's key.
func KeyOf(t *tap.Tap) Key { return Key{t.Device, t.Seq} }

// Ride is a stored tap of a card.
type Ride struct {
	*tap.Tap
	// Booked is the statement ingest booked the ride's claim into when
	// that was not its own period's (store.Book); "" otherwise.
	Booked string
}

// Judged reports whether clearing judges t: an accepted tap that the
// card committed or may have committed, and that names a benefit or
// claims compensation. Every other tap owes nothing.
func Judged(t *tap.Tap) bool {
	return t.Result == tap.Accepted && (t.CardCommitted || t.CommitUnknown) &&
		(t.Product == fare.ProductBenefit || t.CompensationKop != 0)
}

// Needs reports whether re-rating looks at t when it arrives: it is
// judged, or its card evidence names a benefit ride, which it may confirm
// or show committed.
func Needs(t *tap.Tap) bool {
	return Judged(t) || t.Prev.Product == fare.ProductBenefit
}

// Tariff is a tariff as re-rating uses it.
type Tariff struct {
	*fare.Tariff
	// MaxFareKop is the highest full fare of any ride, MaxCompensationKop
	// the most any benefit ride can owe.
	MaxFareKop, MaxCompensationKop int64
	// horizon is how long a previous ride can matter: the longer of the
	// anti-passback time and the longest transfer window.
	horizon time.Duration
}

// NewTariff prepares t for re-rating.
func NewTariff(t *fare.Tariff) *Tariff {
	rt := &Tariff{Tariff: t, horizon: t.Passback}
	for _, f := range t.FareKop {
		rt.MaxFareKop = max(rt.MaxFareKop, f)
	}
	for _, l := range t.Legs {
		rt.MaxFareKop = max(rt.MaxFareKop, l.FareKop)
	}
	rt.MaxCompensationKop = rt.MaxFareKop
	for _, c := range t.Categories {
		if c.FixedCompensation {
			rt.MaxCompensationKop = max(rt.MaxCompensationKop, c.CompensationKop)
		}
	}
	for _, r := range t.Transfers {
		rt.horizon = max(rt.horizon, r.Within)
	}
	return rt
}

// Horizon is how long a previous ride can matter to a ride: the longer
// of the anti-passback time and the longest transfer window. A ride whose
// card names a previous ride younger than this that clearing has not
// received waits for it (evidence-pending).
func (t *Tariff) Horizon() time.Duration { return t.horizon }

// prices reports whether the tariff prices rides of carrier at all.
func (t *Tariff) prices(carrier string) bool {
	if _, ok := t.Carriers[carrier]; ok {
		return true
	}
	_, ok := t.FareKop[carrier]
	return ok
}

// codes returns the card-log codes of a ride on carrier's route, 0 when
// the tariff has none.
func (t *Tariff) codes(carrier, route string) (uint16, uint16) {
	c, ok := t.Carriers[carrier]
	if !ok {
		return 0, 0
	}
	for _, r := range c.Routes {
		if r.ID == route {
			return c.Code, r.Code
		}
	}
	return c.Code, 0
}

// Entitlement is the registry's record of one of a card's benefits.
type Entitlement struct {
	// Category is the card category code in decimal ("11").
	Category string
	// From is the first instant of the first day, To the first instant
	// after the last day, in the city's time zone.
	From, To time.Time
	// MonthlyLimit is the rides per month; 0 is unlimited.
	MonthlyLimit int
	Funding      string
}

// Span is a time range [From, To); a zero To is open.
type Span struct {
	From, To time.Time
}

func (s Span) has(t time.Time) bool {
	return !t.Before(s.From) && (s.To.IsZero() || t.Before(s.To))
}

// World is what re-rating knows beyond one card.
type World struct {
	// Location is the city's time zone.
	Location *time.Location
	// Tariffs are the signed tariffs clearing keeps, by version.
	Tariffs map[uint32]*Tariff
	// Devices maps the device numbers card logs record to device ids,
	// learnt from the devices' own authenticated batches.
	Devices map[uint32]string
	// Routes lists, per carrier, the routes it runs; a carrier missing
	// here has no list, and its routes are not checked.
	Routes map[string]map[string]bool
	// RecordsAsOf is when clearing's copy of the registry's records was
	// last known to be complete; zero when it never was.
	RecordsAsOf time.Time
	// CardMACKeys are the Transaction MAC keys of the cards whose rides
	// carry one, from clearing's HSM (MACKeyOf names them); nil when
	// clearing has no Transaction MAC master, and then such rides wait.
	CardMACKeys map[MACKey][16]byte
}

// MACKey names one card's Transaction MAC key: its real UID and the
// key's version.
type MACKey struct {
	UID     [cardkey.UIDSize]byte
	Version uint8
}

// MACKeyOf returns the key that verifies m, and false when m cannot name
// one (a UID of the wrong size or version 0): such a MAC is invalid.
func MACKeyOf(m *tap.CardMAC) (MACKey, bool) {
	var k MACKey
	if m == nil || len(m.UID) != cardkey.UIDSize || m.KeyVersion == 0 {
		return k, false
	}
	copy(k.UID[:], m.UID)
	k.Version = m.KeyVersion
	return k, true
}

// CardFacts is what clearing knows of one card beside its rides.
type CardFacts struct {
	Records []Entitlement
	// Revoked are the spans in which the card's benefits were withdrawn
	// (a benefit-revoked listing).
	Revoked []Span
}

// Pay is what a ride is paid: the line it books into and its amounts.
type Pay struct {
	Category, Funding                    string
	FareKop, ChargedKop, CompensationKop int64
}

// Verdict is the judgement of one ride.
type Verdict struct {
	Key
	// Period is the ride's month in the city.
	Period string
	State  State
	Reason string
	// Detail says in words what was found, with the evidence.
	Detail string
	// Owed is what a paid ride is paid: its claim.
	Owed Pay
	// Release is what a person's release pays, when Priced: what the
	// tariff owes for the claimed category on this ride.
	Release Pay
	Priced  bool
}

// Link is a tap whose evidence names a ride that was not among the rides
// judged with it; PrevTime is the named ride's time as the card logged
// it (whole seconds).
type Link struct {
	Key
	Card     uint64
	PrevTime time.Time
}

// Result is the judgement of one card's rides.
type Result struct {
	// Verdicts has one verdict per judged ride of the months asked for,
	// in time order.
	Verdicts []Verdict
	// Confirmed are the judged rides, of any month of the window, that a
	// later tap's evidence names.
	Confirmed []Key
	// Recheck are months outside those asked for in which the window's
	// evidence settles a commit-unknown ride: judge them too.
	Recheck []string
	// Unresolved are the taps whose evidence names a benefit ride that
	// was not among the rides given.
	Unresolved []Link
	// Resolved are the taps of the window whose evidence named a ride
	// among the rides given.
	Resolved []Key
}

// Card judges the rides of one card. rides are all of the card's stored
// taps from a day before the first month in months to a day after the
// last, plus any others its evidence needs, in any order; months are the
// months (YYYY-MM in w.Location) whose judged rides get a verdict: every
// tap of those months must be among rides.
func Card(w *World, cf *CardFacts, rides []Ride, months map[string]bool) Result {
	rs := slices.Clone(rides)
	slices.SortFunc(rs, func(a, b Ride) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Device, b.Device), cmp.Compare(a.Seq, b.Seq))
	})
	j := &judge{w: w, cf: cf, rides: rs, used: make(map[string]map[string]int)}
	j.checkMACs()
	j.link()
	var res Result
	recheck := make(map[string]bool)
	for i := range rs {
		r := rs[i].Tap
		if j.prev[i] >= 0 || j.prev[i] == unresolved {
			if j.prev[i] >= 0 {
				res.Resolved = append(res.Resolved, KeyOf(r))
			} else if r.Prev.Product == fare.ProductBenefit {
				res.Unresolved = append(res.Unresolved, Link{Key: KeyOf(r), Card: r.Card, PrevTime: r.Prev.Time})
			}
		}
		if !Judged(r) {
			continue
		}
		if len(j.namedBy[i]) > 0 {
			res.Confirmed = append(res.Confirmed, KeyOf(r))
		}
		month := j.month(r.Time)
		if !months[month] {
			if r.CommitUnknown && j.settle(i) != unknownCommit {
				recheck[month] = true
			}
			continue
		}
		res.Verdicts = append(res.Verdicts, j.verdict(i, month))
	}
	for m := range recheck {
		res.Recheck = append(res.Recheck, m)
	}
	slices.Sort(res.Recheck)
	return res
}

// prev values besides an index.
const (
	noPrev     = -2 // the tap carries no previous ride
	unresolved = -1 // it names a ride not among the rides
)

type commit uint8

const (
	unknownCommit commit = iota
	committed
	notCommitted
)

type judge struct {
	w     *World
	cf    *CardFacts
	rides []Ride
	// prev[i] is the index of the ride tap i's evidence names, or noPrev
	// or unresolved; namedBy[i] the taps naming ride i.
	prev    []int
	namedBy [][]int
	// links are the (named ride, naming tap) pairs.
	links [][2]int
	// used counts, per month and category, the benefit rides counted on
	// the card's quota so far.
	used map[string]map[string]int
	// mac[i] is what ride i's Transaction MAC proves; signs says that
	// the card signs its rides (an EV2 or EV3: a MAC of it verified),
	// uid with which UID.
	mac   []macCheck
	signs bool
	uid   [cardkey.UIDSize]byte
	// monthOf caches the month of the last time asked.
	monthOf struct {
		y int
		m time.Month
		s string
	}
}

func (j *judge) month(t time.Time) string {
	y, m, _ := t.In(j.w.Location).Date()
	if c := &j.monthOf; c.s == "" || c.y != y || c.m != m {
		c.y, c.m, c.s = y, m, fmt.Sprintf("%04d-%02d", y, int(m))
	}
	return j.monthOf.s
}

// macCheck is what one ride's Transaction MAC proves.
type macCheck struct {
	verdict cardmac.Verdict
	// unchecked: clearing holds no key to verify it with.
	unchecked bool
	why       string
}

// checkMACs verifies the Transaction MAC of every ride that carries one
// and learns whether the card signs its rides.
func (j *judge) checkMACs() {
	j.mac = make([]macCheck, len(j.rides))
	for i := range j.rides {
		r := j.rides[i].Tap
		if r.CardMAC == nil {
			continue
		}
		c := &j.mac[i]
		k, ok := MACKeyOf(r.CardMAC)
		if !ok {
			c.verdict, c.why = cardmac.Invalid, fmt.Sprintf("a card MAC with a %d-byte UID and key version %d names no card key",
				len(r.CardMAC.UID), r.CardMAC.KeyVersion)
			continue
		}
		key, ok := j.w.CardMACKeys[k]
		if !ok {
			c.unchecked = true
			continue
		}
		v, err := cardmac.Check(r, key)
		c.verdict = v
		if err != nil {
			c.why = err.Error()
		}
		if v == cardmac.Signed && !j.signs {
			j.signs, j.uid = true, k.UID
		}
	}
	// A MAC that verifies but names no card number (a first tap's) shows
	// the card signs too, when no other ride says with which UID.
	for i := range j.rides {
		if j.signs {
			break
		}
		if j.mac[i].verdict == cardmac.Unproven {
			k, _ := MACKeyOf(j.rides[i].CardMAC)
			j.signs, j.uid = true, k.UID
		}
	}
	// A verified MAC of another UID is not this card's (an unproven one
	// names no card number; the card signs with one UID): invalid, as
	// evidence and as a claim alike.
	for i := range j.rides {
		c := &j.mac[i]
		if m := j.rides[i].CardMAC; (c.verdict == cardmac.Signed || c.verdict == cardmac.Unproven) && !slices.Equal(m.UID, j.uid[:]) {
			c.verdict, c.why = cardmac.Invalid, fmt.Sprintf("the Transaction MAC is of UID %X; the card signs its rides with UID %X", m.UID, j.uid[:])
		}
	}
}

// unsigned reports whether ride i lacks the card's signature the card
// would have given it: its MAC is invalid, or the card signs its rides
// and this one, accepted and said to be committed, carries no MAC. Such a
// ride is not evidence of anything (it names no previous ride, and is no
// previous ride), and it is held. A commit-unknown ride carries no MAC
// (the card's answer was lost): a later signed tap proves it instead.
func (j *judge) unsigned(i int) bool {
	r := j.rides[i].Tap
	if r.CardMAC != nil {
		return j.mac[i].verdict == cardmac.Invalid
	}
	return j.signs && r.Result == tap.Accepted && r.CardCommitted && !r.CommitUnknown
}

// link resolves each tap's evidence among the rides.
func (j *judge) link() {
	n := len(j.rides)
	j.prev = make([]int, n)
	j.namedBy = make([][]int, n)
	type at struct {
		seq  uint32
		unix int64
	}
	idx := make(map[at][]int, n)
	for i := range j.rides {
		r := j.rides[i].Tap
		k := at{uint32(r.Seq), r.Time.Unix()}
		idx[k] = append(idx[k], i)
	}
	for i := range j.rides {
		r := j.rides[i].Tap
		j.prev[i] = noPrev
		if r.Prev.Device == 0 || j.unsigned(i) {
			continue
		}
		j.prev[i] = unresolved
		dev, known := j.w.Devices[r.Prev.Device]
		for _, c := range idx[at{r.Prev.Seq, r.Prev.Time.Unix()}] {
			x := j.rides[c].Tap
			if c == i || (known && x.Device != dev) || (!known && x.DeviceNumber != r.Prev.Device) {
				continue
			}
			j.prev[i] = c
			j.namedBy[c] = append(j.namedBy[c], i)
			j.links = append(j.links, [2]int{c, i})
			break
		}
	}
}

// named reports whether a later tap's evidence names ride i.
func (j *judge) named(i int) bool { return len(j.namedBy[i]) > 0 }

// mayHold reports whether the card may hold ride y as a record of its tap
// log: one a later tap names, or an accepted ride its device says the
// card committed. A tap refused or already paid writes no record (though
// its transaction completed), so it forks nothing and settles nothing:
// the card's next ride still continues from the ride before it.
func (j *judge) mayHold(y int) bool {
	return j.named(y) || j.rides[y].Result == tap.Accepted && j.rides[y].CardCommitted && !j.unsigned(y)
}

// spanned reports whether the card went from one ride to a later one
// around ride i without it: a link (p, y) with i strictly inside, by more
// than the clocks' tolerance. A link that is one of several claiming p
// proves nothing until the card's next tap settles which it holds, so
// that a forged tap naming an old ride cannot make the rides after that
// ride look absent.
func (j *judge) spanned(i int) bool {
	_, _, ok := j.spanning(i)
	return ok
}

func (j *judge) spanning(i int) (p, y int, ok bool) {
	t := j.rides[i].Time
	for _, l := range j.links {
		p, y := l[0], l[1]
		if p == i || y == i || j.prev[i] == p || (!j.named(y) && j.siblings(y)) {
			continue
		}
		if j.rides[p].Time.Add(ClockTolerance).Before(t) && t.Before(j.rides[y].Time.Add(-ClockTolerance)) {
			return p, y, true
		}
	}
	return 0, 0, false
}

// siblings reports whether another ride the card may hold claims the
// same previous ride as ride y.
func (j *judge) siblings(y int) bool {
	for _, z := range j.namedBy[j.prev[y]] {
		if z != y && j.mayHold(z) {
			return true
		}
	}
	return false
}

// fork says how ride i stands among the taps naming the same previous
// ride: alone (0), beaten by one the card's log continues from (1), or
// beside others that no later tap settles yet (2).
func (j *judge) fork(i int) int {
	p := j.prev[i]
	if p < 0 {
		return 0
	}
	state := 0
	for _, y := range j.namedBy[p] {
		if y == i || !j.mayHold(y) {
			continue
		}
		if j.named(y) && !j.named(i) {
			return 1
		}
		if !j.named(i) {
			state = 2
		}
	}
	return state
}

// settle says whether the card committed commit-unknown ride i: named by
// a later tap, or passed over by the card's chain.
func (j *judge) settle(i int) commit {
	if j.named(i) {
		return committed
	}
	if p := j.prev[i]; p >= 0 {
		for _, y := range j.namedBy[p] {
			if y != i && j.mayHold(y) {
				return notCommitted
			}
		}
	}
	if j.spanned(i) {
		return notCommitted
	}
	return unknownCommit
}

// onCard reports whether clearing takes ride i as committed on the card.
func (j *judge) onCard(i int) bool {
	r := j.rides[i].Tap
	switch {
	case j.named(i):
		return true
	case j.unsigned(i):
		return false
	case r.CardCommitted:
		return !j.contradicted(i)
	case r.CommitUnknown:
		return j.settle(i) == committed
	}
	return false
}

// contradicted reports whether the card's chain shows that a ride its
// device says it committed is not on the card.
func (j *judge) contradicted(i int) bool {
	return !j.named(i) && (j.fork(i) == 1 || j.spanned(i))
}

// last returns the previous ride for the decision of ride i under t, or
// why clearing cannot know it yet, or why the evidence is wrong.
func (j *judge) last(i int, t *Tariff) (last *fare.LastTap, wait, mismatch string) {
	r := j.rides[i].Tap
	switch p := j.prev[i]; {
	case p >= 0:
		x := j.rides[p].Tap
		if x.Product != r.Prev.Product {
			return nil, "", fmt.Sprintf("the card logs the previous ride %s as %s, its device sent %s", rideName(x), r.Prev.Product, x.Product)
		}
		// Code 0 is a validator configured without carrier_number: it
		// logs no carrier, and no transfer follows from the ride.
		if c, ok := t.Carriers[x.Carrier]; ok && r.Prev.Carrier != 0 && c.Code != r.Prev.Carrier {
			return nil, "", fmt.Sprintf("the card logs the previous ride %s on carrier code %d, its device is of %s (code %d)",
				rideName(x), r.Prev.Carrier, x.Carrier, c.Code)
		}
		return &fare.LastTap{Time: r.Prev.Time, Vehicle: x.Vehicle, Carrier: r.Prev.Carrier, Route: r.Prev.Route, Product: r.Prev.Product}, "", ""
	case p == unresolved:
		if age := r.Time.Sub(r.Prev.Time); age >= 0 && age < t.horizon {
			return nil, fmt.Sprintf("the card's log names a previous ride of device number %d (sequence %d, %s) %s before it, which has not reached clearing",
				r.Prev.Device, r.Prev.Seq, r.Prev.Time.UTC().Format(time.RFC3339), age.Round(time.Second)), ""
		}
		// Too old to matter for anti-passback or a transfer; what the
		// card logged serves for the clock check.
		return &fare.LastTap{Time: r.Prev.Time, Vehicle: "\x00unknown", Carrier: r.Prev.Carrier, Route: r.Prev.Route, Product: r.Prev.Product}, "", ""
	}
	// No evidence of a previous ride: the card's newest committed ride
	// before it in clearing's own taps.
	for k := i - 1; k >= 0; k-- {
		if !j.onCard(k) {
			continue
		}
		x := j.rides[k].Tap
		if r.Time.Sub(x.Time) >= t.horizon {
			break
		}
		carrier, route := t.codes(x.Carrier, x.Route)
		return &fare.LastTap{Time: x.Time.Truncate(time.Second), Vehicle: x.Vehicle, Carrier: carrier, Route: route, Product: x.Product}, "", ""
	}
	return nil, "", ""
}

// revoked is the card's benefit-revoked listing at one instant.
type revoked bool

func (r revoked) Listing(uint64) fare.Listing {
	if r {
		return fare.BenefitRevoked
	}
	return fare.NotListed
}

func (j *judge) revokedAt(t time.Time) bool {
	for _, s := range j.cf.Revoked {
		if s.has(t) {
			return true
		}
	}
	return false
}

// held builds a verdict of state s.
func held(v Verdict, s State, reason, detail string) Verdict {
	v.State, v.Reason, v.Detail = s, reason, detail
	return v
}

func (j *judge) verdict(i int, month string) Verdict {
	rd := j.rides[i]
	r := rd.Tap
	t := j.w.Tariffs[r.TariffVersion]
	v := j.verdictOf(i, month, t)
	if v.State != Paid && t != nil {
		// What a person's release would pay; a paid ride needs none.
		v.Release, v.Priced = price(t, r)
	}
	return v
}

func (j *judge) verdictOf(i int, month string, t *Tariff) Verdict {
	r := j.rides[i].Tap
	v := Verdict{Key: KeyOf(r), Period: month}
	count := func(category string) {
		if j.used[month] == nil {
			j.used[month] = make(map[string]int)
		}
		j.used[month][category]++
	}
	claimCount := func() {
		// Without a decision of its own, clearing counts the ride as the
		// card did, if the card holds it.
		if r.Counted && j.onCard(i) {
			count(r.Category)
		}
	}
	if r.CommitUnknown && !r.CardCommitted {
		switch j.settle(i) {
		case notCommitted:
			return held(v, NotOwed, ReasonNotCommitted, "the card's later taps show it did not commit this ride")
		case unknownCommit:
			if store.SaneAmounts(r) {
				return held(v, Waiting, ReasonCommitUnknown, "the card's answer to the commit was lost, and no later tap of the card has shown whether it holds the ride")
			}
		}
	}
	if !store.SaneAmounts(r) {
		claimCount()
		return held(v, Held, ReasonAmountInvalid, fmt.Sprintf("claims fare %s, charged %s, compensation %s: an amount is negative or above the most any tariff can hold (%s)",
			kop(r.FareKop), kop(r.ChargedKop), kop(r.CompensationKop), kop(MaxAmountKop)))
	}
	if reason, detail := j.macVerdict(i); reason != "" {
		state := Held
		if reason == ReasonCardMACUnchecked {
			state = Waiting
		}
		return held(v, state, reason, detail)
	}
	if t == nil {
		claimCount()
		return held(v, Waiting, ReasonTariffUnknown, fmt.Sprintf("clearing does not keep tariff version %d; add it (transit clearing tariff add)", r.TariffVersion))
	}
	if r.CompensationKop > t.MaxCompensationKop || r.FareKop > t.MaxFareKop {
		claimCount()
		return held(v, Held, ReasonOverTariff, fmt.Sprintf("claims fare %s and compensation %s; tariff version %d owes at most fare %s and compensation %s",
			kop(r.FareKop), kop(r.CompensationKop), t.Version, kop(t.MaxFareKop), kop(t.MaxCompensationKop)))
	}
	if _, ok := t.Categories[r.Category]; !ok {
		claimCount()
		return held(v, Held, ReasonCategoryUnknown, fmt.Sprintf("category %q is not a benefit of tariff version %d", r.Category, t.Version))
	}
	if !t.prices(r.Carrier) {
		claimCount()
		return held(v, Held, ReasonCarrierUnknown, fmt.Sprintf("tariff version %d prices no carrier %q", t.Version, r.Carrier))
	}
	if routes, listed := j.w.Routes[r.Carrier]; listed && !routes[r.Route] {
		claimCount()
		return held(v, Held, ReasonRouteNotRun, fmt.Sprintf("carrier %s does not run route %q (clearing's list of its routes)", r.Carrier, r.Route))
	}
	if j.contradicted(i) {
		return held(v, Held, ReasonContradicted, j.contradiction(i))
	}
	if j.fork(i) == 2 {
		claimCount()
		return held(v, Waiting, ReasonEvidenceFork, "another ride claims the same previous ride on the card; the card's next tap will show which one it holds")
	}
	last, wait, mismatch := j.last(i, t)
	if mismatch != "" {
		claimCount()
		return held(v, Held, ReasonEvidenceMismatch, mismatch)
	}
	if wait != "" {
		claimCount()
		return held(v, Waiting, ReasonEvidencePending, wait)
	}
	ents := make([]fare.Entitlement, len(j.cf.Records))
	for k, e := range j.cf.Records {
		ents[k] = fare.Entitlement{Category: e.Category, ValidFrom: e.From, ValidTo: e.To, Slot: k,
			Limit: e.MonthlyLimit, Used: j.used[month][e.Category]}
	}
	c := fare.Card{Number: r.Card, PurseKop: math.MaxInt64, Entitlements: ents, LastTap: last}
	d := fare.Decide(c, t.Tariff, revoked(j.revokedAt(r.Time)), fare.Device{ID: r.Device, Carrier: r.Carrier, Route: r.Route, Vehicle: r.Vehicle}, r.Time)
	if d.Result == tap.Accepted && d.Product == fare.ProductBenefit && d.CountRide && j.onCard(i) {
		count(d.Category)
	}
	if d.Result == tap.Accepted && d.Product == fare.ProductBenefit && r.Product == d.Product && d.Category == r.Category && d.Funding == r.Funding &&
		d.FareKop == r.FareKop && d.ChargedKop == r.ChargedKop && d.CompensationKop == r.CompensationKop &&
		// Taps without evidence come from validators that did not
		// report the count.
		(d.CountRide == r.Counted || r.DeviceNumber == 0) {
		v.State, v.Owed = Paid, Pay{r.Category, r.Funding, r.FareKop, r.ChargedKop, r.CompensationKop}
		return v
	}
	if j.w.RecordsAsOf.IsZero() {
		return held(v, Waiting, ReasonRegistryBehind, "clearing holds no records from the registry yet (transit clearing registry sync)")
	}
	got := decisionText(d)
	switch {
	case d.BenefitRevoked:
		return held(v, Held, ReasonBenefitRevoked, "the card's benefits were revoked at the time of the ride; re-rated: "+got)
	case !j.holds(r.Category, r.Time):
		if r.Time.After(j.w.RecordsAsOf) {
			return held(v, Waiting, ReasonRegistryBehind, fmt.Sprintf("the registry's records clearing holds are as of %s, before the ride, and show no category %s on that day",
				j.w.RecordsAsOf.UTC().Format(time.RFC3339), r.Category))
		}
		return held(v, Held, ReasonNotEntitled, fmt.Sprintf("the registry records no category %s for the card on %s", r.Category, r.Time.In(j.w.Location).Format("2006-01-02")))
	case j.usedUp(t, r.Category, month, r.Time):
		return held(v, Held, ReasonOverQuota, fmt.Sprintf("the card's %d rides of category %s this month were used up before this one; re-rated: %s",
			j.used[month][r.Category], r.Category, got))
	}
	return held(v, Held, ReasonDiffers, fmt.Sprintf("claimed %s; re-rated with clearing's facts: %s", claimText(r), got))
}

// macVerdict says why ride i's Transaction MAC does not let it be paid,
// or "" when it does or the card does not sign its rides (an EV1).
func (j *judge) macVerdict(i int) (reason, detail string) {
	r := j.rides[i].Tap
	c := j.mac[i]
	switch {
	case r.CardMAC == nil && j.unsigned(i):
		return ReasonCardMACMissing, fmt.Sprintf("the card signs its rides (an EV2/EV3: its Transaction MAC of UID %X verified on another ride) and this ride, said to be committed, carries no Transaction MAC",
			j.uid[:])
	case r.CardMAC == nil:
		return "", ""
	case c.unchecked && j.w.CardMACKeys == nil:
		return ReasonCardMACUnchecked, "the ride carries the card's Transaction MAC and clearing holds no Transaction MAC master to verify it with: give clearing its HSM (--keystore or --pkcs11-module) with the tmac-master"
	case c.unchecked:
		return ReasonCardMACUnchecked, fmt.Sprintf("the card's Transaction MAC is of key version %d, which clearing's HSM does not hold: add that tmac-master version", r.CardMAC.KeyVersion)
	case c.verdict == cardmac.Invalid:
		return ReasonCardMACInvalid, "the card's Transaction MAC does not prove this ride: " + c.why
	}
	return "", ""
}

// holds reports whether the registry records category for the card at t.
func (j *judge) holds(category string, t time.Time) bool {
	for _, e := range j.cf.Records {
		if e.Category == category && !t.Before(e.From) && t.Before(e.To) {
			return true
		}
	}
	return false
}

// usedUp reports whether every record of category valid at t limits
// rides and has its quota (the smaller of its limit and the tariff's
// monthly_rides) used up in month.
func (j *judge) usedUp(t *Tariff, category, month string, at time.Time) bool {
	used, found := j.used[month][category], false
	for _, e := range j.cf.Records {
		if e.Category != category || at.Before(e.From) || !at.Before(e.To) {
			continue
		}
		found = true
		quota := e.MonthlyLimit
		if c, ok := t.Categories[category]; ok && c.MonthlyRides > 0 && c.MonthlyRides < quota {
			quota = c.MonthlyRides
		}
		if quota == 0 || used < quota {
			return false
		}
	}
	return found
}

// contradiction says in words how the card's chain contradicts ride i.
func (j *judge) contradiction(i int) string {
	if j.fork(i) == 1 {
		p := j.rides[j.prev[i]].Tap
		for _, y := range j.namedBy[j.prev[i]] {
			if y != i && j.named(y) {
				return fmt.Sprintf("it claims %s as the card's previous ride, but the card's log continues from %s with %s",
					rideName(p), rideName(p), rideName(j.rides[y].Tap))
			}
		}
	}
	if p, y, ok := j.spanning(i); ok {
		return fmt.Sprintf("the card's log goes from %s straight to %s, around this ride", rideName(j.rides[p].Tap), rideName(j.rides[y].Tap))
	}
	return "the card's log does not hold it"
}

// price returns what the tariff owes for r's claimed category on r's
// ride, as a person's release pays it.
func price(t *Tariff, r *tap.Tap) (Pay, bool) {
	c := fare.Card{Number: r.Card, PurseKop: math.MaxInt64, Entitlements: []fare.Entitlement{{
		Category: r.Category, ValidFrom: time.Time{}, ValidTo: time.Unix(1<<40, 0)}}}
	d := fare.Decide(c, t.Tariff, nil, fare.Device{ID: r.Device, Carrier: r.Carrier, Route: r.Route, Vehicle: r.Vehicle}, r.Time)
	if d.Result != tap.Accepted || d.Product != fare.ProductBenefit || d.Category != r.Category {
		return Pay{}, false
	}
	return Pay{d.Category, d.Funding, d.FareKop, d.ChargedKop, d.CompensationKop}, true
}

// kop writes kopiyky as hryvnias, "15.00".
func kop(k int64) string {
	sign := ""
	if k < 0 {
		sign, k = "-", -k
	}
	return sign + strconv.FormatInt(k/100, 10) + "." + fmt.Sprintf("%02d", k%100)
}

func claimText(r *tap.Tap) string {
	s := fmt.Sprintf("%s %s/%s, fare %s, charged %s, compensation %s", r.Product, r.Category, r.Funding,
		kop(r.FareKop), kop(r.ChargedKop), kop(r.CompensationKop))
	if r.Counted {
		s += ", counted on the quota"
	}
	return s
}

func decisionText(d fare.Decision) string {
	if d.Result != tap.Accepted {
		return fmt.Sprintf("%s (%s), owing nothing", d.Result, d.Reason)
	}
	s := fmt.Sprintf("%s", d.Product)
	if d.Product == fare.ProductBenefit {
		s += " " + d.Category + "/" + d.Funding
	}
	s += fmt.Sprintf(", fare %s, charged %s, compensation %s", kop(d.FareKop), kop(d.ChargedKop), kop(d.CompensationKop))
	if d.CountRide {
		s += ", counted on the quota"
	}
	return s
}

func rideName(t *tap.Tap) string {
	return fmt.Sprintf("%s/%d (%s)", t.Device, t.Seq, t.Time.UTC().Format(time.RFC3339))
}
