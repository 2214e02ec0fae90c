// Package monitor keeps Prometheus gauges of the clearing store's state
// current: how many sequence gaps are open and how many taps they miss.
// Counting them is a query, so it runs on a timer, not on every scrape.
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// GapCounter is the part of a clearing store the gauges read.
type GapCounter interface {
	OpenGaps(ctx context.Context) (gaps, missing int64, err error)
}

// Gaps holds the gap gauges.
type Gaps struct {
	open    prometheus.Gauge
	missing prometheus.Gauge
	errors  prometheus.Counter
}

// NewGaps creates the gauges and registers them on reg:
//
//	transit_clearing_open_gaps
//	transit_clearing_missing_taps
//	transit_clearing_gap_count_errors_total
func NewGaps(reg prometheus.Registerer) (*Gaps, error) {
	g := &Gaps{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "transit_clearing_open_gaps",
			Help: "Runs of device sequence numbers that clearing has not received while later taps arrived.",
		}),
		missing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "transit_clearing_missing_taps",
			Help: "Taps inside the open sequence gaps.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_gap_count_errors_total",
			Help: "Failed attempts to count the open gaps; the gauges then keep their last value.",
		}),
	}
	for _, c := range []prometheus.Collector{g.open, g.missing, g.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register gap metrics: %w", err)
		}
	}
	return g, nil
}

// Update counts the open gaps once.
func (g *Gaps) Update(ctx context.Context, src GapCounter) error {
	open, missing, err := src.OpenGaps(ctx)
	if err != nil {
		g.errors.Inc()
		return err
	}
	g.open.Set(float64(open))
	g.missing.Set(float64(missing))
	return nil
}

// Watch updates the gauges every interval until ctx ends, logging
// failures, and returns ctx's error.
func (g *Gaps) Watch(ctx context.Context, src GapCounter, every time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := g.Update(ctx, src); err != nil && ctx.Err() == nil {
			log.Warn("count open gaps", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
