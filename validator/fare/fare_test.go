package fare

import (
	"testing"
	"time"

	"github.com/citycard/transit/validator/tap"
)

type setHotlist map[uint64]Listing

func (s setHotlist) Listing(n uint64) Listing { return s[n] }

// city is a fixed zone so that the tests need no tzdata.
var city = time.FixedZone("EET", 2*60*60)

var (
	peak    = time.Date(2026, 11, 3, 8, 0, 0, 0, city)  // a Tuesday, morning peak
	offPeak = time.Date(2026, 11, 3, 12, 0, 0, 0, city) // the same Tuesday, midday
	weekend = time.Date(2026, 11, 7, 8, 0, 0, 0, city)  // Saturday morning: no peak
)

const weekdays = 1<<time.Monday | 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday | 1<<time.Friday

// testTariff mirrors testdata/tariff: a bus, a tram and trolleybus and a
// minibus carrier, a minibus peak, transfers, passes and benefits; and one
// carrier of a flat tariff.
func testTariff() *Tariff {
	return &Tariff{
		Version:  3,
		Passback: 2 * time.Minute,
		Location: city,
		FareKop:  map[string]int64{"FLAT": 900},
		Carriers: map[string]Carrier{
			"ATP-1": {ID: "ATP-1", Code: 1, Group: 0, Network: "bus"},
			"ELEKTROTRANS": {ID: "ELEKTROTRANS", Code: 2, Group: 1, Network: "tram",
				Routes: []Route{{ID: "TB5", Code: 105, Network: "trolleybus"}}},
			"PRIVAT-7": {ID: "PRIVAT-7", Code: 7, Group: 2, Network: "minibus"},
		},
		Legs: []LegRule{
			{LegGroup: "municipal", Network: "bus", Product: "single_bus", FareKop: 1500},
			{LegGroup: "municipal", Network: "tram", Product: "single_tram", FareKop: 800},
			{LegGroup: "municipal", Network: "trolleybus", Product: "single_trolleybus", FareKop: 1000},
			{LegGroup: "minibus", Network: "minibus", Timeframe: "peak", Product: "single_minibus_peak", FareKop: 1500},
			{LegGroup: "minibus", Network: "minibus", Product: "single_minibus", FareKop: 1200},
		},
		Timeframes: []Timeframe{
			{Group: "peak", Start: 7 * 3600, End: 10 * 3600, Weekdays: weekdays, FromDate: 20260101, ToDate: 20301231},
			{Group: "peak", Start: 17 * 3600, End: 20 * 3600, Weekdays: weekdays, FromDate: 20260101, ToDate: 20301231},
		},
		Transfers: []TransferRule{
			{From: "municipal", To: "municipal", Within: time.Hour, Type: TransferFixed, Product: "transfer_free"},
			{From: "municipal", To: "minibus", Within: time.Hour, Type: TransferAdd, Product: "transfer_minibus", AmountKop: -500},
			{From: "minibus", To: "municipal", Within: time.Hour, Type: TransferFixed, Product: "transfer_municipal", AmountKop: 400},
		},
		Passes: map[uint16]PassProduct{
			1: {Code: 1, Product: "pass_month_network", PriceKop: 90000, Days: 31, Groups: AllGroups},
			2: {Code: 2, Product: "pass_month_electric", PriceKop: 45000, Days: 31, Groups: 1 << 1},
		},
		Categories: map[string]Category{
			"11":  {Code: "11", Rider: "pensioner", DiscountPct: 100, Funding: FundingState},
			"12":  {Code: "12", Rider: "veteran", DiscountPct: 100, Funding: FundingState, FixedCompensation: true, CompensationKop: 1000},
			"21":  {Code: "21", Rider: "disability", DiscountPct: 100, Funding: FundingCity},
			"110": {Code: "110", Rider: "honorary", DiscountPct: 100, Funding: FundingCity},
			"31":  {Code: "31", Rider: "student", DiscountPct: 50, Funding: FundingCity, MonthlyRides: 50},
			"41":  {Code: "41", Rider: "schoolchild", DiscountPct: 100, Funding: FundingCity, Networks: []string{"tram", "trolleybus"}},
			"42":  {Code: "42", Rider: "large_family", DiscountPct: 50, Funding: FundingCity, Carriers: []string{"ATP-1", "ELEKTROTRANS"}},
		},
	}
}

