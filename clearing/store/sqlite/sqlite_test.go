package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

func TestContract(t *testing.T) {
	// A file per test; a second open in the same test reopens that file.
	var (
		mu    sync.Mutex
		paths = make(map[*testing.T]string)
	)
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		path, ok := paths[t]
		if !ok {
			path = filepath.Join(t.TempDir(), "clearing.db")
			paths[t] = path
		}
		mu.Unlock()
		s, err := sqlite.Open(context.Background(), path, storetest.Options(t))
		if err != nil {
			t.Fatalf("Open(%s): %v", path, err)
		}
		return s
	})
}

// TestMemory checks that ":memory:" keeps its data across calls: an
// in-memory database lives in one connection, and the store must not
// drop it between transactions.
func TestMemory(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, ":memory:", store.Options{})
	if err != nil {
		t.Fatalf("Open(:memory:): %v", err)
	}
	defer s.Close()
	at := time.Date(2026, 11, 30, 22, 30, 0, 0, time.UTC)
	taps := []tap.Tap{{
		Device: "V-1", Seq: 1, Time: at, Carrier: "ATP-1", Result: tap.Accepted, Category: "pensioner",
		Funding: "city", FareKop: 1500, CompensationKop: 1500, CardCommitted: true,
	}}
	for range 3 {
		time.Sleep(10 * time.Millisecond)
		if _, _, err := s.AddTaps(ctx, taps); err != nil {
			t.Fatalf("AddTaps: %v", err)
		}
	}
	if n, err := s.TapCount(ctx); err != nil || n != 1 {
		t.Fatalf("TapCount = %d, %v; want 1", n, err)
	}
	// No Location: UTC, so this tap is November's.
	lines, err := s.Compensation(ctx, store.Query{Period: "2026-11"})
	if err != nil || len(lines) != 1 || lines[0].CompensationKop != 1500 {
		t.Fatalf("Compensation = %+v, %v; want one line of 1500", lines, err)
	}
}

// TestOpenTwice checks that migrations already applied are not applied
// again.
func TestOpenTwice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clearing.db")
	for i := range 2 {
		s, err := sqlite.Open(ctx, path, store.Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i+1, err)
		}
	}
}

func TestOpenNotADatabase(t *testing.T) {
	dir := t.TempDir()
	if _, err := sqlite.Open(context.Background(), dir, store.Options{}); err == nil {
		t.Fatalf("Open(a directory) succeeded")
	} else {
		t.Log(err)
	}
}

// TestUpgradeFromV1 opens a file made by the previous release (schema 1
// only) and checks that migration 2 derives the roll-up by route and day,
// the sequence state and gaps from the taps it holds.
func TestUpgradeFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	v1, err := os.ReadFile("migrations/0001_initial.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	kyiv := storetest.Options(t).Location
	at := []time.Time{
		time.Date(2026, 11, 3, 9, 0, 0, 0, kyiv),
		time.Date(2026, 11, 3, 23, 30, 0, 0, kyiv), // 21:30 UTC: the day is Kyiv's
		time.Date(2026, 11, 4, 7, 0, 0, 0, kyiv),
	}
	stmts := []string{string(v1),
		"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us INTEGER NOT NULL) STRICT",
		"INSERT INTO schema_migrations VALUES (1, '0001_initial.sql', 0)"}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	for i, seq := range []int64{1, 2, 5} {
		if _, err := db.Exec(`INSERT INTO taps VALUES ('V-1', ?, ?, '2026-11', 77, 'ATP-1', 'R1', 'AA1', 0, 0, 1, 'ok',
			'benefit', 'pensioner', 'city', 1500, 0, 1500, 1, 1, 1)`, seq, at[i].UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := sqlite.Open(ctx, path, storetest.Options(t))
	if err != nil {
		t.Fatalf("Open a version 1 file: %v", err)
	}
	defer s.Close()
	lines, err := s.Compensation(ctx, store.Query{Period: "2026-11", ByDay: true})
	line := store.Line{Carrier: "ATP-1", Category: "pensioner", Funding: "city", Rides: 1, FareKop: 1500, CompensationKop: 1500}
	d3, d4 := line, line
	d3.Day, d3.Rides, d3.FareKop, d3.CompensationKop = "2026-11-03", 2, 3000, 3000
	d4.Day = "2026-11-04"
	if want := []store.Line{d3, d4}; err != nil || !slices.Equal(lines, want) {
		t.Errorf("November by day after upgrade = %+v, %v\nwant %+v", lines, err, want)
	}
	gaps, err := s.Gaps(ctx, "2026-11")
	if err != nil || len(gaps) != 1 || gaps[0].First != 3 || gaps[0].Last != 4 || !gaps[0].IsOpen() {
		t.Errorf("gaps after upgrade = %+v, %v; want 3-4 open", gaps, err)
	}
	tp := tap.Tap{Device: "V-1", Seq: 2, Time: at[1], Result: tap.Accepted}
	if a, d, err := s.AddTaps(ctx, []tap.Tap{tp}); err != nil || a != 0 || d != 1 {
		t.Errorf("re-sending tap 2 after upgrade = %d, %d, %v; want a repeat", a, d, err)
	}
}

func TestOpenOtherZone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clearing.db")
	s, err := sqlite.Open(ctx, path, storetest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = sqlite.Open(ctx, path, store.Options{})
	if err == nil || !strings.Contains(err.Error(), "--tz Europe/Kyiv") {
		t.Fatalf("Open in UTC of a Kyiv file: %v; want an error naming the zone", err)
	}
}
