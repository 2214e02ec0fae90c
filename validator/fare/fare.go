// Package fare decides what a tap costs and whether it is allowed. Decide is
// a pure function: card state, tariff, hotlist and device context in, a
// decision and the card writes to perform out. No clock, disk or card inside;
// the caller brings now.
//
// validator/tariff/FORMAT.md ("Deciding a tap") is the statement of the
// rules; this is the validator's fast reading of it. In the order Decide
// applies them:
//
//  1. A hotlisted (other than benefit-revoked), blocked or expired card is
//     denied. A benefit-revoked listing drops the card's benefits only.
//  2. The previous ride is the newest record of the card's tap log: the
//     card's newest committed ride. A tap stamped before it is a clock
//     anomaly: neither anti-passback nor a transfer follows from it.
//  3. The same card on the same vehicle within Tariff.Passback of the
//     previous ride is already paid: not charged, nothing written.
//  4. The ride is priced: the device's carrier and route give a network,
//     the network and the local time give a fare leg rule (peak, off-peak)
//     and its full fare. A carrier the tariff does not price is denied.
//  5. A pass on the card that is valid now and covers the carrier's group
//     pays the ride.
//  6. Otherwise the best benefit (least charged; an uncounted one before a
//     counted one; then the smaller category number) pays, else the purse;
//     a transfer from the previous ride replaces that when it costs less,
//     or as much as a counted benefit (it spares the quota).
//  7. A charge above the purse balance is denied.
package fare

import (
	"slices"
	"time"

	"github.com/citycard/transit/validator/tap"
)

// Reasons a tap is accepted or denied, as recorded in tap.Tap.Reason.
const (
	ReasonOK                = "ok"
	ReasonHotlisted         = "hotlisted"
	ReasonBlocked           = "card-blocked"
	ReasonExpired           = "card-expired"
	ReasonInsufficientFunds = "insufficient-funds"
	ReasonNoFare            = "no-fare-for-carrier"
	ReasonPassback          = "already-paid"
)

// Products that can pay for a ride; the names are validator/tap's and the
// card log's (card.Product.String).
const (
	ProductPurse    = "purse"
	ProductPass     = "pass"
	ProductBenefit  = "benefit"
	ProductTransfer = "transfer"
)

// Funding sources that compensate carriers for benefit rides.
const (
	FundingCity  = "city"
	FundingState = "state"
)

// NoSlot in Decision.Slot means no card slot paid the ride.
const NoSlot = -1

// AllGroups in a pass's carrier groups means the whole network, as on the
// card (card.AllCarriers).
const AllGroups uint16 = 0xFFFF

// Tariff is what a validator needs to price a ride. validator/tariff builds
// it from the tariff files; the zero values of optional parts switch their
// rule off, so a flat tariff is just Version, FareKop and Categories.
type Tariff struct {
	Version uint32
	// Passback is how long the same card on the same vehicle is treated as
	// the same ride (not charged again).
	Passback time.Duration
	// Location is the city's time zone, in which timeframes are read; nil
	// reads them in now's own location. A validator stamps taps in UTC, so
	// a tariff with timeframes should carry its zone.
	Location *time.Location
	// FareKop is the full single fare, in kopiyky, of a carrier that is not
	// in Carriers: a flat tariff with no networks, timeframes, transfers or
	// passes.
	FareKop map[string]int64
	// Categories are the benefit categories by the card's category number
	// in decimal ("11").
	Categories map[string]Category
	// Carriers by carrier id (Device.Carrier). A carrier listed here is
	// priced by Legs only.
	Carriers map[string]Carrier
	// Legs are the fare leg rules; see Tariff.price for how one is chosen.
	Legs []LegRule
	// Timeframes are the times of day and week that LegRule.Timeframe names.
	Timeframes []Timeframe
	// Transfers are the fare transfer rules.
	Transfers []TransferRule
	// Passes are the pass products by the product code on the card.
	Passes map[uint16]PassProduct
}

// Carrier is one carrier of the tariff.
type Carrier struct {
	ID string
	// Code is the carrier's number in the card's tap log.
	Code uint16
	// Group is the carrier group (0..15) whose bit a pass must carry.
	Group int
	// Network is the network of the carrier's routes not in Routes.
	Network string
	// Routes are the carrier's routes in another network than Network,
	// such as its trolleybus routes when Network is its trams.
	Routes []Route
}