var (
	bus        = Device{ID: "atp1-0417", Carrier: "ATP-1", Route: "12", Vehicle: "0417"}
	tram       = Device{ID: "et-0093", Carrier: "ELEKTROTRANS", Route: "T3", Vehicle: "0093"}
	trolleybus = Device{ID: "et-0311", Carrier: "ELEKTROTRANS", Route: "TB5", Vehicle: "0311"}
	minibus    = Device{ID: "pr7-0212", Carrier: "PRIVAT-7", Route: "45", Vehicle: "0212"}
	flat       = Device{ID: "flat-1", Carrier: "FLAT", Route: "1", Vehicle: "F1"}
	nowhere    = Device{ID: "x", Carrier: "NONE", Route: "1", Vehicle: "X"}
)

func ent(cat string, slot, limit, used int) Entitlement {
	return Entitlement{Category: cat, Slot: slot, Limit: limit, Used: used,
		ValidFrom: peak.AddDate(0, -1, 0), ValidTo: peak.AddDate(1, 0, 0)}
}

func pass(product uint16, groups uint16, slot int) Pass {
	return Pass{Product: product, Groups: groups, Slot: slot, ValidFrom: peak.AddDate(0, 0, -3), ValidTo: peak.AddDate(0, 0, 28)}
}

func last(ago time.Duration, carrier, route uint16, product, vehicle string) *LastTap {
	return &LastTap{Time: peak.Add(-ago), Carrier: carrier, Route: route, Product: product, Vehicle: vehicle}
}

// Expected decisions.

func purse(full int64) Decision {
	return Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductPurse, FareKop: full, ChargedKop: full,
		DebitKop: full, LogTap: true, Slot: NoSlot}
}

func viaPass(full int64, slot int) Decision {
	return Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductPass, FareKop: full, LogTap: true, Slot: slot}
}

func viaBenefit(cat, funding string, full, charged, comp int64, slot int, counted bool) Decision {
	return Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductBenefit, Category: cat, Funding: funding,
		FareKop: full, ChargedKop: charged, CompensationKop: comp, DebitKop: charged, LogTap: true, Slot: slot, CountRide: counted}
}

func viaTransfer(full, charged int64) Decision {
	return Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductTransfer, FareKop: full, ChargedKop: charged,
		DebitKop: charged, LogTap: true, Slot: NoSlot}
}

func anomalous(d Decision) Decision {
	d.ClockAnomaly = true
	return d
}

func revokedB(d Decision) Decision {
	d.BenefitRevoked = true
	return d
}

func denied(reason string) Decision {
	return Decision{Result: tap.Denied, Reason: reason, Slot: NoSlot}
}

