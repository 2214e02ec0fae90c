package golden

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// TestGoldenMonth runs November 2026 of the golden city through the system
// and checks it against the hand-worked month in testdata/golden.
func TestGoldenMonth(t *testing.T) {
	m := loadMonth(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := newSystem(t, ctx, m)
	closing, err := time.ParseInLocation(timeLayout, closeAt, m.loc)
	if err != nil {
		t.Fatal(err)
	}

	// The month as it happens: hotlists published, nightly uploads, the
	// rides in the order they were presented.
	got := map[string]tap.Tap{}
	nextHotlist := 0
	nextUpload := nightAfter(m.rides[0].at, m.loc)
	for _, r := range m.rides {
		for nextHotlist < len(m.hotlists) && !r.at.Before(m.hotlists[nextHotlist].from) {
			s.applyHotlist(t, ctx, m.hotlists[nextHotlist])
			nextHotlist++
		}
		for !r.at.Before(nextUpload) {
			s.upload(t, ctx, nextUpload)
			nextUpload = nightAfter(nextUpload, m.loc)
		}
		got[r.id] = s.present(t, ctx, r)
	}
	for !closing.Before(nextUpload) {
		s.upload(t, ctx, nextUpload)
		nextUpload = nightAfter(nextUpload, m.loc)
	}
	s.setNow(closing)
	closed, err := s.svc.Close(ctx, november, statement.Closing{Actor: "golden month", Confirmed: true})
	if err != nil {
		t.Fatalf("close %s: %v", november, err)
	}
	// Validators that were out of reach upload when they are back.
	var late []time.Time
	for _, d := range m.devices {
		if !d.online.IsZero() {
			late = append(late, d.online)
		}
	}
	slices.SortFunc(late, time.Time.Compare)
	for _, at := range late {
		s.upload(t, ctx, at)
	}

	t.Logf("%d cards, %d validators, %d rides; November closed with %d statement(s)", len(m.cards), len(m.devices), len(m.rides), len(closed))
	t.Run("taps", func(t *testing.T) { checkTaps(t, m, got) })
	t.Run("stored", func(t *testing.T) {
		stored, err := s.storedTaps(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range m.rides {
			g := got[r.id]
			st, ok := stored[r.device][g.Seq]
			if !ok {
				t.Errorf("%s: clearing has no tap %s/%d", r.id, r.device, g.Seq)
				continue
			}
			n++
			if d := diffTaps(st, g); d != "" {
				t.Errorf("%s: clearing stored another tap than the validator journalled: %s", r.id, d)
			}
		}
		total := 0
		for _, byseq := range stored {
			total += len(byseq)
		}
		if total != n {
			t.Errorf("clearing holds %d taps, the month made %d", total, n)
		}
	})
	t.Run("purses", func(t *testing.T) {
		for _, c := range m.cards {
			bal, err := s.purse(ctx, c.label)
			if err != nil {
				t.Errorf("card %s: read the purse: %v", c.label, err)
				continue
			}
			if bal != c.endKop {
				t.Errorf("card %s (%s): purse %s at the end of the month, README.md says %s", c.label, c.profile, uah(bal), uah(c.endKop))
			}
		}
	})
	t.Run("statements", func(t *testing.T) {
		if len(closed) == 0 || closed[0].Period != november || closed[0].Adjusts != "" || !closed[0].Closed {
			t.Fatalf("closing %s gave %+v", november, closed)
		}
		vs, err := s.svc.Verify(ctx, november, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if !v.OK() {
				t.Errorf("statement %s (adjusts %q) does not verify: %v", v.Statement.Period, v.Statement.Adjusts, v.Problems)
			}
		}
		for _, key := range [][2]string{{november, ""}, {december, ""}, {december, november}} {
			want, ok := m.statements[key]
			if !ok {
				t.Errorf("README.md has no table for the statement of %s adjusting %q", key[0], key[1])
				continue
			}
			st, err := s.statementOf(ctx, key[0], key[1])
			if err != nil {
				t.Error(err)
				continue
			}
			if key[0] == november && !st.Closed {
				t.Errorf("the statement of %s is not closed", november)
			}
			checkStatement(t, fmt.Sprintf("statement %s%s", key[0], adjusting(key[1])), st.Lines, st.Total(), want)
		}
		// The statements of the month hold nothing the README does not.
		for _, p := range []string{november, december} {
			sts, err := s.store.Statements(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range sts {
				if _, ok := m.statements[[2]string{p, st.Adjusts}]; !ok && len(st.Lines) > 0 {
					t.Errorf("statement %s%s has lines README.md does not show: %+v", p, adjusting(st.Adjusts), st.Lines)
				}
			}
		}
	})
}

// nightAfter returns the first nightly upload (03:00 local) after at.
func nightAfter(at time.Time, loc *time.Location) time.Time {
	l := at.In(loc)
	n := time.Date(l.Year(), l.Month(), l.Day(), uploadHour, 0, 0, 0, loc)
	if !n.After(at) {
		n = time.Date(l.Year(), l.Month(), l.Day()+1, uploadHour, 0, 0, 0, loc)
	}
	return n
}

func adjusting(p string) string {
	if p == "" {
		return ""
	}
	return " adjusting " + p
}

// checkTaps compares every journalled tap with its hand-worked row.
func checkTaps(t *testing.T, m *month, got map[string]tap.Tap) {
	seq := map[string]uint64{}
	for _, r := range m.rides {
		g := got[r.id]
		seq[r.device]++
		want := m.wantTap(r, seq[r.device], got)
		if r.want.step <= 2 {
			// Steps 1 and 2 settle a tap before the previous ride matters:
			// what the card's log showed is evidence only.
			want.Prev = g.Prev
		}
		if d := diffTaps(g, want); d != "" {
			t.Errorf("%s (card %s, %s on %s, step %d: %s):\n%s", r.id, r.card, r.at.Format(timeLayout+".000"), r.device,
				r.want.step, r.want.note, d)
		}
	}
}

// wantTap is the tap record ride r must leave: its hand-worked outcome,
// with the device's and the month's bookkeeping (sequence, versions).
func (m *month) wantTap(r *rideRow, seq uint64, got map[string]tap.Tap) tap.Tap {
	d, c, e := m.byDevice[r.device], m.byCard[r.card], r.want
	w := tap.Tap{
		Device: d.id, Seq: seq, Time: r.at.UTC().Truncate(time.Millisecond), Card: uint64(c.number),
		Carrier: d.carrier, Route: d.route, Vehicle: d.vehicle,
		Reason: e.reason, Product: e.product, Category: e.category, Funding: e.funding,
		FareKop: e.fareKop, ChargedKop: e.chargedKop, CompensationKop: e.owedKop,
		TariffVersion: 2, HotlistVersion: m.hotlistAt(r.at),
		CardCommitted: e.committed == "yes", CommitUnknown: e.committed == "unknown",
		ClockAnomaly: e.clockAnomaly, BenefitRevoked: e.benefitRevoked, Counted: e.counted,
		DeviceNumber: d.number,
	}
	switch e.result {
	case "accepted":
		w.Result = tap.Accepted
	case "denied":
		w.Result = tap.Denied
	case "already-paid":
		w.Result = tap.AlreadyPaid
	}
	if e.prev != "" {
		p := m.byRide[e.prev]
		pd := m.byDevice[p.device]
		w.Prev = tap.CardRide{Device: pd.number, Seq: uint32(got[p.id].Seq), Time: p.at.UTC().Truncate(time.Second),
			Carrier: pd.carrierCode, Route: pd.routeCode, Product: p.want.product, ChargedKop: p.want.chargedKop}
	}
	return w
}

// hotlistAt is the hotlist version in force at at.
func (m *month) hotlistAt(at time.Time) uint64 {
	var v uint64
	for _, h := range m.hotlists {
		if !at.Before(h.from) {
			v = h.version
		}
	}
	return v
}

// diffTaps lists the fields in which got differs from want, one a line.
func diffTaps(got, want tap.Tap) string {
	var b strings.Builder
	f := func(name string, g, w any) {
		if g != w {
			fmt.Fprintf(&b, "\t%s: got %v, want %v\n", name, g, w)
		}
	}
	money := func(name string, g, w int64) {
		if g != w {
			fmt.Fprintf(&b, "\t%s: got %s, want %s\n", name, uah(g), uah(w))
		}
	}
	f("device", got.Device, want.Device)
	f("sequence", got.Seq, want.Seq)
	if !got.Time.Equal(want.Time) {
		fmt.Fprintf(&b, "\ttime: got %s, want %s\n", got.Time, want.Time)
	}
	f("card", got.Card, want.Card)
	f("carrier", got.Carrier, want.Carrier)
	f("route", got.Route, want.Route)
	f("vehicle", got.Vehicle, want.Vehicle)
	f("position", [2]int32{got.Lat, got.Lon}, [2]int32{want.Lat, want.Lon})
	f("result", got.Result, want.Result)
	f("reason", got.Reason, want.Reason)
	f("product", got.Product, want.Product)
	f("category", got.Category, want.Category)
	f("funding", got.Funding, want.Funding)
	money("fare", got.FareKop, want.FareKop)
	money("charged", got.ChargedKop, want.ChargedKop)
	money("owed", got.CompensationKop, want.CompensationKop)
	f("tariff version", got.TariffVersion, want.TariffVersion)
	f("hotlist version", got.HotlistVersion, want.HotlistVersion)
	f("committed", got.CardCommitted, want.CardCommitted)
	f("commit unknown", got.CommitUnknown, want.CommitUnknown)
	f("clock_anomaly", got.ClockAnomaly, want.ClockAnomaly)
	f("benefit_revoked", got.BenefitRevoked, want.BenefitRevoked)
	f("counted", got.Counted, want.Counted)
	f("device number", got.DeviceNumber, want.DeviceNumber)
	gp, wp := got.Prev, want.Prev
	if !gp.Time.Equal(wp.Time) || gp.Device != wp.Device || gp.Seq != wp.Seq || gp.Carrier != wp.Carrier || gp.Route != wp.Route ||
		gp.Product != wp.Product || gp.ChargedKop != wp.ChargedKop {
		fmt.Fprintf(&b, "\tprevious ride: got %s, want %s\n", ride(gp), ride(wp))
	}
	return b.String()
}

func ride(r tap.CardRide) string {
	if r.Device == 0 {
		return "none"
	}
	return fmt.Sprintf("device %d seq %d at %s carrier %d route %d %s %s", r.Device, r.Seq, r.Time.Format(time.RFC3339),
		r.Carrier, r.Route, r.Product, uah(r.ChargedKop))
}

// checkStatement compares a statement's lines and total with a README
// table.
func checkStatement(t *testing.T, name string, lines []store.Line, total store.Line, want statementTable) {
	t.Helper()
	key := func(l store.Line) string { return l.Carrier + " " + l.Category + " " + l.Funding }
	sorted := func(ls []store.Line) []store.Line {
		out := slices.Clone(ls)
		slices.SortFunc(out, func(a, b store.Line) int { return cmp.Compare(key(a), key(b)) })
		return out
	}
	show := func(l store.Line) string {
		return fmt.Sprintf("rides %d, fare %s, charged %s, owed %s", l.Rides, uah(l.FareKop), uah(l.ChargedKop), uah(l.CompensationKop))
	}
	g, w := sorted(lines), sorted(want.lines)
	for len(g) > 0 || len(w) > 0 {
		switch {
		case len(w) == 0 || len(g) > 0 && key(g[0]) < key(w[0]):
			t.Errorf("%s: line %s: %s, which README.md does not show", name, key(g[0]), show(g[0]))
			g = g[1:]
		case len(g) == 0 || key(w[0]) < key(g[0]):
			t.Errorf("%s: no line %s; README.md shows %s", name, key(w[0]), show(w[0]))
			w = w[1:]
		default:
			gl, wl := g[0], w[0]
			gl.Route, gl.Day = "", ""
			if gl != wl {
				t.Errorf("%s: line %s: %s; README.md shows %s", name, key(gl), show(gl), show(wl))
			}
			g, w = g[1:], w[1:]
		}
	}
	total.Adjusts, total.Carrier, total.Category, total.Funding = "", "", "", ""
	wt := want.total
	wt.Adjusts = ""
	if total != wt {
		t.Errorf("%s: total %s; README.md shows %s", name, show(total), show(wt))
	}
}
