package upload

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the uploader did; a nil *Metrics counts nothing.
type Metrics struct {
	batches prometheus.Counter
	taps    prometheus.Counter
	errors  prometheus.Counter
	pruned  prometheus.Counter
	last    prometheus.Gauge
}

// NewMetrics registers the uploader's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_validator_upload_batches_total",
			Help: "Sealed tap batches the bus acknowledged."}),
		taps: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_validator_uploaded_taps_total",
			Help: "Taps in acknowledged batches."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_validator_upload_errors_total",
			Help: "Failed upload attempts (bus unreachable, sealing or journal errors); each is retried."}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_validator_journal_pruned_taps_total",
			Help: "Acknowledged taps deleted from the journal to bound its size."}),
		// With the backlog gauge this answers "which buses cannot
		// upload": taps waiting and no acknowledgement for long.
		last: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_validator_upload_last_success_timestamp_seconds",
			Help: "Unix time the bus last acknowledged a batch from this validator; 0 before the first since start."}),
	}
	reg.MustRegister(m.batches, m.taps, m.errors, m.pruned, m.last)
	return m
}

func (m *Metrics) sent(taps int, at time.Time) {
	if m != nil {
		m.batches.Inc()
		m.taps.Add(float64(taps))
		m.last.Set(float64(at.UnixMilli()) / 1000)
	}
}

func (m *Metrics) failed() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) prunedTaps(n int64) {
	if m != nil && n > 0 {
		m.pruned.Add(float64(n))
	}
}