func TestDecide(t *testing.T) {
	rich := int64(500_00)
	cases := []struct {
		name string
		card Card
		dev  Device
		now  time.Time // zero: peak
		hot  setHotlist
		want Decision
	}{
		// Fares by network, route and timeframe.
		{name: "bus", card: Card{PurseKop: rich}, dev: bus, want: purse(1500)},
		{name: "tram is the carrier's network", card: Card{PurseKop: rich}, dev: tram, want: purse(800)},
		{name: "trolleybus route is in its own network", card: Card{PurseKop: rich}, dev: trolleybus, want: purse(1000)},
		{name: "minibus at the weekday peak", card: Card{PurseKop: rich}, dev: minibus, want: purse(1500)},
		{name: "minibus off-peak", card: Card{PurseKop: rich}, dev: minibus, now: offPeak, want: purse(1200)},
		{name: "minibus on Saturday morning", card: Card{PurseKop: rich}, dev: minibus, now: weekend, want: purse(1200)},
		{name: "peak starts at 07:00:00", card: Card{PurseKop: rich}, dev: minibus,
			now: time.Date(2026, 11, 3, 7, 0, 0, 0, city), want: purse(1500)},
		{name: "peak ends before 10:00:00", card: Card{PurseKop: rich}, dev: minibus,
			now: time.Date(2026, 11, 3, 10, 0, 0, 0, city), want: purse(1200)},
		{name: "evening peak", card: Card{PurseKop: rich}, dev: minibus,
			now: time.Date(2026, 11, 3, 19, 59, 59, 0, city), want: purse(1500)},
		{name: "peak read in the tariff's zone, not now's", card: Card{PurseKop: rich}, dev: minibus,
			now: time.Date(2026, 11, 3, 6, 30, 0, 0, time.UTC), want: purse(1500)},
		{name: "peak calendar over", card: Card{PurseKop: rich}, dev: minibus,
			now: time.Date(2031, 1, 7, 8, 0, 0, 0, city), want: purse(1200)},
		{name: "flat tariff carrier", card: Card{PurseKop: rich}, dev: flat, want: purse(900)},
		{name: "carrier without fare", card: Card{PurseKop: rich}, dev: nowhere, want: denied(ReasonNoFare)},

		// Card state.
		{name: "hotlisted beats a pass", card: Card{Number: 8, PurseKop: rich, Passes: []Pass{pass(1, AllGroups, 0)}},
			dev: bus, hot: setHotlist{8: Listed}, want: denied(ReasonHotlisted)},
		{name: "benefit revoked: the purse pays", card: Card{Number: 8, PurseKop: rich, Entitlements: []Entitlement{ent("11", 0, 0, 0)}},
			dev: bus, hot: setHotlist{8: BenefitRevoked}, want: revokedB(purse(1500))},
		{name: "benefit revoked: a pass still pays", card: Card{Number: 8, Passes: []Pass{pass(1, AllGroups, 0)}, Entitlements: []Entitlement{ent("11", 0, 0, 0)}},
			dev: bus, hot: setHotlist{8: BenefitRevoked}, want: revokedB(viaPass(1500, 0))},
		{name: "benefit revoked: short of funds is denied", card: Card{Number: 8, PurseKop: 10, Entitlements: []Entitlement{ent("11", 0, 0, 0)}},
			dev: bus, hot: setHotlist{8: BenefitRevoked}, want: revokedB(Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: 1500, Slot: NoSlot})},
		{name: "blocked on card", card: Card{Blocked: true, PurseKop: rich}, dev: bus, want: denied(ReasonBlocked)},
		{name: "expired card", card: Card{Expiry: peak, PurseKop: rich}, dev: bus, want: denied(ReasonExpired)},
		{name: "card valid to its last instant", card: Card{Expiry: peak.Add(time.Second), PurseKop: rich}, dev: bus, want: purse(1500)},
		{name: "insufficient funds", card: Card{PurseKop: 1499}, dev: bus,
			want: Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: 1500, Slot: NoSlot}},
		{name: "exact balance", card: Card{PurseKop: 1500}, dev: bus, want: purse(1500)},

		// Anti-passback.
		{name: "same vehicle within passback", card: Card{PurseKop: rich, LastTap: last(30*time.Second, 1, 12, ProductPurse, "0417")},
			dev: bus, want: Decision{Result: tap.AlreadyPaid, Reason: ReasonPassback, Slot: NoSlot}},
		{name: "passback before an empty purse", card: Card{LastTap: last(30*time.Second, 1, 12, ProductPurse, "0417")},
			dev: bus, want: Decision{Result: tap.AlreadyPaid, Reason: ReasonPassback, Slot: NoSlot}},
		{name: "same bus after the passback window: a free transfer", card: Card{PurseKop: rich,
			LastTap: last(2*time.Minute, 1, 12, ProductPurse, "0417")}, dev: bus, want: viaTransfer(1500, 0)},
		{name: "other vehicle within passback is a new ride", card: Card{PurseKop: rich,
			LastTap: last(10*time.Second, 7, 45, ProductPurse, "0999")}, dev: minibus, want: purse(1500)},

		// Passes.
		{name: "network pass", card: Card{PurseKop: 0, Passes: []Pass{pass(1, AllGroups, 0)}}, dev: minibus, want: viaPass(1500, 0)},
		{name: "electric pass on a trolleybus, slot 1", card: Card{Passes: []Pass{pass(2, 1<<1, 1)}}, dev: trolleybus, want: viaPass(1000, 1)},
		{name: "electric product does not cover the bus", card: Card{PurseKop: rich, Passes: []Pass{pass(2, AllGroups, 0)}},
			dev: bus, want: purse(1500)},
		{name: "card's groups do not cover the minibus", card: Card{PurseKop: rich, Passes: []Pass{pass(1, 1<<0|1<<1, 0)}},
			dev: minibus, want: purse(1500)},
		{name: "pass expired", card: Card{PurseKop: rich, Passes: []Pass{{Product: 1, Groups: AllGroups,
			ValidFrom: peak.AddDate(0, -1, 0), ValidTo: peak}}}, dev: bus, want: purse(1500)},
		{name: "pass not yet valid", card: Card{PurseKop: rich, Passes: []Pass{{Product: 1, Groups: AllGroups,
			ValidFrom: peak.Add(time.Hour), ValidTo: peak.AddDate(0, 1, 0)}}}, dev: bus, want: purse(1500)},
		{name: "pass product unknown to the tariff", card: Card{PurseKop: rich, Passes: []Pass{pass(9, AllGroups, 0)}},
			dev: bus, want: purse(1500)},
		{name: "second slot's pass when the first does not cover", card: Card{Passes: []Pass{pass(2, 1<<1, 0), pass(1, AllGroups, 1)}},
			dev: bus, want: viaPass(1500, 1)},
		{name: "pass beats a free benefit", card: Card{Passes: []Pass{pass(1, AllGroups, 1)}, Entitlements: []Entitlement{ent("11", 0, 0, 0)}},
			dev: bus, want: viaPass(1500, 1)},
		{name: "no pass on a flat-tariff carrier", card: Card{PurseKop: rich, Passes: []Pass{pass(1, AllGroups, 0)}},
			dev: flat, want: purse(900)},

		// Benefits.
		{name: "pensioner free, state pays the fare", card: Card{Entitlements: []Entitlement{ent("11", 0, 0, 0)}},
			dev: bus, want: viaBenefit("11", FundingState, 1500, 0, 1500, 0, false)},
		{name: "veteran: fixed compensation", card: Card{Entitlements: []Entitlement{ent("12", 0, 0, 0)}},
			dev: tram, want: viaBenefit("12", FundingState, 800, 0, 1000, 0, false)},
		{name: "student half fare, counted on slot 1", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 1, 60, 10)}},
			dev: bus, want: viaBenefit("31", FundingCity, 1500, 750, 750, 1, true)},
		{name: "student unlimited on the card: not counted", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 0, 0, 90)}},
			dev: bus, want: viaBenefit("31", FundingCity, 1500, 750, 750, 0, false)},
		{name: "tariff quota lowers the card's limit", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 0, 60, 50)}},
			dev: bus, want: purse(1500)},
		{name: "card's limit below the tariff quota", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 0, 20, 20)}},
			dev: bus, want: purse(1500)},
		{name: "last ride of the quota", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 0, 60, 49)}},
			dev: bus, want: viaBenefit("31", FundingCity, 1500, 750, 750, 0, true)},
		{name: "schoolchild free on the trolleybus network", card: Card{Entitlements: []Entitlement{ent("41", 0, 0, 0)}},
			dev: trolleybus, want: viaBenefit("41", FundingCity, 1000, 0, 1000, 0, false)},
		{name: "schoolchild not valid on the bus network", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("41", 0, 0, 0)}},
			dev: bus, want: purse(1500)},
		{name: "large family valid on ATP-1", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("42", 0, 0, 0)}},
			dev: bus, want: viaBenefit("42", FundingCity, 1500, 750, 750, 0, false)},
		{name: "large family not valid on PRIVAT-7", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("42", 0, 0, 0)}},
			dev: minibus, want: purse(1500)},
		{name: "expired entitlement gives nothing", card: Card{PurseKop: 100, Entitlements: []Entitlement{
			{Category: "11", ValidFrom: peak.AddDate(-2, 0, 0), ValidTo: peak}}},
			dev: bus, want: Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: 1500, Slot: NoSlot}},
		{name: "unknown category gives nothing", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("99", 0, 0, 0)}},
			dev: bus, want: purse(1500)},
		{name: "best benefit wins", card: Card{Entitlements: []Entitlement{ent("31", 0, 0, 0), ent("11", 1, 0, 0)}},
			dev: bus, want: viaBenefit("11", FundingState, 1500, 0, 1500, 1, false)},
		{name: "free tie: the uncounted slot spares the quota", card: Card{Entitlements: []Entitlement{ent("11", 0, 4, 0), ent("21", 1, 0, 0)}},
			dev: bus, want: viaBenefit("21", FundingCity, 1500, 0, 1500, 1, false)},
		{name: "free tie, both uncounted: smaller code", card: Card{Entitlements: []Entitlement{ent("21", 0, 0, 0), ent("11", 1, 0, 0)}},
			dev: bus, want: viaBenefit("11", FundingState, 1500, 0, 1500, 1, false)},
		{name: "free tie: the smaller code as a number, not as text", card: Card{Entitlements: []Entitlement{ent("110", 0, 0, 0), ent("21", 1, 0, 0)}},
			dev: bus, want: viaBenefit("21", FundingCity, 1500, 0, 1500, 1, false)},
		{name: "student short of funds: denied, naming the benefit", card: Card{PurseKop: 749, Entitlements: []Entitlement{ent("31", 0, 0, 0)}},
			dev: bus, want: Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: 1500, Category: "31", Funding: FundingCity, Slot: NoSlot}},
		{name: "benefit on a flat tariff", card: Card{Entitlements: []Entitlement{ent("11", 0, 0, 0)}},
			dev: flat, want: viaBenefit("11", FundingState, 900, 0, 900, 0, false)},

		// Transfers.
		{name: "bus to tram within the hour: free", card: Card{PurseKop: rich, LastTap: last(30*time.Minute, 1, 12, ProductPurse, "0417")},
			dev: tram, want: viaTransfer(800, 0)},
		{name: "free transfer needs no balance", card: Card{LastTap: last(30*time.Minute, 1, 12, ProductPurse, "0417")},
			dev: tram, want: viaTransfer(800, 0)},
		{name: "transfer window is open below 60 minutes", card: Card{PurseKop: rich, LastTap: last(time.Hour-time.Second, 1, 12, ProductPurse, "0417")},
			dev: tram, want: viaTransfer(800, 0)},
		{name: "transfer window closed at 60 minutes", card: Card{PurseKop: rich, LastTap: last(time.Hour, 1, 12, ProductPurse, "0417")},
			dev: tram, want: purse(800)},
		{name: "no transfer after a transfer", card: Card{PurseKop: rich, LastTap: last(10*time.Minute, 2, 3, ProductTransfer, "0093")},
			dev: bus, want: purse(1500)},
		{name: "transfer after a pass ride", card: Card{PurseKop: rich, LastTap: last(10*time.Minute, 2, 3, ProductPass, "0093")},
			dev: bus, want: viaTransfer(1500, 0)},
		{name: "from the trolleybus route code", card: Card{PurseKop: rich, LastTap: last(10*time.Minute, 2, 105, ProductPurse, "0311")},
			dev: bus, want: viaTransfer(1500, 0)},
		{name: "tram to minibus at peak: 5 UAH off", card: Card{PurseKop: rich, LastTap: last(20*time.Minute, 2, 3, ProductPurse, "0093")},
			dev: minibus, want: viaTransfer(1500, 1000)},
		{name: "tram to minibus off-peak: 5 UAH off", card: Card{PurseKop: rich,
			LastTap: &LastTap{Time: offPeak.Add(-20 * time.Minute), Carrier: 2, Route: 3, Product: ProductPurse, Vehicle: "0093"}},
			dev: minibus, now: offPeak, want: viaTransfer(1200, 700)},
		{name: "minibus to bus: 4 UAH", card: Card{PurseKop: rich, LastTap: last(20*time.Minute, 7, 45, ProductPurse, "0212")},
			dev: bus, want: viaTransfer(1500, 400)},
		{name: "minibus to minibus: no rule", card: Card{PurseKop: rich, LastTap: last(20*time.Minute, 7, 45, ProductPurse, "0999")},
			dev: minibus, want: purse(1500)},
		{name: "previous carrier code unknown", card: Card{PurseKop: rich, LastTap: last(20*time.Minute, 99, 1, ProductPurse, "X")},
			dev: tram, want: purse(800)},
		{name: "previous ride without a carrier", card: Card{PurseKop: rich, LastTap: last(20*time.Minute, 0, 0, ProductBenefit, "X")},
			dev: tram, want: purse(800)},
		{name: "previous ride in the future: a clock anomaly, no transfer", card: Card{PurseKop: rich, LastTap: last(-5*time.Minute, 1, 12, ProductPurse, "0417")},
			dev: tram, want: anomalous(purse(800))},
		{name: "previous ride in the future on the same vehicle: no passback", card: Card{PurseKop: rich, LastTap: last(-time.Second, 1, 12, ProductPurse, "0417")},
			dev: bus, want: anomalous(purse(1500))},
		{name: "previous ride at the same second: passback, no anomaly", card: Card{PurseKop: rich, LastTap: last(0, 1, 12, ProductPurse, "0417")},
			dev: bus, want: Decision{Result: tap.AlreadyPaid, Reason: ReasonPassback, Slot: NoSlot}},
		{name: "no transfers on a flat tariff", card: Card{PurseKop: rich, LastTap: last(5*time.Minute, 1, 12, ProductPurse, "0417")},
			dev: flat, want: purse(900)},
		{name: "student: a free transfer beats half fare", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 0, 60, 0)},
			LastTap: last(20*time.Minute, 1, 12, ProductBenefit, "0417")}, dev: tram, want: viaTransfer(800, 0)},
		{name: "student: half fare beats a dearer transfer", card: Card{PurseKop: rich, Entitlements: []Entitlement{ent("31", 0, 0, 0)},
			LastTap: last(20*time.Minute, 2, 3, ProductBenefit, "0093")}, dev: minibus,
			want: viaBenefit("31", FundingCity, 1500, 750, 750, 0, false)},
		{name: "student counted: a free transfer beats half fare and spares the quota", card: Card{PurseKop: rich,
			Entitlements: []Entitlement{ent("31", 0, 50, 12)}, LastTap: last(20*time.Minute, 1, 12, ProductBenefit, "0417")},
			dev: trolleybus, want: viaTransfer(1000, 0)},
		{name: "student counted: a transfer costing as much as half fare wins the tie", card: Card{PurseKop: rich,
			Entitlements: []Entitlement{ent("31", 0, 50, 12)}, LastTap: last(20*time.Minute, 7, 45, ProductPurse, "0212")},
			dev: tram, want: viaTransfer(800, 400)},
		{name: "student uncounted: half fare wins the tie with a transfer", card: Card{PurseKop: rich,
			Entitlements: []Entitlement{ent("31", 0, 0, 0)}, LastTap: last(20*time.Minute, 7, 45, ProductPurse, "0212")},
			dev: tram, want: viaBenefit("31", FundingCity, 800, 400, 400, 0, false)},
		{name: "student out of funds but a free transfer applies", card: Card{PurseKop: 0,
			Entitlements: []Entitlement{ent("31", 0, 50, 3)}, LastTap: last(5*time.Minute, 1, 12, ProductBenefit, "0417")},
			dev: bus, want: viaTransfer(1500, 0)},
		{name: "pensioner: a free benefit ride beats a free transfer", card: Card{Entitlements: []Entitlement{ent("11", 0, 0, 0)},
			LastTap: last(20*time.Minute, 1, 12, ProductBenefit, "0417")}, dev: tram, want: viaBenefit("11", FundingState, 800, 0, 800, 0, false)},
		{name: "a pass beats a free transfer", card: Card{Passes: []Pass{pass(1, AllGroups, 0)},
			LastTap: last(20*time.Minute, 1, 12, ProductPass, "0417")}, dev: tram, want: viaPass(800, 0)},
		{name: "discounted transfer short of funds", card: Card{PurseKop: 399, LastTap: last(20*time.Minute, 7, 45, ProductPurse, "0212")},
			dev: bus, want: Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: 1500, Slot: NoSlot}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := c.now
			if now.IsZero() {
				now = peak
			}
			got := Decide(c.card, testTariff(), c.hot, c.dev, now)
			if got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			// Invariants of every accepted ride.
			if got.Result == tap.Accepted {
				if got.DebitKop != got.ChargedKop || !got.LogTap || got.ChargedKop > got.FareKop && got.Product != ProductTransfer {
					t.Fatalf("card writes do not follow the charge: %+v", got)
				}
				if got.Product == ProductBenefit && got.Category == "" || got.Product != ProductBenefit && got.CompensationKop != 0 {
					t.Fatalf("compensation without a benefit: %+v", got)
				}
			}
		})
	}
}

