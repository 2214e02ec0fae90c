package fareref_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"
	_ "time/tzdata" // Europe/Kyiv on machines without a zone database

	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/fareref"
	"github.com/citycard/transit/validator/tariff"
)

// sampleFiles is the sample city's tariff (testdata/tariff) as files, so
// a test can change one of them.
func sampleFiles(t *testing.T) fstest.MapFS {
	t.Helper()
	dir := "../../testdata/tariff"
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fs := fstest.MapFS{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fs[e.Name()] = &fstest.MapFile{Data: b}
	}
	return fs
}

func parse(t *testing.T, fs fstest.MapFS) *fare.Tariff {
	t.Helper()
	tf, err := tariff.Parse(fs)
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

func sample(t *testing.T) *fare.Tariff { return parse(t, sampleFiles(t)) }

var kyiv = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at is a local time in Kyiv, as a validator would stamp it (UTC).
func at(y int, m time.Month, d, hh, mm, ss, ms int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, ms*int(time.Millisecond), kyiv).UTC()
}

// Devices of the sample city.
func bus(at time.Time) fareref.Tap {
	return fareref.Tap{Time: at, Carrier: "ATP-1", Route: "22", Vehicle: "bus-7", CarrierCode: 1, RouteCode: 22}
}

func tram(at time.Time) fareref.Tap {
	return fareref.Tap{Time: at, Carrier: "ELEKTROTRANS", Route: "T3", Vehicle: "tram-3", CarrierCode: 2, RouteCode: 3}
}

func trolleybus(at time.Time) fareref.Tap {
	return fareref.Tap{Time: at, Carrier: "ELEKTROTRANS", Route: "TB5", Vehicle: "tb-5", CarrierCode: 2, RouteCode: 105}
}

func minibus(at time.Time) fareref.Tap {
	return fareref.Tap{Time: at, Carrier: "PRIVAT-7", Route: "45", Vehicle: "mb-45", CarrierCode: 7, RouteCode: 45}
}

// A Tuesday in November 2026, off-peak.
var tuesday = at(2026, time.November, 3, 12, 0, 0, 0)

func plainCard() *fareref.Card {
	return &fareref.Card{Number: 1001_0000_0042, Expiry: fareref.Date{Year: 2030, Month: 12, Day: 31}, PurseKop: 100_00}
}

func always() (fareref.Date, fareref.Date) {
	return fareref.Date{Year: 2020, Month: 1, Day: 1}, fareref.Date{Year: 2030, Month: 12, Day: 31}
}

func withBenefit(c *fareref.Card, slot int, category uint16, limit int) *fareref.Card {
	from, to := always()
	c.Entitlements[slot] = fareref.Entitlement{Category: category, From: from, To: to, Limit: limit}
	return c
}

// want checks the fields of a decision that a case names.
type want struct {
	result, reason, product, category, funding string
	fare, charged, owed                        int64
	slot                                       int
	counted, anomaly, revoked                  bool
}

func check(t *testing.T, name string, got fareref.Decision, w want) {
	t.Helper()
	wd := fareref.Decision{Result: w.result, Reason: w.reason, Product: w.product, Category: w.category, Funding: w.funding,
		FareKop: w.fare, ChargedKop: w.charged, CompensationKop: w.owed, Slot: w.slot,
		Counted: w.counted, ClockAnomaly: w.anomaly, BenefitRevoked: w.revoked}
	if got != wd {
		t.Errorf("%s:\n got %+v\nwant %+v", name, got, wd)
	}
}

// ride decides and commits tp, failing unless it is accepted.
func ride(t *testing.T, tf *fare.Tariff, c *fareref.Card, tp fareref.Tap) fareref.Decision {
	t.Helper()
	d := fareref.Decide(tf, c, tp)
	if err := c.Commit(tf, tp, d); err != nil {
		t.Fatalf("commit %+v: %v", d, err)
	}
	return d
}

