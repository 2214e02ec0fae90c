package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// flakyReader's WaitCard waits for no card, and fails while told to.
type flakyReader struct {
	mu  sync.Mutex
	err error
}

func (r *flakyReader) WaitCard(ctx context.Context) (Presented, error) {
	for {
		r.mu.Lock()
		err := r.err
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func (r *flakyReader) WaitRemoval(context.Context, Presented) error { return nil }

func (r *flakyReader) set(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// switchProbe answers what the test last set.
type switchProbe struct {
	mu    sync.Mutex
	err   error
	calls int
}

func (p *switchProbe) probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.err
}

func (p *switchProbe) set(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *switchProbe) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, strings.TrimSpace(string(body))
}

// TestHealthFollowsTheReader walks a validator through start, a reader
// that goes away and comes back, and the loop's end, as /readyz and the
// reader metrics show it.
func TestHealthFollowsTheReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	probe := &switchProbe{}
	reg := prometheus.NewRegistry()
	h := &Health{Probe: probe.probe, Every: time.Hour, Log: slog.New(slog.DiscardHandler)}
	h.Register(reg)
	srv := h.Handler()

	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "loop is not running") {
		t.Fatalf("before start: %d %q", code, body)
	}
	if code, body := get(t, srv, "/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("healthz: %d %q", code, body)
	}

	reader := &flakyReader{}
	a, _ := newAgent(t, fakeCards{})
	loop := &Loop{Agent: a, Reader: reader, Health: h, MaxBackoff: 10 * time.Millisecond}
	loopDone := make(chan error, 1)
	go func() { loopDone <- loop.Run(ctx) }()
	go h.Run(ctx) //nolint:errcheck // ends with ctx
	eventually(t, "ready after the first probe", func() bool { ok, _ := h.Ready(); return ok })
	if code, body := get(t, srv, "/readyz"); code != http.StatusOK || body != "ready" {
		t.Fatalf("running: %d %q", code, body)
	}
	if got := testutil.ToFloat64(h.metrics.up); got != 1 {
		t.Fatalf("reader_up %v, want 1", got)
	}

	// The reader goes away: the loop's failure makes the probe look at
	// once, well before the hour between regular probes.
	probe.set(errors.New("reader not present"))
	reader.set(errors.New("reader unplugged"))
	eventually(t, "not ready once the reader failed", func() bool { ok, _ := h.Ready(); return !ok })
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || body != "not ready: the card reader is unavailable" {
		t.Fatalf("reader gone: %d %q", code, body)
	}
	if strings.Contains(fmtMetrics(t, reg), "unplugged") {
		t.Fatal("the metrics carry error text")
	}
	eventually(t, "loop errors counted", func() bool {
		return testutil.ToFloat64(h.metrics.errors.WithLabelValues(readerErrLoop)) >= 1 &&
			testutil.ToFloat64(h.metrics.errors.WithLabelValues(readerErrProbe)) >= 1
	})
	if got := testutil.ToFloat64(h.metrics.up); got != 0 {
		t.Fatalf("reader_up %v with the reader gone, want 0", got)
	}

	// Back: the next failure-driven probe sees it.
	probe.set(nil)
	n := probe.count()
	reader.set(nil)
	h.loopFailed() // as the loop's last failure would
	eventually(t, "ready again", func() bool { ok, _ := h.Ready(); return ok && probe.count() > n })

	cancel()
	if err := <-loopDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("loop: %v", err)
	}
	if ok, why := h.Ready(); ok || !strings.Contains(why, "loop") {
		t.Fatalf("after the loop ended: ready %v (%s)", ok, why)
	}
}

func fmtMetrics(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		b.WriteString(mf.String())
	}
	return b.String()
}

func TestTariffVersionMetric(t *testing.T) {
	a, _ := newAgent(t, fakeCards{})
	c := NewTariffCollector(a)
	if got := testutil.ToFloat64(c); got != 4 {
		t.Fatalf("tariff version %v, want 4", got)
	}
	next := *testTariff
	next.Version = 9
	a.SetTariff(&next)
	if got := testutil.ToFloat64(c); got != 9 {
		t.Fatalf("after an update: %v, want 9", got)
	}
}
