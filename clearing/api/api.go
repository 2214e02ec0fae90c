// Package api is clearing's HTTP JSON API for finance staff and their
// tools:
//
//	GET  /v1/compensation?period=YYYY-MM[&carrier=X][&by=category,route,day][&format=json|csv|xlsx]
//	GET  /v1/reconciliation?period=YYYY-MM
//	GET  /v1/statements/{period}
//	GET  /v1/statements/{period}/verify[?deep=true]
//	POST /v1/statements/{period}/close[?early=true]
//	GET  /v1/held?period=YYYY-MM[&carrier=X][&reason=R][&decided=true][&after=DEVICE/SEQ][&limit=N]
//	POST /v1/held/decide {"rides": ["DEVICE/SEQ"...], "decision": "release"|"reject", "reason": "..."}
//	GET  /v1/proof?period=YYYY-MM
//	GET  /metrics (when a Prometheus gatherer is given)
//
// The held-ride endpoints (held rides, decisions, the card's proof per
// carrier) authenticate every request with Server.Auth: finance staff
// list and decide, auditors list. A decision records the caller, the time
// and the written reason.
//
// Every error is a JSON object {"error": "..."} whose message says what
// to do about it, with a status code that tells a client whether trying
// again can help.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
)

// Server answers the API from a store.
type Server struct {
	Store store.Store
	// Statements closes and verifies statements; without it the close
	// and verify endpoints answer 503.
	Statements *statement.Service
	// Location is the city's time zone (default UTC).
	Location *time.Location
	// Gatherer, when set, is served at /metrics.
	Gatherer prometheus.Gatherer
	// Log receives a line per failed request (default slog.Default()).
	Log *slog.Logger
	// Timeout bounds each request's store work (default 30 s).
	Timeout time.Duration
	// Auth authenticates the held-ride endpoints; without it they answer
	// 503.
	Auth Authenticator
	// Now is the clock decisions are stamped with (default time.Now).
	Now func() time.Time
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/compensation", s.compensation)
	mux.HandleFunc("GET /v1/reconciliation", s.reconciliation)
	mux.HandleFunc("GET /v1/statements/{period}", s.statements)
	mux.HandleFunc("GET /v1/statements/{period}/verify", s.verify)
	mux.HandleFunc("POST /v1/statements/{period}/close", s.close)
	mux.HandleFunc("GET /v1/held", s.held)
	mux.HandleFunc("POST /v1/held/decide", s.decide)
	mux.HandleFunc("GET /v1/proof", s.proof)
	if s.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}))
	}
	// The same paths without a method catch the wrong method, and "/"
	// anything else, so that these errors are JSON too.
	for path, allow := range map[string]string{
		"/v1/compensation": "GET", "/v1/reconciliation": "GET", "/v1/statements/{period}": "GET",
		"/v1/statements/{period}/verify": "GET", "/v1/statements/{period}/close": "POST",
		"/v1/held": "GET", "/v1/held/decide": "POST", "/v1/proof": "GET",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			s.fail(w, r, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: use %s", r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such endpoint %s; see GET /v1/compensation, /v1/reconciliation, /v1/statements/{period}", r.URL.Path))
	})
	return mux
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	t := s.Timeout
	if t <= 0 {
		t = 30 * time.Second
	}
	return context.WithTimeout(r.Context(), t)
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func (s *Server) loc() *time.Location {
	if s.Location != nil {
		return s.Location
	}
	return time.UTC
}

// errorDoc is the body of every error.
type errorDoc struct {
	Error string `json:"error"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if status >= 500 {
		s.log().Error("api request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, errorDoc{Error: err.Error()})
}

// storeError answers a failure of the store: a request past its deadline
// may work later; anything else is the server's problem.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		s.fail(w, r, http.StatusServiceUnavailable, fmt.Errorf("the clearing database did not answer in time (%w); try again later", err))
		return
	}
	s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("%w; the clearing service logged it, tell its operator", err))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away; nothing to tell it
}

// period reads and checks a period from the query or the path.
func (s *Server) period(w http.ResponseWriter, r *http.Request, p string) (string, bool) {
	if p == "" {
		s.fail(w, r, http.StatusBadRequest, errors.New("no period: add period=YYYY-MM, e.g. period=2026-11"))
		return "", false
	}
	if _, err := store.ParsePeriod(p); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return "", false
	}
	return p, true
}

func (s *Server) compensation(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	period, ok := s.period(w, r, q.Get("period"))
	if !ok {
		return
	}
	var d report.Detail
	if by := q.Get("by"); by != "" {
		for _, part := range strings.Split(by, ",") {
			switch part {
			case "category":
				d.Category = true
			case "route":
				d.Route = true
			case "day":
				d.Day = true
			default:
				s.fail(w, r, http.StatusBadRequest, fmt.Errorf("by=%q: list any of category, route, day, separated by commas", by))
				return
			}
		}
	}
	format := q.Get("format")
	switch format {
	case "", "json", "csv", "xlsx":
	default:
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("format=%q: use json, csv or xlsx", format))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	c, err := report.BuildCompensation(ctx, s.Store, period, q.Get("carrier"), d)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	switch format {
	case "csv", "xlsx":
		types := map[string]string{"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
		w.Header().Set("Content-Type", types[format])
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="compensation-%s.%s"`, period, format))
		if err := report.WriteCompensation(w, format, c); err != nil {
			s.log().Error("write compensation", "format", format, "err", err)
		}
		return
	}
	writeJSON(w, http.StatusOK, report.CompensationJSON(c))
}

