package rerate_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
	"github.com/citycard/transit/validator/tariff"
)

var kyiv = mustZone("Europe/Kyiv")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// testTariff is the sample city's tariff (version 2): ATP-1 buses at
// 15.00, Elektrotrans trams at 8.00, free transfers within an hour,
// anti-passback of two minutes; pensioners (11) ride free, students (31)
// at half price with a quota.
func testTariff(t testing.TB) *rerate.Tariff {
	t.Helper()
	ft, err := tariff.Load("../../testdata/tariff")
	if err != nil {
		t.Fatal(err)
	}
	return rerate.NewTariff(ft)
}

// device is a validator as a test drives it.
type device struct {
	id             string
	number         uint32
	carrier, route string
	vehicle        string
	seq            uint64
	carrierCode    uint16
	routeCode      uint16
}

// card is a card as honest validators see it: its entitlements and its
// tap log (the newest record and the month's counts).
type card struct {
	number uint64
	ents   []fare.Entitlement
	last   *tap.CardRide
	lastV  string // vehicle of the last ride, as the validator's fleet maps it
	counts map[string]int
	month  string
}

// world is a test city: the tariff, devices, cards and the taps they made.
type world struct {
	t    testing.TB
	tf   *rerate.Tariff
	devs map[string]*device
	taps []tap.Tap
}

func newWorld(t testing.TB) *world {
	w := &world{t: t, tf: testTariff(t), devs: map[string]*device{}}
	for i, d := range []device{
		{id: "BUS-1", carrier: "ATP-1", route: "12", vehicle: "AA1001", carrierCode: 1},
		{id: "BUS-2", carrier: "ATP-1", route: "21", vehicle: "AA1002", carrierCode: 1},
		{id: "TRAM-1", carrier: "ELEKTROTRANS", route: "T3", vehicle: "TR01", carrierCode: 2},
		{id: "BUS-1B", carrier: "ATP-1", route: "12", vehicle: "AA1001", carrierCode: 1}, // BUS-1's other door
	} {
		d.number = uint32(417001 + i)
		w.devs[d.id] = &d
	}
	return w
}

func (w *world) worldFacts(asOf time.Time) *rerate.World {
	devs := map[uint32]string{}
	for _, d := range w.devs {
		devs[d.number] = d.id
	}
	return &rerate.World{Location: kyiv, Tariffs: map[uint32]*rerate.Tariff{w.tf.Version: w.tf}, Devices: devs, RecordsAsOf: asOf}
}

func newCard(number uint64, ents ...fare.Entitlement) *card {
	for i := range ents {
		ents[i].Slot = i
	}
	return &card{number: number, ents: ents, counts: map[string]int{}}
}

func ent(category string, limit int) fare.Entitlement {
	return fare.Entitlement{Category: category, ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, kyiv),
		ValidTo: time.Date(2027, 1, 1, 0, 0, 0, 0, kyiv), Limit: limit}
}

// records returns the registry's records for c's entitlements.
func records(c *card) []rerate.Entitlement {
	var out []rerate.Entitlement
	for _, e := range c.ents {
		out = append(out, rerate.Entitlement{Category: e.Category, From: e.ValidFrom, To: e.ValidTo, MonthlyLimit: e.Limit})
	}
	return out
}

