// Package storetest is the contract every clearing store passes: taps are
// stored once per (device, sequence) however often they arrive, the
// compensation roll-up equals the sum over the compensable taps exactly
// (by route and day too), months are cut in the city's time zone, a
// closed statement never changes and late rides land in an adjustment,
// gaps open and close, anomalies are found, and everything survives a
// restart. Each implementation's tests call Run.
package storetest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Kyiv without the system's tzdata

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/tap"
)

// Zone is the city time zone the suite assumes; open must give stores
// made with Options(t).
const Zone = "Europe/Kyiv"

// Options returns the store options the suite's stores must be opened
// with.
func Options(t testing.TB) store.Options {
	t.Helper()
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		t.Fatalf("load %s: %v", Zone, err)
	}
	return store.Options{Location: loc, CardMACKeys: MACKeys{}}
}

// MACKeys are the suite's cards' Transaction MAC keys (Options'
// CardMACKeys): each card's key is derived from its UID; only key
// version 1 exists.
type MACKeys struct{}

// CardMACKey implements store.CardMACKeys.
func (MACKeys) CardMACKey(_ context.Context, uid []byte, version uint8) ([16]byte, error) {
	if version != 1 {
		return [16]byte{}, fmt.Errorf("tmac-master version %d: %w", version, hsm.ErrNotFound)
	}
	h := sha256.Sum256(append([]byte("storetest tmac\x00"), uid...))
	return [16]byte(h[:16]), nil
}

// Open returns a store for t, opened with Options(t). The first call in a
// test must return an empty store of that test's own; a later call in the
// same test, made after the store it returned before was closed, must open
// the same data again, as a restarted process would. The suite closes
// every store it opens.
type Open func(t *testing.T) store.Store

// Run runs the contract suite against the implementation behind open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, open) })
	t.Run("RandomTotals", func(t *testing.T) { testRandomTotals(t, open) })
	t.Run("OnlyCompensable", func(t *testing.T) { testOnlyCompensable(t, open) })
	t.Run("MonthInCityZone", func(t *testing.T) { testMonthInCityZone(t, open) })
	t.Run("CarrierFilter", func(t *testing.T) { testCarrierFilter(t, open) })
	t.Run("BadPeriod", func(t *testing.T) { testBadPeriod(t, open) })
	t.Run("InvalidTapStoresNothing", func(t *testing.T) { testInvalidTap(t, open) })
	t.Run("TapsRoundTrip", func(t *testing.T) { testTapsRoundTrip(t, open) })
	t.Run("Quarantine", func(t *testing.T) { testQuarantine(t, open) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, open) })
	t.Run("RouteAndDay", func(t *testing.T) { testRouteAndDay(t, open) })
	t.Run("CloseAndLateTaps", func(t *testing.T) { testCloseAndLateTaps(t, open) })
	t.Run("CloseWhileIngesting", func(t *testing.T) { testCloseWhileIngesting(t, open) })
	t.Run("Gaps", func(t *testing.T) { testGaps(t, open) })
	t.Run("Anomalies", func(t *testing.T) { testAnomalies(t, open) })
	t.Run("CloneChecks", func(t *testing.T) { testCloneChecks(t, open) })
	t.Run("CloneChecksConcurrent", func(t *testing.T) { testCloneChecksConcurrent(t, open) })
	t.Run("Hotlist", func(t *testing.T) { testHotlist(t, open) })
	t.Run("CardTaps", func(t *testing.T) { testCardTaps(t, open) })
	t.Run("Proof", func(t *testing.T) { runProof(t, open) })
}

