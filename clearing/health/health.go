// Package health serves a service's liveness and readiness probes:
//
//	GET /healthz  200 "ok" while the process serves requests at all
//	GET /readyz   200 "ok" when every readiness check passes, else 503 "not ready"
//
// Both are unauthenticated by design, for orchestrators and load
// balancers, and so they reveal nothing: no version, no check names, no
// error text. Why a service is not ready goes to its log, once per change.
// Clearing, the registry and the console share it.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Check is one readiness condition: the store answers, the consumer has
// joined its group. It returns nil when ready.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Probes answers /healthz and /readyz.
type Probes struct {
	// Checks must all pass for /readyz to answer 200.
	Checks []Check
	// Timeout bounds each check (default 2 s): a probe that hangs is a
	// failed probe.
	Timeout time.Duration
	// Log receives a line when readiness changes; nil means slog.Default().
	Log *slog.Logger

	stopping atomic.Bool
	mu       sync.Mutex
	last     string // the last failure, "" when ready; logged on change
	known    bool
}

// Stopping makes /readyz fail from now on, so that traffic moves away
// while the service shuts down; /healthz still answers.
func (p *Probes) Stopping() { p.stopping.Store(true) }

// Ready runs the checks and returns the first failure, or nil.
func (p *Probes) Ready(ctx context.Context) error {
	if p.stopping.Load() {
		return fmt.Errorf("shutting down")
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	for _, c := range p.Checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := c.Fn(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	return nil
}

// Wrap serves the probes and hands every other request to next, whatever
// authentication next does.
func (p *Probes) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz", "/readyz":
			p.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// ServeHTTP answers /healthz and /readyz; any other path is 404.
func (p *Probes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "use GET", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/healthz":
		w.Write([]byte("ok\n")) //nolint:errcheck // the prober went away
	case "/readyz":
		err := p.Ready(r.Context())
		p.note(err)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready\n")) //nolint:errcheck // the prober went away
			return
		}
		w.Write([]byte("ok\n")) //nolint:errcheck // the prober went away
	default:
		http.NotFound(w, r)
	}
}

// note logs a change of readiness.
func (p *Probes) note(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	p.mu.Lock()
	changed := !p.known || msg != p.last
	p.last, p.known = msg, true
	p.mu.Unlock()
	if !changed {
		return
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	if err != nil {
		log.Warn("not ready", "reason", msg)
	} else {
		log.Info("ready")
	}
}
