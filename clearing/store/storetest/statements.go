package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// seal stands in for the signing in clearing/statement: it makes a hash
// that depends on everything in the statement, so that a change shows.
func seal(_ context.Context, st *store.Statement) error {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%+v", st.Period, st.Adjusts, st.ClosedAt.Format(time.RFC3339Nano), st.Lines)
	st.Hash = h.Sum(nil)
	st.Signature = append([]byte("signed:"), st.Hash...)
	st.KeyRef = "sign-statement@1"
	st.ClosedBy, st.Form = "o.koval (supervisor)", 3
	st.PartSeed = h.Sum([]byte("seed"))[:32]
	st.KeyFingerprint = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(st.KeyRef)))
	return nil
}

// expectBooked computes, independently of any store, the lines booked in
// period with adjusts: rides of the period itself sent before it closed
// (adjusts "") or rides of the period adjusts sent after that closed and
// booked into period.
func expectBooked(before, after []tap.Tap, loc *time.Location, period, adjusts string) []store.Line {
	var lines []store.Line
	if adjusts == "" {
		lines = expectLines(before, loc, period, "")
	} else {
		lines = expectLines(after, loc, adjusts, "")
	}
	for i := range lines {
		lines[i].Adjusts = adjusts
	}
	return lines
}

func statements(t *testing.T, s store.Store, period string) []store.Statement {
	t.Helper()
	sts, err := s.Statements(ctxFor(t), period)
	if err != nil {
		t.Fatalf("Statements(%s): %v", period, err)
	}
	return sts
}

func closePeriod(t *testing.T, s store.Store, period string, at time.Time) []store.Statement {
	t.Helper()
	sts, err := s.CloseStatements(ctxFor(t), period, at, seal)
	if err != nil {
		t.Fatalf("CloseStatements(%s): %v", period, err)
	}
	return sts
}

