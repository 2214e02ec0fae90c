package health_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/health"
)

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestProbes(t *testing.T) {
	var logs bytes.Buffer
	dbErr := errors.New("dial tcp 10.0.0.5:5432: connection refused (password=hunter2)")
	var failing error
	p := &health.Probes{Log: slog.New(slog.NewTextHandler(&logs, nil)), Timeout: 50 * time.Millisecond,
		Checks: []health.Check{{Name: "store", Fn: func(context.Context) error { return failing }}}}
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "sign in", http.StatusUnauthorized) })
	h := p.Wrap(api)

	if code, body := get(t, h, "GET", "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, h, "GET", "/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	failing = dbErr
	code, body := get(t, h, "GET", "/readyz")
	if code != http.StatusServiceUnavailable || body != "not ready\n" {
		t.Errorf("/readyz when the store fails = %d %q, want 503 and nothing more", code, body)
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("the reason is not in the log: %s", logs.String())
	}
	// Repeated failures are logged once.
	get(t, h, "GET", "/readyz")
	if n := strings.Count(logs.String(), "not ready"); n != 1 {
		t.Errorf("%d 'not ready' lines for one change", n)
	}
	// A hanging check is a failed one.
	p.Checks = []health.Check{{Name: "slow", Fn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}}
	if code, _ := get(t, h, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a hanging check = %d", code)
	}
	p.Checks = nil
	p.Stopping()
	if code, _ := get(t, h, "GET", "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while stopping = %d", code)
	}
	if code, _ := get(t, h, "GET", "/healthz"); code != 200 {
		t.Errorf("/healthz while stopping = %d", code)
	}
	if code, _ := get(t, h, "POST", "/healthz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d", code)
	}
	// Everything else goes to the wrapped handler, with its own checks.
	if code, _ := get(t, h, "GET", "/v1/compensation"); code != http.StatusUnauthorized {
		t.Errorf("other paths = %d, want the wrapped handler's 401", code)
	}
	if code, _ := get(t, p, "GET", "/metrics"); code != http.StatusNotFound {
		t.Errorf("the bare probes answered /metrics with %d", code)
	}
}
