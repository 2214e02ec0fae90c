// Package proofcheck runs clearing's proof of rides in the background:
// re-rating each benefit ride with clearing's own facts and linking the
// card's evidence (clearing/rerate, store.Proof.Rerate).
//
// Ingest does not judge rides itself: each batch it stores queues its
// runs of taps for judging, as it queues the cloned-card check, so that
// loading a card's month does not hold up the ingest transaction. A
// Checker takes the queue as it fills. Several checkers (one per
// clearing process) may run at once: the store gives each queued run to
// one of them, and judges a card in one of them at a time. A period's
// close judges whatever is still queued before it seals, so a checker
// that lags delays nothing but the draft statements.
package proofcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/clearing/store"
)

// Store is the part of a clearing store the checker uses.
type Store interface {
	Rerate(ctx context.Context, limit int) (store.RerateStats, error)
	PendingRerate(ctx context.Context) (int64, error)
}

// Defaults of a Checker.
const (
	// DefaultBatch runs are judged per transaction.
	DefaultBatch = 20
	// DefaultEvery is the wait when the queue is empty, or after a
	// failure.
	DefaultEvery = 2 * time.Second
	// DefaultShare is the share of its time a checker spends judging
	// while the queue is full: the rest is left to ingest, which shares
	// the machine and the database.
	DefaultShare = 0.3
)

// Checker drains the queue of re-ratings.
type Checker struct {
	// Store holds the queue. Required.
	Store Store
	// Batch is the number of queued runs per transaction; 0 means
	// DefaultBatch.
	Batch int
	// Every is how long Run waits when the queue is empty or a pass
	// failed; 0 means DefaultEvery.
	Every time.Duration
	// Share bounds the share of its time Run spends judging while work
	// is queued, so that ingest, which must keep up with the validators,
	// comes first: after a pass that took d it waits d*(1-Share)/Share.
	// 0 means DefaultShare; 1 never waits. A period's close judges what
	// is left, so a checker held back delays only the drafts.
	Share float64
	// Metrics, if set, counts what the checker does.
	Metrics *Metrics
	// Log gets failures; nil means slog.Default().
	Log *slog.Logger
}

// Drain judges queued work until the queue is empty or ctx ends, and
// returns what it did. It does not pace itself (Run does).
func (c *Checker) Drain(ctx context.Context) (store.RerateStats, error) {
	return c.drain(ctx, false)
}

func (c *Checker) drain(ctx context.Context, paced bool) (store.RerateStats, error) {
	var total store.RerateStats
	if c.Store == nil {
		return total, errors.New("proofcheck: no store")
	}
	batch := c.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		start := time.Now()
		st, err := c.Store.Rerate(ctx, batch)
		took := time.Since(start)
		total.Runs += st.Runs
		total.Cards += st.Cards
		total.Rides += st.Rides
		total.Changed += st.Changed
		c.Metrics.add(st)
		if err != nil {
			return total, err
		}
		if st.Runs < batch && st.Cards == 0 {
			return total, nil
		}
		if paced {
			if share := c.share(); share < 1 {
				select {
				case <-ctx.Done():
					return total, ctx.Err()
				case <-time.After(time.Duration(float64(took) * (1 - share) / share)):
				}
			}
		}
	}
}

func (c *Checker) share() float64 {
	if c.Share <= 0 || c.Share > 1 {
		return DefaultShare
	}
	return c.Share
}

// Run drains the queue, then waits Every and drains it again, until ctx
// ends; it returns ctx's error. A failed pass is logged and counted and
// tried again after the wait: its work stays queued.
func (c *Checker) Run(ctx context.Context) error {
	every := c.Every
	if every <= 0 {
		every = DefaultEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := c.drain(ctx, true); err != nil && ctx.Err() == nil {
			c.log().Error("re-rating failed; trying again", "err", err, "in", every)
			if c.Metrics != nil {
				c.Metrics.errors.Inc()
			}
		}
		if c.Metrics != nil && ctx.Err() == nil {
			if n, err := c.Store.PendingRerate(ctx); err == nil {
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
	pending              prometheus.Gauge
	runs, rides, changed prometheus.Counter
	errors               prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg:
//
//	transit_clearing_rerate_pending
//	transit_clearing_rerate_runs_total
//	transit_clearing_rerate_rides_total
//	transit_clearing_rerate_changes_total
//	transit_clearing_rerate_errors_total
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_clearing_rerate_pending",
			Help: "Runs of taps and card months waiting for re-rating, as of the checker's last pass."}),
		runs: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_rerate_runs_total",
			Help: "Queued runs of taps re-rating has taken."}),
		rides: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_rerate_rides_total",
			Help: "Benefit rides judged (a ride is judged again when its card's facts change)."}),
		changed: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_rerate_changes_total",
			Help: "Judgements that changed a ride's record: held, waiting, paid elsewhere, or back."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_rerate_errors_total",
			Help: "Failed re-rating passes; their work stays queued."}),
	}
	for _, col := range []prometheus.Collector{m.pending, m.runs, m.rides, m.changed, m.errors} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("register re-rating metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) add(st store.RerateStats) {
	if m == nil {
		return
	}
	m.runs.Add(float64(st.Runs))
	m.rides.Add(float64(st.Rides))
	m.changed.Add(float64(st.Changed))
}

// Pending is the gauge of queued work, for reading without a scrape.
func (m *Metrics) Pending() prometheus.Gauge { return m.pending }

// Rides counts the rides judged.
func (m *Metrics) Rides() prometheus.Counter { return m.rides }
