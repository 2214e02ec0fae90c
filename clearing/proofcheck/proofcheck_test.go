package proofcheck_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/proofcheck"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

// fake is a queue of work items, each a run of one ride.
type fake struct {
	mu      sync.Mutex
	queued  int
	fail    int
	batches []int
}

func (f *fake) Rerate(_ context.Context, limit int) (store.RerateStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return store.RerateStats{}, errors.New("database restarting")
	}
	n := min(limit, f.queued)
	f.queued -= n
	f.batches = append(f.batches, n)
	return store.RerateStats{Runs: n, Rides: n}, nil
}

func (f *fake) PendingRerate(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(f.queued), nil
}

func TestDrain(t *testing.T) {
	f := &fake{queued: 45}
	m, err := proofcheck.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := &proofcheck.Checker{Store: f, Batch: 20, Metrics: m}
	st, err := c.Drain(context.Background())
	if err != nil || st.Runs != 45 || st.Rides != 45 {
		t.Fatalf("Drain = %+v, %v", st, err)
	}
	if len(f.batches) != 3 || f.batches[2] != 5 {
		t.Errorf("batches %v, want 20, 20, 5", f.batches)
	}
	if got := testutil.ToFloat64(m.Rides()); got != 45 {
		t.Errorf("rides metric %v", got)
	}
}

// TestRunRetries: a failed pass leaves its work queued and is tried
// again.
func TestRunRetries(t *testing.T) {
	f := &fake{queued: 3, fail: 2}
	m, err := proofcheck.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&proofcheck.Checker{Store: f, Every: time.Millisecond, Metrics: m}).Run(ctx) }()
	for {
		if n, _ := f.PendingRerate(ctx); n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
}

// TestWithStore drains a real store's queue: what ingest queued is judged.
func TestWithStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", storetest.Options(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	good, inflated := storetest.Ride("V-1", 1, at), storetest.Ride("V-1", 2, at.Add(time.Minute))
	inflated.CompensationKop = 9000
	taps := []tap.Tap{good, inflated}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	if _, err := (&proofcheck.Checker{Store: st}).Drain(ctx); err != nil {
		t.Fatal(err)
	}
	held, err := st.Held(ctx, store.HeldQuery{Period: "2026-11", Limit: 10})
	if err != nil || len(held) != 1 || held[0].Tap.Seq != 2 {
		t.Fatalf("held after draining = %+v, %v", held, err)
	}
	if n, err := st.PendingRerate(ctx); err != nil || n != 0 {
		t.Errorf("pending = %d, %v", n, err)
	}
}