func TestStepsOneAndTwo(t *testing.T) {
	tf := sample(t)
	c := withBenefit(plainCard(), 0, 11, 0)
	listed := bus(tuesday)
	listed.Listing = fareref.Listed
	check(t, "hotlisted", fareref.Decide(tf, c, listed), want{result: "denied", reason: "hotlisted", slot: -1})

	blocked := withBenefit(plainCard(), 0, 11, 0)
	blocked.Blocked = true
	revoked := bus(tuesday)
	revoked.Listing = fareref.BenefitRevoked
	// Steps 1 and 2 carry no other flag, benefit_revoked included.
	check(t, "blocked, benefit revoked", fareref.Decide(tf, blocked, revoked), want{result: "denied", reason: "card-blocked", slot: -1})

	exp := plainCard()
	exp.Expiry = fareref.Date{Year: 2026, Month: 11, Day: 3}
	lastMinute := bus(at(2026, time.November, 3, 23, 59, 59, 999))
	check(t, "last valid day", fareref.Decide(tf, exp, lastMinute), want{result: "accepted", reason: "ok", product: "purse",
		fare: 1500, charged: 1500, slot: -1})
	nextDay := bus(at(2026, time.November, 4, 0, 0, 0, 0))
	check(t, "expired", fareref.Decide(tf, exp, nextDay), want{result: "denied", reason: "card-expired", slot: -1})

	// Benefit revoked: the card rides on its purse, flagged.
	check(t, "benefit revoked", fareref.Decide(tf, c, revoked), want{result: "accepted", reason: "ok", product: "purse",
		fare: 1500, charged: 1500, slot: -1, revoked: true})
}

func TestPrice(t *testing.T) {
	tf := sample(t)
	c := plainCard()
	purse := func(f int64) want {
		return want{result: "accepted", reason: "ok", product: "purse", fare: f, charged: f, slot: -1}
	}
	check(t, "bus", fareref.Decide(tf, c, bus(tuesday)), purse(1500))
	check(t, "tram", fareref.Decide(tf, c, tram(tuesday)), purse(800))
	check(t, "trolleybus route of the tram company", fareref.Decide(tf, c, trolleybus(tuesday)), purse(1000))
	check(t, "minibus off-peak", fareref.Decide(tf, c, minibus(tuesday)), purse(1200))
	check(t, "minibus at the peak's start", fareref.Decide(tf, c, minibus(at(2026, 11, 3, 7, 0, 0, 0))), purse(1500))
	check(t, "minibus before the peak's end", fareref.Decide(tf, c, minibus(at(2026, 11, 3, 9, 59, 59, 999))), purse(1500))
	check(t, "minibus at the peak's end", fareref.Decide(tf, c, minibus(at(2026, 11, 3, 10, 0, 0, 0))), purse(1200))
	check(t, "minibus on Saturday morning", fareref.Decide(tf, c, minibus(at(2026, 11, 7, 8, 0, 0, 0))), purse(1200))
	unknown := bus(tuesday)
	unknown.Carrier = "NOBODY"
	check(t, "unknown carrier", fareref.Decide(tf, c, unknown), want{result: "denied", reason: "no-fare-for-carrier", slot: -1})
}

func TestPass(t *testing.T) {
	tf := sample(t)
	c := plainCard()
	c.Passes[1] = fareref.Pass{Product: 2, From: fareref.Date{Year: 2026, Month: 11, Day: 1},
		To: fareref.Date{Year: 2026, Month: 11, Day: 30}, Groups: 0xFFFF}
	check(t, "electric pass on a tram", fareref.Decide(tf, c, tram(tuesday)),
		want{result: "accepted", reason: "ok", product: "pass", fare: 800, slot: 1})
	check(t, "electric pass on a bus", fareref.Decide(tf, c, bus(tuesday)),
		want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})
	check(t, "electric pass after its last day", fareref.Decide(tf, c, tram(at(2026, 12, 1, 0, 0, 0, 0))),
		want{result: "accepted", reason: "ok", product: "purse", fare: 800, charged: 800, slot: -1})
	c.Passes[0] = fareref.Pass{Product: 1, From: fareref.Date{Year: 2026, Month: 11, Day: 1},
		To: fareref.Date{Year: 2026, Month: 11, Day: 30}, Groups: 1 << 1}
	check(t, "two passes: slot 0", fareref.Decide(tf, c, tram(tuesday)),
		want{result: "accepted", reason: "ok", product: "pass", fare: 800, slot: 0})
	c.Passes[0].Product = 9 // unknown to the tariff: pays nothing
	check(t, "unknown pass product", fareref.Decide(tf, c, tram(tuesday)),
		want{result: "accepted", reason: "ok", product: "pass", fare: 800, slot: 1})
	// A pass beats a free benefit.
	withBenefit(c, 0, 11, 0)
	check(t, "pass before benefit", fareref.Decide(tf, c, tram(tuesday)),
		want{result: "accepted", reason: "ok", product: "pass", fare: 800, slot: 1})
}

