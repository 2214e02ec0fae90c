// Package proofplan is one re-rating pass as both clearing stores run it:
// from the queued runs and cards, which rides of which cards to load
// (Wants); from what was loaded, the judgement of each card
// (rerate.Card), the records that change (rerate.Next) and everything to
// write (Judge). The stores load and write; the decisions are here and in
// clearing/rerate, so that the two stores cannot drift apart.
package proofplan

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/plan"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/tap"
)

// CardMonth names one month of one card's rides, queued for judging.
type CardMonth struct {
	Card   uint64
	Period string
}

// Span is a time range [From, To).
type Span struct {
	From, To time.Time
}

// Want says which of one card's stored taps a pass loads: the months to
// judge, each from a day before it to a day after it, and narrower
// spans around taps whose evidence may confirm a ride.
type Want struct {
	Card   uint64
	Months []string
	Spans  []Span
}

// Ranges returns the time ranges to load, merged and sorted.
func (w *Want) Ranges(loc *time.Location) []Span {
	var rs []Span
	for _, m := range w.Months {
		from, to, err := store.Bounds(m, loc)
		if err != nil {
			continue
		}
		rs = append(rs, Span{from.Add(-24 * time.Hour), to.Add(24 * time.Hour)})
	}
	rs = append(rs, w.Spans...)
	slices.SortFunc(rs, func(a, b Span) int { return a.From.Compare(b.From) })
	var out []Span
	for _, r := range rs {
		if n := len(out); n > 0 && !r.From.After(out[n-1].To) {
			if r.To.After(out[n-1].To) {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Wants returns what to load for the queued needs of new taps and the
// card months taken, by card.
func Wants(needs []plan.Need, months []CardMonth, loc *time.Location) []Want {
	byCard := make(map[uint64]*Want)
	get := func(card uint64) *Want {
		w := byCard[card]
		if w == nil {
			w = &Want{Card: card}
			byCard[card] = w
		}
		return w
	}
	addMonth := func(w *Want, m string) {
		if !slices.Contains(w.Months, m) {
			w.Months = append(w.Months, m)
		}
	}
	for _, n := range needs {
		w := get(n.Card)
		if n.Judged {
			addMonth(w, n.Time.In(loc).Format("2006-01"))
		}
		if !n.Prev.IsZero() {
			// The ride its evidence names, to confirm it.
			from := n.Prev
			if n.Time.Before(from) {
				from = n.Time
			}
			w.Spans = append(w.Spans, Span{from.Add(-time.Second), maxTime(n.Time, n.Prev).Add(time.Second)})
		}
	}
	for _, cm := range months {
		addMonth(get(cm.Card), cm.Period)
	}
	out := make([]Want, 0, len(byCard))
	for _, w := range byCard {
		slices.Sort(w.Months)
		out = append(out, *w)
	}
	slices.SortFunc(out, func(a, b Want) int { return cmp.Compare(a.Card, b.Card) })
	return out
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// MACKeys returns the Transaction MAC keys of the cards whose loaded
// rides carry one, from keys; nil when keys is nil (clearing holds no
// Transaction MAC master, and such rides wait). A MAC that names no key
// (rerate.MACKeyOf) gets none: re-rating holds it as invalid; nor does
// a key version the HSM does not hold: the ride waits for it. Any other
// HSM failure fails the pass, whose work stays queued.
func MACKeys(ctx context.Context, keys store.CardMACKeys, cards []Card) (map[rerate.MACKey][16]byte, error) {
	if keys == nil {
		return nil, nil
	}
	out := make(map[rerate.MACKey][16]byte)
	for i := range cards {
		for _, r := range cards[i].Rides {
			k, ok := rerate.MACKeyOf(r.CardMAC)
			if !ok {
				continue
			}
			if _, done := out[k]; done {
				continue
			}
			v, err := keys.CardMACKey(ctx, k.UID[:], k.Version)
			if errors.Is(err, hsm.ErrNotFound) {
				continue // a key version the HSM lacks: the ride waits for it
			}
			if err != nil {
				return nil, fmt.Errorf("Transaction MAC key of card %d: %w", r.Card, err)
			}
			out[k] = v
		}
	}
	return out, nil
}

// OpenLink is a tap, stored earlier, whose evidence named a benefit ride
// clearing did not have then.
type OpenLink struct {
	Card     uint64
	PrevTime time.Time // whole seconds
	rerate.Key
}

// Card is what a store loaded for one card.
type Card struct {
	Want
	// Rides are the card's stored taps in Want's ranges, and the taps
	// of its open links; a tap twice is taken once.
	Rides []rerate.Ride
	// Records are the stored records of judged rides among Rides.
	Records map[rerate.Key]rerate.Record
	// Confirmed are the rides among Rides known to be recorded as
	// confirmed; a store may leave it empty, and then records a
	// confirmation again, which changes nothing.
	Confirmed map[rerate.Key]bool
	// Links are the card's open links that were loaded.
	Links []OpenLink
	Facts rerate.CardFacts
}

// Row is the record of one judged ride to store.
type Row struct {
	Tap    *tap.Tap
	Period string
	// Claim is the statement the ride's claim belongs to.
	Claim rerate.Booking
	rerate.Record
}

// Confirmed is a judged ride a later tap of its card names.
type Confirmed struct {
	rerate.Key
	Period, Carrier string
}

// Writes is what a pass writes.
type Writes struct {
	Rows []Row
	// Deltas are the roll-up changes, one per row key, sorted by key.
	Deltas    []rerate.Delta
	Confirmed []Confirmed
	// Recheck are card months to queue for the next pass.
	Recheck []CardMonth
	// Links are open links to keep; DropLinks loaded ones now resolved.
	Links, DropLinks []OpenLink
	// Cards and Rides count what was judged, Changed the rows written.
	Cards, Rides, Changed int
}

// Judge judges each card and returns what to write. closed is the set
// of closed periods.
func Judge(w *rerate.World, cards []Card, closed map[string]bool) Writes {
	var out Writes
	deltas := make(map[deltaKey]*rerate.Delta)
	for ci := range cards {
		c := &cards[ci]
		months := make(map[string]bool, len(c.Months))
		for _, m := range c.Months {
			months[m] = true
		}
		res := rerate.Card(w, &c.Facts, c.Rides, months)
		out.Cards++
		byKey := make(map[rerate.Key]*tap.Tap, len(c.Rides))
		booked := make(map[rerate.Key]string, len(c.Rides))
		for i := range c.Rides {
			k := rerate.KeyOf(c.Rides[i].Tap)
			byKey[k], booked[k] = c.Rides[i].Tap, c.Rides[i].Booked
		}
		for _, v := range res.Verdicts {
			out.Rides++
			t := byKey[v.Key]
			r := &rerate.Ride{Tap: t, Booked: booked[v.Key]}
			cur, stored := c.Records[v.Key]
			if !stored {
				cur = rerate.Ingested(r, v.Period)
			}
			day := t.Time.In(w.Location).Format(time.DateOnly)
			next, ds, changed := rerate.Next(r, v.Period, day, cur, v, closed)
			if !changed {
				continue
			}
			out.Changed++
			out.Rows = append(out.Rows, Row{Tap: t, Period: v.Period, Claim: rerate.Claim(r, v.Period), Record: next})
			for _, d := range ds {
				k := deltaKey{d.Booking, d.Carrier, d.Category, d.Funding, d.Route, d.Day}
				if a := deltas[k]; a != nil {
					a.Rides += d.Rides
					a.FareKop += d.FareKop
					a.ChargedKop += d.ChargedKop
					a.CompensationKop += d.CompensationKop
				} else {
					d := d
					deltas[k] = &d
				}
			}
		}
		for _, k := range res.Confirmed {
			t := byKey[k]
			if c.Confirmed[k] || t.CompensationKop <= 0 {
				continue
			}
			out.Confirmed = append(out.Confirmed, Confirmed{Key: k, Period: t.Period(w.Location), Carrier: t.Carrier})
		}
		for _, m := range res.Recheck {
			out.Recheck = append(out.Recheck, CardMonth{c.Card, m})
		}
		resolved := make(map[rerate.Key]bool, len(res.Resolved))
		for _, k := range res.Resolved {
			resolved[k] = true
		}
		known := make(map[OpenLink]bool, len(c.Links))
		for _, l := range c.Links {
			known[l] = true
			if resolved[l.Key] {
				out.DropLinks = append(out.DropLinks, l)
			}
		}
		for _, l := range res.Unresolved {
			ol := OpenLink{Card: l.Card, PrevTime: l.PrevTime, Key: l.Key}
			if !known[ol] {
				out.Links = append(out.Links, ol)
			}
		}
	}
	for _, d := range deltas {
		if d.Rides != 0 || d.FareKop != 0 || d.ChargedKop != 0 || d.CompensationKop != 0 {
			out.Deltas = append(out.Deltas, *d)
		}
	}
	slices.SortFunc(out.Deltas, CompareDeltas)
	slices.SortFunc(out.Rows, func(a, b Row) int {
		return cmp.Or(strings.Compare(a.Tap.Device, b.Tap.Device), cmp.Compare(a.Tap.Seq, b.Tap.Seq))
	})
	return out
}

type deltaKey struct {
	rerate.Booking
	carrier, category, funding, route, day string
}

// CompareDeltas orders roll-up changes as the roll-up's key, so that
// concurrent transactions lock its rows in one order.
func CompareDeltas(a, b rerate.Delta) int {
	return cmp.Or(strings.Compare(a.Into, b.Into), strings.Compare(a.Carrier, b.Carrier),
		strings.Compare(a.Adjusts, b.Adjusts), strings.Compare(a.Category, b.Category),
		strings.Compare(a.Funding, b.Funding), strings.Compare(a.Route, b.Route), strings.Compare(a.Day, b.Day),
		strings.Compare(a.Kind, b.Kind))
}

// Facts turns a stored card record into what re-rating reads: the
// entitlements' days as instants in loc, and the revocations, with the
// spans of benefit-revoked hotlist entries (from then on) added.
func Facts(rec store.CardRecord, revokedFrom []time.Time, loc *time.Location) rerate.CardFacts {
	var f rerate.CardFacts
	for _, e := range rec.Entitlements {
		from, err1 := time.ParseInLocation(time.DateOnly, e.ValidFrom, loc)
		to, err2 := time.ParseInLocation(time.DateOnly, e.ValidTo, loc)
		if err1 != nil || err2 != nil {
			continue // Validate refused these before they were stored
		}
		f.Records = append(f.Records, rerate.Entitlement{Category: itoa(e.Category), From: from,
			To: time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, loc), MonthlyLimit: e.MonthlyLimit, Funding: e.Funding})
	}
	for _, s := range rec.Revoked {
		f.Revoked = append(f.Revoked, rerate.Span{From: s.From, To: s.To})
	}
	for _, t := range revokedFrom {
		f.Revoked = append(f.Revoked, rerate.Span{From: t})
	}
	return f
}

func itoa(n uint16) string {
	var b [5]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// CheckTariff reports what is wrong with a tariff to keep.
func CheckTariff(t *store.TariffFile) error {
	switch {
	case t.Version == 0:
		return fmt.Errorf("add tariff: version 0")
	case len(t.Zip) == 0 || len(t.Zip) > store.MaxTariffBytes:
		return fmt.Errorf("add tariff version %d: %d bytes of files, want 1 to %d", t.Version, len(t.Zip), store.MaxTariffBytes)
	case t.KeyRef == "" || t.Added.IsZero():
		return fmt.Errorf("add tariff version %d: no signing key or time added", t.Version)
	}
	return nil
}

// CheckRoutes checks a carrier's list of routes and returns it sorted,
// each route once.
func CheckRoutes(carrier string, routes []string) ([]string, error) {
	if carrier == "" || len(carrier) > 64 {
		return nil, fmt.Errorf("set routes: carrier %q: want 1 to 64 bytes", carrier)
	}
	if len(routes) > store.MaxRoutes {
		return nil, fmt.Errorf("set routes of %s: %d routes, at most %d", carrier, len(routes), store.MaxRoutes)
	}
	out := slices.Clone(routes)
	for _, r := range out {
		if r == "" || len(r) > 64 {
			return nil, fmt.Errorf("set routes of %s: route %q: want 1 to 64 bytes", carrier, r)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Doc is a card record in the form the stores keep it.
type Doc struct {
	Card uint64
	Doc  string
}

type recordDoc struct {
	Entitlements []store.RecordEntitlement `json:"entitlements"`
	Revoked      []store.RecordSpan        `json:"revoked"`
}

// Encode validates recs and returns them as stored, by card; a card
// twice keeps its last record.
func Encode(recs []store.CardRecord) ([]Doc, error) {
	byCard := make(map[uint64]int, len(recs))
	var out []Doc
	for i := range recs {
		r := &recs[i]
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("set card records: record %d: %w", i+1, err)
		}
		d := recordDoc{Entitlements: r.Entitlements, Revoked: r.Revoked}
		if d.Entitlements == nil {
			d.Entitlements = []store.RecordEntitlement{}
		}
		if d.Revoked == nil {
			d.Revoked = []store.RecordSpan{}
		}
		for k := range d.Revoked {
			d.Revoked[k].From, d.Revoked[k].To = d.Revoked[k].From.UTC().Truncate(time.Microsecond), d.Revoked[k].To.UTC().Truncate(time.Microsecond)
		}
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		if k, ok := byCard[r.Card]; ok {
			out[k].Doc = string(b)
			continue
		}
		byCard[r.Card] = len(out)
		out = append(out, Doc{r.Card, string(b)})
	}
	slices.SortFunc(out, func(a, b Doc) int { return cmp.Compare(a.Card, b.Card) })
	return out, nil
}

// Decode reads a stored card record.
func Decode(card uint64, doc string) (store.CardRecord, error) {
	var d recordDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return store.CardRecord{}, fmt.Errorf("card record of %d: %w", card, err)
	}
	return store.CardRecord{Card: card, Entitlements: d.Entitlements, Revoked: d.Revoked}, nil
}

// HeldRide returns a judged ride as store.Held lists it.
func HeldRide(t *tap.Tap, rec rerate.Record, confirmed bool) store.HeldRide {
	h := store.HeldRide{Tap: *t, State: string(rec.State), Reason: rec.Reason, Detail: rec.Detail, Priced: rec.Priced,
		Release: store.Amounts(rec.Release), Confirmed: confirmed,
		DecidedBy: rec.Decision.By, DecidedAt: rec.Decision.At, Note: rec.Decision.Note}
	if rec.Booking.Paid() {
		h.Into, h.Adjusts = rec.Booking.Into, rec.Booking.Adjusts
	}
	return h
}

// Decided is a ride a decision names, as loaded: its tap and record.
type Decided struct {
	Ride   rerate.Ride
	Record rerate.Record
}

// DecideWrites is what a decision writes.
type DecideWrites struct {
	Rows    []Row
	Deltas  []rerate.Delta
	Decided []store.HeldRide
}

// Decide applies d to the rides found for it (rerate.Decide), all of
// them or none: a ride d names that was not found, or that cannot be
// decided so, fails the whole decision.
func Decide(d store.HeldDecision, found []Decided, closedPeriods []string, loc *time.Location) (DecideWrites, error) {
	closed := make(map[string]bool, len(closedPeriods))
	for _, p := range closedPeriods {
		closed[p] = true
	}
	byKey := make(map[rerate.Key]*Decided, len(found))
	for i := range found {
		byKey[rerate.KeyOf(found[i].Ride.Tap)] = &found[i]
	}
	var w DecideWrites
	for _, r := range d.Rides {
		f := byKey[rerate.Key{Device: r.Device, Seq: r.Seq}]
		if f == nil {
			return DecideWrites{}, fmt.Errorf("decide: %s/%d: %w: clearing holds no judgement of it", r.Device, r.Seq, store.ErrNotHeld)
		}
		t := f.Ride.Tap
		period := t.Period(loc)
		next, ds, err := rerate.Decide(&f.Ride, period, t.Time.In(loc).Format(time.DateOnly), f.Record, d.Release,
			rerate.Decision{By: d.By, Note: d.Note, At: d.At.UTC().Truncate(time.Microsecond)}, closed)
		switch {
		case errors.Is(err, rerate.ErrNotHeld):
			return DecideWrites{}, fmt.Errorf("decide: %w: %w", store.ErrNotHeld, err)
		case errors.Is(err, rerate.ErrNotPriced):
			return DecideWrites{}, fmt.Errorf("decide: %w: %w", store.ErrNotPriced, err)
		case err != nil:
			return DecideWrites{}, fmt.Errorf("decide: %w", err)
		}
		w.Rows = append(w.Rows, Row{Tap: t, Period: period, Claim: rerate.Claim(&f.Ride, period), Record: next})
		w.Deltas = append(w.Deltas, ds...)
		w.Decided = append(w.Decided, HeldRide(t, next, false))
	}
	return w, nil
}

// ProofLines gathers proof lines by carrier.
type ProofLines map[string]*store.ProofLine

// Get returns carrier's line, made when missing.
func (p ProofLines) Get(carrier string) *store.ProofLine {
	l := p[carrier]
	if l == nil {
		l = &store.ProofLine{Carrier: carrier}
		p[carrier] = l
	}
	return l
}

// Add counts n rides of state (held or waiting) claiming kop.
func (p ProofLines) Add(carrier, state string, n, kop int64) {
	l := p.Get(carrier)
	if state == string(rerate.Waiting) {
		l.Waiting += n
	} else {
		l.Held += n
	}
	l.HeldKop += kop
}

// Sorted returns the lines by carrier, leaving out carriers with nothing.
func (p ProofLines) Sorted() []store.ProofLine {
	var out []store.ProofLine
	for _, l := range p {
		if l.Paid != 0 || l.Confirmed != 0 || l.Held != 0 || l.Waiting != 0 {
			out = append(out, *l)
		}
	}
	slices.SortFunc(out, func(a, b store.ProofLine) int { return strings.Compare(a.Carrier, b.Carrier) })
	return out
}