// Route puts one route of a carrier in a network of its own.
type Route struct {
	ID      string // as in Device.Route
	Code    uint16 // as in the card's tap log
	Network string
}

// LegRule prices a ride on a network, in a timeframe, like a GTFS-Fares v2
// fare leg rule.
type LegRule struct {
	// LegGroup names the rule for transfer rules ("" belongs to no group).
	LegGroup string
	// Network is the network priced; "" is any network.
	Network string
	// Timeframe is the timeframe group the boarding must fall in; "" is
	// any time.
	Timeframe string
	// Product is the fare product id and FareKop its amount.
	Product string
	FareKop int64
	// Priority: among matching rules the highest wins.
	Priority int
}

// Timeframe is one interval of a timeframe group, in local time.
type Timeframe struct {
	Group string
	// Start and End are seconds since local midnight; Start is in, End out
	// (at most 86400).
	Start, End int32
	// Weekdays is a bit set with bit time.Weekday set for each day it
	// applies on.
	Weekdays uint8
	// FromDate and ToDate bound the dates it applies on, inclusive, as
	// yyyymmdd; 0 leaves that side open.
	FromDate, ToDate int32
}

// TransferType says how a transfer ride is priced.
type TransferType uint8

// Transfer types, numbered as GTFS fare_transfer_type.
const (
	// TransferFixed: the transfer ride costs the transfer amount
	// (GTFS 0, A + AB).
	TransferFixed TransferType = 0
	// TransferAdd: the transfer ride costs its own fare plus the transfer
	// amount, which is usually negative, and never less than 0
	// (GTFS 1, A + AB + B).
	TransferAdd TransferType = 1
)

// TransferRule makes a ride after another one cheaper, like a GTFS-Fares
// v2 fare transfer rule.
type TransferRule struct {
	// From and To are the leg groups of the previous and of this ride; ""
	// is any leg. A rule naming a group beats one that does not.
	From, To string
	// Within is how soon after the previous ride this one must start.
	Within time.Duration
	// Chain allows a transfer right after a transfer. The card remembers
	// only its last ride, so a validator cannot count the transfers of a
	// journey, only see whether the last ride was one.
	Chain     bool
	Type      TransferType
	Product   string
	AmountKop int64
}

// cost is what a transfer ride with full fare full costs.
func (r *TransferRule) cost(full int64) int64 {
	if r.Type == TransferAdd {
		return max(0, full+r.AmountKop)
	}
	return r.AmountKop
}

// PassProduct is a period pass that can be written on cards.
type PassProduct struct {
	Code     uint16
	Product  string
	PriceKop int64
	Days     int
	// Groups is the bit set of carrier groups the product covers;
	// AllGroups for the whole network. A ride needs the group's bit here
	// and on the card.
	Groups uint16
}

// Category is a benefit category: what it takes off the fare, where it is
// valid, who pays the carrier for it and how much.
type Category struct {
	Code string
	// Rider is the tariff's rider category id ("pensioner").
	Rider string
	// DiscountPct is the share of the fare the rider does not pay
	// (100 = free ride).
	DiscountPct int64
	// Funding is the budget that compensates the carrier: FundingCity or
	// FundingState.
	Funding string
	// MonthlyRides lowers the monthly limit written on a card slot when
	// it is smaller; 0 leaves the card's limit. An unlimited slot stays
	// unlimited: only a limited slot makes the validator read the card's
	// counters.
	MonthlyRides int
	// FixedCompensation pays the carrier CompensationKop per ride; false
	// pays the fare minus what the rider was charged.
	FixedCompensation bool
	CompensationKop   int64
	// Networks and Carriers limit where the benefit is valid; empty is
	// everywhere.
	Networks []string
	Carriers []string
}

// validOn reports whether the benefit can pay a ride on network with
// carrier.
func (c *Category) validOn(network, carrier string) bool {
	return (len(c.Networks) == 0 || slices.Contains(c.Networks, network)) &&
		(len(c.Carriers) == 0 || slices.Contains(c.Carriers, carrier))
}

// Entitlement is a benefit written on the card.
type Entitlement struct {
	Category  string
	ValidFrom time.Time
	ValidTo   time.Time // exclusive
	// Slot is the card's entitlement slot.
	Slot int
	// Limit is the card slot's monthly ride limit, 0 for none, and Used
	// the rides counted on it this month.
	Limit, Used int
}

