package recon_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/validator/tap"
)

var (
	base = time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC)
	now  = time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC)
)

// taps returns taps seqs of device "V", a minute apart by sequence.
func taps(seqs ...uint64) []tap.Tap {
	out := make([]tap.Tap, len(seqs))
	for i, s := range seqs {
		out[i] = tap.Tap{Device: "V", Seq: s, Time: base.Add(time.Duration(s) * time.Minute), Result: tap.Accepted}
	}
	return out
}

func span(lo, hi uint64) []uint64 {
	var out []uint64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

// device is a store of one device's sequence in memory, applying Steps
// as the real stores do.
type device struct {
	state  recon.Device
	gaps   []recon.Gap // open and closed
	stored map[uint64]bool
}

func newDevice() *device { return &device{state: recon.Device{Name: "V"}, stored: map[uint64]bool{}} }

func (d *device) open() []recon.Gap {
	var out []recon.Gap
	for _, g := range d.gaps {
		if g.IsOpen() {
			out = append(out, g)
		}
	}
	return out
}

func (d *device) add(t *testing.T, in []tap.Tap) recon.Step {
	t.Helper()
	st := recon.Advance(d.state, d.open(), in, now, recon.Limits{}, time.UTC)
	for _, i := range st.New {
		if d.stored[in[i].Seq] {
			t.Fatalf("tap %d is stored already but Advance calls it new", in[i].Seq)
		}
		d.stored[in[i].Seq] = true
	}
	for _, r := range st.Removed {
		k := slices.IndexFunc(d.gaps, func(g recon.Gap) bool { return g.First == r.First && g.IsOpen() })
		if k < 0 {
			t.Fatalf("Advance removes gap %d-%d, which is not open", r.First, r.Last)
		}
		d.gaps = slices.Delete(d.gaps, k, k+1)
	}
	d.gaps = append(d.gaps, st.Added...)
	d.state = st.Device
	return st
}

func ranges(gs []recon.Gap, open bool) string {
	var parts []string
	for _, g := range gs {
		if g.IsOpen() == open {
			parts = append(parts, fmt.Sprintf("%d-%d", g.First, g.Last))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func TestAdvance(t *testing.T) {
	d := newDevice()
	steps := []struct {
		name             string
		in               []uint64
		added, dup       int
		open, closed     string
		maxSeq           uint64
		backwardsAnomaly int
	}{
		{"first batch", span(1, 5), 5, 0, "", "", 5, 0},
		{"same again", span(1, 5), 0, 5, "", "", 5, 0},
		{"skips 6-7 and 10", []uint64{8, 9, 11}, 3, 0, "10-10,6-7", "", 11, 0},
		{"repeat inside one batch", []uint64{12, 12, 13, 12}, 2, 2, "10-10,6-7", "", 13, 0},
		{"late 7 closes part of 6-7", []uint64{7}, 1, 0, "10-10,6-6", "7-7", 13, 0},
		{"stored and missing mixed", []uint64{3, 6, 10, 13}, 2, 2, "", "10-10,6-6,7-7", 13, 0},
		{"a stored number below the top is a repeat", []uint64{9}, 0, 1, "", "10-10,6-6,7-7", 13, 0},
	}
	for _, s := range steps {
		st := d.add(t, taps(s.in...))
		if len(st.New) != s.added || st.Duplicates != s.dup {
			t.Errorf("%s: %d new, %d repeats; want %d, %d", s.name, len(st.New), st.Duplicates, s.added, s.dup)
		}
		if got := ranges(d.gaps, true); got != s.open {
			t.Errorf("%s: open gaps %q, want %q", s.name, got, s.open)
		}
		if got := ranges(d.gaps, false); got != s.closed {
			t.Errorf("%s: closed gaps %q, want %q", s.name, got, s.closed)
		}
		if d.state.MaxSeq != s.maxSeq {
			t.Errorf("%s: max seq %d, want %d", s.name, d.state.MaxSeq, s.maxSeq)
		}
		if len(st.Anomalies) != 0 {
			t.Errorf("%s: anomalies %+v in a clean sequence", s.name, st.Anomalies)
		}
	}
	// The gap 6-7 was found by tap 8 and keeps that month and time.
	for _, g := range d.gaps {
		if g.Opened != now || g.Period != "2026-11" {
			t.Errorf("gap %+v: want opened %v in 2026-11", g, now)
		}
	}
}

func TestAdvanceFirstTapNotOne(t *testing.T) {
	d := newDevice()
	d.add(t, taps(4, 5))
	if got := ranges(d.gaps, true); got != "1-3" {
		t.Fatalf("a device first seen at 4 has open gaps %q, want 1-3", got)
	}
}

func TestAdvanceTimeBackwards(t *testing.T) {
	d := newDevice()
	d.add(t, taps(1, 2, 3))
	in := taps(4, 5, 6)
	in[0].Time = base.Add(2*time.Minute + 50*time.Second) // 10 s before tap 3: beyond the 5 s allowed
	in[2].Time = in[1].Time.Add(-3 * time.Second)         // within the allowance
	st := d.add(t, in)
	if len(st.Anomalies) != 1 || st.Anomalies[0].Seq != 4 || st.Anomalies[0].Kind != recon.TimeBackwards {
		t.Fatalf("anomalies %+v, want one time-backwards at tap 4", st.Anomalies)
	}
	if !strings.Contains(st.Anomalies[0].Detail, "10s earlier than tap 3") {
		t.Errorf("detail %q does not say by how much", st.Anomalies[0].Detail)
	}
	// Filling a gap compares with the neighbour in the same batch only.
	d.add(t, taps(10))
	late := taps(8, 9)
	late[1].Time = late[0].Time.Add(-time.Hour)
	st = d.add(t, late)
	if len(st.Anomalies) != 1 || st.Anomalies[0].Seq != 9 {
		t.Fatalf("anomalies %+v, want one at tap 9", st.Anomalies)
	}
}

// TestAdvanceAnyOrder delivers a device's taps in random overlapping
// chunks, as re-sending uploaders and rebalances do: every tap is new
// exactly once, and at the end no gap is open and the closed gaps are
// exactly the numbers that came late.
func TestAdvanceAnyOrder(t *testing.T) {
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 99))
		const n = 200
		d := newDevice()
		news := 0
		var sent int
		for sent < 3*n {
			lo := 1 + r.Uint64N(n)
			hi := min(n, lo+r.Uint64N(30))
			chunk := taps(span(lo, hi)...)
			r.Shuffle(len(chunk), func(a, b int) { chunk[a], chunk[b] = chunk[b], chunk[a] })
			news += len(d.add(t, chunk).New)
			sent += len(chunk)
		}
		d.add(t, taps(span(1, n)...)) // whatever is left
		for s := uint64(1); s <= n; s++ {
			if !d.stored[s] {
				t.Fatalf("seed %d: tap %d never stored", seed, s)
			}
		}
		if open := d.open(); len(open) != 0 {
			t.Fatalf("seed %d: open gaps %s after every tap came", seed, ranges(open, true))
		}
		// Gaps never overlap.
		covered := map[uint64]bool{}
		for _, g := range d.gaps {
			for s := g.First; s <= g.Last; s++ {
				if covered[s] {
					t.Fatalf("seed %d: %d in two gaps: %+v", seed, s, d.gaps)
				}
				covered[s] = true
			}
		}
		if d.state.MaxSeq != n {
			t.Fatalf("seed %d: max %d", seed, d.state.MaxSeq)
		}
	}
}

func TestBatchClock(t *testing.T) {
	created := base.Add(time.Hour)
	b := &tap.Batch{Device: "V", Created: created, Taps: taps(1, 2, 3)}
	b.Taps[0].Time = created.Add(-8 * 24 * time.Hour) // offline for 8 days
	b.Taps[1].Time = created.Add(-30 * time.Minute)   // fine
	b.Taps[2].Time = created.Add(90 * time.Second)    // after the seal
	got := recon.BatchClock(b, created.Add(-10*time.Minute), recon.Limits{}, time.UTC)
	var kinds []string
	for _, a := range got {
		kinds = append(kinds, fmt.Sprintf("%s@%d", a.Kind, a.Seq))
	}
	want := []string{"tap-long-before-seal@1", "batch-sealed-ahead@1", "tap-after-seal@3"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("anomalies %v, want %v", kinds, want)
	}
	if got := recon.BatchClock(b, created, recon.Limits{MaxBeforeBatch: 9 * 24 * time.Hour, MaxAfterBatch: 2 * time.Minute}, time.UTC); len(got) != 0 {
		t.Fatalf("within wider limits: %+v", got)
	}
	// A tap the validator decided as a clock anomaly: before the card's
	// previous ride.
	b.Taps[1].ClockAnomaly = true
	b.Taps[1].Prev = tap.CardRide{Device: 7, Seq: 41, Time: b.Taps[1].Time.Add(3 * time.Minute), Product: "purse"}
	got = recon.BatchClock(b, created, recon.Limits{MaxBeforeBatch: 9 * 24 * time.Hour, MaxAfterBatch: 2 * time.Minute}, time.UTC)
	if len(got) != 1 || got[0].Kind != recon.BeforePreviousRide || got[0].Seq != 2 ||
		!strings.Contains(got[0].Detail, "3m0s before the card's previous ride (device 7, sequence 41") {
		t.Fatalf("clock anomaly: %+v", got)
	}
}

// Positions in microdegrees.
var (
	maidan   = [2]int32{50450100, 30523400}
	boryspil = [2]int32{50345000, 30894700} // the airport, about 29 km away
	nearby   = [2]int32{50451000, 30525000} // 150 m from maidan
)

func sight(dev, vehicle string, at time.Time, pos [2]int32) recon.Sighting {
	return recon.Sighting{Device: dev, Seq: 1, Vehicle: vehicle, Time: at, Lat: pos[0], Lon: pos[1]}
}

func TestDistance(t *testing.T) {
	km := recon.DistanceKm(maidan[0], maidan[1], boryspil[0], boryspil[1])
	if km < 28 || km > 30 {
		t.Fatalf("Maidan to Boryspil %.2f km, want about 29", km)
	}
	// One degree of latitude is about 111.2 km everywhere.
	if d := recon.DistanceKm(0, 30_000_000, 1_000_000, 30_000_000); math.Abs(d-111.2) > 0.1 {
		t.Fatalf("one degree of latitude: %.3f km", d)
	}
}

func TestClone(t *testing.T) {
	tests := []struct {
		name    string
		a, b    recon.Sighting
		suspect bool
	}{
		{"29 km in 10 min", sight("A", "bus-1", base, maidan), sight("B", "bus-2", base.Add(10*time.Minute), boryspil), true},
		{"29 km in 20 min, either order", sight("B", "bus-2", base.Add(20*time.Minute), boryspil), sight("A", "bus-1", base, maidan), false},
		{"29 km in 14 min", sight("A", "bus-1", base, maidan), sight("B", "bus-2", base.Add(14*time.Minute), boryspil), true},
		{"same instant far apart", sight("A", "bus-1", base, maidan), sight("B", "bus-2", base, boryspil), true},
		{"same vehicle", sight("A", "bus-1", base, maidan), sight("B", "bus-1", base.Add(time.Minute), boryspil), false},
		{"unknown position", sight("A", "bus-1", base, maidan), sight("B", "bus-2", base.Add(time.Minute), [2]int32{0, 0}), false},
		{"next vehicle at the same stop", sight("A", "bus-1", base, maidan), sight("B", "bus-2", base.Add(5*time.Second), nearby), false},
		{"beyond the window", sight("A", "bus-1", base, maidan), sight("B", "bus-2", base.Add(2*time.Hour), [2]int32{52000000, 30523400}), false},
	}
	for _, tt := range tests {
		kmh, suspect := recon.Clone(tt.a, tt.b, recon.Limits{})
		if suspect != tt.suspect {
			t.Errorf("%s: suspect %v at %.0f km/h, want %v", tt.name, suspect, kmh, tt.suspect)
		}
	}
	a := recon.CloneAnomaly(77, sight("B", "bus-2", base, boryspil), sight("A", "bus-1", base, maidan), math.Inf(1), time.UTC)
	if a.Device != "A" || a.OtherDevice != "B" || !strings.Contains(a.Detail, "same instant") {
		t.Errorf("CloneAnomaly = %+v; want the lesser device first and the speed in words", a)
	}
}