// Timeout bounds each test's store calls.
const Timeout = 2 * time.Minute

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens a store and makes sure it is closed; closeNow closes it
// early (once).
func openStore(t *testing.T, open Open) (s store.Store, closeNow func()) {
	t.Helper()
	s = open(t)
	var once sync.Once
	closeNow = func() {
		once.Do(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
	}
	t.Cleanup(closeNow)
	return s, closeNow
}

// ride returns a compensable tap: a pensioner's (category 11) free ride
// paid by the city, recorded on the card, as the suite's tariff prices it.
func ride(device string, seq uint64, at time.Time) tap.Tap {
	return tap.Tap{
		Device: device, Seq: seq, Time: at.UTC(), Card: 1000 + seq,
		Carrier: "ATP-1", Route: "12", Vehicle: "AA1234", Lat: 50450100, Lon: 30523400,
		Result: tap.Accepted, Reason: "ok", Product: "benefit", Category: "11", Funding: "city",
		FareKop: 1500, ChargedKop: 0, CompensationKop: 1500,
		TariffVersion: TariffVersion, HotlistVersion: 17, CardCommitted: true,
	}
}

// provenTaps makes n taps like randomTaps, but with claims the suite's
// tariff proves: each card holds one benefit (or none) and every benefit
// ride claims what the tariff owes for it.
func provenTaps(r *rand.Rand, n int, loc *time.Location) []tap.Tap {
	taps := randomTaps(r, n, loc)
	carriers := []string{"ATP-1", "ELEKTROTRANS"}
	categories := []string{"11", "31", "12", ""}
	for i := range taps {
		t := &taps[i]
		t.Card = 1 + r.Uint64N(400)
		t.Carrier = carriers[r.IntN(len(carriers))]
		t.Route = map[string]string{"ATP-1": "12", "ELEKTROTRANS": "T1"}[t.Carrier]
		t.Category = categories[t.Card%4]
		t.Product = "benefit"
		if t.Category == "" {
			t.Product = "purse"
		}
		t.FareKop, t.ChargedKop, t.CompensationKop, t.Funding = claim(t.Carrier, t.Category)
	}
	return taps
}

// seqRange returns rides n..m of device, a minute apart from base.
func seqRange(device string, n, m uint64, base time.Time) []tap.Tap {
	var out []tap.Tap
	for s := n; s <= m; s++ {
		out = append(out, ride(device, s, base.Add(time.Duration(s)*time.Minute)))
	}
	return out
}

func concat(parts ...[]tap.Tap) []tap.Tap { return slices.Concat(parts...) }

type key struct {
	device string
	seq    uint64
}

// expectLines computes, independently of any store, the lines of period
// (and of carrier unless "") over taps, counting each (device, seq) once,
// by its first copy.
func expectLines(taps []tap.Tap, loc *time.Location, period, carrier string) []store.Line {
	seen := make(map[key]bool)
	type group struct{ carrier, category, funding string }
	sums := make(map[group]*store.Line)
	for _, t := range taps {
		k := key{t.Device, t.Seq}
		if seen[k] {
			continue
		}
		seen[k] = true
		if t.Result != tap.Accepted || !t.CardCommitted || t.CompensationKop <= 0 {
			continue
		}
		if t.Time.In(loc).Format("2006-01") != period || (carrier != "" && t.Carrier != carrier) {
			continue
		}
		g := group{t.Carrier, t.Category, t.Funding}
		l := sums[g]
		if l == nil {
			l = &store.Line{Carrier: t.Carrier, Category: t.Category, Funding: t.Funding}
			sums[g] = l
		}
		l.Rides++
		l.FareKop += t.FareKop
		l.ChargedKop += t.ChargedKop
		l.CompensationKop += t.CompensationKop
	}
	var lines []store.Line
	for _, l := range sums {
		lines = append(lines, *l)
	}
	slices.SortFunc(lines, func(a, b store.Line) int {
		return cmp.Or(strings.Compare(a.Carrier, b.Carrier), strings.Compare(a.Category, b.Category), strings.Compare(a.Funding, b.Funding))
	})
	return lines
}

func unique(taps []tap.Tap) int {
	seen := make(map[key]bool)
	for _, t := range taps {
		seen[key{t.Device, t.Seq}] = true
	}
	return len(seen)
}

// checkLines compares a store's compensation with the expected lines.
func checkLines(t *testing.T, s store.Store, q store.Query, want []store.Line) {
	t.Helper()
	got, err := s.Compensation(ctxFor(t), q)
	if err != nil {
		t.Fatalf("Compensation(%+v): %v", q, err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Compensation(%+v):\n got %s\nwant %s", q, fmtLines(got), fmtLines(want))
	}
}

func fmtLines(ls []store.Line) string {
	if len(ls) == 0 {
		return "no lines"
	}
	var b strings.Builder
	for _, l := range ls {
		fmt.Fprintf(&b, "\n\t%+v", l)
	}
	return b.String()
}

func checkCount(t *testing.T, s store.Store, want int) {
	t.Helper()
	n, err := s.TapCount(ctxFor(t))
	if err != nil {
		t.Fatalf("TapCount: %v", err)
	}
	if n != int64(want) {
		t.Errorf("TapCount = %d, want %d", n, want)
	}
}

func addTaps(t *testing.T, s store.Store, taps []tap.Tap, wantAdded, wantDup int) {
	t.Helper()
	added, dup, err := s.AddTaps(ctxFor(t), taps)
	if err != nil {
		t.Fatalf("AddTaps(%d taps): %v", len(taps), err)
	}
	if added != wantAdded || dup != wantDup {
		t.Errorf("AddTaps(%d taps) = %d added, %d duplicates; want %d, %d", len(taps), added, dup, wantAdded, wantDup)
	}
}

func testIdempotent(t *testing.T, open Open) {
	base := time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC)
	a := seqRange("V-001", 1, 10, base)
	b := seqRange("V-002", 1, 5, base) // same sequence numbers, another device
	type call struct {
		taps            []tap.Tap
		added, repeated int
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{"empty batch", []call{{nil, 0, 0}}},
		{"same batch twice", []call{{a, 10, 0}, {a, 0, 10}}},
		{"overlapping batches", []call{{a[:6], 6, 0}, {a[4:], 4, 2}, {a[2:8], 0, 6}}},
		{"duplicates inside one call", []call{{concat(a[:3], a[1:3], a[:1]), 3, 3}, {a[:4], 1, 3}}},
		{"same seq on two devices", []call{{concat(a[:5], b), 10, 0}, {concat(b, a[:5]), 0, 10}}},
		{"repeat after new taps", []call{{a[:2], 2, 0}, {b, 5, 0}, {concat(a[:2], b[:1], a[2:3]), 1, 3}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t, open)
			var all []tap.Tap
			for _, c := range tt.calls {
				addTaps(t, s, c.taps, c.added, c.repeated)
				all = append(all, c.taps...)
			}
			checkCount(t, s, unique(all))
			loc := Options(t).Location
			checkLines(t, s, store.Query{Period: "2026-11"}, expectLines(all, loc, "2026-11", ""))
		})
	}
}