// Pass is a period pass written on the card.
type Pass struct {
	Product   uint16
	ValidFrom time.Time
	ValidTo   time.Time // exclusive
	// Groups is the card's bit set of carrier groups; AllGroups for the
	// whole network.
	Groups uint16
	// Slot is the card's pass slot.
	Slot int
}

// Card is what the validator read from the card.
type Card struct {
	Number       uint64
	Expiry       time.Time // exclusive; zero means no expiry
	Blocked      bool
	PurseKop     int64
	Entitlements []Entitlement
	Passes       []Pass
	// LastTap is the newest ride in the card's own log, for anti-passback
	// and transfers.
	LastTap *LastTap
}

// LastTap is the part of the card's previous ride a decision looks at:
// the newest record of the card's tap log, which is the card's newest
// committed ride (a torn ride never reaches the log).
type LastTap struct {
	Time    time.Time
	Vehicle string
	// Carrier and Route are the codes the card's log holds; 0 is unknown
	// and gives no transfer.
	Carrier, Route uint16
	// Product paid that ride (ProductPurse...).
	Product string
}

// Listing is what the hotlist says about a card.
type Listing uint8

// Listings.
const (
	NotListed Listing = iota
	// Listed denies every ride of the card (lost, stolen, fraud...).
	Listed
	// BenefitRevoked withdraws the card's benefits only: it still rides
	// on its pass or purse.
	BenefitRevoked
)

// Hotlist says whether a card is listed centrally, and how.
type Hotlist interface {
	Listing(card uint64) Listing
}

// Device is where the tap happens.
type Device struct {
	ID, Carrier, Route, Vehicle string
}

// Decision is the outcome of one tap and what must be written to the card
// for it.
type Decision struct {
	Result tap.Result
	Reason string
	// Product paid the ride: ProductPurse, ProductPass, ProductBenefit or
	// ProductTransfer.
	Product string
	// Category and Funding name the benefit that paid, or that would have
	// paid a ride denied for funds.
	Category string
	Funding  string
	// FareKop is the full fare of the ride, ChargedKop what the rider
	// pays, CompensationKop what Funding owes the carrier.
	FareKop         int64
	ChargedKop      int64
	CompensationKop int64
	// DebitKop is what to take from the purse on the card (equals
	// ChargedKop); zero means no purse write.
	DebitKop int64
	// LogTap says whether the tap is written to the card's tap log.
	LogTap bool
	// Slot is the card slot that paid: the entitlement slot of a benefit
	// ride, the pass slot of a pass ride, else NoSlot.
	Slot int
	// CountRide says the benefit ride is counted on entitlement Slot's
	// monthly limit.
	CountRide bool
	// ClockAnomaly says the tap is stamped before the card's previous
	// ride, so neither anti-passback nor a transfer followed from it.
	ClockAnomaly bool
	// BenefitRevoked says the hotlist withdrew the card's benefits, so
	// none was considered.
	BenefitRevoked bool
}

// Decide prices one tap. It never fails: every input yields a decision, and
// a denial carries its reason. It does not allocate.
func Decide(c Card, t *Tariff, hl Hotlist, d Device, now time.Time) Decision {
	revoked := false
	if hl != nil {
		switch hl.Listing(c.Number) {
		case NotListed:
		case BenefitRevoked:
			revoked = true
		default:
			return deny(ReasonHotlisted)
		}
	}
	if c.Blocked {
		return deny(ReasonBlocked)
	}
	if !c.Expiry.IsZero() && !now.Before(c.Expiry) {
		return deny(ReasonExpired)
	}
	last, anomaly := c.LastTap, false
	if last != nil && now.Before(last.Time) {
		// A clock behind the card's previous ride proves nothing about
		// how long ago that ride was.
		last, anomaly = nil, true
	}
	if revoked {
		c.Entitlements = nil
	}
	dec := decide(&c, last, t, d, now)
	dec.ClockAnomaly, dec.BenefitRevoked = anomaly, revoked
	return dec
}