func sameStatements(t *testing.T, what string, got, want []store.Statement) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d statements, want %d:\n got %+v\nwant %+v", what, len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Period != w.Period || g.Adjusts != w.Adjusts || g.Closed != w.Closed || !g.ClosedAt.Equal(w.ClosedAt) ||
			!bytes.Equal(g.Hash, w.Hash) || !bytes.Equal(g.Signature, w.Signature) || g.KeyRef != w.KeyRef ||
			g.ClosedBy != w.ClosedBy || g.Form != w.Form || g.KeyFingerprint != w.KeyFingerprint || !bytes.Equal(g.PartSeed, w.PartSeed) ||
			!slices.Equal(g.Lines, w.Lines) {
			t.Errorf("%s: statement %d:\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}

func checkStatement(t *testing.T, st store.Statement, period, adjusts string, closed bool, want []store.Line) {
	t.Helper()
	if st.Period != period || st.Adjusts != adjusts || st.Closed != closed {
		t.Errorf("statement %s/%q closed=%v, want %s/%q closed=%v", st.Period, st.Adjusts, st.Closed, period, adjusts, closed)
	}
	if !slices.Equal(st.Lines, want) {
		t.Errorf("statement %s/%q lines:\n got %s\nwant %s", period, adjusts, fmtLines(st.Lines), fmtLines(want))
	}
}

func checkTapLines(t *testing.T, s store.Store, period, adjusts string, want []store.Line) {
	t.Helper()
	got, err := s.TapLines(ctxFor(t), period, adjusts)
	if err != nil {
		t.Fatalf("TapLines(%s, %q): %v", period, adjusts, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("TapLines(%s, %q):\n got %s\nwant %s", period, adjusts, fmtLines(got), fmtLines(want))
	}
}

// testCloseAndLateTaps is the life of a period: drafts, close, late rides
// into the next open period's adjustment statement, and a closed
// statement that nothing changes.
func testCloseAndLateTaps(t *testing.T, open Open) {
	loc := Options(t).Location
	r := rand.New(rand.NewPCG(11, 2026))
	all := provenTaps(r, 900, loc)
	// Every third tap of each device comes late, after November closes;
	// the rest on time.
	var onTime, late []tap.Tap
	for i, tp := range all {
		if i%3 == 0 {
			late = append(late, tp)
		} else {
			onTime = append(onTime, tp)
		}
	}
	s, closeNow := openStore(t, open)
	if cs, err := s.Carriers(ctxFor(t)); err != nil || len(cs) != 0 {
		t.Errorf("Carriers of an empty store = %q, %v", cs, err)
	}
	proven(t, s, all)
	addTaps(t, s, onTime, len(onTime), 0)
	var wantCarriers []string
	for _, tp := range onTime {
		if store.Compensable(&tp) && !slices.Contains(wantCarriers, tp.Carrier) {
			wantCarriers = append(wantCarriers, tp.Carrier)
		}
	}
	slices.Sort(wantCarriers)
	if cs, err := s.Carriers(ctxFor(t)); err != nil || !slices.Equal(cs, wantCarriers) {
		t.Errorf("Carriers = %q, %v; want %q", cs, err, wantCarriers)
	}

	// Drafts: every period has its own statement, lines or not.
	drafts := statements(t, s, "2026-11")
	if len(drafts) != 1 {
		t.Fatalf("drafts of 2026-11: %d statements, want 1", len(drafts))
	}
	checkStatement(t, drafts[0], "2026-11", "", false, expectBooked(onTime, nil, loc, "2026-11", ""))
	if d := statements(t, s, "2031-02"); len(d) != 1 || d[0].Closed || len(d[0].Lines) != 0 {
		t.Errorf("drafts of an empty period: %+v, want one open statement without lines", d)
	}
	if _, err := s.Statements(ctxFor(t), "2026-13"); err == nil {
		t.Errorf("Statements(2026-13): want an error")
	}

	closedAt := time.Date(2026, 12, 5, 10, 0, 0, 123_456_789, time.UTC)
	closed := closePeriod(t, s, "2026-11", closedAt)
	if len(closed) != 1 || !closed[0].Closed || !closed[0].ClosedAt.Equal(closedAt.Truncate(time.Microsecond)) || len(closed[0].Hash) == 0 {
		t.Fatalf("CloseStatements returned %+v", closed)
	}
	checkStatement(t, closed[0], "2026-11", "", true, drafts[0].Lines)
	sameStatements(t, "November as closed", statements(t, s, "2026-11"), closed)
	if ps, err := s.ClosedPeriods(ctxFor(t)); err != nil || !slices.Equal(ps, []string{"2026-11"}) {
		t.Errorf("ClosedPeriods = %v, %v; want [2026-11]", ps, err)
	}
	if _, err := s.CloseStatements(ctxFor(t), "2026-11", closedAt.Add(time.Hour), seal); !errors.Is(err, store.ErrPeriodClosed) {
		t.Errorf("closing November again: %v, want ErrPeriodClosed", err)
	}

	// The late taps arrive. November's statement does not move; its late
	// rides are December's adjustment of November.
	addTaps(t, s, late, len(late), 0)
	addTaps(t, s, late, 0, len(late)) // and once more, re-delivered
	sameStatements(t, "November after late taps", statements(t, s, "2026-11"), closed)
	checkLines(t, s, store.Query{Period: "2026-11"}, closed[0].Lines)
	checkTapLines(t, s, "2026-11", "", closed[0].Lines)
	dec := statements(t, s, "2026-12")
	if len(dec) != 2 {
		t.Fatalf("December: %d statements, want its own and the adjustment of November", len(dec))
	}
	checkStatement(t, dec[0], "2026-12", "", false, expectBooked(all, nil, loc, "2026-12", ""))
	adjNov := expectBooked(onTime, late, loc, "2026-12", "2026-11")
	if len(adjNov) == 0 {
		t.Fatal("the generator made no late compensable November rides")
	}
	checkStatement(t, dec[1], "2026-12", "2026-11", false, adjNov)
	checkTapLines(t, s, "2026-12", "2026-11", adjNov)
	checkLines(t, s, store.Query{Period: "2026-12"}, append(slices.Clone(dec[0].Lines), adjNov...))
	// October is open: its late rides are its own.
	checkLines(t, s, store.Query{Period: "2026-10"}, expectLines(all, loc, "2026-10", ""))

	// Totals: closed November and its adjustment hold every November
	// ride exactly once.
	var nov store.Line
	for _, l := range concatLines(closed[0].Lines, adjNov) {
		nov.Add(l)
	}
	var want store.Line
	for _, l := range expectLines(all, loc, "2026-11", "") {
		want.Add(l)
	}
	if nov != want {
		t.Errorf("November closed + adjustment = %+v, all November rides = %+v", nov, want)
	}

	// Closing December closes its adjustment of November too; November's
	// rides arriving after that are January's.
	decClosed := closePeriod(t, s, "2026-12", closedAt.AddDate(0, 1, 0))
	if len(decClosed) != 2 || decClosed[1].Adjusts != "2026-11" {
		t.Fatalf("closing December gave %+v", decClosed)
	}
	later := ride("LATE-1", 1, time.Date(2026, 11, 20, 12, 0, 0, 0, loc))
	proven(t, s, []tap.Tap{later})
	addTaps(t, s, []tap.Tap{later}, 1, 0)
	sameStatements(t, "December after a later November ride", statements(t, s, "2026-12"), decClosed)
	jan := statements(t, s, "2027-01")
	if len(jan) != 2 || jan[1].Adjusts != "2026-11" || len(jan[1].Lines) != 1 || jan[1].Lines[0].Rides != 1 {
		t.Fatalf("January: %+v; want its own and an adjustment of November with the one ride", jan)
	}

	// A period without rides closes too, with no lines.
	empty := closePeriod(t, s, "2027-03", closedAt.AddDate(0, 4, 0))
	if len(empty) != 1 || len(empty[0].Lines) != 0 || len(empty[0].Hash) == 0 {
		t.Errorf("closing an empty period: %+v", empty)
	}

	// Everything survives a restart.
	closeNow()
	s, _ = openStore(t, open)
	sameStatements(t, "November after restart", statements(t, s, "2026-11"), closed)
	sameStatements(t, "December after restart", statements(t, s, "2026-12"), decClosed)
	addTaps(t, s, late, 0, len(late))
	if ps, err := s.ClosedPeriods(ctxFor(t)); err != nil || !slices.Equal(ps, []string{"2026-11", "2026-12", "2027-03"}) {
		t.Errorf("ClosedPeriods after restart = %v, %v", ps, err)
	}
}

func concatLines(parts ...[]store.Line) []store.Line { return slices.Concat(parts...) }

// testCloseWhileIngesting closes November while uploaders store November
// taps: each ride ends up in exactly one of the closed statement and the
// adjustment, whichever side of the close its transaction fell.
func testCloseWhileIngesting(t *testing.T, open Open) {
	loc := Options(t).Location
	s, _ := openStore(t, open)
	base := time.Date(2026, 11, 10, 8, 0, 0, 0, loc)
	const workers, batches, size = 3, 30, 20
	var wg sync.WaitGroup
	var all []tap.Tap
	for w := range workers {
		dev := fmt.Sprintf("C-%d", w)
		var mine []tap.Tap
		for b := range batches {
			mine = append(mine, seqRange(dev, uint64(b*size+1), uint64(b*size+size), base)...)
		}
		all = append(all, mine...)
	}
	proven(t, s, all)
	for w := range workers {
		mine := all[w*batches*size : (w+1)*batches*size]
		wg.Go(func() {
			for b := range batches {
				if _, _, err := s.AddTaps(ctxFor(t), mine[b*size:(b+1)*size]); err != nil {
					t.Errorf("AddTaps: %v", err)
					return
				}
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	closed := closePeriod(t, s, "2026-11", time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	wg.Wait()
	if t.Failed() {
		return
	}
	dec := statements(t, s, "2026-12")
	var got store.Line
	for _, l := range closed[0].Lines {
		got.Add(l)
	}
	if len(dec) > 1 {
		for _, l := range dec[1].Lines {
			got.Add(l)
		}
	}
	want := store.Line{Rides: int64(len(all)), FareKop: 1500 * int64(len(all)), CompensationKop: 1500 * int64(len(all))}
	if got != want {
		t.Errorf("closed %+v + adjustment = %+v, want %+v", closed[0].Total(), got, want)
	}
	checkTapLines(t, s, "2026-11", "", closed[0].Lines)
	t.Logf("%d of %d rides before the close", closed[0].Total().Rides, len(all))
}

// testRouteAndDay checks the roll-up split by route and day against the
// taps, per carrier too.
func testRouteAndDay(t *testing.T, open Open) {
	loc := Options(t).Location
	r := rand.New(rand.NewPCG(5, 8))
	taps := randomTaps(r, 500, loc)
	routes := []string{"1", "12", "12A", "Т7"}
	for i := range taps {
		taps[i].Route = routes[r.IntN(len(routes))]
	}
	s, _ := openStore(t, open)
	addTaps(t, s, taps, len(taps), 0)
	for _, period := range []string{"2026-10", "2026-11", "2026-12"} {
		for _, carrier := range []string{"", "ATP-1", "ТОВ Маршрут"} {
			for _, by := range []struct{ route, day bool }{{true, false}, {false, true}, {true, true}} {
				q := store.Query{Period: period, Carrier: carrier, ByRoute: by.route, ByDay: by.day}
				checkLines(t, s, q, expectDetail(taps, loc, q))
			}
		}
	}
}

// expectDetail computes lines split by route and/or day from taps.
func expectDetail(taps []tap.Tap, loc *time.Location, q store.Query) []store.Line {
	sums := map[store.Line]*store.Line{}
	for _, t := range taps {
		if !store.Compensable(&t) || t.Period(loc) != q.Period || q.Carrier != "" && t.Carrier != q.Carrier {
			continue
		}
		k := store.Line{Carrier: t.Carrier, Category: t.Category, Funding: t.Funding}
		if q.ByRoute {
			k.Route = t.Route
		}
		if q.ByDay {
			k.Day = t.Time.In(loc).Format("2006-01-02")
		}
		l := sums[k]
		if l == nil {
			l = new(store.Line)
			*l = k
			sums[k] = l
		}
		l.Add(store.Line{Rides: 1, FareKop: t.FareKop, ChargedKop: t.ChargedKop, CompensationKop: t.CompensationKop})
	}
	var out []store.Line
	for _, l := range sums {
		out = append(out, *l)
	}
	slices.SortFunc(out, store.CompareLines)
	return out
}
