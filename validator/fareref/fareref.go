package fareref

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/citycard/transit/validator/fare"
)

// Results of a tap, as FORMAT.md and the tap record name them.
const (
	ResultAccepted    = "accepted"
	ResultDenied      = "denied"
	ResultAlreadyPaid = "already-paid"
)

// Reasons, as FORMAT.md names them.
const (
	ReasonOK                = "ok"
	ReasonHotlisted         = "hotlisted"
	ReasonBlocked           = "card-blocked"
	ReasonExpired           = "card-expired"
	ReasonNoFare            = "no-fare-for-carrier"
	ReasonInsufficientFunds = "insufficient-funds"
	ReasonAlreadyPaid       = "already-paid"
)

// Products that pay a ride, as the card's tap log and the tap record name
// them.
const (
	ProductPurse    = "purse"
	ProductPass     = "pass"
	ProductBenefit  = "benefit"
	ProductTransfer = "transfer"
)

// NoSlot in Decision.Slot: no entitlement or pass slot paid the ride.
const NoSlot = -1

// allGroups is a pass's carrier groups for the whole network (x_passes.txt
// "all", a card pass slot's 0xFFFF).
const allGroups uint16 = 0xFFFF

// Date is a civil date in the city's time zone.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the calendar date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// Before says d is an earlier day than o.
func (d Date) Before(o Date) bool {
	if d.Year != o.Year {
		return d.Year < o.Year
	}
	if d.Month != o.Month {
		return d.Month < o.Month
	}
	return d.Day < o.Day
}

// Within says d is in from..to, both ends included ("Terms": entitlement
// and pass dates are local dates, both ends included).
func (d Date) Within(from, to Date) bool {
	return !d.Before(from) && !to.Before(d)
}