// randomTaps makes n taps over a few devices, carriers, categories and
// outcomes, spread over October to December 2026 with some right at the
// month boundaries in Kyiv.
func randomTaps(r *rand.Rand, n int, loc *time.Location) []tap.Tap {
	devices := []string{"V-001", "V-002", "V-003", "T-100", "M-7"}
	carriers := []string{"ATP-1", "Elektrotrans", "ТОВ Маршрут", "atp-1"}
	categories := []string{"pensioner", "veteran", "disability", "student", ""}
	fundings := []string{"city", "state"}
	results := []tap.Result{tap.Accepted, tap.Accepted, tap.Accepted, tap.Denied, tap.AlreadyPaid}
	boundaries := []time.Time{
		time.Date(2026, 11, 1, 0, 0, 0, 0, loc),
		time.Date(2026, 12, 1, 0, 0, 0, 0, loc),
	}
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, loc)
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, loc)
	next := make(map[string]uint64)
	out := make([]tap.Tap, 0, n)
	for range n {
		dev := devices[r.IntN(len(devices))]
		next[dev]++
		var at time.Time
		if r.IntN(5) == 0 {
			// Within a minute of a boundary, either side.
			at = boundaries[r.IntN(len(boundaries))].Add(time.Duration(r.IntN(120_000)-60_000) * time.Millisecond)
		} else {
			at = start.Add(time.Duration(r.Int64N(int64(end.Sub(start)/time.Millisecond))) * time.Millisecond)
		}
		t := ride(dev, next[dev], at)
		t.Card = r.Uint64()
		t.Carrier = carriers[r.IntN(len(carriers))]
		t.Category = categories[r.IntN(len(categories))]
		t.Funding = fundings[r.IntN(len(fundings))]
		t.Result = results[r.IntN(len(results))]
		t.CardCommitted = r.IntN(8) != 0
		t.FareKop = int64(800 + r.IntN(1200))
		switch r.IntN(3) {
		case 0: // no benefit: paid from the purse
			t.Product, t.Category, t.Funding = "purse", "", ""
			t.ChargedKop, t.CompensationKop = t.FareKop, 0
		case 1: // discount: half from the purse, half compensated
			t.ChargedKop = t.FareKop / 2
			t.CompensationKop = t.FareKop - t.ChargedKop
		default: // free ride
			t.ChargedKop, t.CompensationKop = 0, t.FareKop
		}
		out = append(out, t)
	}
	return out
}

