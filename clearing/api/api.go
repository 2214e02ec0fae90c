// Package api is clearing's HTTP JSON API for finance staff, operators
// and their tools:
//
//	GET  /v1/compensation?period=YYYY-MM[&carrier=X][&by=category,route,day][&format=json|csv|xlsx]   finance, supervisor
//	GET  /v1/reconciliation?period=YYYY-MM                                                       finance, supervisor, operator
//	GET  /v1/statements/{period}                                                                 finance, supervisor
//	GET  /v1/statements/{period}/verify[?deep=true]                                              finance, supervisor
//	POST /v1/statements/{period}/close?confirm={period}[&early=true][&expect=TOKEN]               supervisor
//	GET  /v1/held?period=YYYY-MM[&carrier=X][&reason=R][&decided=true][&after=DEVICE/SEQ][&limit=N]  finance, auditor
//	POST /v1/held/decide {"rides": ["DEVICE/SEQ"...], "decision": "release"|"reject", "reason": "..."} finance
//	GET  /v1/proof?period=YYYY-MM                                                                finance, auditor
//	GET  /metrics (when a Prometheus gatherer is given)                                          operator
//
// # Who may call what
//
// Clearing has no accounts of its own: callers send the registry's
// bearer token (`Authorization: Bearer rgt_...`, a staff member's
// session from signing in to the registry, or a machine token such as
// Prometheus's), and [Server.Auth] asks the registry whose it is
// (registry/tokencheck: introspection, answers kept 30 s, so a revoked
// token stops working within that). The registry's role table
// (registry.Allowed) then decides, per route ([Routes]): finance reads
// statements, only a supervisor closes a month, operators read metrics
// and reconciliation. No token, or one the registry does not hold live,
// gets 401; a role that may not, 403; too many failures from one
// address, 429 with Retry-After; a registry that cannot be asked, 503.
// A route without a policy is refused; only /healthz and /readyz, which
// reveal nothing, answer without one.
//
// A close is signed with the staff member the request comes from (the
// account the registry names for the token); one without is refused.
// Likewise a decision on held rides (release or reject, with a written
// reason) records the staff member, the time and the reason; auditors
// may read held rides and the card's proof but decide nothing.
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
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/throttle"
)

// Authenticator says whose a bearer token is (*tokencheck.Client). It
// returns an error wrapping registry.ErrUnauthenticated for a token that
// is not live; any other error means it could not tell.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (registry.Actor, error)
}

// Route is one endpoint and the action its callers' role needs.
type Route struct {
	Pattern string
	Action  registry.Action
}

// routes is the API's access policy.
var routes = []Route{
	{"GET /v1/compensation", registry.ActStatements},
	{"GET /v1/reconciliation", registry.ActReconciliation},
	{"GET /v1/statements/{period}", registry.ActStatements},
	{"GET /v1/statements/{period}/verify", registry.ActStatements},
	{"POST /v1/statements/{period}/close", registry.ActCloseStatements},
	{"GET /v1/held", registry.ActReadHeld},
	{"POST /v1/held/decide", registry.ActDecideHeld},
	{"GET /v1/proof", registry.ActReadHeld},
	{"GET /metrics", registry.ActMetrics},
}

// Routes returns every endpoint with its action.
func Routes() []Route { return append([]Route(nil), routes...) }

// open are the patterns that answer without a token: the health checks,
// and the catch-alls that only say a method or path is wrong.
var open = map[string]bool{"GET /healthz": true, "GET /readyz": true, "/healthz": true, "/readyz": true, "/": true,
	"/v1/compensation": true, "/v1/reconciliation": true, "/v1/statements/{period}": true,
	"/v1/statements/{period}/verify": true, "/v1/statements/{period}/close": true,
	"/v1/held": true, "/v1/held/decide": true, "/v1/proof": true}

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
	// Auth checks callers' tokens with the registry; without it every
	// request is refused.
	Auth Authenticator
	// Now is the clock of the throttle and of decisions on held rides;
	// nil means time.Now.
	Now func() time.Time

	once     sync.Once
	failures *throttle.Limiter
}

// Handler returns the API's routes, each behind its access policy.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	handlers := map[string]http.HandlerFunc{
		"GET /v1/compensation":               s.compensation,
		"GET /v1/reconciliation":             s.reconciliation,
		"GET /v1/statements/{period}":        s.statements,
		"GET /v1/statements/{period}/verify": s.verify,
		"POST /v1/statements/{period}/close": s.close,
		"GET /v1/held":                       s.held,
		"POST /v1/held/decide":               s.decide,
		"GET /v1/proof":                      s.proof,
		"GET /metrics": func(w http.ResponseWriter, r *http.Request) {
			if s.Gatherer == nil {
				s.fail(w, r, http.StatusNotFound, errors.New("this clearing service serves no metrics"))
				return
			}
			promhttp.HandlerFor(s.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		},
	}
	for _, rt := range routes {
		mux.Handle(rt.Pattern, s.guard(rt, handlers[rt.Pattern]))
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
		s.fail(w, r, http.StatusNotFound, fmt.Errorf("no such endpoint %s; see GET /v1/compensation, /v1/reconciliation, /v1/statements/{period}, /v1/held, /v1/proof", r.URL.Path))
	})
	return &policed{mux: mux, s: s}
}

// policed refuses requests to routes outside the policy table.
type policed struct {
	mux *http.ServeMux
	s   *Server
}