// yyyymmdd is the date as calendar.txt writes it, the form fare.Timeframe
// holds.
func (d Date) yyyymmdd() int32 {
	return int32(d.Year*10000 + int(d.Month)*100 + d.Day)
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// Entitlement is a benefit in one of the card's entitlement slots.
type Entitlement struct {
	// Category is the card category number (x_benefits.txt card_category);
	// 0 is an empty slot.
	Category uint16
	// From and To are the local dates it is valid on, both included.
	From, To Date
	// Limit is the monthly ride limit the desk wrote into the slot; 0 is
	// none.
	Limit int
}

// Pass is a period pass in one of the card's pass slots.
type Pass struct {
	// Product is the pass code (x_passes.txt pass_code); 0 is an empty
	// slot.
	Product uint16
	// From and To are the local dates it is valid on, both included.
	From, To Date
	// Groups has a bit per carrier group the pass is good on; 0xFFFF is the
	// whole network.
	Groups uint16
}

// Count is the ride count of one entitlement slot that a tap log record
// carries: rides of Category in one local month. The zero Count is none.
type Count struct {
	Category uint16
	Year     int
	Month    time.Month
	Used     int
}

// Ride is a committed ride as the card's tap log records it ("Terms": the
// previous ride P).
type Ride struct {
	// Time is Tp: UTC, whole seconds.
	Time time.Time
	// Vehicle is the vehicle of the device that made the ride.
	Vehicle string
	// CarrierCode and RouteCode are the codes the log holds.
	CarrierCode, RouteCode uint16
	// Product paid the ride: ProductPurse, ProductPass, ProductBenefit or
	// ProductTransfer.
	Product string
	// Counts are the month's ride counts per entitlement slot as of this
	// ride.
	Counts [2]Count
}

// Card is what the card holds: its contract, purse and the newest record
// of its tap log.
type Card struct {
	Number  uint64
	Blocked bool
	// Expiry is the contract's last valid day.
	Expiry       Date
	Entitlements [2]Entitlement
	Passes       [2]Pass
	PurseKop     int64
	// Last is the newest committed ride; nil is an empty log.
	Last *Ride
}

// Listing is what the hotlist says about the card.
type Listing int

// Listings.
const (
	NotListed Listing = iota
	// Listed: on the hotlist for any reason but benefit-revoked.
	Listed
	// BenefitRevoked withdraws the card's benefits only.
	BenefitRevoked
)

// Tap is one presentation of the card to a validator.
type Tap struct {
	// Time is T: the validator's clock, UTC, millisecond precision.
	Time time.Time
	// Carrier, Route and Vehicle are the device's configuration: carrier
	// id (x_carriers.txt), route id (x_routes.txt) and vehicle.
	Carrier, Route, Vehicle string
	// CarrierCode and RouteCode are what the device writes into the card's
	// tap log.
	CarrierCode, RouteCode uint16
	Listing                Listing
}

// Decision is how a tap was decided, with every field a tap record carries.
type Decision struct {
	// Result is ResultAccepted, ResultDenied or ResultAlreadyPaid; Reason
	// one of the Reason constants.
	Result, Reason string
	// Product paid the ride (accepted rides only). Category (the card
	// category in decimal) and Funding name the benefit that paid, or the
	// one a ride was denied for funds with.
	Product, Category, Funding string
	// FareKop is the full fare F, ChargedKop what the purse pays and
	// CompensationKop what Funding owes the carrier.
	FareKop, ChargedKop, CompensationKop int64
	// Slot is the entitlement slot of a benefit ride or the pass slot of a
	// pass ride, else NoSlot.
	Slot int
	// Counted: the ride is one of the slot's monthly quota.
	Counted bool
	// ClockAnomaly: T is before Tp (step 3).
	ClockAnomaly bool
	// BenefitRevoked: the hotlist withdrew the card's benefits (step 1).
	BenefitRevoked bool
}

// Decide decides tap tp of card c under tariff t, step by step as FORMAT.md
// "The steps" lists them: the first step that settles the tap decides it.
// It changes nothing; t.Location is the city's time zone (UTC when nil).
func Decide(t *fare.Tariff, c *Card, tp Tap) Decision {
	loc := t.Location
	if loc == nil {
		loc = time.UTC
	}
	local := tp.Time.In(loc)
	today := DateOf(local)

	// Step 1, hotlist: denied, unless the listing only withdraws benefits.
	if tp.Listing != NotListed && tp.Listing != BenefitRevoked {
		return denied(ReasonHotlisted)
	}
	revoked := tp.Listing == BenefitRevoked

	// Step 2, card. Denials of steps 1 and 2 carry no flag and no fare.
	if c.Blocked {
		return denied(ReasonBlocked)
	}
	if c.Expiry.Before(today) {
		return denied(ReasonExpired)
	}

	d := Decision{Slot: NoSlot, BenefitRevoked: revoked}

	// Step 3, clock: a tap stamped before P is decided as if the card had
	// no previous ride; only P's ride counts still apply (step 7).
	prev := c.Last
	if prev != nil && tp.Time.Before(prev.Time) {
		d.ClockAnomaly = true
		prev = nil
	}

	// Step 4, anti-passback. The age is elapsed time, not wall clock.
	if prev != nil && t.Passback != 0 && prev.Vehicle == tp.Vehicle && tp.Time.Sub(prev.Time) < t.Passback {
		d.Result, d.Reason = ResultAlreadyPaid, ReasonAlreadyPaid
		return d
	}

	// Step 5, price.
	carrier, known := t.Carriers[tp.Carrier]
	if !known {
		d.Result, d.Reason = ResultDenied, ReasonNoFare
		return d
	}
	network := routeNetworkByID(carrier, tp.Route)
	leg, priced := legRule(t, network, local)
	if !priced {
		d.Result, d.Reason = ResultDenied, ReasonNoFare
		return d
	}
	d.FareKop = leg.FareKop

	// Step 6, pass: slot 0 before slot 1.
	for slot, p := range c.Passes {
		if passPays(t, p, today, carrier.Group) {
			d.Result, d.Reason, d.Product, d.Slot = ResultAccepted, ReasonOK, ProductPass, slot
			return d
		}
	}

	// Step 7, benefit.
	var best *benefit
	if !revoked {
		best = bestBenefit(t, c, today, local, network, carrier.ID, leg.FareKop)
	}

	// Step 8, transfer from P (nil when there is none or step 3 dropped it).
	transferKop, transfer := transferCost(t, prev, tp.Time, loc, leg)

	// Step 9, choice: the best benefit, else the purse at F; a transfer
	// replaces it when cheaper, or as cheap as a counted benefit ride.
	choice := payment{product: ProductPurse, chargeKop: leg.FareKop}
	if best != nil {
		choice = payment{product: ProductBenefit, chargeKop: best.chargeKop, benefit: best}
	}
	if transfer && (transferKop < choice.chargeKop || transferKop == choice.chargeKop && best != nil && best.counted) {
		choice = payment{product: ProductTransfer, chargeKop: transferKop}
	}

	// Step 10, funds: denied, naming the benefit that would have paid.
	if choice.benefit != nil {
		d.Category = strconv.FormatUint(uint64(choice.benefit.category), 10)
		d.Funding = choice.benefit.funding
	}
	if choice.chargeKop > c.PurseKop {
		d.Result, d.Reason = ResultDenied, ReasonInsufficientFunds
		return d
	}

	// Step 11, accepted, with what is owed ("What is owed, and by whom"):
	// only a benefit ride owes compensation.
	d.Result, d.Reason, d.Product, d.ChargedKop = ResultAccepted, ReasonOK, choice.product, choice.chargeKop
	if b := choice.benefit; b != nil {
		d.Slot, d.Counted, d.CompensationKop = b.slot, b.counted, b.owedKop
	}
	return d
}

func denied(reason string) Decision {
	return Decision{Result: ResultDenied, Reason: reason, Slot: NoSlot}
}

// payment is a way to pay the ride that step 9 weighs.
type payment struct {
	product   string
	chargeKop int64
	benefit   *benefit // for ProductBenefit
}

// routeNetworkByID is step 5's network: the device's route in x_routes.txt,
// else the carrier's network.
func routeNetworkByID(c fare.Carrier, routeID string) string {
	for _, r := range c.Routes {
		if r.ID == routeID {
			return r.Network
		}
	}
	return c.Network
}

// routeNetworkByCode is step 8's network of P: its route code in the
// carrier's x_routes.txt rows, else the carrier's network.
func routeNetworkByCode(c fare.Carrier, code uint16) string {
	for _, r := range c.Routes {
		if r.Code == code {
			return r.Network
		}
	}
	return c.Network
}

// carrierByCode finds the tariff's carrier with the log's carrier code.
func carrierByCode(t *fare.Tariff, code uint16) (fare.Carrier, bool) {
	for _, c := range t.Carriers {
		if c.Code == code {
			return c, true
		}
	}
	return fare.Carrier{}, false
}

// legRule is the fare leg rule that prices a ride on network boarding at
// local (fare_leg_rules.txt): among the rules whose network is empty or
// this one and whose timeframe is empty or holds local, the highest
// rule_priority; then one naming the network; then one naming a
// timeframe; then the cheapest; then the first in the file.
func legRule(t *fare.Tariff, network string, local time.Time) (fare.LegRule, bool) {
	var best fare.LegRule
	found := false
	for _, r := range t.Legs {
		if r.Network != "" && r.Network != network {
			continue
		}
		if r.Timeframe != "" && !inTimeframe(t, r.Timeframe, local) {
			continue
		}
		if !found || legBetter(r, best) {
			best, found = r, true
		}
	}
	return best, found
}

// legBetter says rule a beats rule b, which comes earlier in the file.
func legBetter(a, b fare.LegRule) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if (a.Network != "") != (b.Network != "") {
		return a.Network != ""
	}
	if (a.Timeframe != "") != (b.Timeframe != "") {
		return a.Timeframe != ""
	}
	// Equal cost keeps the earlier rule.
	return a.FareKop < b.FareKop
}