// tap makes an honest validator's tap of c on dev at at, and updates the
// card as the validator writes it.
func (w *world) tap(dev string, c *card, at time.Time) tap.Tap {
	d := w.devs[dev]
	d.seq++
	month := at.In(kyiv).Format("2006-01")
	if month != c.month {
		c.counts, c.month = map[string]int{}, month
	}
	fc := fare.Card{Number: c.number, PurseKop: 100000}
	for _, e := range c.ents {
		e.Used = c.counts[e.Category]
		fc.Entitlements = append(fc.Entitlements, e)
	}
	if c.last != nil {
		v := "device:" + strconv.Itoa(int(c.last.Device))
		if c.lastV != "" {
			v = c.lastV
		}
		fc.LastTap = &fare.LastTap{Time: c.last.Time, Vehicle: v, Carrier: c.last.Carrier, Route: c.last.Route, Product: c.last.Product}
	}
	dec := fare.Decide(fc, w.tf.Tariff, nil, fare.Device{ID: dev, Carrier: d.carrier, Route: d.route, Vehicle: d.vehicle}, at)
	tp := tap.Tap{Device: dev, Seq: d.seq, Time: at.UTC(), Card: c.number, Carrier: d.carrier, Route: d.route, Vehicle: d.vehicle,
		Result: dec.Result, Reason: dec.Reason, Product: dec.Product, Category: dec.Category, Funding: dec.Funding,
		FareKop: dec.FareKop, ChargedKop: dec.ChargedKop, CompensationKop: dec.CompensationKop,
		TariffVersion: w.tf.Version, CardCommitted: dec.LogTap, ClockAnomaly: dec.ClockAnomaly, Counted: dec.CountRide,
		DeviceNumber: d.number}
	if c.last != nil {
		tp.Prev = *c.last
	}
	if dec.LogTap {
		_, rc := w.tf.Tariff.Carriers[d.carrier], uint16(0)
		for _, r := range w.tf.Tariff.Carriers[d.carrier].Routes {
			if r.ID == d.route {
				rc = r.Code
			}
		}
		c.last = &tap.CardRide{Device: d.number, Seq: uint32(d.seq), Time: at.UTC().Truncate(time.Second),
			Carrier: d.carrierCode, Route: rc, Product: dec.Product, ChargedKop: dec.ChargedKop}
		c.lastV = d.vehicle
		if dec.CountRide {
			c.counts[dec.Category]++
		}
	}
	w.taps = append(w.taps, tp)
	return tp
}

func rides(taps ...tap.Tap) []rerate.Ride {
	out := make([]rerate.Ride, len(taps))
	for i := range taps {
		out[i] = rerate.Ride{Tap: &taps[i]}
	}
	return out
}

// verdicts judges the taps of one card in November 2026.
func verdicts(t *testing.T, w *rerate.World, cf *rerate.CardFacts, taps ...tap.Tap) map[rerate.Key]rerate.Verdict {
	t.Helper()
	res := rerate.Card(w, cf, rides(taps...), map[string]bool{"2026-11": true})
	out := map[rerate.Key]rerate.Verdict{}
	for _, v := range res.Verdicts {
		out[v.Key] = v
	}
	return out
}

func want(t *testing.T, vs map[rerate.Key]rerate.Verdict, tp tap.Tap, state rerate.State, reason string) {
	t.Helper()
	v, ok := vs[rerate.KeyOf(&tp)]
	if !ok {
		t.Errorf("%s/%d: no verdict, want %s %s", tp.Device, tp.Seq, state, reason)
		return
	}
	if v.State != state || v.Reason != reason {
		t.Errorf("%s/%d: %s %s (%s), want %s %s", tp.Device, tp.Seq, v.State, v.Reason, v.Detail, state, reason)
	}
}

var nov = time.Date(2026, 11, 9, 12, 0, 0, 0, kyiv) // a Monday, off-peak

func TestHonestRidesPaid(t *testing.T) {
	w := newWorld(t)
	pensioner := newCard(1001, ent("11", 0))
	student := newCard(1002, ent("31", 3))
	var taps []tap.Tap
	for i := range 4 {
		at := nov.Add(time.Duration(i) * 3 * time.Hour)
		taps = append(taps, w.tap("BUS-1", pensioner, at), w.tap("TRAM-1", student, at.Add(time.Minute)))
	}
	facts := w.worldFacts(nov.AddDate(0, 1, 0))
	var p, s []tap.Tap
	for _, tp := range taps {
		if tp.Card == 1001 {
			p = append(p, tp)
		} else {
			s = append(s, tp)
		}
	}
	vp := verdicts(t, facts, &rerate.CardFacts{Records: records(pensioner)}, p...)
	for _, tp := range p {
		want(t, vp, tp, rerate.Paid, "")
	}
	vs := verdicts(t, facts, &rerate.CardFacts{Records: records(student)}, s...)
	// The fourth student ride was a purse ride: the quota of 3 was used.
	for _, tp := range s[:3] {
		want(t, vs, tp, rerate.Paid, "")
	}
	if s[3].Product != fare.ProductPurse {
		t.Fatalf("the fourth student ride is %s, want purse (quota used)", s[3].Product)
	}
	if len(vs) != 3 {
		t.Errorf("%d verdicts for the student, want 3 (purse rides are not judged)", len(vs))
	}
	res := rerate.Card(facts, &rerate.CardFacts{Records: records(pensioner)}, rides(p...), map[string]bool{"2026-11": true})
	if len(res.Confirmed) != 3 {
		t.Errorf("confirmed %v, want the first three rides (the fourth is the card's newest)", res.Confirmed)
	}
	if v := vp[rerate.KeyOf(&p[0])]; v.Owed.CompensationKop != 1500 || v.Owed.Funding != "state" {
		t.Errorf("owed %+v, want 15.00 from the state", v.Owed)
	}
}