func TestBenefits(t *testing.T) {
	tf := sample(t)
	benefit := func(cat, funding string, f, charged, owed int64, slot int, counted bool) want {
		return want{result: "accepted", reason: "ok", product: "benefit", category: cat, funding: funding,
			fare: f, charged: charged, owed: owed, slot: slot, counted: counted}
	}
	check(t, "pensioner", fareref.Decide(tf, withBenefit(plainCard(), 0, 11, 0), bus(tuesday)),
		benefit("11", "state", 1500, 0, 1500, 0, false))
	check(t, "veteran: flat compensation", fareref.Decide(tf, withBenefit(plainCard(), 1, 12, 0), bus(tuesday)),
		benefit("12", "state", 1500, 0, 750, 1, false))
	check(t, "student, unlimited slot", fareref.Decide(tf, withBenefit(plainCard(), 0, 31, 0), bus(tuesday)),
		benefit("31", "city", 1500, 750, 750, 0, false))
	check(t, "student, counted", fareref.Decide(tf, withBenefit(plainCard(), 0, 31, 60), bus(tuesday)),
		benefit("31", "city", 1500, 750, 750, 0, true))
	check(t, "schoolchild on a tram", fareref.Decide(tf, withBenefit(plainCard(), 0, 41, 0), tram(tuesday)),
		benefit("41", "city", 800, 0, 800, 0, false))
	check(t, "schoolchild on a bus", fareref.Decide(tf, withBenefit(plainCard(), 0, 41, 0), bus(tuesday)),
		want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})
	check(t, "large family on a minibus", fareref.Decide(tf, withBenefit(plainCard(), 0, 42, 0), minibus(tuesday)),
		want{result: "accepted", reason: "ok", product: "purse", fare: 1200, charged: 1200, slot: -1})
	check(t, "unknown category", fareref.Decide(tf, withBenefit(plainCard(), 0, 99, 0), bus(tuesday)),
		want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})

	// The best benefit: least charged, then uncounted, then the smaller
	// category, then slot 0.
	two := withBenefit(withBenefit(plainCard(), 0, 31, 0), 1, 11, 0)
	check(t, "free beats half", fareref.Decide(tf, two, bus(tuesday)), benefit("11", "state", 1500, 0, 1500, 1, false))
	two = withBenefit(withBenefit(plainCard(), 0, 42, 0), 1, 31, 0)
	check(t, "equal charge: smaller category", fareref.Decide(tf, two, bus(tuesday)), benefit("31", "city", 1500, 750, 750, 1, false))
	two = withBenefit(withBenefit(plainCard(), 0, 31, 60), 1, 42, 0)
	check(t, "equal charge: uncounted first", fareref.Decide(tf, two, bus(tuesday)), benefit("42", "city", 1500, 750, 750, 1, false))
	two = withBenefit(withBenefit(plainCard(), 0, 31, 0), 1, 31, 0)
	check(t, "same category twice: slot 0", fareref.Decide(tf, two, bus(tuesday)), benefit("31", "city", 1500, 750, 750, 0, false))

	// Not yet valid, no longer valid.
	c := plainCard()
	c.Entitlements[0] = fareref.Entitlement{Category: 11, From: fareref.Date{Year: 2026, Month: 11, Day: 4}, To: fareref.Date{Year: 2026, Month: 11, Day: 30}}
	check(t, "not yet valid", fareref.Decide(tf, c, bus(tuesday)),
		want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})
	check(t, "first day", fareref.Decide(tf, c, bus(at(2026, 11, 4, 0, 0, 0, 0))), benefit("11", "state", 1500, 0, 1500, 0, false))
	check(t, "last day's last instant", fareref.Decide(tf, c, bus(at(2026, 11, 30, 23, 59, 59, 999))), benefit("11", "state", 1500, 0, 1500, 0, false))
}