// Handle adds a handler outside the policy table: only /healthz and
// /readyz answer that way; anything else is refused until it has a
// policy.
func (p *policed) Handle(pattern string, h http.Handler) { p.mux.Handle(pattern, h) }

func (p *policed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, pattern := p.mux.Handler(r)
	known := open[pattern] || pattern == ""
	for _, rt := range routes {
		known = known || rt.Pattern == pattern
	}
	if !known {
		p.s.log().Error("request to a route without an access policy refused", "route", pattern, "addr", clientAddr(r))
		p.s.fail(w, r, http.StatusForbidden, errors.New("this endpoint has no access policy and is refused; it must be added to clearing/api's route table"))
		return
	}
	p.mux.ServeHTTP(w, r)
}

// clientAddr is the caller's address, for throttling and the log.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type actorKey struct{}

// actor returns the caller the guard let in.
func actor(r *http.Request) registry.Actor {
	a, _ := r.Context().Value(actorKey{}).(registry.Actor)
	return a
}

// guard authenticates the caller with the registry and checks its role.
func (s *Server) guard(rt Route, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.once.Do(func() { s.failures = throttle.New(throttle.PerAddress, s.Now) })
		addr := clientAddr(r)
		if wait := s.failures.Wait(addr); wait > 0 {
			retry := (wait + time.Second - 1).Truncate(time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())))
			s.log().Warn("api request refused", "reason", "throttled", "addr", addr, "route", rt.Pattern)
			s.fail(w, r, http.StatusTooManyRequests, fmt.Errorf("too many failed attempts from this address; wait %s and try again", retry))
			return
		}
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			s.failures.Fail(addr)
			s.unauthorized(w, r, addr, errors.New("no token: send `Authorization: Bearer <token>` with your registry token (sign in to the registry, or transit registry token create)"))
			return
		}
		if s.Auth == nil {
			s.fail(w, r, http.StatusServiceUnavailable, errors.New("this clearing service cannot check tokens: start it with --registry and its service token"))
			return
		}
		a, err := s.Auth.Authenticate(r.Context(), token)
		switch {
		case errors.Is(err, registry.ErrUnauthenticated):
			s.failures.Fail(addr)
			s.unauthorized(w, r, addr, err)
			return
		case err != nil:
			s.log().Error("cannot check a token with the registry", "addr", addr, "err", err)
			s.fail(w, r, http.StatusServiceUnavailable, errors.New("clearing cannot check your token with the registry now; try again in a minute"))
			return
		case !registry.Allowed(a.Role, rt.Action):
			s.log().Warn("api request refused", "reason", "role", "user", a.User, "role", a.Role, "addr", addr, "route", rt.Pattern)
			s.fail(w, r, http.StatusForbidden, fmt.Errorf("role %s may not %s (%s); ask a user whose role may", a.Role, rt.Action, rt.Pattern))
			return
		}
		s.log().Info("api request", "route", rt.Pattern, "user", a.User, "role", a.Role, "addr", addr)
		h(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, a)))
	})
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, addr string, err error) {
	s.log().Warn("api request refused", "reason", "unauthenticated", "addr", addr, "path", r.URL.Path)
	w.Header().Set("WWW-Authenticate", `Bearer realm="clearing"`)
	s.fail(w, r, http.StatusUnauthorized, err)
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
	c, err := report.BuildCompensation(ctx, s.Store, report.Query{Period: period, Carrier: q.Get("carrier"), Category: q.Get("category"), Detail: d})
	if errors.Is(err, report.ErrUnknown) {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	c.Location = s.loc()
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
	Period string `json:"period"`
	Closed bool   `json:"closed"`
	// CloseToken fixes an open period's figures: a close with
	// expect=CloseToken closes exactly these or nothing.
	CloseToken string                `json:"close_token,omitempty"`
	Statements []report.StatementDoc `json:"statements"`
}

func docOf(period string, sts []store.Statement) statementsDoc {
	d := statementsDoc{Period: period, Statements: []report.StatementDoc{}}
	for _, st := range sts {
		d.Statements = append(d.Statements, report.StatementJSON(st))
		d.Closed = st.Closed
	}
	if !d.Closed {
		d.CloseToken = statement.Preview{Period: period, Statements: sts}.Token()
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
	// Closing cannot be undone: the request names the period twice
	// (confirm=YYYY-MM) and may carry the figures it was shown
	// (expect=, the token of GET /v1/statements/{period}).
	if r.URL.Query().Get("confirm") != period {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("closing %s cannot be undone: add confirm=%s to mean it (and expect=TOKEN from GET /v1/statements/%s to close only the figures you checked)", period, period, period))
		return
	}
	a := actor(r)
	if a.User == "" {
		s.fail(w, r, http.StatusForbidden, errors.New("closing a period needs a signed-in staff identity, which is signed with the statements; close it in the console or with transit statement close --actor"))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	sts, err := s.Statements.Close(ctx, period, statement.Closing{Early: early, Actor: a.User, Confirmed: true, Expect: r.URL.Query().Get("expect")})
	if err == nil {
		// Who closed it is signed into the statements; the log says from
		// where.
		s.log().Info("period closed", "period", period, "early", early, "user", a.User, "role", a.Role, "addr", clientAddr(r))
	}
	switch {
	case errors.Is(err, statement.ErrChanged):
		s.fail(w, r, http.StatusConflict, err)
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