func testRandomTotals(t *testing.T, open Open) {
	loc := Options(t).Location
	r := rand.New(rand.NewPCG(20261130, 2230))
	taps := randomTaps(r, 600, loc)
	s, _ := openStore(t, open)

	// Deliver in chunks of random size, re-sending earlier chunks,
	// overlapping ranges and copies inside a chunk, as a flaky uplink and
	// a crash-restarted uploader would.
	seen := make(map[key]bool)
	var sent []tap.Tap
	for i := 0; i < len(taps); {
		n := 1 + r.IntN(60)
		lo := max(0, i-r.IntN(10)) // overlap the previous chunk
		hi := min(len(taps), i+n)
		chunk := slices.Clone(taps[lo:hi])
		if r.IntN(4) == 0 {
			chunk = append(chunk, chunk[r.IntN(len(chunk))])
		}
		r.Shuffle(len(chunk), func(a, b int) { chunk[a], chunk[b] = chunk[b], chunk[a] })
		wantAdded := 0
		for _, c := range chunk {
			if k := (key{c.Device, c.Seq}); !seen[k] {
				seen[k] = true
				wantAdded++
			}
		}
		addTaps(t, s, chunk, wantAdded, len(chunk)-wantAdded)
		if r.IntN(5) == 0 { // the whole chunk again, acknowledged late
			addTaps(t, s, chunk, 0, len(chunk))
		}
		sent = append(sent, chunk...)
		i = hi
	}
	checkCount(t, s, len(taps))

	compensable := 0
	for _, period := range []string{"2026-09", "2026-10", "2026-11", "2026-12", "2027-01"} {
		checkLines(t, s, store.Query{Period: period}, expectLines(taps, loc, period, ""))
		for _, c := range []string{"ATP-1", "Elektrotrans", "ТОВ Маршрут", "atp-1", "nobody"} {
			checkLines(t, s, store.Query{Period: period, Carrier: c}, expectLines(taps, loc, period, c))
		}
		for _, l := range expectLines(taps, loc, period, "") {
			compensable += int(l.Rides)
		}
	}
	// Guard the generator: the check above means little without rides.
	if compensable < 100 {
		t.Fatalf("generator made only %d compensable rides", compensable)
	}
}

