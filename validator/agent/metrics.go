package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the validator's tap metrics; a nil *Metrics records nothing.
type Metrics struct {
	taps     *prometheus.CounterVec
	decision prometheus.Histogram
	cardTx   prometheus.Histogram
}

// NewMetrics registers the tap metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		taps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "transit_validator_taps_total",
			Help: "Card presentations by what the validator showed: result (accepted, denied, already-paid, error) and reason."},
			[]string{"result", "reason"}),
		// The decision is microseconds; the buckets resolve that range.
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "transit_validator_decision_seconds",
			Help:    "Time of the fare and benefit decision alone, without the card.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 16)}),
		// A tap must finish well under 300 ms; most take a few ms.
		cardTx: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "transit_validator_card_transaction_seconds",
			Help:    "Time from a card in the field to the result: read, decide, journal, write and commit.",
			Buckets: prometheus.ExponentialBuckets(0.5e-3, 2, 12)}),
	}
	reg.MustRegister(m.taps, m.decision, m.cardTx)
	return m
}

// NewTariffCollector exposes transit_validator_tariff_version, the
// version of the tariff a's next tap is priced with.
func NewTariffCollector(a *Agent) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "transit_validator_tariff_version",
		Help: "Version of the signed tariff the validator prices taps with."},
		func() float64 {
			if t := a.CurrentTariff(); t != nil {
				return float64(t.Version)
			}
			return 0
		})
}

func (m *Metrics) observe(ev Event, decision time.Duration) {
	if m == nil {
		return
	}
	m.taps.WithLabelValues(ev.Result, ev.Reason).Inc()
	if decision > 0 {
		m.decision.Observe(decision.Seconds())
	}
	m.cardTx.Observe(ev.TookMS / 1000)
}