// TestLegRulePrecedence: rule_priority first, then a named network, then
// a named timeframe, then the cheaper rule.
func TestLegRulePrecedence(t *testing.T) {
	rules := func() []LegRule {
		return []LegRule{
			{Network: "", Product: "any", FareKop: 100},
			{Network: "bus", Product: "bus", FareKop: 1500},
			{Network: "bus", Product: "bus-cheap", FareKop: 1400},
			{Network: "bus", Timeframe: "peak", Product: "bus-peak", FareKop: 1700},
		}
	}
	rich := Card{PurseKop: 500_00}
	for _, c := range []struct {
		name string
		mod  func(*Tariff)
		dev  Device
		now  time.Time
		want int64
	}{
		{"timeframe rule at peak", nil, bus, peak, 1700},
		{"cheaper of two network rules off-peak", nil, bus, offPeak, 1400},
		{"network rule beats any-network rule", func(t *Tariff) { t.Legs = t.Legs[:2] }, bus, offPeak, 1500},
		{"any-network rule prices another network", nil, tram, offPeak, 100},
		{"priority beats specificity", func(t *Tariff) { t.Legs[0].Priority = 1 }, bus, peak, 100},
		{"no rule for the network", func(t *Tariff) { t.Legs = t.Legs[1:] }, tram, offPeak, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tf := testTariff()
			tf.Legs = rules()
			if c.mod != nil {
				c.mod(tf)
			}
			got := Decide(rich, tf, nil, c.dev, c.now)
			if got.FareKop != c.want || (c.want == 0) != (got.Reason == ReasonNoFare) {
				t.Fatalf("fare %d (%s), want %d", got.FareKop, got.Reason, c.want)
			}
		})
	}
}