func TestRounding(t *testing.T) {
	fs := sampleFiles(t)
	fs["fare_products.txt"].Data = []byte(string(fs["fare_products.txt"].Data[:]) + "odd,Odd fare,12.35,UAH\n")
	fs["fare_leg_rules.txt"].Data = []byte("leg_group_id,network_id,from_timeframe_group_id,fare_product_id\n" +
		"municipal,,,odd\n")
	delete(fs, "fare_transfer_rules.txt")
	fs["x_benefits.txt"].Data = []byte("rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n" +
		"student,31,50,0,city,,,\n" +
		"pensioner,11,33,0,state,,,\n" +
		"veteran,12,0,0,state,,,\n" +
		"disability,21,99,0,city,,,\n")
	tf := parse(t, fs)
	for _, tc := range []struct {
		cat             uint16
		charged, owed   int64
		category, funds string
	}{
		{31, 618, 617, "31", "city"}, // 12.35 at 50 %: the rider pays the odd kopiyka
		{11, 828, 407, "11", "state"},
		{12, 1235, 0, "12", "state"},
		{21, 13, 1222, "21", "city"},
	} {
		got := fareref.Decide(tf, withBenefit(plainCard(), 0, tc.cat, 0), bus(tuesday))
		check(t, "category "+tc.category, got, want{result: "accepted", reason: "ok", product: "benefit", category: tc.category,
			funding: tc.funds, fare: 1235, charged: tc.charged, owed: tc.owed, slot: 0})
	}
}

func TestQuota(t *testing.T) {
	fs := sampleFiles(t)
	// The tariff lowers the student quota to 3 rides a month.
	fs["x_benefits.txt"].Data = []byte("rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n" +
		"student,31,50,3,city,,,\n" +
		"pensioner,11,100,0,state,,,\n")
	tf := parse(t, fs)
	c := withBenefit(withBenefit(plainCard(), 0, 31, 50), 1, 11, 2)
	day := at(2026, time.January, 31, 8, 0, 0, 0)
	hourly := func(i int) time.Time { return day.Add(time.Duration(i) * 3 * time.Hour) }
	// Pensioner first (free), twice; then the pensioner's 2 are used up.
	for i := range 2 {
		d := ride(t, tf, c, bus(hourly(i)))
		if d.Category != "11" || !d.Counted || d.Slot != 1 {
			t.Fatalf("ride %d: %+v", i, d)
		}
	}
	if got := c.Last.Counts; got[1] != (fareref.Count{Category: 11, Year: 2026, Month: 1, Used: 2}) || got[0] != (fareref.Count{}) {
		t.Fatalf("counts %+v", got)
	}
	// Then the student's 3 (the tariff's quota, below the card's 50).
	for i := 2; i < 5; i++ {
		d := ride(t, tf, c, bus(hourly(i)))
		if d.Category != "31" || !d.Counted || d.ChargedKop != 750 {
			t.Fatalf("ride %d: %+v", i, d)
		}
	}
	// The sixth ride of January is paid from the purse; it counts nothing.
	d := ride(t, tf, c, bus(at(2026, time.January, 31, 23, 59, 59, 999)))
	check(t, "quota used up", d, want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})
	if got := c.Last.Counts; got[0] != (fareref.Count{Category: 31, Year: 2026, Month: 1, Used: 3}) || got[1].Used != 2 {
		t.Fatalf("counts carried %+v", got)
	}
	// February starts again at one.
	d = ride(t, tf, c, bus(at(2026, time.February, 1, 1, 30, 0, 0)))
	check(t, "new month", d, want{result: "accepted", reason: "ok", product: "benefit", category: "11", funding: "state",
		fare: 1500, owed: 1500, slot: 1, counted: true})
	if got := c.Last.Counts; got[1] != (fareref.Count{Category: 11, Year: 2026, Month: 2, Used: 1}) || got[0].Month != 1 {
		t.Fatalf("counts in February %+v", got)
	}
	// A slot re-used for another category does not inherit the count.
	c.Entitlements[0].Category = 12
	fs["x_benefits.txt"].Data = append(fs["x_benefits.txt"].Data, "veteran,12,50,3,state,,,\n"...)
	tf = parse(t, fs)
	c.Last.Counts[0] = fareref.Count{Category: 31, Year: 2026, Month: 2, Used: 3}
	c.Last.Counts[1] = fareref.Count{Category: 11, Year: 2026, Month: 2, Used: 2}
	d = fareref.Decide(tf, c, bus(at(2026, time.February, 1, 12, 0, 0, 0)))
	if d.Category != "12" || !d.Counted {
		t.Fatalf("re-used slot: %+v", d)
	}
}