// inTimeframe says the local wall-clock time falls in one of group's
// intervals ("Time zone, days and months"): on the local date's day of
// week and within its calendar dates, start in, end out. The wall clock
// is what the clocks show, so a repeated hour matches twice and a skipped
// one never.
func inTimeframe(t *fare.Tariff, group string, local time.Time) bool {
	date := DateOf(local).yyyymmdd()
	secs := int32(local.Hour()*3600 + local.Minute()*60 + local.Second())
	for _, tf := range t.Timeframes {
		if tf.Group != group {
			continue
		}
		if tf.Weekdays&(1<<uint(local.Weekday())) == 0 {
			continue
		}
		if tf.FromDate != 0 && date < tf.FromDate || tf.ToDate != 0 && date > tf.ToDate {
			continue
		}
		if secs >= tf.Start && secs < tf.End {
			return true
		}
	}
	return false
}

// passPays is step 6 for one pass slot: its dates include the local date,
// its product is in x_passes.txt, and both the slot's groups and the
// product's carrier_groups hold the carrier's group.
func passPays(t *fare.Tariff, p Pass, today Date, group int) bool {
	if p.Product == 0 || !today.Within(p.From, p.To) {
		return false
	}
	prod, ok := t.Passes[p.Product]
	if !ok || group < 0 || group > 15 {
		return false
	}
	bit := uint16(1) << uint(group)
	return p.Groups&bit != 0 && prod.Groups&bit != 0
}