func TestBadInputHeld(t *testing.T) {
	w := newWorld(t)
	c := newCard(2001, ent("11", 0))
	base := w.tap("BUS-1", c, nov)
	facts := w.worldFacts(nov.AddDate(0, 1, 0))
	cf := &rerate.CardFacts{Records: records(c)}
	tests := []struct {
		name   string
		change func(*tap.Tap)
		state  rerate.State
		reason string
	}{
		{"as sent", func(*tap.Tap) {}, rerate.Paid, ""},
		{"2^40 kopiyky", func(t *tap.Tap) { t.CompensationKop = 1 << 40 }, rerate.Held, rerate.ReasonAmountInvalid},
		{"negative charge", func(t *tap.Tap) { t.ChargedKop = -500 }, rerate.Held, rerate.ReasonAmountInvalid},
		{"above the tariff", func(t *tap.Tap) { t.FareKop, t.CompensationKop = 2500, 2500 }, rerate.Held, rerate.ReasonOverTariff},
		{"inflated within the tariff", func(t *tap.Tap) { t.Carrier, t.Route = "ELEKTROTRANS", "T3" }, rerate.Held, rerate.ReasonDiffers},
		{"unknown category", func(t *tap.Tap) { t.Category = "99" }, rerate.Held, rerate.ReasonCategoryUnknown},
		{"unknown tariff", func(t *tap.Tap) { t.TariffVersion = 9 }, rerate.Waiting, rerate.ReasonTariffUnknown},
		{"unknown carrier", func(t *tap.Tap) { t.Carrier = "NOBODY" }, rerate.Held, rerate.ReasonCarrierUnknown},
		{"category not held", func(t *tap.Tap) { t.Category = "21"; t.Funding = "city" }, rerate.Held, rerate.ReasonNotEntitled},
		{"purse ride claiming compensation", func(t *tap.Tap) { t.Product = fare.ProductPurse }, rerate.Held, rerate.ReasonDiffers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := base
			tt.change(&tp)
			want(t, verdicts(t, facts, cf, tp), tp, tt.state, tt.reason)
		})
	}
	t.Run("route not run", func(t *testing.T) {
		f := *facts
		f.Routes = map[string]map[string]bool{"ATP-1": {"21": true}}
		want(t, verdicts(t, &f, cf, base), base, rerate.Held, rerate.ReasonRouteNotRun)
		f.Routes = map[string]map[string]bool{"ATP-1": {"12": true}}
		want(t, verdicts(t, &f, cf, base), base, rerate.Paid, "")
	})
	t.Run("registry behind", func(t *testing.T) {
		tp := base
		tp.Category = "21"
		want(t, verdicts(t, w.worldFacts(nov.Add(-time.Hour)), cf, tp), tp, rerate.Waiting, rerate.ReasonRegistryBehind)
		want(t, verdicts(t, w.worldFacts(time.Time{}), cf, base), base, rerate.Paid, "")
		want(t, verdicts(t, w.worldFacts(time.Time{}), cf, tp), tp, rerate.Waiting, rerate.ReasonRegistryBehind)
	})
	t.Run("released at the tariff's amount", func(t *testing.T) {
		tp := base
		tp.CompensationKop = 1 << 40
		v := verdicts(t, facts, cf, tp)[rerate.KeyOf(&tp)]
		if !v.Priced || v.Release.CompensationKop != 1500 {
			t.Errorf("release of the 2^40 ride pays %+v (priced %v), want the tariff's 15.00", v.Release, v.Priced)
		}
	})
}

