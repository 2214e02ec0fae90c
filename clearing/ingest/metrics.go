package ingest

import (
	"fmt"
	"strconv"
	"sync"
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
	retries     prometheus.Counter
	busErrors   *prometheus.CounterVec
	assignedN   prometheus.Gauge
	rebalances  prometheus.Counter

	mu sync.Mutex
	// assigned are the partitions this instance owns now; nil until the
	// first assignment (a bus without groups never sends one), and then
	// lag is reported only for these.
	assigned map[int]bool
}

// NewMetrics creates ingest's metrics and registers them on reg:
//
//	transit_clearing_taps_ingested_total{outcome="added"|"duplicate"}
//	transit_clearing_batches_ingested_total
//	transit_clearing_batches_quarantined_total{reason}
//	transit_clearing_batch_store_seconds
//	transit_clearing_batch_retries_total
//	transit_clearing_bus_errors_total{op="fetch"|"commit"}
//	transit_clearing_consumer_lag_messages{partition}
//	transit_clearing_assigned_partitions
//	transit_clearing_rebalances_total
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
			Help:    "Time to check and store one batch, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_batch_retries_total",
			Help: "Attempts at storing a batch that failed on the store's or the key token's side and were tried again.",
		}),
		busErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "transit_clearing_bus_errors_total",
			Help: "Failed fetches from and commits to the bus, each retried, by operation.",
		}, []string{"op"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "transit_clearing_consumer_lag_messages",
			Help: "Messages of a bus partition this instance owns, published but not yet handled, as of its last fetch.",
		}, []string{"partition"}),
		assignedN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "transit_clearing_assigned_partitions",
			Help: "Bus partitions the consumer group gave this instance; 0 between rebalances.",
		}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "transit_clearing_rebalances_total",
			Help: "Assignments of partitions this instance received from its consumer group (one per group generation).",
		}),
		lastApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "transit_clearing_last_batch_timestamp_seconds",
			Help: "Unix time at which the last batch was handled.",
		}),
	}
	for _, c := range []prometheus.Collector{m.taps, m.quarantine, m.batches, m.storeTime, m.retries, m.busErrors,
		m.lag, m.assignedN, m.rebalances, m.lastApplied} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}
	// Both outcomes and both operations exist from the start, so a rate
	// is defined before the first duplicate or error.
	m.outcomeNew = m.taps.WithLabelValues("added")
	m.outcomeDup = m.taps.WithLabelValues("duplicate")
	m.busErrors.WithLabelValues("fetch")
	m.busErrors.WithLabelValues("commit")
	return m, nil
}

// RegisterInstance exports transit_clearing_instance_info{instance_id,
// group, topic} 1, which names the instance behind a scrape target and
// joins with its other series.
func RegisterInstance(reg prometheus.Registerer, id, group, topic string) error {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "transit_clearing_instance_info",
		Help:        "Always 1: the identity of this clearing instance and the consumer group and topic it reads.",
		ConstLabels: prometheus.Labels{"instance_id": id, "group": group, "topic": topic},
	})
	g.Set(1)
	if err := reg.Register(g); err != nil {
		return fmt.Errorf("register the instance metric: %w", err)
	}
	return nil
}

// Assigned records that the group gave this instance partitions (a new
// generation): the lag of partitions it no longer owns disappears.
func (m *Metrics) Assigned(partitions []int) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.assigned
	m.assigned = make(map[int]bool, len(partitions))
	for _, p := range partitions {
		m.assigned[p] = true
	}
	for p := range old {
		if !m.assigned[p] {
			m.lag.DeleteLabelValues(strconv.Itoa(p))
		}
	}
	m.assignedN.Set(float64(len(partitions)))
	m.rebalances.Inc()
}

// Revoked records the end of a generation: the instance owns nothing
// until the next assignment, and reports no lag meanwhile.
func (m *Metrics) Revoked() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for p := range m.assigned {
		m.lag.DeleteLabelValues(strconv.Itoa(p))
	}
	m.assigned = map[int]bool{}
	m.assignedN.Set(0)
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

func (m *Metrics) retried() {
	if m != nil {
		m.retries.Inc()
	}
}

func (m *Metrics) busError(op string) {
	if m != nil {
		m.busErrors.WithLabelValues(op).Inc()
	}
}

func (m *Metrics) handled(msg bus.Message, took time.Duration, at time.Time) {
	if m == nil {
		return
	}
	m.batches.Inc()
	m.storeTime.Observe(took.Seconds())
	m.lastApplied.Set(float64(at.UnixNano()) / 1e9)
	if msg.HighWaterMark <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A batch of a partition given away while it was stored must not
	// bring its lag back: the new owner reports it.
	if m.assigned != nil && !m.assigned[msg.Partition] {
		return
	}
	m.lag.WithLabelValues(strconv.Itoa(msg.Partition)).Set(float64(max(0, msg.HighWaterMark-msg.Offset-1)))
}
