// Package api is the registry's HTTP JSON API, on net/http's pattern
// routing.
//
// # Who may call what
//
// Every route is in one table ([Routes]) with its access policy, and the
// server refuses any request whose route has none: a route added without
// a policy answers 403 until it gets one, and the tests that walk the
// table fail. Only /healthz and /readyz, which reveal nothing, answer
// without one.
//
//   - Sign-in routes (/v1/auth/...) need no credentials and are
//     throttled per client address and per account (registry/signin):
//     staff send their user name and password, residents their registry
//     number and then the one-time code sent to their registered
//     contact. Each answers with a session token.
//   - Every other route needs `Authorization: Bearer rgt_...`: a session
//     token from a sign-in, or a machine token (transit registry token
//     create) that ends after a set time. Unknown, ended and revoked
//     tokens get 401; too many from one address get 429 with
//     Retry-After. The route's registry.Action decides, with the role
//     table (registry.Allowed), who may call it: 403 for the rest.
//   - Routes that return personal data (Route.Personal) need a stated
//     purpose, the `purpose` query parameter or a `Purpose` header
//     (residents reading their own data state none), and the store
//     writes an audit entry for every one. Errors and conflicts name no
//     other person.
//   - /v1/validator/ is for validators: each request is signed with the
//     validator's own batch key (validator/devauth), and the files it
//     gets are signed by the HSM.
//
// Errors are JSON, `{"error": "what went wrong and what to do"}`, with the
// status saying the kind: 400 bad input or no purpose, 401 no or unknown
// token, 403 role not allowed, 404 not found, 409 conflict with the
// registry (a duplicate person, a second card, a status change the card
// lifecycle forbids), 413 body too large, 429 too many failures, 500 the
// registry's fault, 503 the audit log failed verification.
//
// Request logs name the route pattern and the client address, never the
// URL: query strings may carry registry numbers.
//
// # Endpoints
//
//	POST /v1/auth/login                           {user, password} -> session token          anyone (throttled)
//	POST /v1/auth/resident/code                   {registry_number} -> {sign_in}             anyone (throttled)
//	POST /v1/auth/resident/token                  {sign_in, code} -> session token           anyone (throttled)
//	POST /v1/auth/logout                          end the calling token                       any role
//	POST /v1/auth/introspect                      {token} -> {active, user, role, expires}    service
//	GET  /v1/tokens?all=1&user=                   tokens and sessions, last use               supervisor
//	POST /v1/tokens/{id}/revoke                   {confirm: true}                             supervisor
//	POST /v1/residents                            register {registry_number, name, birth_date, contact}  desk, supervisor
//	GET  /v1/residents?registry_number=|name=     search (purpose)                                      desk, supervisor
//	GET  /v1/residents/{id}                       record, entitlements, cards (purpose)                 desk, supervisor
//	POST /v1/residents/{id}/entitlements          add {category, legal_basis, evidence, valid_from,     desk, supervisor
//	                                              valid_to, funding, monthly_limit}
//	POST /v1/residents/{id}/entitlements/{eid}/end  {valid_to}                                          desk, supervisor
//	POST /v1/residents/{id}/cards                 order a card                                          desk, supervisor
//	POST /v1/cards/{number}/status                {status: personalised|active|expired, note}           desk, supervisor
//	POST /v1/cards/{number}/block                 {reason: lost|stolen|fraud|benefit-revoked|           desk, supervisor
//	                                              blocked-by-desk, note}
//	POST /v1/cards/{number}/replace               {clearing_balance_kop, card_balance_kop?}             desk, supervisor
//	GET  /v1/cards/{number}                       status and validity only (no holder, no benefit)      desk, supervisor
//	GET  /v1/cards/{number}/personalisation       card data and holder (purpose)                        desk, supervisor
//	GET  /v1/cards/events?since=&limit=           card events, no personal data                         supervisor, finance, auditor, service
//	GET  /v1/cards/blocked                        blocked cards and hotlist version                     supervisor, finance, auditor, service
//	GET  /v1/cards/records?since=&limit=          cards' entitlements and benefit revocations for       supervisor, finance, auditor, service
//	                                              clearing (no personal data)
//	GET  /v1/tariff?since=N                       the signed tariff validators fetch, for clearing      supervisor, finance, auditor, service
//	GET  /v1/entitlements/expiring?days=30&format=csv  (purpose)                                       desk, supervisor
//	POST /v1/import?dry_run=1                     benefit-register CSV (purpose; IMPORT.md)             supervisor
//	GET  /v1/audit?resident=&after=&limit=        the audit log                                         auditor
//	GET  /v1/audit/verification                   the last verification of the audit chain              auditor
//	GET  /v1/me, GET /v1/me/audit                 one's own record, who read it, and whether the        resident
//	                                              log verified
//	GET  /v1/residents/{id}/notices               notice setting, notices sent (purpose)                desk, supervisor
//	POST /v1/residents/{id}/notices               {opt_out: true|false}                                 desk, supervisor
//	GET  /v1/me/notices, POST /v1/me/notices      one's own notices; {opt_out: true|false}              resident
//	GET  /metrics                                 Prometheus metrics (with Options.Gatherer)            operator
//	GET  /v1/validator/hotlist, /v1/validator/tariff  signed files (registry/publish)                  validators (devauth)
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/internal/httpserve"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/throttle"
	"github.com/citycard/transit/validator/devauth"
)