func testOnlyCompensable(t *testing.T, open Open) {
	at := time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(*tap.Tap)
		counts bool
	}{
		{"accepted, committed, compensated", func(*tap.Tap) {}, true},
		{"denied", func(t *tap.Tap) { t.Result = tap.Denied }, false},
		{"already paid", func(t *tap.Tap) { t.Result = tap.AlreadyPaid }, false},
		{"card torn away before commit", func(t *tap.Tap) { t.CardCommitted = false }, false},
		{"no compensation", func(t *tap.Tap) { t.CompensationKop = 0 }, false},
		{"paid from purse", func(t *tap.Tap) {
			t.Product, t.Category, t.Funding, t.ChargedKop, t.CompensationKop = "purse", "", "", t.FareKop, 0
		}, false},
		{"one kopiyka", func(t *tap.Tap) { t.CompensationKop = 1 }, true},
		{"discount", func(t *tap.Tap) { t.ChargedKop, t.CompensationKop = 750, 750 }, true},
	}
	s, _ := openStore(t, open)
	var all []tap.Tap
	for i, tt := range tests {
		// A carrier per case keeps the cases apart in one store.
		tp := ride("V-001", uint64(i+1), at)
		tp.Carrier = fmt.Sprintf("case-%02d", i)
		tt.change(&tp)
		all = append(all, tp)
	}
	addTaps(t, s, all, len(all), 0)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []store.Line
			if tt.counts {
				tp := all[i]
				want = []store.Line{{Carrier: tp.Carrier, Category: tp.Category, Funding: tp.Funding,
					Rides: 1, FareKop: tp.FareKop, ChargedKop: tp.ChargedKop, CompensationKop: tp.CompensationKop}}
			}
			checkLines(t, s, store.Query{Period: "2026-11", Carrier: all[i].Carrier}, want)
		})
	}
}

func testMonthInCityZone(t *testing.T, open Open) {
	tests := []struct {
		utc  string
		want string
	}{
		{"2026-11-30T22:30:00Z", "2026-12"}, // 00:30 on 1 December in Kyiv (UTC+2)
		{"2026-11-30T21:59:59.999Z", "2026-11"},
		{"2026-11-30T22:00:00Z", "2026-12"},
		{"2026-10-31T21:30:00Z", "2026-10"}, // after the end of summer time: UTC+2
		{"2026-10-31T22:00:00Z", "2026-11"},
		{"2026-12-31T22:00:00Z", "2027-01"},
	}
	s, _ := openStore(t, open)
	var all []tap.Tap
	for i, tt := range tests {
		at, err := time.Parse(time.RFC3339Nano, tt.utc)
		if err != nil {
			t.Fatal(err)
		}
		tp := ride("V-001", uint64(i+1), at)
		tp.Carrier = fmt.Sprintf("case-%02d", i)
		all = append(all, tp)
	}
	addTaps(t, s, all, len(all), 0)
	for i, tt := range tests {
		t.Run(tt.utc, func(t *testing.T) {
			tp := all[i]
			want := []store.Line{{Carrier: tp.Carrier, Category: tp.Category, Funding: tp.Funding,
				Rides: 1, FareKop: tp.FareKop, ChargedKop: tp.ChargedKop, CompensationKop: tp.CompensationKop}}
			checkLines(t, s, store.Query{Period: tt.want, Carrier: tp.Carrier}, want)
			// Nor is it counted in the UTC month, where it would fall
			// without the zone.
			if utc := tp.Time.UTC().Format("2006-01"); utc != tt.want {
				checkLines(t, s, store.Query{Period: utc, Carrier: tp.Carrier}, nil)
			}
		})
	}
}

func testCarrierFilter(t *testing.T, open Open) {
	loc := Options(t).Location
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	var all []tap.Tap
	for i, c := range []string{"B", "A", "C", "A", "B", "A"} {
		tp := ride("V-001", uint64(i+1), at.Add(time.Duration(i)*time.Minute))
		tp.Carrier = c
		if i >= 3 {
			tp.Category, tp.Funding = "veteran", "state"
		}
		all = append(all, tp)
	}
	s, _ := openStore(t, open)
	addTaps(t, s, all, len(all), 0)
	tests := []struct {
		carrier string
		lines   int
	}{{"", 5}, {"A", 2}, {"B", 2}, {"C", 1}, {"D", 0}, {"a", 0}}
	for _, tt := range tests {
		t.Run("carrier="+tt.carrier, func(t *testing.T) {
			want := expectLines(all, loc, "2026-11", tt.carrier)
			if len(want) != tt.lines {
				t.Fatalf("test expects %d lines, the data makes %d", tt.lines, len(want))
			}
			checkLines(t, s, store.Query{Period: "2026-11", Carrier: tt.carrier}, want)
		})
	}
}