func TestClockAnomaly(t *testing.T) {
	tf := sample(t)
	c := withBenefit(plainCard(), 0, 31, 2)
	ride(t, tf, c, bus(tuesday))
	ride(t, tf, c, bus(tuesday.Add(2*time.Hour)))
	// The validator's clock is behind: the same bus, a second "before".
	early := bus(tuesday.Add(2*time.Hour - time.Second))
	d := fareref.Decide(tf, c, early)
	// No anti-passback, no transfer; the counts still apply (2 of 2 used).
	check(t, "clock anomaly", d, want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1, anomaly: true})
	// A millisecond inside P's second is not before it.
	d = fareref.Decide(tf, c, bus(tuesday.Add(2*time.Hour+time.Millisecond)))
	check(t, "same second", d, want{result: "already-paid", reason: "already-paid", slot: -1})
}

func TestPassback(t *testing.T) {
	tf := sample(t)
	c := plainCard()
	ride(t, tf, c, bus(tuesday.Add(500*time.Millisecond))) // Tp is 12:00:00
	check(t, "same bus, 119.999 s", fareref.Decide(tf, c, bus(tuesday.Add(119999*time.Millisecond))),
		want{result: "already-paid", reason: "already-paid", slot: -1})
	// Past anti-passback, the ride is a free municipal transfer.
	check(t, "same bus, 120 s", fareref.Decide(tf, c, bus(tuesday.Add(120*time.Second))),
		want{result: "accepted", reason: "ok", product: "transfer", fare: 1500, slot: -1})
	other := bus(tuesday.Add(time.Second))
	other.Vehicle = "bus-8"
	check(t, "another bus", fareref.Decide(tf, c, other),
		want{result: "accepted", reason: "ok", product: "transfer", fare: 1500, slot: -1})
	revoked := bus(tuesday.Add(time.Second))
	revoked.Listing = fareref.BenefitRevoked
	check(t, "already paid, benefit revoked", fareref.Decide(tf, c, revoked),
		want{result: "already-paid", reason: "already-paid", slot: -1, revoked: true})
}

func TestTransfers(t *testing.T) {
	tf := sample(t)
	// bus, then tram within the hour: free; then a bus: the transfer
	// opens no further transfer (transfer_count 1).
	c := plainCard()
	ride(t, tf, c, bus(tuesday))
	d := ride(t, tf, c, tram(tuesday.Add(59*time.Minute+59*time.Second)))
	check(t, "bus to tram", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 800, slot: -1})
	d = ride(t, tf, c, bus(tuesday.Add(70*time.Minute)))
	check(t, "no chain", d, want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})
	d = fareref.Decide(tf, c, tram(tuesday.Add(130*time.Minute)))
	check(t, "an hour later", d, want{result: "accepted", reason: "ok", product: "purse", fare: 800, charged: 800, slot: -1})

	// municipal to minibus: type 1, 12.00 - 5.00; minibus to municipal:
	// type 0, 4.00.
	c = plainCard()
	ride(t, tf, c, tram(tuesday))
	d = ride(t, tf, c, minibus(tuesday.Add(10*time.Minute)))
	check(t, "tram to minibus", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 1200, charged: 700, slot: -1})
	// P was a transfer; minibus->municipal is between different groups,
	// where transfer_count means 1: no chain.
	d = ride(t, tf, c, bus(tuesday.Add(20*time.Minute)))
	check(t, "after a transfer", d, want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})

	// The student case: a free transfer beats the counted 50 %
	// student ride and spends no quota ride.
	c = withBenefit(plainCard(), 0, 31, 50)
	d = ride(t, tf, c, bus(tuesday))
	check(t, "student bus", d, want{result: "accepted", reason: "ok", product: "benefit", category: "31", funding: "city",
		fare: 1500, charged: 750, owed: 750, slot: 0, counted: true})
	d = ride(t, tf, c, tram(tuesday.Add(20*time.Minute)))
	check(t, "student transfer", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 800, slot: -1})
	if c.Last.Counts[0].Used != 1 {
		t.Errorf("the transfer spent a quota ride: %+v", c.Last.Counts)
	}
	// From a minibus: 4.00 transfer beats the student's 7.50.
	c = withBenefit(plainCard(), 0, 31, 50)
	ride(t, tf, c, minibus(tuesday))
	d = fareref.Decide(tf, c, bus(tuesday.Add(30*time.Minute)))
	check(t, "student from a minibus", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 1500, charged: 400, slot: -1})
	// An uncounted benefit wins a tie with a transfer: the pensioner's
	// free ride is compensated.
	c = withBenefit(plainCard(), 0, 11, 0)
	ride(t, tf, c, bus(tuesday))
	d = fareref.Decide(tf, c, tram(tuesday.Add(30*time.Minute)))
	check(t, "pensioner: benefit", d, want{result: "accepted", reason: "ok", product: "benefit", category: "11", funding: "state",
		fare: 800, owed: 800, slot: 0})
	// A counted free ride loses the tie to a free transfer.
	c = withBenefit(plainCard(), 0, 11, 10)
	ride(t, tf, c, bus(tuesday))
	d = fareref.Decide(tf, c, tram(tuesday.Add(30*time.Minute)))
	check(t, "counted pensioner: transfer", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 800, slot: -1})
}