// Options configures a Server.
type Options struct {
	// Location is the city's time zone, which decides what "today" is
	// (expiring entitlements, import validation); nil means UTC.
	Location *time.Location
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per request; nil means slog.Default().
	Logger *slog.Logger
	// SignIn checks tokens, passwords and codes; nil means one over the
	// store with default settings and no resident sign-in.
	SignIn *signin.Service
	// Audit, if set, is the monitor whose last verification of the
	// audit chain residents and auditors are shown.
	Audit *auditchain.Monitor
	// Gatherer, if set, is served at /metrics to operators; Metrics, if
	// set, gets the API's own counters (refused requests).
	Gatherer prometheus.Gatherer
	Metrics  prometheus.Registerer
	// Validator serves /v1/validator/ to validators whose requests
	// Devices verifies (see the package comment); it sees the path below
	// /v1/validator ("/hotlist"). Without both, /v1/validator/ answers
	// 404 saying how to enable publishing.
	Validator http.Handler
	Devices   *devauth.Verifier
}

// Limits on request bodies.
const (
	MaxJSONBody   = 1 << 20  // 1 MiB
	MaxImportBody = 64 << 20 // 64 MiB: 180,000 rows take about 40 MiB
)

// Server serves the API. It is an http.Handler.
type Server struct {
	st        store.Store
	loc       *time.Location
	now       func() time.Time
	log       *slog.Logger
	signin    *signin.Service
	monitor   *auditchain.Monitor
	gatherer  prometheus.Gatherer
	validator http.Handler
	devices   *devauth.Verifier
	mux       *http.ServeMux
	policy    map[string]Route // by pattern
	// deviceFailures slows an address that sends validator requests
	// that do not verify: each names a device whose key the HSM derives.
	deviceFailures *throttle.Limiter
	refused        *prometheus.CounterVec
}

// ValidatorPrefix is the path under which Options.Validator answers.
const ValidatorPrefix = "/v1/validator/"

// Auth is how a route's callers prove who they are.
type Auth string

// Kinds of authentication.
const (
	// AuthToken: a bearer token, whose role Action decides on.
	AuthToken Auth = "token"
	// AuthSignIn: none; the route is a sign-in, throttled.
	AuthSignIn Auth = "sign-in"
	// AuthDevice: a validator's signed request (validator/devauth).
	AuthDevice Auth = "device"
)

// Route is one endpoint and its access policy.
type Route struct {
	Pattern string // as http.ServeMux takes it: "GET /v1/residents/{id}"
	Auth    Auth
	// Action is what the caller's role must be allowed (AuthToken);
	// empty lets in any authenticated caller (to end their own session).
	Action registry.Action
	// Personal: the answer holds personal data. The caller states a
	// purpose (residents reading their own data need not) and the read is
	// audited.
	Personal bool
}

type handler func(s *Server, w http.ResponseWriter, r *http.Request, a registry.Access) error

type route struct {
	Route
	h handler
}

func tok(pattern string, act registry.Action, h handler) route {
	return route{Route{Pattern: pattern, Auth: AuthToken, Action: act}, h}
}

func personal(pattern string, act registry.Action, h handler) route {
	return route{Route{Pattern: pattern, Auth: AuthToken, Action: act, Personal: true}, h}
}