func testBadPeriod(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	addTaps(t, s, []tap.Tap{ride("V-001", 1, time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC))}, 1, 0)
	for _, p := range []string{"", "2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-11-01", " 2026-11", "2026-11 ", "November"} {
		t.Run(fmt.Sprintf("%q", p), func(t *testing.T) {
			lines, err := s.Compensation(ctxFor(t), store.Query{Period: p})
			if err == nil {
				t.Fatalf("Compensation(period %q) = %v, want an error", p, lines)
			}
			if !strings.Contains(err.Error(), "YYYY-MM") {
				t.Errorf("error %q does not say what a period looks like", err)
			}
		})
	}
}

func testInvalidTap(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	good := seqRange("V-001", 1, 3, at)
	tests := []struct {
		name   string
		change func(*tap.Tap)
	}{
		{"sequence 0", func(t *tap.Tap) { t.Seq = 0 }},
		{"no device", func(t *tap.Tap) { t.Device = "" }},
		{"no time", func(t *tap.Tap) { t.Time = time.Time{} }},
		{"unknown result", func(t *tap.Tap) { t.Result = 0 }},
		{"sequence beyond int64", func(t *tap.Tap) { t.Seq = math.MaxInt64 + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := ride("V-001", 4, at)
			tt.change(&bad)
			batch := concat(good, []tap.Tap{bad})
			if added, dup, err := s.AddTaps(ctxFor(t), batch); err == nil {
				t.Fatalf("AddTaps with a bad tap = %d, %d, nil; want an error", added, dup)
			}
			checkCount(t, s, 0)
			checkLines(t, s, store.Query{Period: "2026-11"}, nil)
		})
	}
}