// TestTransferRuleSpecificity: as in GTFS, a rule naming both leg groups
// is the one that applies, even when its window is over and a vaguer rule's
// is not.
func TestTransferRuleSpecificity(t *testing.T) {
	tf := testTariff()
	tf.Transfers = []TransferRule{
		{From: "municipal", To: "municipal", Within: 30 * time.Minute, Type: TransferFixed, AmountKop: 0},
		{From: "", To: "municipal", Within: 90 * time.Minute, Type: TransferFixed, AmountKop: 300},
		{From: "", To: "", Within: 90 * time.Minute, Type: TransferAdd, AmountKop: -100},
	}
	rich := int64(500_00)
	for _, c := range []struct {
		name string
		last *LastTap
		dev  Device
		want Decision
	}{
		{"exact rule in its window", last(20*time.Minute, 1, 12, ProductPurse, "0417"), tram, viaTransfer(800, 0)},
		{"exact rule's window over: no fallback", last(40*time.Minute, 1, 12, ProductPurse, "0417"), tram, purse(800)},
		{"to-only rule from the minibus", last(40*time.Minute, 7, 45, ProductPurse, "0212"), tram, viaTransfer(800, 300)},
		{"wildcard rule into the minibus", last(40*time.Minute, 1, 12, ProductPurse, "0417"), minibus, viaTransfer(1500, 1400)},
		{"chain refused by every rule", last(10*time.Minute, 1, 12, ProductTransfer, "0417"), minibus, purse(1500)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Decide(Card{PurseKop: rich, LastTap: c.last}, tf, nil, c.dev, peak); got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	tf.Transfers[0].Chain = true
	if got := Decide(Card{PurseKop: rich, LastTap: last(10*time.Minute, 2, 3, ProductTransfer, "0093")}, tf, nil, bus, peak); got != viaTransfer(1500, 0) {
		t.Fatalf("chained transfer with transfer_count -1: %+v", got)
	}
}

// benchCard is a card that makes Decide walk every rule: a pass that
// does not cover the carrier, two benefits and a last ride to transfer
// from.
func benchCard() Card {
	return Card{Number: 3, PurseKop: 5000,
		Entitlements: []Entitlement{ent("31", 0, 60, 12), ent("42", 1, 0, 0)},
		Passes:       []Pass{pass(2, 1<<1, 0)},
		LastTap:      last(20*time.Minute, 2, 105, ProductPurse, "0311"),
	}
}

func TestDecideDoesNotAllocate(t *testing.T) {
	tf, c, hot := testTariff(), benchCard(), setHotlist{99: Listed}
	var d Decision
	if n := testing.AllocsPerRun(100, func() { d = Decide(c, tf, hot, minibus, peak) }); n != 0 {
		t.Fatalf("Decide allocates %v times per tap", n)
	}
	if d != viaBenefit("31", FundingCity, 1500, 750, 750, 0, true) {
		t.Fatalf("benchmark card decided %+v", d)
	}
}

func BenchmarkDecide(b *testing.B) {
	tf, c, hot := testTariff(), benchCard(), setHotlist{99: Listed}
	b.ReportAllocs()
	for b.Loop() {
		Decide(c, tf, hot, minibus, peak)
	}
}
