package hotlist

import (
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// descs are made per collector so the package holds no state.
func newDescs() (version, age, stale *prometheus.Desc) {
	return prometheus.NewDesc("transit_hotlist_version",
			"Version of the hotlist the validator decides with; 0 when none is loaded.", nil, nil),
		prometheus.NewDesc("transit_hotlist_age_seconds",
			"Seconds since the registry issued the loaded hotlist; +Inf when none is loaded.", nil, nil),
		prometheus.NewDesc("transit_hotlist_stale",
			"1 when the loaded hotlist is older than the validator's max age or none is loaded, else 0.", nil, nil)
}

// collector reads the Holder at scrape time, so the figures are never
// older than the scrape.
type collector struct {
	h                   *Holder
	now                 func() time.Time
	version, age, stale *prometheus.Desc
}

// NewCollector returns a Prometheus collector of the hotlist in h:
// transit_hotlist_version, transit_hotlist_age_seconds and
// transit_hotlist_stale. now is the clock (time.Now if nil).
func NewCollector(h *Holder, now func() time.Time) prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	c := collector{h: h, now: now}
	c.version, c.age, c.stale = newDescs()
	return c
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.version
	ch <- c.age
	ch <- c.stale
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	l := c.h.Current() // one snapshot, so version and age belong together
	ageSec, stale := math.Inf(1), 1.0
	if l != nil {
		a := age(l, c.now())
		ageSec = a.Seconds()
		if a <= c.h.maxAge {
			stale = 0
		}
	}
	ch <- prometheus.MustNewConstMetric(c.version, prometheus.GaugeValue, float64(l.Version()))
	ch <- prometheus.MustNewConstMetric(c.age, prometheus.GaugeValue, ageSec)
	ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, stale)
}
