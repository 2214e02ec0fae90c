package clonecheck_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/clonecheck"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/validator/tap"
)

// queue is a store whose queue holds n runs; every fifth run checked
// records a suspicion. failOnce makes the next call fail.
type queue struct {
	mu       sync.Mutex
	n        int
	done     int
	calls    []int
	failOnce error
}

func (q *queue) CheckClones(_ context.Context, limit int) (int, int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, limit)
	if err := q.failOnce; err != nil {
		q.failOnce = nil
		return 0, 0, err
	}
	k := min(limit, q.n)
	q.n -= k
	found := (q.done+k)/5 - q.done/5
	q.done += k
	return k, found, nil
}

func (q *queue) PendingCloneChecks(context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.n), nil
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDrainTakesBatchesUntilEmpty(t *testing.T) {
	q := &queue{n: 25}
	c := &clonecheck.Checker{Store: q, Batch: 10, Log: quiet()}
	checked, found, err := c.Drain(context.Background())
	if err != nil || checked != 25 || found != 5 {
		t.Fatalf("Drain = %d, %d, %v; want 25 runs, 5 found", checked, found, err)
	}
	// 10, 10, then 5 < 10 ends the pass without a fourth call.
	if len(q.calls) != 3 {
		t.Errorf("%d calls (%v), want 3", len(q.calls), q.calls)
	}
}

func TestDrainStopsOnError(t *testing.T) {
	bad := errors.New("connection reset")
	q := &queue{n: 5, failOnce: bad}
	c := &clonecheck.Checker{Store: q, Log: quiet()}
	if _, _, err := c.Drain(context.Background()); !errors.Is(err, bad) {
		t.Fatalf("Drain = %v, want %v", err, bad)
	}
	if q.n != 5 {
		t.Errorf("a failed pass took runs: %d left, want 5", q.n)
	}
	if _, _, err := (&clonecheck.Checker{Log: quiet()}).Drain(context.Background()); err == nil {
		t.Error("a checker without a store: no error")
	}
}

// TestRunRetriesAndCounts: a failed pass is counted and tried again,
// and the metrics end up with what was checked and found.
func TestRunRetriesAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := clonecheck.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	q := &queue{n: 12, failOnce: errors.New("deadlock detected")}
	c := &clonecheck.Checker{Store: q, Batch: 5, Every: time.Millisecond, Metrics: m, Log: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v := testutil.ToFloat64(m.Checked()); v == 12 && testutil.ToFloat64(m.Pending()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue was not drained: %d left", q.n)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if got := testutil.ToFloat64(m.Errors()); got != 1 {
		t.Errorf("errors counted %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Found()); got != 2 {
		t.Errorf("suspicions counted %v, want 2", got)
	}
	if _, err := clonecheck.NewMetrics(reg); err == nil {
		t.Error("registering the metrics twice: no error")
	}
}

// TestRunFindsClonesInAStore runs a checker over a real (embedded)
// clearing store while rides arrive: the suspicion ingest queued shows
// up among the anomalies without anyone calling the check by hand.
func TestRunFindsClonesInAStore(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &clonecheck.Checker{Store: st, Every: 5 * time.Millisecond, Log: quiet()}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	at := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	ride := func(dev, vehicle string, lat, lon int32, at time.Time) tap.Tap {
		return tap.Tap{Device: dev, Seq: 1, Time: at, Card: 4242, Carrier: "ATP-1", Route: "7", Vehicle: vehicle,
			Lat: lat, Lon: lon, Result: tap.Accepted, Reason: "ok", Product: "benefit", Category: "veteran",
			Funding: "state", FareKop: 1500, CompensationKop: 1500, TariffVersion: 1, HotlistVersion: 1, CardCommitted: true}
	}
	for _, r := range []tap.Tap{
		ride("BUS-9", "B-9", 50450100, 30523400, at),
		ride("TRAM-9", "T-9", 50345000, 30894700, at.Add(6*time.Minute)),
	} {
		if _, _, err := st.AddTaps(ctx, []tap.Tap{r}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		as, err := st.Anomalies(ctx, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 && as[0].Kind == recon.ClonedCard && as[0].Card == 4242 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cloned-card suspicion recorded; anomalies %+v", as)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