func testTapsRoundTrip(t *testing.T, open Open) {
	at := time.Date(2026, 11, 3, 9, 0, 0, 123_000_000, time.UTC)
	var all []tap.Tap
	for i := range 7 {
		tp := ride("V-001", uint64(i+1), at.Add(time.Duration(i)*1001*time.Millisecond))
		tp.Lat, tp.Lon = -int32(i)*1000-1, math.MaxInt32-int32(i)
		tp.Card = math.MaxUint64 - uint64(i) // above 2^63: must survive a signed column
		tp.HotlistVersion = 1<<63 + uint64(i)
		tp.TariffVersion = math.MaxUint32
		tp.Reason, tp.Route, tp.Vehicle = "ok", "T"+fmt.Sprint(i), "ВА 1234 АА"
		tp.CardCommitted = i%2 == 0
		tp.Result = []tap.Result{tap.Accepted, tap.Denied, tap.AlreadyPaid}[i%3]
		// What the card's log showed, and the marks, on some taps.
		tp.CommitUnknown = i == 3
		tp.ClockAnomaly, tp.BenefitRevoked, tp.Counted = i == 1, i == 5, i == 2
		if i%3 != 2 {
			tp.DeviceNumber = math.MaxUint32 - uint32(i)
		}
		if i >= 2 {
			tp.Prev = tap.CardRide{Device: 40 + uint32(i), Seq: math.MaxUint32 - uint32(i), Time: at.Add(-time.Hour).Truncate(time.Second),
				Carrier: 2, Route: 105, Product: "transfer", ChargedKop: 400}
		}
		if i == 4 || i == 6 { // an EV3's Transaction MAC (tag 3 of the evidence)
			tp.CardMAC = &tap.CardMAC{TMC: math.MaxUint32 - uint32(i), TMV: [8]byte{byte(i), 2, 3, 4, 5, 6, 7, 8},
				UID: []byte{4, 1, 2, 3, 4, 5, byte(i)}, KeyVersion: 255, Contract: bytes.Repeat([]byte{0xC0}, 44),
				DebitKop: 1500, Record: bytes.Repeat([]byte{byte(i)}, 34)}
			if i == 6 {
				tp.CardMAC.Prev = bytes.Repeat([]byte{0x5C}, 34)
			}
		}
		all = append(all, tp)
	}
	other := ride("V-002", 3, at)
	s, _ := openStore(t, open)
	// Out of order, with another device in between.
	addTaps(t, s, concat(all[4:], []tap.Tap{other}, all[:4]), len(all)+1, 0)

	ctx := ctxFor(t)
	got, err := s.Taps(ctx, "V-001", 0, 100)
	if err != nil {
		t.Fatalf("Taps: %v", err)
	}
	checkTaps(t, got, all)
	// Page by page.
	var paged []tap.Tap
	var after uint64
	for {
		page, err := s.Taps(ctx, "V-001", after, 3)
		if err != nil {
			t.Fatalf("Taps after %d: %v", after, err)
		}
		if len(page) > 3 {
			t.Fatalf("Taps(limit 3) returned %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		paged = append(paged, page...)
		after = page[len(page)-1].Seq
	}
	checkTaps(t, paged, all)
	if got, err := s.Taps(ctx, "V-002", 0, 10); err != nil {
		t.Errorf("Taps V-002: %v", err)
	} else {
		checkTaps(t, got, []tap.Tap{other})
	}
	if got, err := s.Taps(ctx, "V-404", 0, 10); err != nil || len(got) != 0 {
		t.Errorf("Taps of an unknown device = %v, %v; want none", got, err)
	}
	if _, err := s.Taps(ctx, "V-001", 0, 0); err == nil {
		t.Errorf("Taps with limit 0: want an error")
	}
}

func checkTaps(t *testing.T, got, want []tap.Tap) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d taps, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) || g.Time.Location() != time.UTC {
			t.Errorf("tap %d: time %v, want %v in UTC", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g.CardMAC, w.CardMAC) {
			t.Errorf("tap %d: card MAC\n got %+v\nwant %+v", i, g.CardMAC, w.CardMAC)
		}
		g.CardMAC, w.CardMAC = nil, nil
		if g != w {
			t.Errorf("tap %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func testQuarantine(t *testing.T, open Open) {
	t0 := time.Date(2026, 11, 3, 9, 0, 0, 123_456_789, time.UTC)
	kyiv := Options(t).Location
	in := []ingest.Rejected{
		{Device: "V-002", Reason: ingest.ReasonBadMAC, Detail: "batch MAC does not verify", Raw: []byte{'T', 'B', 1, 0, 0xff}, Received: t0.Add(2 * time.Second)},
		{Device: "", Reason: ingest.ReasonMalformed, Detail: "malformed tap batch: 2 bytes is too short", Raw: []byte{0x00, 0x01}, Received: t0},
		{Device: "V-003", Reason: ingest.ReasonFutureTap, Detail: "tap 5 at ... is more than 24h0m0s ahead", Raw: nil, Received: t0.Add(time.Second).In(kyiv)},
	}
	s, _ := openStore(t, open)
	ctx := ctxFor(t)
	for _, q := range in {
		if err := s.Quarantine(ctx, q); err != nil {
			t.Fatalf("Quarantine(%s): %v", q.Reason, err)
		}
	}
	// The rejected batch never reaches the taps.
	checkCount(t, s, 0)
	oldestFirst := []ingest.Rejected{in[1], in[2], in[0]}
	tests := []struct {
		name     string
		from, to time.Time
		want     []ingest.Rejected
	}{
		{"unbounded", time.Time{}, time.Time{}, oldestFirst},
		{"from is inclusive", t0.Add(time.Second), time.Time{}, oldestFirst[1:]},
		{"to is exclusive", time.Time{}, t0.Add(2 * time.Second), oldestFirst[:2]},
		{"one second", t0.Add(time.Second), t0.Add(2 * time.Second), oldestFirst[1:2]},
		{"nothing", t0.Add(time.Hour), time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Stores keep microseconds; ask with what they keep.
			from, to := tt.from.Truncate(time.Microsecond), tt.to.Truncate(time.Microsecond)
			got, err := s.Quarantined(ctxFor(t), from, to)
			if err != nil {
				t.Fatalf("Quarantined: %v", err)
			}
			checkRejected(t, got, tt.want)
		})
	}
}

func checkRejected(t *testing.T, got, want []ingest.Rejected) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d quarantined batches, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Device != w.Device || g.Reason != w.Reason || g.Detail != w.Detail || !bytes.Equal(g.Raw, w.Raw) {
			t.Errorf("batch %d:\n got %+v\nwant %+v", i, g, w)
		}
		if wr := w.Received.Truncate(time.Microsecond); !g.Received.Equal(wr) || g.Received.Location() != time.UTC {
			t.Errorf("batch %d received %v, want %v in UTC", i, g.Received, wr.UTC())
		}
	}
}