func TestTransferLegAtItsOwnTime(t *testing.T) {
	fs := sampleFiles(t)
	// A cheaper transfer only from a peak minibus leg.
	fs["fare_leg_rules.txt"].Data = []byte("leg_group_id,network_id,from_timeframe_group_id,fare_product_id\n" +
		"municipal,bus,,single_bus\nmunicipal,tram,,single_tram\nmunicipal,trolleybus,,single_trolleybus\n" +
		"minibus_peak,minibus,peak,single_minibus_peak\nminibus,minibus,,single_minibus\n")
	fs["fare_transfer_rules.txt"].Data = []byte("from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n" +
		"minibus_peak,,,3600,1,0,transfer_free\n")
	tf := parse(t, fs)
	c := plainCard()
	ride(t, tf, c, minibus(at(2026, 11, 3, 9, 50, 0, 0)))
	// P boarded in the peak; this ride boards after it: P's leg is still
	// the peak's.
	d := fareref.Decide(tf, c, bus(at(2026, 11, 3, 10, 20, 0, 0)))
	check(t, "peak leg", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 1500, slot: -1})
}

func TestSpecificTransferRuleMasks(t *testing.T) {
	fs := sampleFiles(t)
	// The specific rule has a short limit; the general one a long one.
	// Only the most specific matching rule is a candidate.
	fs["fare_transfer_rules.txt"].Data = []byte("from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n" +
		"municipal,municipal,1,600,1,0,transfer_free\n" +
		",,1,3600,1,0,transfer_from_minibus\n")
	tf := parse(t, fs)
	c := plainCard()
	ride(t, tf, c, bus(tuesday))
	d := fareref.Decide(tf, c, tram(tuesday.Add(20*time.Minute)))
	check(t, "masked", d, want{result: "accepted", reason: "ok", product: "purse", fare: 800, charged: 800, slot: -1})
	d = fareref.Decide(tf, c, minibus(tuesday.Add(20*time.Minute)))
	check(t, "general rule", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 1200, charged: 400, slot: -1})
}

func TestFunds(t *testing.T) {
	tf := sample(t)
	c := withBenefit(plainCard(), 0, 31, 0)
	c.PurseKop = 749
	d := fareref.Decide(tf, c, bus(tuesday))
	check(t, "student, 7.49 in the purse", d, want{result: "denied", reason: "insufficient-funds", category: "31", funding: "city",
		fare: 1500, slot: -1})
	if err := c.Commit(tf, bus(tuesday), d); !errors.Is(err, fareref.ErrNotAccepted) {
		t.Errorf("commit of a denial: %v", err)
	}
	c.PurseKop = 750
	d = ride(t, tf, c, bus(tuesday))
	if c.PurseKop != 0 || d.ChargedKop != 750 {
		t.Errorf("purse %d after %+v", c.PurseKop, d)
	}
	// A free benefit needs no money.
	c = withBenefit(plainCard(), 0, 11, 0)
	c.PurseKop = 0
	d = fareref.Decide(tf, c, bus(tuesday))
	if d.Result != "accepted" {
		t.Errorf("free ride with an empty purse: %+v", d)
	}
}