// decide applies rules 3 to 7 of the package documentation, with last the
// previous ride unless the clock made it unusable.
func decide(c *Card, last *LastTap, t *Tariff, d Device, now time.Time) Decision {
	if last != nil && last.Vehicle == d.Vehicle && t.Passback > 0 && now.Sub(last.Time) < t.Passback {
		return Decision{Result: tap.AlreadyPaid, Reason: ReasonPassback, Slot: NoSlot}
	}
	cur, ok := t.legOf(d.Carrier, d.Route, now)
	if !ok {
		return deny(ReasonNoFare)
	}
	if slot, ok := passFor(c.Passes, t, &cur, now); ok {
		return Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductPass, FareKop: cur.fare,
			Slot: slot, LogTap: true}
	}
	dec := Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductPurse,
		FareKop: cur.fare, ChargedKop: cur.fare, Slot: NoSlot}
	if b, ok := bestBenefit(c.Entitlements, t, &cur, now); ok {
		dec.Product, dec.Category, dec.Funding = ProductBenefit, b.cat.Code, b.cat.Funding
		dec.ChargedKop, dec.Slot, dec.CountRide = b.charged, b.slot, b.counted
		dec.CompensationKop = cur.fare - b.charged
		if b.cat.FixedCompensation {
			dec.CompensationKop = b.cat.CompensationKop
		}
	}
	// A transfer wins when it is cheaper, and on a tie with a counted
	// benefit ride, which would spend a ride of the quota for nothing.
	if cost, ok := t.transferCost(last, &cur, now); ok &&
		(cost < dec.ChargedKop || cost == dec.ChargedKop && dec.CountRide) {
		dec = Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductTransfer,
			FareKop: cur.fare, ChargedKop: cost, Slot: NoSlot}
	}
	if dec.ChargedKop > c.PurseKop {
		return Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: cur.fare,
			Category: dec.Category, Funding: dec.Funding, Slot: NoSlot}
	}
	dec.DebitKop = dec.ChargedKop
	dec.LogTap = true
	return dec
}

func deny(reason string) Decision {
	return Decision{Result: tap.Denied, Reason: reason, Slot: NoSlot}
}

// leg is one ride as priced.
type leg struct {
	carrier string
	group   int // carrier group; -1 for a flat-tariff carrier
	network string
	legs    string // leg group of the rule that priced it
	fare    int64
}

// legOf prices a ride on carrier's route at instant at.
func (t *Tariff) legOf(carrier, route string, at time.Time) (leg, bool) {
	c, ok := t.Carriers[carrier]
	if !ok {
		f, ok := t.FareKop[carrier]
		return leg{carrier: carrier, group: -1, fare: f}, ok
	}
	network := c.Network
	for i := range c.Routes {
		if c.Routes[i].ID == route {
			network = c.Routes[i].Network
			break
		}
	}
	return t.price(&c, network, at)
}

// legByCode prices the card's last ride from the codes its log holds.
func (t *Tariff) legByCode(carrier, route uint16, at time.Time) (leg, bool) {
	for _, c := range t.Carriers {
		if c.Code != carrier {
			continue
		}
		network := c.Network
		for i := range c.Routes {
			if c.Routes[i].Code == route {
				network = c.Routes[i].Network
				break
			}
		}
		return t.price(&c, network, at)
	}
	return leg{}, false
}

// price picks the leg rule for a ride on network at instant at, as GTFS
// does: the highest priority; then a rule naming the network beats one
// that does not, and then one naming a timeframe beats one that does not
// (the inverse matching of a file without rule_priority); then the
// cheapest; then the first in the file.
func (t *Tariff) price(c *Carrier, network string, at time.Time) (leg, bool) {
	m := t.momentOf(at)
	best := -1
	for i := range t.Legs {
		r := &t.Legs[i]
		if r.Network != "" && r.Network != network || r.Timeframe != "" && !t.inTimeframe(r.Timeframe, m) {
			continue
		}
		if best < 0 || betterLeg(r, &t.Legs[best]) {
			best = i
		}
	}
	if best < 0 {
		return leg{}, false
	}
	r := &t.Legs[best]
	return leg{carrier: c.ID, group: c.Group, network: network, legs: r.LegGroup, fare: r.FareKop}, true
}

func betterLeg(a, b *LegRule) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if an, bn := a.Network != "", b.Network != ""; an != bn {
		return an
	}
	if at, bt := a.Timeframe != "", b.Timeframe != ""; at != bt {
		return at
	}
	return a.FareKop < b.FareKop
}

// moment is an instant as timeframes see it.
type moment struct {
	secs    int32 // since local midnight
	weekday time.Weekday
	date    int32 // yyyymmdd
}

func (t *Tariff) momentOf(at time.Time) moment {
	if t.Location != nil {
		at = at.In(t.Location)
	}
	y, mo, d := at.Date()
	h, mi, s := at.Clock()
	return moment{secs: int32(h*3600 + mi*60 + s), weekday: at.Weekday(), date: int32(y*10000 + int(mo)*100 + d)}
}

