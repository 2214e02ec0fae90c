package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/clearing/fleet"
	"github.com/citycard/transit/clearing/store"
)

// Fleet holds the fleet gauges, the operator's view of which devices went
// silent and which run old updates. They are fleet-wide (read from the
// store), so every clearing instance exports the same values: aggregate
// them with max(), not sum().
type Fleet struct {
	opt      fleet.Options
	devices  prometheus.Gauge
	offline  prometheus.Gauge
	silent   *prometheus.GaugeVec
	outdated *prometheus.GaugeVec
	skewed   prometheus.Gauge
	newest   *prometheus.GaugeVec
	errors   prometheus.Counter
}

// NewFleet creates the fleet gauges and registers them on reg:
//
//	transit_clearing_devices
//	transit_clearing_devices_offline
//	transit_clearing_devices_silent{over="1h"|"24h"|"7d"}
//	transit_clearing_devices_outdated{update="hotlist"|"tariff"}
//	transit_clearing_devices_clock_skewed
//	transit_clearing_fleet_newest_version{update="hotlist"|"tariff"}
//	transit_clearing_fleet_read_errors_total
func NewFleet(reg prometheus.Registerer, opt fleet.Options) (*Fleet, error) {
	f := &Fleet{
		opt: opt,
		devices: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_clearing_devices",
			Help: "Devices clearing has received taps or batches from."}),
		offline: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_clearing_devices_offline",
			Help: "Devices silent for longer than clearing's offline threshold (--offline-after)."}),
		silent: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "transit_clearing_devices_silent",
			Help: "Devices from which clearing received nothing for longer than the given time."}, []string{"over"}),
		outdated: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "transit_clearing_devices_outdated",
			Help: "Devices whose latest tap used an older hotlist or tariff than the newest any device used."}, []string{"update"}),
		skewed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_clearing_devices_clock_skewed",
			Help: "Devices whose clock, as estimated from their latest batch, is off clearing's by more than the allowed skew."}),
		newest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "transit_clearing_fleet_newest_version",
			Help: "The newest hotlist or tariff version any device used in its latest tap."}, []string{"update"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_fleet_read_errors_total",
			Help: "Failed reads of the fleet state; the fleet gauges then keep their last values."}),
	}
	for _, c := range []prometheus.Collector{f.devices, f.offline, f.silent, f.outdated, f.skewed, f.newest, f.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register fleet metrics: %w", err)
		}
	}
	for _, o := range overLabels() {
		f.silent.WithLabelValues(o)
	}
	return f, nil
}

// overLabels name fleet.Thresholds as the brief of the fleet gauges does.
func overLabels() []string { return fleet.ThresholdNames }

// Update reads the fleet once.
func (f *Fleet) Update(ctx context.Context, src fleet.Source, now time.Time) error {
	v, err := fleet.Read(ctx, src, now, f.opt)
	if err != nil {
		f.errors.Inc()
		return err
	}
	s := v.Summary
	f.devices.Set(float64(s.Devices))
	f.offline.Set(float64(s.Offline))
	for i, o := range overLabels() {
		f.silent.WithLabelValues(o).Set(float64(s.SilentOver[i]))
	}
	f.outdated.WithLabelValues("hotlist").Set(float64(s.OldHotlist))
	f.outdated.WithLabelValues("tariff").Set(float64(s.OldTariff))
	f.skewed.Set(float64(s.ClockSkewed))
	f.newest.WithLabelValues("hotlist").Set(float64(v.NewestHotlist))
	f.newest.WithLabelValues("tariff").Set(float64(v.NewestTariff))
	return nil
}

// Statements holds the gauge of the statements' progress.
type Statements struct {
	loc    *time.Location
	closed prometheus.Gauge
	errors prometheus.Counter
}

// PeriodCloser is the part of a clearing store Statements reads.
type PeriodCloser interface {
	ClosedPeriods(ctx context.Context) ([]string, error)
}

// NewStatements creates the statement gauge and registers it on reg:
//
//	transit_clearing_last_closed_period_end_timestamp_seconds
//	transit_clearing_statement_read_errors_total
//
// The gauge is the end (in the city's time zone loc) of the latest closed
// month, 0 before the first close: time() minus it says how long the
// statements have been waiting.
func NewStatements(reg prometheus.Registerer, loc *time.Location) (*Statements, error) {
	s := &Statements{loc: loc,
		closed: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_clearing_last_closed_period_end_timestamp_seconds",
			Help: "Unix time at which the latest closed accounting month ended (city time zone); 0 before the first close."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_statement_read_errors_total",
			Help: "Failed reads of the closed periods; the gauge then keeps its last value."}),
	}
	for _, c := range []prometheus.Collector{s.closed, s.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register statement metrics: %w", err)
		}
	}
	return s, nil
}

// Update reads the closed periods once.
func (s *Statements) Update(ctx context.Context, src PeriodCloser) error {
	ps, err := src.ClosedPeriods(ctx)
	if err != nil {
		s.errors.Inc()
		return err
	}
	if len(ps) == 0 {
		s.closed.Set(0)
		return nil
	}
	_, end, err := store.Bounds(ps[len(ps)-1], s.loc)
	if err != nil {
		s.errors.Inc()
		return err
	}
	s.closed.Set(float64(end.Unix()))
	return nil
}

// Store is what Watch reads: a clearing store.
type Store interface {
	GapCounter
	fleet.Source
	PeriodCloser
}

// Watcher keeps every gauge of this package current from one store.
type Watcher struct {
	Gaps       *Gaps
	Fleet      *Fleet
	Statements *Statements
}

// NewWatcher registers every gauge of this package on reg.
func NewWatcher(reg prometheus.Registerer, opt fleet.Options, loc *time.Location) (*Watcher, error) {
	g, err := NewGaps(reg)
	if err != nil {
		return nil, err
	}
	f, err := NewFleet(reg, opt)
	if err != nil {
		return nil, err
	}
	s, err := NewStatements(reg, loc)
	if err != nil {
		return nil, err
	}
	return &Watcher{Gaps: g, Fleet: f, Statements: s}, nil
}

// Update reads the store once for every gauge and returns the first error.
func (w *Watcher) Update(ctx context.Context, st Store, now time.Time) error {
	err1 := w.Gaps.Update(ctx, st)
	err2 := w.Fleet.Update(ctx, st, now)
	err3 := w.Statements.Update(ctx, st)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return err
		}
	}
	return nil
}

// Watch updates the gauges every interval until ctx ends, logging
// failures, and returns ctx's error.
func (w *Watcher) Watch(ctx context.Context, st Store, every time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := w.Update(ctx, st, time.Now()); err != nil && ctx.Err() == nil {
			log.Warn("update the clearing store gauges", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