// benefit is a candidate of step 7.
type benefit struct {
	slot      int
	category  uint16
	funding   string
	chargeKop int64
	owedKop   int64
	counted   bool
}

// bestBenefit is step 7: the candidate slot that charges least; on a tie an
// uncounted one, then the smaller card category, then slot 0. Nil when no
// slot is a candidate.
func bestBenefit(t *fare.Tariff, c *Card, today Date, local time.Time, network, carrierID string, fareKop int64) *benefit {
	var best *benefit
	for slot, e := range c.Entitlements {
		b, ok := candidate(t, c, slot, e, today, local, network, carrierID, fareKop)
		if !ok {
			continue
		}
		if best == nil || benefitBetter(b, *best) {
			best = &b
		}
	}
	return best
}

// benefitBetter says a beats b, which is in an earlier slot.
func benefitBetter(a, b benefit) bool {
	if a.chargeKop != b.chargeKop {
		return a.chargeKop < b.chargeKop
	}
	if a.counted != b.counted {
		return !a.counted
	}
	// The same category in both slots keeps slot 0.
	return a.category < b.category
}

// candidate is step 7 for one entitlement slot.
func candidate(t *fare.Tariff, c *Card, slot int, e Entitlement, today Date, local time.Time,
	network, carrierID string, fareKop int64) (benefit, bool) {
	if e.Category == 0 {
		return benefit{}, false
	}
	cat, ok := t.Categories[strconv.FormatUint(uint64(e.Category), 10)]
	if !ok || !today.Within(e.From, e.To) {
		return benefit{}, false
	}
	if len(cat.Networks) > 0 && !contains(cat.Networks, network) {
		return benefit{}, false
	}
	if len(cat.Carriers) > 0 && !contains(cat.Carriers, carrierID) {
		return benefit{}, false
	}
	counted := false
	if e.Limit != 0 {
		quota := e.Limit
		if cat.MonthlyRides != 0 && cat.MonthlyRides < quota {
			quota = cat.MonthlyRides
		}
		if ridesUsed(c.Last, slot, e.Category, local) >= quota {
			return benefit{}, false
		}
		counted = true
	}
	// The discount is rounded down, so the rider pays the odd kopiyka.
	charge := fareKop - fareKop*cat.DiscountPct/100
	owed := fareKop - charge
	if cat.FixedCompensation {
		owed = cat.CompensationKop
	}
	return benefit{slot: slot, category: e.Category, funding: cat.Funding, chargeKop: charge, owedKop: owed, counted: counted}, true
}

// ridesUsed is U of step 7: the count P holds for the slot when it names
// the slot's category and T's local month, else 0. P here is the newest
// record even when step 3 found a clock anomaly.
func ridesUsed(p *Ride, slot int, category uint16, local time.Time) int {
	if p == nil {
		return 0
	}
	n := p.Counts[slot]
	if n.Category != category || n.Year != local.Year() || n.Month != local.Month() {
		return 0
	}
	return n.Used
}