func testConcurrent(t *testing.T, open Open) {
	loc := Options(t).Location
	r := rand.New(rand.NewPCG(7, 7))
	taps := randomTaps(r, 400, loc)
	s, _ := openStore(t, open)
	ctx := ctxFor(t)

	// Four uploaders deliver the same taps in different chunkings and
	// orders, as re-deliveries after a consumer-group rebalance would.
	const workers = 4
	var (
		wg               sync.WaitGroup
		mu               sync.Mutex
		totalAdded, dups int
		sent             int
	)
	for w := range workers {
		chunk := 20 + 15*w
		order := slices.Clone(taps)
		if w%2 == 1 {
			slices.Reverse(order)
		}
		wg.Go(func() {
			for i := 0; i < len(order); i += chunk {
				batch := order[i:min(i+chunk, len(order))]
				added, dup, err := s.AddTaps(ctx, batch)
				if err != nil {
					t.Errorf("worker %d: AddTaps: %v", w, err)
					return
				}
				mu.Lock()
				totalAdded += added
				dups += dup
				sent += len(batch)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if totalAdded != len(taps) || dups != sent-len(taps) {
		t.Errorf("added %d and %d duplicates over %d sent; want %d added", totalAdded, dups, sent, len(taps))
	}
	checkCount(t, s, len(taps))
	for _, period := range []string{"2026-10", "2026-11", "2026-12"} {
		checkLines(t, s, store.Query{Period: period}, expectLines(taps, loc, period, ""))
	}
}

func testReopen(t *testing.T, open Open) {
	loc := Options(t).Location
	taps := randomTaps(rand.New(rand.NewPCG(3, 4)), 200, loc)
	rej := ingest.Rejected{Device: "V-009", Reason: ingest.ReasonUnknownDevice, Detail: "unknown device", Raw: []byte("batch"),
		Received: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}

	s, closeNow := openStore(t, open)
	addTaps(t, s, taps, len(taps), 0)
	if err := s.Quarantine(ctxFor(t), rej); err != nil {
		t.Fatalf("Quarantine: %v", err)
	}
	closeNow()

	s, _ = openStore(t, open)
	checkCount(t, s, len(taps))
	check := func() {
		t.Helper()
		for _, period := range []string{"2026-10", "2026-11", "2026-12"} {
			checkLines(t, s, store.Query{Period: period}, expectLines(taps, loc, period, ""))
		}
	}
	check()
	// What was stored before the restart is still known: a re-delivery
	// after it adds nothing.
	addTaps(t, s, taps, 0, len(taps))
	check()
	got, err := s.Quarantined(ctxFor(t), time.Time{}, time.Time{})
	if err != nil {
		t.Fatalf("Quarantined: %v", err)
	}
	checkRejected(t, got, []ingest.Rejected{rej})
	last := taps[len(taps)-1]
	if page, err := s.Taps(ctxFor(t), last.Device, last.Seq-1, 1); err != nil {
		t.Errorf("Taps: %v", err)
	} else {
		checkTaps(t, page, []tap.Tap{last})
	}
}