func public(pattern string, h handler) route {
	return route{Route{Pattern: pattern, Auth: AuthSignIn}, h}
}

// routes is the API.
var routes = []route{
	public("POST /v1/auth/login", (*Server).login),
	public("POST /v1/auth/resident/code", (*Server).residentCode),
	public("POST /v1/auth/resident/token", (*Server).residentToken),
	tok("POST /v1/auth/logout", "", (*Server).logout),
	tok("POST /v1/auth/introspect", registry.ActIntrospect, (*Server).introspect),
	tok("GET /v1/tokens", registry.ActTokens, (*Server).tokens),
	tok("POST /v1/tokens/{id}/revoke", registry.ActTokens, (*Server).revokeToken),

	tok("POST /v1/residents", registry.ActRegister, (*Server).addResident),
	personal("GET /v1/residents", registry.ActReadPersonal, (*Server).findResidents),
	personal("GET /v1/residents/{id}", registry.ActReadPersonal, (*Server).resident),
	tok("POST /v1/residents/{id}/entitlements", registry.ActEntitlements, (*Server).addEntitlement),
	tok("POST /v1/residents/{id}/entitlements/{eid}/end", registry.ActEntitlements, (*Server).endEntitlement),
	tok("POST /v1/residents/{id}/cards", registry.ActCards, (*Server).orderCard),
	tok("POST /v1/cards/{number}/status", registry.ActCards, (*Server).setStatus),
	tok("POST /v1/cards/{number}/block", registry.ActCards, (*Server).block),
	tok("POST /v1/cards/{number}/replace", registry.ActCards, (*Server).replace),
	tok("GET /v1/cards/{number}", registry.ActCards, (*Server).card),
	personal("GET /v1/cards/{number}/personalisation", registry.ActPersonalise, (*Server).personalisation),
	tok("GET /v1/cards/events", registry.ActCardEvents, (*Server).cardEvents),
	tok("GET /v1/cards/blocked", registry.ActCardEvents, (*Server).blocked),
	tok("GET /v1/cards/records", registry.ActCardEvents, (*Server).cardRecords),
	tok("GET /v1/tariff", registry.ActCardEvents, (*Server).publishedTariff),
	personal("GET /v1/entitlements/expiring", registry.ActExpiring, (*Server).expiring),
	personal("POST /v1/import", registry.ActImport, (*Server).importCSV),
	// The audit log names residents by id only, and who read their
	// records and why: auditors read it without stating a purpose.
	tok("GET /v1/audit", registry.ActAudit, (*Server).audit),
	tok("GET /v1/audit/verification", registry.ActAudit, (*Server).verification),
	personal("GET /v1/me", registry.ActOwnData, (*Server).me),
	// Who read one's record, and why: names no one but staff.
	tok("GET /v1/me/audit", registry.ActOwnData, (*Server).myAudit),
	// Benefit-ending notices: what was sent, and opting out (notices.go).
	personal("GET /v1/residents/{id}/notices", registry.ActReadPersonal, (*Server).residentNotices),
	tok("POST /v1/residents/{id}/notices", registry.ActRegister, (*Server).setResidentNotices),
	personal("GET /v1/me/notices", registry.ActOwnData, (*Server).myNotices),
	tok("POST /v1/me/notices", registry.ActOwnData, (*Server).setMyNotices),
	tok("GET /metrics", registry.ActMetrics, (*Server).metrics),
	{Route{Pattern: ValidatorPrefix, Auth: AuthDevice}, (*Server).validatorFiles},
}

// Routes returns every endpoint with its access policy.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = r.Route
	}
	return out
}

// healthPatterns answer without a policy: they reveal nothing.
var healthPatterns = map[string]bool{"GET /healthz": true, "GET /readyz": true, "/healthz": true, "/readyz": true}

