package agent

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Health watches what the validator needs to take taps, for its metrics
// and its /healthz and /readyz endpoints: the card reader, checked by
// Probe every Every and whenever the reader loop saw it fail, and whether
// the reader loop runs. A nil *Health records nothing.
//
// The reader loop alone cannot tell: while pcscd is down it waits inside
// the PC/SC layer, which retries by itself. The probe asks pcscd from a
// connection of its own.
type Health struct {
	// Probe returns nil when the reader is there and answers (for PC/SC:
	// pcscd answers and lists the reader).
	Probe func(ctx context.Context) error
	// Every is the time between probes (default 5 s).
	Every time.Duration
	Log   *slog.Logger

	up      atomic.Bool
	running atomic.Bool
	probed  atomic.Bool // at least one probe finished
	kick    chan struct{}
	once    sync.Once
	metrics *healthMetrics
}

type healthMetrics struct {
	up     prometheus.Gauge
	errors *prometheus.CounterVec
}

// Sources of reader errors, the label of transit_validator_reader_errors_total.
const (
	readerErrProbe = "probe" // the periodic check found the reader missing or pcscd down
	readerErrLoop  = "loop"  // waiting for a card or its removal failed
)

// Register registers the reader health metrics on reg:
// transit_validator_reader_up and transit_validator_reader_errors_total.
func (h *Health) Register(reg prometheus.Registerer) {
	h.init()
	m := &healthMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_validator_reader_up",
			Help: "1 when the card reader is present and pcscd answers, else 0."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "transit_validator_reader_errors_total",
			Help: "Card reader failures, by where they were seen: probe (reader missing, pcscd down) or loop (waiting for a card or its removal)."},
			[]string{"source"}),
	}
	for _, s := range []string{readerErrProbe, readerErrLoop} {
		m.errors.WithLabelValues(s) // exported at 0 from the start, so rate() works
	}
	reg.MustRegister(m.up, m.errors)
	h.metrics = m
}

func (h *Health) init() {
	h.once.Do(func() { h.kick = make(chan struct{}, 1) })
}

func (h *Health) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// Run probes the reader until ctx ends and returns ctx's error.
func (h *Health) Run(ctx context.Context) error {
	h.init()
	every := h.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.probe(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-h.kick:
		}
	}
}

func (h *Health) probe(ctx context.Context) {
	if h.Probe == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := h.Probe(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	was := h.up.Swap(err == nil)
	first := !h.probed.Swap(true)
	switch {
	case err != nil:
		h.count(readerErrProbe)
		if was || first {
			h.log().Warn("card reader unavailable: taps are not taken until it is back", "err", err)
		}
	case !was && !first:
		h.log().Info("card reader is back")
	}
	if h.metrics != nil {
		h.metrics.up.Set(b2f(err == nil))
	}
}

func (h *Health) count(source string) {
	if h.metrics != nil {
		h.metrics.errors.WithLabelValues(source).Inc()
	}
}

// loopFailed records a reader failure the loop saw and asks for a probe
// now, so the reader's state follows within moments.
func (h *Health) loopFailed() {
	if h == nil {
		return
	}
	h.init()
	h.count(readerErrLoop)
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *Health) setRunning(v bool) {
	if h != nil {
		h.running.Store(v)
	}
}

// Ready reports whether the validator takes taps now, and if not, why in
// a few words (no error text: /readyz answers anyone who can reach it).
func (h *Health) Ready() (bool, string) {
	switch {
	case !h.running.Load():
		return false, "the reader loop is not running"
	case !h.probed.Load():
		return false, "the card reader has not been checked yet"
	case !h.up.Load():
		return false, "the card reader is unavailable"
	}
	return true, ""
}

// Handler serves GET /healthz (the process answers) and GET /readyz (it
// takes taps: 200, else 503 with the reason), for a service manager or a
// load balancer's checks. They need no authentication and reveal nothing
// beyond that.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plainText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := h.Ready(); !ok {
			plainText(w, http.StatusServiceUnavailable, "not ready: "+why)
			return
		}
		plainText(w, http.StatusOK, "ready")
	})
	return mux
}

func plainText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n")) //nolint:errcheck // the prober went away
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