func (t *Tariff) inTimeframe(group string, m moment) bool {
	for i := range t.Timeframes {
		f := &t.Timeframes[i]
		if f.Group == group && f.Weekdays&(1<<m.weekday) != 0 && f.Start <= m.secs && m.secs < f.End &&
			(f.FromDate == 0 || f.FromDate <= m.date) && (f.ToDate == 0 || m.date <= f.ToDate) {
			return true
		}
	}
	return false
}

// passFor returns the slot of a pass that pays a ride on cur at now.
func passFor(passes []Pass, t *Tariff, cur *leg, now time.Time) (int, bool) {
	if cur.group < 0 || cur.group > 15 {
		return NoSlot, false
	}
	bit := uint16(1) << cur.group
	for _, p := range passes {
		if now.Before(p.ValidFrom) || !now.Before(p.ValidTo) || p.Groups&bit == 0 {
			continue
		}
		// A product this tariff does not sell gives nothing, like an
		// unknown benefit category: tariffs keep a product until the last
		// pass of it has expired.
		if pp, ok := t.Passes[p.Product]; ok && pp.Groups&bit != 0 {
			return p.Slot, true
		}
	}
	return NoSlot, false
}

// benefit is an entitlement that can pay the ride, and what it charges.
type benefit struct {
	cat     Category
	slot    int
	charged int64
	counted bool
}

// bestBenefit picks the entitlement that charges least; on a tie an
// uncounted one (it spares the rider's quota), then the smaller category
// number, so the choice is deterministic.
func bestBenefit(ents []Entitlement, t *Tariff, cur *leg, now time.Time) (benefit, bool) {
	var best benefit
	found := false
	for _, e := range ents {
		if now.Before(e.ValidFrom) || !now.Before(e.ValidTo) {
			continue
		}
		cat, ok := t.Categories[e.Category]
		if !ok || !cat.validOn(cur.network, cur.carrier) {
			continue // a category this tariff does not know gives nothing
		}
		if e.Limit > 0 {
			quota := e.Limit
			if cat.MonthlyRides > 0 && cat.MonthlyRides < quota {
				quota = cat.MonthlyRides
			}
			if e.Used >= quota {
				continue
			}
		}
		b := benefit{cat: cat, slot: e.Slot, charged: cur.fare - cur.fare*cat.DiscountPct/100, counted: e.Limit > 0}
		if !found || b.charged < best.charged ||
			b.charged == best.charged && (b.counted != best.counted && !b.counted ||
				b.counted == best.counted && codeLess(b.cat.Code, best.cat.Code)) {
			best, found = b, true
		}
	}
	return best, found
}

// codeLess orders category codes as numbers: they are decimal without
// leading zeros, so a shorter code is the smaller number.
func codeLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// transferCost returns what the ride cur costs as a transfer from the
// card's last ride. As in GTFS, the rules whose leg groups match most
// specifically are the candidates (naming the previous leg's group counts
// more than naming this one's); among them, the cheapest whose time limit
// and chaining allow it.
func (t *Tariff) transferCost(last *LastTap, cur *leg, now time.Time) (int64, bool) {
	if last == nil || last.Carrier == 0 || len(t.Transfers) == 0 {
		return 0, false
	}
	age := now.Sub(last.Time) // Decide made sure it is not negative
	prev, ok := t.legByCode(last.Carrier, last.Route, last.Time)
	if !ok {
		return 0, false
	}
	spec := -1
	for i := range t.Transfers {
		if s, ok := transferMatch(&t.Transfers[i], prev.legs, cur.legs); ok && s > spec {
			spec = s
		}
	}
	var cost int64
	found := false
	for i := range t.Transfers {
		r := &t.Transfers[i]
		if s, ok := transferMatch(r, prev.legs, cur.legs); !ok || s != spec || age >= r.Within ||
			last.Product == ProductTransfer && !r.Chain {
			continue
		}
		if c := r.cost(cur.fare); !found || c < cost {
			cost, found = c, true
		}
	}
	return cost, found
}

// transferMatch reports whether r applies between leg groups from and to,
// and how specifically.
func transferMatch(r *TransferRule, from, to string) (int, bool) {
	if r.From != "" && r.From != from || r.To != "" && r.To != to {
		return 0, false
	}
	s := 0
	if r.From != "" {
		s += 2
	}
	if r.To != "" {
		s++
	}
	return s, true
}