// New returns a Server on st.
func New(st store.Store, opt Options) *Server {
	s := &Server{st: st, loc: opt.Location, now: opt.Now, log: opt.Logger, signin: opt.SignIn, monitor: opt.Audit,
		gatherer: opt.Gatherer, validator: opt.Validator, devices: opt.Devices, mux: http.NewServeMux(), policy: map[string]Route{}}
	s.deviceFailures = throttle.New(throttle.PerAddress, opt.Now)
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "registry_api_refused_total",
		Help: "Requests the registry API refused, by route and status: bad input, no purpose, roles that may not, conflicts, throttling.",
	}, []string{"route", "status"})
	if opt.Metrics != nil {
		opt.Metrics.MustRegister(s.refused)
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.signin == nil {
		var err error
		if s.signin, err = signin.New(signin.Options{Store: st, Now: s.now, Log: s.log}); err != nil {
			panic(err) // only a nil store fails, and st is not
		}
	}
	for _, rt := range routes {
		s.policy[rt.Pattern] = rt.Route
		s.mux.Handle(rt.Pattern, s.wrap(rt))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+clip(r.URL.Path)+"; the API is under /v1 (see registry/api)")
	})
	return s
}

// Handle adds a route that needs no policy of the API's own: only
// /healthz and /readyz, which reveal nothing, are let through without
// one; any other pattern added this way is refused until it is in the
// route table.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Responses carry personal data: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, pattern := s.mux.Handler(r)
	if _, ok := s.policy[pattern]; !ok && pattern != "/" && pattern != "" && !healthPatterns[pattern] {
		// Auth is the default: a route that reached the mux some other
		// way is refused rather than served without a check.
		s.log.Error("request to a route without an access policy refused", "route", pattern, "addr", clientAddr(r))
		writeError(w, http.StatusForbidden, "this endpoint has no access policy and is refused; it must be added to registry/api's route table")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// today is the city's current date.
func (s *Server) today() registry.Date { return registry.Today(s.now(), s.loc) }

// clientAddr is the address of the client, for throttling and the log.
// Behind a proxy it is the proxy's: run the API where it sees its
// clients, or throttle at the proxy as well.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wrap authenticates as the route's policy says, checks the role table
// and the purpose, and runs the handler.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &httpserve.StatusWriter{ResponseWriter: w}
		var actor registry.Actor
		defer func() {
			s.log.Info("request", "route", rt.Pattern, "status", sw.Status, "user", actor.User, "role", actor.Role,
				"addr", clientAddr(r), "duration", time.Since(start).Round(time.Microsecond))
		}()
		a := registry.Access{}
		switch rt.Auth {
		case AuthSignIn:
			if err := rt.h(s, sw, r, a); err != nil {
				s.fail(sw, r, err)
			}
			return
		case AuthDevice:
			if err := rt.h(s, sw, r, a); err != nil {
				s.fail(sw, r, err)
			}
			return
		case AuthToken:
		default:
			s.fail(sw, r, fmt.Errorf("%w: route %s has no known access policy", registry.ErrForbidden, rt.Pattern))
			return
		}
		ti, err := s.authenticate(r)
		if err != nil {
			s.fail(sw, r, err)
			return
		}
		actor = ti.Actor
		if rt.Action != "" && !registry.Allowed(actor.Role, rt.Action) {
			s.fail(sw, r, fmt.Errorf("%w: role %s may not %s (%s); ask a user whose role may", registry.ErrForbidden, actor.Role, rt.Action, rt.Pattern))
			return
		}
		purpose := r.URL.Query().Get("purpose")
		if purpose == "" {
			purpose = r.Header.Get("Purpose")
		}
		a = registry.Access{Actor: actor, Purpose: purpose}
		if rt.Personal && actor.Role != registry.RoleResident {
			// The store checks again; refusing here keeps a body from
			// being read for nothing.
			if err := a.PermitRead(rt.Action, 0); err != nil {
				s.fail(sw, r, err)
				return
			}
		} else if purpose != "" {
			if _, err := registry.CleanPurpose(purpose); err != nil {
				s.fail(sw, r, err)
				return
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, ti))
		if err := rt.h(s, sw, r, a); err != nil {
			s.fail(sw, r, err)
		}
	})
}

type tokenKey struct{}

// authenticate maps the bearer token to its token record.
func (s *Server) authenticate(r *http.Request) (registry.TokenInfo, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" {
		return registry.TokenInfo{}, fmt.Errorf("%w: no API token; sign in (POST /v1/auth/login) or send `Authorization: Bearer <token>` (transit registry token create makes one)", registry.ErrUnauthenticated)
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return registry.TokenInfo{}, fmt.Errorf("%w: the Authorization header must be `Bearer <token>`", registry.ErrUnauthenticated)
	}
	return s.signin.Bearer(r.Context(), clientAddr(r), token)
}