func TestQuotaAndTransfers(t *testing.T) {
	w := newWorld(t)
	facts := w.worldFacts(nov.AddDate(0, 1, 0))

	// A device that ignores the quota: clearing counts the month's rides.
	c := newCard(3001, ent("31", 2))
	a := w.tap("TRAM-1", c, nov)
	b := w.tap("TRAM-1", c, nov.Add(2*time.Hour))
	x := w.tap("TRAM-1", c, nov.Add(4*time.Hour)) // purse: quota used
	x.Product, x.Category, x.Funding, x.ChargedKop, x.CompensationKop, x.Counted = fare.ProductBenefit, "31", "city", 400, 400, true
	vs := verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, a, b, x)
	want(t, vs, a, rerate.Paid, "")
	want(t, vs, b, rerate.Paid, "")
	want(t, vs, x, rerate.Held, rerate.ReasonOverQuota)

	// A student's ride within an hour of a bus ride is a free transfer,
	// not a half-price benefit ride.
	c = newCard(3002, ent("31", 0))
	first := w.tap("BUS-1", c, nov)
	tr := w.tap("BUS-2", c, nov.Add(20*time.Minute))
	if tr.Product != fare.ProductTransfer {
		t.Fatalf("second ride is %s, want transfer", tr.Product)
	}
	fake := tr
	fake.Product, fake.Category, fake.Funding, fake.ChargedKop, fake.CompensationKop = fare.ProductBenefit, "31", "city", 750, 750
	vs = verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, first, fake)
	want(t, vs, first, rerate.Paid, "")
	want(t, vs, fake, rerate.Held, rerate.ReasonDiffers)

	// The same card at the other door of the same bus within two
	// minutes has already paid.
	c = newCard(3003, ent("11", 0))
	first = w.tap("BUS-1", c, nov)
	again := first
	again.Device, again.Seq, again.Time = "BUS-1B", 1, first.Time.Add(30*time.Second)
	again.DeviceNumber, again.Prev = w.devs["BUS-1B"].number, *c.last
	vs = verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, first, again)
	want(t, vs, again, rerate.Held, rerate.ReasonDiffers)
}

