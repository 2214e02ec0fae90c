// Package clonecheck runs clearing's cloned-card check in the background.
//
// Ingest does not look for cloned cards itself: each batch it stores
// queues its compensable rides with a position for the check
// (store.Store.AddTaps), so that a probe per ride into the card index
// does not hold up every ingest transaction. A Checker takes the queue
// as it fills and records what it finds as recon.ClonedCard anomalies,
// which the reconciliation report shows. Several checkers (one per
// clearing process) may run at once: the store gives each queued run to
// one of them.
package clonecheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store is the part of a clearing store the checker uses.
type Store interface {
	CheckClones(ctx context.Context, limit int) (checked, found int, err error)
	PendingCloneChecks(ctx context.Context) (int64, error)
}

// Defaults of a Checker.
const (
	// DefaultBatch runs are checked per transaction: a few thousand
	// rides, a transaction of well under a second.
	DefaultBatch = 100
	// DefaultEvery is the wait when the queue is empty, or after a
	// failure.
	DefaultEvery = 2 * time.Second
)

// Checker drains the queue of cloned-card checks.
type Checker struct {
	// Store holds the queue. Required.
	Store Store
	// Batch is the number of queued runs per transaction; 0 means
	// DefaultBatch.
	Batch int
	// Every is how long Run waits when the queue is empty or a check
	// failed; 0 means DefaultEvery.
	Every time.Duration
	// Metrics, if set, counts what the checker does.
	Metrics *Metrics
	// Log gets failures and findings; nil means slog.Default().
	Log *slog.Logger
}

// Drain checks queued runs until the queue is empty or ctx ends, and
// returns how many runs it checked and how many new suspicions it
// recorded.
func (c *Checker) Drain(ctx context.Context) (checked, found int, err error) {
	if c.Store == nil {
		return 0, 0, errors.New("clonecheck: no store")
	}
	batch := c.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	for {
		if err := ctx.Err(); err != nil {
			return checked, found, err
		}
		n, f, err := c.Store.CheckClones(ctx, batch)
		checked, found = checked+n, found+f
		if c.Metrics != nil {
			c.Metrics.checked.Add(float64(n))
			c.Metrics.found.Add(float64(f))
		}
		if err != nil {
			return checked, found, err
		}
		if f > 0 {
			c.log().Warn("cloned-card suspicions recorded", "new", f, "runs_checked", n)
		}
		if n < batch {
			return checked, found, nil
		}
	}
}

// Run drains the queue, then waits Every and drains it again, until ctx
// ends; it returns ctx's error. A failed check is logged and counted and
// tried again after the wait: its runs stay queued.
func (c *Checker) Run(ctx context.Context) error {
	every := c.Every
	if every <= 0 {
		every = DefaultEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, _, err := c.Drain(ctx); err != nil && ctx.Err() == nil {
			c.log().Error("cloned-card check failed; trying again", "err", err, "in", every)
			if c.Metrics != nil {
				c.Metrics.errors.Inc()
			}
		}
		if c.Metrics != nil && ctx.Err() == nil {
			if n, err := c.Store.PendingCloneChecks(ctx); err == nil {
				c.Metrics.pending.Set(float64(n))
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (c *Checker) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Metrics are the checker's Prometheus metrics.
type Metrics struct {
	pending        prometheus.Gauge
	checked, found prometheus.Counter
	errors         prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg:
//
//	transit_clearing_clone_checks_pending
//	transit_clearing_clone_checks_total
//	transit_clearing_cloned_card_suspicions_total
//	transit_clearing_clone_check_errors_total
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "transit_clearing_clone_checks_pending",
			Help: "Runs of stored rides waiting for the cloned-card check, as of the checker's last pass.",
		}),
		checked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_clone_checks_total",
			Help: "Runs of stored rides the cloned-card check has looked at.",
		}),
		found: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_cloned_card_suspicions_total",
			Help: "Cloned-card suspicions the check recorded.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_clone_check_errors_total",
			Help: "Failed passes of the cloned-card check; their runs stay queued.",
		}),
	}
	for _, c := range []prometheus.Collector{m.pending, m.checked, m.found, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register cloned-card check metrics: %w", err)
		}
	}
	return m, nil
}

// Pending is the gauge of queued runs, for reading without a scrape.
func (m *Metrics) Pending() prometheus.Gauge { return m.pending }

// Checked counts the runs checked.
func (m *Metrics) Checked() prometheus.Counter { return m.checked }

// Found counts the suspicions recorded.
func (m *Metrics) Found() prometheus.Counter { return m.found }

// Errors counts the failed passes.
func (m *Metrics) Errors() prometheus.Counter { return m.errors }