// fail writes err as a JSON error with the status its kind calls for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		tooBig    *http.MaxBytesError
		problems  registry.ImportErrors
		throttled *signin.ThrottledError
	)
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &tooBig):
		status = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("request body over %d bytes; send less (split an import file)", tooBig.Limit)
	case errors.As(err, &throttled):
		status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(int(throttled.RetryAfter().Seconds())))
	case errors.Is(err, registry.ErrUnauthenticated):
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="registry"`)
	case errors.Is(err, registry.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, registry.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, registry.ErrDuplicate), errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrTransition):
		status = http.StatusConflict
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, registry.ErrNoPurpose):
		status = http.StatusBadRequest
	case errors.Is(err, signin.ErrResidentSignInOff), errors.Is(err, auditchain.ErrBroken):
		status = http.StatusServiceUnavailable
	}
	if status == http.StatusInternalServerError {
		// The client gets an id, not database details; the log has both.
		id := requestID()
		s.log.Error("request failed", "route", r.Pattern, "error", err, "id", id)
		err = fmt.Errorf("the registry failed (error id %s); try again, and report the id if it persists", id)
	}
	if status < http.StatusInternalServerError {
		// Counted and logged for the operator.
		s.refused.WithLabelValues(r.Pattern, strconv.Itoa(status)).Inc()
		s.log.Info("request refused", "route", r.Pattern, "status", status, "addr", clientAddr(r), "reason", oneLine(err.Error()))
	}
	body := errorBody{Error: err.Error()}
	if errors.As(err, &problems) {
		for _, p := range problems {
			body.Problems = append(body.Problems, problem{Line: p.Line, Field: p.Field, Problem: p.Problem()})
		}
	}
	writeJSON(w, status, body)
}

// oneLine keeps a refusal's reason to one bounded line in the log.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

type errorBody struct {
	Error    string    `json:"error"`
	Problems []problem `json:"problems,omitempty"`
}

// problem is one bad line of an import.
type problem struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Problem string `json:"problem"`
}

func requestID() string {
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read does not fail
	return hex.EncodeToString(b[:])
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) //nolint:errcheck // the client went away
}

// decode reads one JSON object into v, refusing unknown fields so that a
// misspelt field is an error rather than a silently missing value, and
// refusing bytes that are not UTF-8, which the JSON decoder would
// otherwise replace without a word.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	if err != nil {
		return err
	}
	if !utf8.Valid(body) {
		return fmt.Errorf("%w: request body is not valid UTF-8; send the text as UTF-8", registry.ErrInvalid)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty request body; send a JSON object", registry.ErrInvalid)
		}
		return fmt.Errorf("%w: request body: %v; send a JSON object with the documented fields", registry.ErrInvalid, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: request body has more than one JSON value; send one object", registry.ErrInvalid)
	}
	return nil
}

// Serve answers requests on ln until ctx is done, then stops accepting
// and waits up to 10 s for requests in flight.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return httpserve.Serve(ctx, ln, h, "registry API", 2*time.Minute)
}

// metrics serves Prometheus metrics to operators.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	if s.gatherer == nil {
		return fmt.Errorf("%w: this registry serves no metrics", registry.ErrNotFound)
	}
	promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// validatorFiles hands a validator's signed request to the publisher.
func (s *Server) validatorFiles(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	if s.validator == nil || s.devices == nil {
		writeError(w, http.StatusNotFound, "this registry publishes no hotlist or tariff; start it with its HSM and a hotlist directory (transit registry serve --help)")
		return nil
	}
	addr := clientAddr(r)
	if wait := s.deviceFailures.Wait(addr); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		http.Error(w, "too many requests that did not verify from this address; wait and try again", http.StatusTooManyRequests)
		return nil
	}
	device, err := s.devices.Verify(r)
	if err != nil {
		s.deviceFailures.Fail(addr)
		s.log.Warn("validator request refused", "addr", addr, "reason", err)
		w.Header().Set("WWW-Authenticate", devauth.Scheme)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil
	}
	s.log.Debug("validator request", "device", device, "addr", clientAddr(r))
	http.StripPrefix(strings.TrimSuffix(ValidatorPrefix, "/"), s.validator).ServeHTTP(w, r)
	return nil
}

// token returns the token the request authenticated with.
func token(r *http.Request) registry.TokenInfo {
	ti, _ := r.Context().Value(tokenKey{}).(registry.TokenInfo)
	return ti
}