func TestDaylightSaving(t *testing.T) {
	tf := sample(t)
	// 29 March 2026: 03:00 local becomes 04:00. A bus at 02:40, a tram at
	// 04:20 local: 40 elapsed minutes, within the hour.
	c := plainCard()
	ride(t, tf, c, bus(time.Date(2026, time.March, 29, 2, 40, 0, 0, kyiv).UTC()))
	d := fareref.Decide(tf, c, tram(time.Date(2026, time.March, 29, 4, 20, 0, 0, kyiv).UTC()))
	check(t, "spring forward", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 800, slot: -1})
	// 25 October 2026: 04:00 local becomes 03:00 again. 03:50 (first),
	// then 03:10 (second): 20 elapsed minutes, though the wall clock went
	// back.
	first := time.Date(2026, time.October, 25, 0, 50, 0, 0, time.UTC) // 03:50 EEST
	second := first.Add(20 * time.Minute)                             // 03:10 EET
	if second.In(kyiv).Hour() != 3 || second.In(kyiv).Minute() != 10 {
		t.Fatalf("zone data: %v", second.In(kyiv))
	}
	c = plainCard()
	ride(t, tf, c, bus(first))
	d = fareref.Decide(tf, c, tram(second))
	check(t, "fall back", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 800, slot: -1})
	// The repeated hour is the same day: a card expiring that day still
	// rides.
	c.Expiry = fareref.Date{Year: 2026, Month: 10, Day: 25}
	if d = fareref.Decide(tf, c, bus(second.Add(20*time.Hour))); d.Reason != "ok" {
		t.Errorf("23:10 on the day the clocks go back: %+v", d)
	}
}

func TestCommit(t *testing.T) {
	tf := sample(t)
	c := withBenefit(plainCard(), 1, 31, 50)
	c.Last = &fareref.Ride{Time: tuesday.Add(-5 * time.Hour), Vehicle: "x", CarrierCode: 1, RouteCode: 22, Product: "purse",
		Counts: [2]fareref.Count{{Category: 11, Year: 2026, Month: 10, Used: 4}, {Category: 31, Year: 2026, Month: 11, Used: 7}}}
	tp := bus(tuesday.Add(1750 * time.Millisecond))
	d := ride(t, tf, c, tp)
	want := fareref.Ride{Time: tuesday.Add(time.Second), Vehicle: "bus-7", CarrierCode: 1, RouteCode: 22, Product: "benefit",
		Counts: [2]fareref.Count{{Category: 11, Year: 2026, Month: 10, Used: 4}, {Category: 31, Year: 2026, Month: 11, Used: 8}}}
	if *c.Last != want || c.PurseKop != 100_00-750 || !d.Counted {
		t.Errorf("after commit:\n got %+v purse %d\nwant %+v", *c.Last, c.PurseKop, want)
	}
}

func TestPreviousRideUnpriced(t *testing.T) {
	fs := sampleFiles(t)
	// Minibuses are priced at the peak only (a new tariff dropped the
	// off-peak fare), and any ride transfers for free within the hour.
	fs["fare_leg_rules.txt"].Data = []byte("leg_group_id,network_id,from_timeframe_group_id,fare_product_id\n" +
		"municipal,bus,,single_bus\nmunicipal,tram,,single_tram\nmunicipal,trolleybus,,single_trolleybus\n" +
		"minibus,minibus,peak,single_minibus_peak\n")
	fs["fare_transfer_rules.txt"].Data = []byte("from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n" +
		",,1,3600,1,0,transfer_free\n")
	tf := parse(t, fs)
	c := plainCard()
	// P: an off-peak minibus ride, which this tariff prices at no leg.
	c.Last = &fareref.Ride{Time: tuesday, Vehicle: "mb-45", CarrierCode: 7, RouteCode: 45, Product: "purse"}
	d := fareref.Decide(tf, c, bus(tuesday.Add(10*time.Minute)))
	check(t, "P without a leg", d, want{result: "accepted", reason: "ok", product: "purse", fare: 1500, charged: 1500, slot: -1})
	// P at the peak has a leg, and the rule from any leg applies.
	c.Last.Time = at(2026, 11, 3, 8, 0, 0, 0)
	d = fareref.Decide(tf, c, bus(at(2026, 11, 3, 8, 10, 0, 0)))
	check(t, "P with a leg", d, want{result: "accepted", reason: "ok", product: "transfer", fare: 1500, slot: -1})
}
