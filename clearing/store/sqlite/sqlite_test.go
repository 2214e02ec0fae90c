package sqlite_test

import (
	"context"
	"path/filepath"
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