func TestCardEvidence(t *testing.T) {
	w := newWorld(t)
	facts := w.worldFacts(nov.AddDate(0, 1, 0))
	c := newCard(4001, ent("11", 0))
	cf := &rerate.CardFacts{Records: records(c)}
	r1 := w.tap("BUS-1", c, nov)
	r2 := w.tap("TRAM-1", c, nov.Add(3*time.Hour))
	r3 := w.tap("BUS-2", c, nov.Add(6*time.Hour))

	t.Run("invented ride between two linked rides", func(t *testing.T) {
		x := r2
		x.Device, x.Seq, x.Time = "BUS-9", 77, nov.Add(90*time.Minute)
		x.DeviceNumber, x.Prev = 999, tap.CardRide{}
		vs := verdicts(t, facts, cf, r1, r2, r3, x)
		want(t, vs, x, rerate.Held, rerate.ReasonContradicted)
		for _, tp := range []tap.Tap{r1, r2, r3} {
			want(t, vs, tp, rerate.Paid, "")
		}
	})
	t.Run("invented ride claiming a real previous ride", func(t *testing.T) {
		x := r2
		x.Device, x.Seq, x.Time = "BUS-9", 78, nov.Add(4*time.Hour)
		x.DeviceNumber = 999 // its Prev names r1, as r2's does
		vs := verdicts(t, facts, cf, r1, r2, r3, x)
		want(t, vs, x, rerate.Held, rerate.ReasonContradicted)
		want(t, vs, r2, rerate.Paid, "")
		// Before the card's next tap, which of the two it holds is open.
		vs = verdicts(t, facts, cf, r1, r2, x)
		want(t, vs, x, rerate.Waiting, rerate.ReasonEvidenceFork)
		want(t, vs, r2, rerate.Waiting, rerate.ReasonEvidenceFork)
	})
	t.Run("previous ride not arrived", func(t *testing.T) {
		c := newCard(4002, ent("11", 0))
		a := w.tap("BUS-1", c, nov)
		b := w.tap("BUS-2", c, nov.Add(10*time.Minute))
		vs := verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, b)
		want(t, vs, b, rerate.Waiting, rerate.ReasonEvidencePending)
		vs = verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, a, b)
		want(t, vs, b, rerate.Paid, "")
		// A day later the previous ride cannot matter any more.
		late := w.tap("BUS-1", c, nov.Add(26*time.Hour))
		vs = verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, late)
		want(t, vs, late, rerate.Paid, "")
	})
	t.Run("evidence disagreeing with the ride it names", func(t *testing.T) {
		x := r2
		x.Prev.Product = fare.ProductPurse
		vs := verdicts(t, facts, cf, r1, x)
		want(t, vs, x, rerate.Held, rerate.ReasonEvidenceMismatch)
	})
	t.Run("commit unknown", func(t *testing.T) {
		c := newCard(4003, ent("11", 0))
		u := w.tap("BUS-1", c, nov)
		u.CardCommitted, u.CommitUnknown = false, true
		vs := verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, u)
		want(t, vs, u, rerate.Waiting, rerate.ReasonCommitUnknown)
		// The card held it: the next tap names it.
		next := w.tap("TRAM-1", c, nov.Add(2*time.Hour))
		vs = verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, u, next)
		want(t, vs, u, rerate.Paid, "")
		// The card did not: the next tap names the ride before it.
		c = newCard(4004, ent("11", 0))
		p := w.tap("BUS-1", c, nov)
		saved := *c.last
		u = w.tap("TRAM-1", c, nov.Add(time.Hour))
		u.CardCommitted, u.CommitUnknown = false, true
		*c.last = saved
		next = w.tap("BUS-2", c, nov.Add(3*time.Hour))
		vs = verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, p, u, next)
		want(t, vs, u, rerate.NotOwed, rerate.ReasonNotCommitted)
		want(t, vs, next, rerate.Paid, "")
	})
	t.Run("a tap already paid forks nothing", func(t *testing.T) {
		// The other door of the bus within the passback: already paid,
		// nothing written on the card, though its transaction completed
		// (the validator records it committed). The card's next ride
		// continues from the ride before it, as the passback tap's
		// evidence also says.
		c := newCard(4005, ent("11", 0))
		a := w.tap("BUS-1", c, nov)
		again := w.tap("BUS-1B", c, nov.Add(30*time.Second))
		if again.Result != tap.AlreadyPaid {
			t.Fatalf("the other door: %s, want already paid", again.Result)
		}
		again.CardCommitted = true
		next := w.tap("TRAM-1", c, nov.Add(3*time.Hour))
		vs := verdicts(t, facts, &rerate.CardFacts{Records: records(c)}, a, again, next)
		want(t, vs, a, rerate.Paid, "")
		want(t, vs, next, rerate.Paid, "")
	})
	t.Run("benefit revoked", func(t *testing.T) {
		rev := &rerate.CardFacts{Records: records(c), Revoked: []rerate.Span{{From: nov.Add(time.Hour)}}}
		vs := verdicts(t, facts, rev, r1, r2, r3)
		want(t, vs, r1, rerate.Paid, "")
		want(t, vs, r2, rerate.Held, rerate.ReasonBenefitRevoked)
	})
}

// TestLateRide: the card's rides reach clearing out of order; judged
// again with the late one, the month comes out as the card recorded it.
func TestLateRide(t *testing.T) {
	w := newWorld(t)
	facts := w.worldFacts(nov.AddDate(0, 1, 0))
	c := newCard(5001, ent("31", 2))
	a := w.tap("TRAM-1", c, nov)
	b := w.tap("TRAM-1", c, nov.Add(2*time.Hour))
	cf := &rerate.CardFacts{Records: records(c)}
	// b alone: its evidence names a, which is hours old: judged, paid.
	vs := verdicts(t, facts, cf, b)
	want(t, vs, b, rerate.Paid, "")
	// A dishonest third ride counted on the quota before a arrives...
	x := b
	x.Seq, x.Time = 99, nov.Add(5*time.Hour)
	x.Prev = tap.CardRide{Device: b.DeviceNumber, Seq: uint32(b.Seq), Time: b.Time.Truncate(time.Second), Carrier: 2, Product: "benefit"}
	x.Counted = true
	vs = verdicts(t, facts, cf, b, x)
	want(t, vs, x, rerate.Paid, "")
	// ...is over the quota once the month is complete.
	vs = verdicts(t, facts, cf, a, b, x)
	want(t, vs, a, rerate.Paid, "")
	want(t, vs, x, rerate.Held, rerate.ReasonOverQuota)
}