func (s *Server) reconciliation(w http.ResponseWriter, r *http.Request) {
	period, ok := s.period(w, r, r.URL.Query().Get("period"))
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	rec, err := report.BuildReconciliation(ctx, s.Store, period, s.loc())
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, report.ReconciliationJSON(rec))
}

// statementsDoc is the answer about a period's statements.
type statementsDoc struct {
	Period     string                `json:"period"`
	Closed     bool                  `json:"closed"`
	Statements []report.StatementDoc `json:"statements"`
}

func docOf(period string, sts []store.Statement) statementsDoc {
	d := statementsDoc{Period: period, Statements: []report.StatementDoc{}}
	for _, st := range sts {
		d.Statements = append(d.Statements, report.StatementJSON(st))
		d.Closed = st.Closed
	}
	return d
}

func (s *Server) statements(w http.ResponseWriter, r *http.Request) {
	period, ok := s.period(w, r, r.PathValue("period"))
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	sts, err := s.Store.Statements(ctx, period)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, docOf(period, sts))
}

func (s *Server) flag(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("%s=%q: use true or false", name, v))
		return false, false
	}
	return b, true
}

func (s *Server) close(w http.ResponseWriter, r *http.Request) {
	period, ok := s.period(w, r, r.PathValue("period"))
	if !ok {
		return
	}
	early, ok := s.flag(w, r, "early")
	if !ok {
		return
	}
	if s.Statements == nil {
		s.fail(w, r, http.StatusServiceUnavailable, errors.New("this clearing service has no signing key: start it with --keystore or --pkcs11-module to close statements"))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	sts, err := s.Statements.Close(ctx, period, early)
	switch {
	case errors.Is(err, store.ErrPeriodClosed):
		s.fail(w, r, http.StatusConflict, fmt.Errorf("%w; GET /v1/statements/%s shows it", err, period))
	case errors.Is(err, statement.ErrNotOver):
		s.fail(w, r, http.StatusConflict, fmt.Errorf("%w (add early=true to do so)", err))
	case err != nil:
		s.storeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, docOf(period, sts))
	}
}

// verificationDoc is one statement's verification.
type verificationDoc struct {
	Period        string   `json:"period"`
	Adjusts       string   `json:"adjusts,omitempty"`
	OK            bool     `json:"ok"`
	Signed        bool     `json:"signed"`
	RollupMatches *bool    `json:"rollup_matches,omitempty"`
	TapsMatch     *bool    `json:"taps_match,omitempty"`
	Problems      []string `json:"problems"`
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	period, ok := s.period(w, r, r.PathValue("period"))
	if !ok {
		return
	}
	deep, ok := s.flag(w, r, "deep")
	if !ok {
		return
	}
	if s.Statements == nil {
		s.fail(w, r, http.StatusServiceUnavailable, errors.New("this clearing service has no key store: start it with --keystore or --pkcs11-module to verify statements"))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	vs, err := s.Statements.Verify(ctx, period, deep)
	if errors.Is(err, statement.ErrNotClosed) {
		s.fail(w, r, http.StatusConflict, err)
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := []verificationDoc{}
	for _, v := range vs {
		d := verificationDoc{Period: v.Statement.Period, Adjusts: v.Statement.Adjusts, OK: v.OK(), Signed: v.Signed, Problems: v.Problems}
		if d.Problems == nil {
			d.Problems = []string{}
		}
		if deep {
			d.RollupMatches, d.TapsMatch = &v.RollupMatches, &v.TapsMatch
		}
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, out)
}