// transferCost is step 8: the least cost among the transfer rules that
// apply from P to this ride (leg is this ride's), and whether any does.
func transferCost(t *fare.Tariff, p *Ride, now time.Time, loc *time.Location, leg fare.LegRule) (int64, bool) {
	if p == nil {
		return 0, false
	}
	pc, ok := carrierByCode(t, p.CarrierCode)
	if !ok {
		return 0, false
	}
	pLeg, ok := legRule(t, routeNetworkByCode(pc, p.RouteCode), p.Time.In(loc))
	if !ok {
		// P's network has no fare at Tp: P has no leg group at all.
		return 0, false
	}
	// The candidates: matching rules of the highest specificity.
	bestSpec := -1
	for _, r := range t.Transfers {
		if s, ok := transferMatch(r, pLeg.LegGroup, leg.LegGroup); ok && s > bestSpec {
			bestSpec = s
		}
	}
	age := now.Sub(p.Time)
	var cost int64
	found := false
	for _, r := range t.Transfers {
		if s, ok := transferMatch(r, pLeg.LegGroup, leg.LegGroup); !ok || s != bestSpec {
			continue
		}
		if age >= r.Within {
			continue
		}
		if p.Product == ProductTransfer && !r.Chain {
			continue
		}
		k := r.AmountKop
		if r.Type == fare.TransferAdd {
			k = max(0, leg.FareKop+r.AmountKop)
		}
		if !found || k < cost {
			cost, found = k, true
		}
	}
	return cost, found
}

// transferMatch says rule r matches a transfer from leg group from to leg
// group to (an empty group in the rule matches any) and how specifically:
// naming P's group counts 2, naming this ride's 1.
func transferMatch(r fare.TransferRule, from, to string) (int, bool) {
	spec := 0
	if r.From != "" {
		if r.From != from {
			return 0, false
		}
		spec += 2
	}
	if r.To != "" {
		if r.To != to {
			return 0, false
		}
		spec++
	}
	return spec, true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ErrNotAccepted: only an accepted decision leaves anything on the card.
var ErrNotAccepted = errors.New("fareref: only an accepted tap is committed")

// Commit applies what the card commits for the accepted decision d of tap
// tp (step 11): the charge leaves the purse, and the ride becomes the
// newest tap log record, carrying P's ride counts with one more ride on
// the counted slot (a count of another month or category starts again at
// one). Tp is T truncated to the whole second the log holds. A torn tap
// is one the caller does not commit.
func (c *Card) Commit(t *fare.Tariff, tp Tap, d Decision) error {
	if d.Result != ResultAccepted {
		return fmt.Errorf("%w: %s (%s)", ErrNotAccepted, d.Result, d.Reason)
	}
	if d.ChargedKop < 0 || d.ChargedKop > c.PurseKop {
		return fmt.Errorf("fareref: charge %d kop with %d kop in the purse", d.ChargedKop, c.PurseKop)
	}
	var counts [2]Count
	if c.Last != nil {
		counts = c.Last.Counts
	}
	if d.Counted {
		if d.Slot < 0 || d.Slot >= len(c.Entitlements) || c.Entitlements[d.Slot].Category == 0 {
			return fmt.Errorf("fareref: counted ride on entitlement slot %d, which holds no benefit", d.Slot)
		}
		loc := t.Location
		if loc == nil {
			loc = time.UTC
		}
		local := tp.Time.In(loc)
		cat := c.Entitlements[d.Slot].Category
		used := ridesUsed(c.Last, d.Slot, cat, local)
		counts[d.Slot] = Count{Category: cat, Year: local.Year(), Month: local.Month(), Used: used + 1}
	}
	c.PurseKop -= d.ChargedKop
	c.Last = &Ride{
		Time:        tp.Time.UTC().Truncate(time.Second),
		Vehicle:     tp.Vehicle,
		CarrierCode: tp.CarrierCode,
		RouteCode:   tp.RouteCode,
		Product:     d.Product,
		Counts:      counts,
	}
	return nil
}