func TestNextAndDecide(t *testing.T) {
	w := newWorld(t)
	c := newCard(6001, ent("11", 0))
	tp := w.tap("BUS-1", c, nov)
	r := &rerate.Ride{Tap: &tp}
	open := map[string]bool{}
	ing := rerate.Ingested(r, "2026-11")
	if ing.State != rerate.Paid || ing.Booking != (rerate.Booking{Into: "2026-11"}) {
		t.Fatalf("ingested record %+v", ing)
	}
	paid := rerate.Verdict{State: rerate.Paid, Owed: ing.Paid}
	if _, d, changed := rerate.Next(r, "2026-11", "2026-11-09", ing, paid, open); changed || d != nil {
		t.Errorf("confirming an ingested ride changed it: %v", d)
	}
	heldV := rerate.Verdict{State: rerate.Held, Reason: rerate.ReasonDiffers, Release: ing.Paid, Priced: true}
	h, d, changed := rerate.Next(r, "2026-11", "2026-11-09", ing, heldV, open)
	if !changed || h.Booking.Paid() || len(d) != 1 || d[0].Rides != -1 || d[0].CompensationKop != -1500 || d[0].Into != "2026-11" {
		t.Fatalf("holding: %+v, %+v", h, d)
	}
	// November closes: the held ride stays held whatever the facts say.
	closed := map[string]bool{"2026-11": true}
	if _, _, changed := rerate.Next(r, "2026-11", "2026-11-09", h, paid, closed); changed {
		t.Error("a held ride of a closed period moved by itself")
	}
	// A waiting ride moves when its fact arrives: into December, as an
	// adjustment of November.
	wt := h
	wt.State, wt.Reason = rerate.Waiting, rerate.ReasonTariffUnknown
	p, d, changed := rerate.Next(r, "2026-11", "2026-11-09", wt, paid, closed)
	if !changed || p.Booking != (rerate.Booking{Into: "2026-12", Adjusts: "2026-11"}) || len(d) != 1 || d[0].Rides != 1 {
		t.Errorf("waiting ride after close: %+v, %+v", p, d)
	}
	// A person releases the held ride: a line of its own in December.
	rel, d, err := rerate.Decide(r, "2026-11", "2026-11-09", h, true, rerate.Decision{By: "finance:olena", Note: "checked the bus log"}, closed)
	if err != nil || rel.State != rerate.Released || rel.Booking != (rerate.Booking{Into: "2026-12", Adjusts: "2026-11", Kind: rerate.KindReleased}) || len(d) != 1 {
		t.Fatalf("release: %+v, %+v, %v", rel, d, err)
	}
	if _, _, changed := rerate.Next(r, "2026-11", "2026-11-09", rel, heldV, open); changed {
		t.Error("re-rating moved a released ride")
	}
	if _, _, err := rerate.Decide(r, "2026-11", "2026-11-09", rel, false, rerate.Decision{By: "x"}, closed); err == nil {
		t.Error("a released ride was decided again")
	}
	rej, d, err := rerate.Decide(r, "2026-11", "2026-11-09", h, false, rerate.Decision{By: "finance:olena", Note: "no such ride"}, open)
	if err != nil || rej.State != rerate.Rejected || rej.Booking.Paid() || d != nil {
		t.Errorf("reject: %+v, %+v, %v", rej, d, err)
	}
	unpriced := h
	unpriced.Priced = false
	if _, _, err := rerate.Decide(r, "2026-11", "2026-11-09", unpriced, true, rerate.Decision{By: "x"}, open); err == nil {
		t.Error("released a ride clearing cannot price")
	}
}

func TestDetailSaysWhat(t *testing.T) {
	w := newWorld(t)
	c := newCard(7001, ent("11", 0))
	tp := w.tap("TRAM-1", c, nov)
	tp.FareKop, tp.CompensationKop = 1500, 1500
	v := verdicts(t, w.worldFacts(nov.AddDate(0, 1, 0)), &rerate.CardFacts{Records: records(c)}, tp)[rerate.KeyOf(&tp)]
	for _, s := range []string{"claimed", "15.00", "8.00"} {
		if !strings.Contains(v.Detail, s) {
			t.Errorf("detail %q does not say %q", v.Detail, s)
		}
	}
	_ = fmt.Sprint
}
