package ingest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/clearing/bus"
)

// Metrics counts what ingest does, for Prometheus. A nil *Metrics counts
// nothing, so Processor and Runner work without one.
type Metrics struct {
	taps        *prometheus.CounterVec
	quarantine  *prometheus.CounterVec
	batches     prometheus.Counter
	storeTime   prometheus.Histogram
	lag         *prometheus.GaugeVec
	outcomeNew  prometheus.Counter
	outcomeDup  prometheus.Counter
	lastApplied prometheus.Gauge
}

// NewMetrics creates ingest's metrics and registers them on reg:
//
//	transit_clearing_taps_ingested_total{outcome="added"|"duplicate"}
//	transit_clearing_batches_ingested_total
//	transit_clearing_batches_quarantined_total{reason}
//	transit_clearing_batch_store_seconds
//	transit_clearing_consumer_lag_messages{partition}
//	transit_clearing_last_batch_timestamp_seconds
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		taps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "transit_clearing_taps_ingested_total",
			Help: "Taps received in applied batches, by outcome: added (new) or duplicate (stored before).",
		}, []string{"outcome"}),
		quarantine: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "transit_clearing_batches_quarantined_total",
			Help: "Batches quarantined instead of applied, by reason.",
		}, []string{"reason"}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_batches_ingested_total",
			Help: "Batches handled, applied or quarantined.",
		}),
		storeTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "transit_clearing_batch_store_seconds",
			Help:    "Time to check and store one batch.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "transit_clearing_consumer_lag_messages",
			Help: "Messages of a bus partition published but not yet handled by this consumer, as of its last fetch.",
		}, []string{"partition"}),
		lastApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "transit_clearing_last_batch_timestamp_seconds",
			Help: "Unix time at which the last batch was handled.",
		}),
	}
	for _, c := range []prometheus.Collector{m.taps, m.quarantine, m.batches, m.storeTime, m.lag, m.lastApplied} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}
	// Both outcomes exist from the start, so a rate is defined before the
	// first duplicate arrives.
	m.outcomeNew = m.taps.WithLabelValues("added")
	m.outcomeDup = m.taps.WithLabelValues("duplicate")
	return m, nil
}

func (m *Metrics) stored(added, dup int) {
	if m == nil {
		return
	}
	m.outcomeNew.Add(float64(added))
	m.outcomeDup.Add(float64(dup))
}

func (m *Metrics) quarantined(reason string) {
	if m == nil {
		return
	}
	m.quarantine.WithLabelValues(reason).Inc()
}

func (m *Metrics) handled(msg bus.Message, took time.Duration, at time.Time) {
	if m == nil {
		return
	}
	m.batches.Inc()
	m.storeTime.Observe(took.Seconds())
	m.lastApplied.Set(float64(at.UnixNano()) / 1e9)
	if msg.HighWaterMark > 0 {
		m.lag.WithLabelValues(strconv.Itoa(msg.Partition)).Set(float64(max(0, msg.HighWaterMark-msg.Offset-1)))
	}
}
