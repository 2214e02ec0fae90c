// Package api is the registry's HTTP JSON API, on net/http's pattern
// routing.
//
// Every request carries a staff or resident API token
// (`Authorization: Bearer rgt_...`). Every route belongs to one
// registry.Action, and the role table (registry.Allowed) decides who may
// call it before the handler runs; the store checks again, and writes the
// audit entry of every read of personal data. Such reads need a stated
// purpose: the `purpose` query parameter or a `Purpose` header. Residents
// reading their own data (/v1/me) need none.
//
// Errors are JSON, `{"error": "what went wrong and what to do"}`, with the
// status saying the kind: 400 bad input or no purpose, 401 no or unknown
// token, 403 role not allowed, 404 not found, 409 conflict with the
// registry (a duplicate person, a second card, a status change the card
// lifecycle forbids), 413 body too large, 500 the registry's fault.
//
// Request logs name the route pattern, never the URL: query strings may
// carry registry numbers.
//
// # Endpoints
//
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
//	GET  /v1/cards/{number}                       card data: status, validity, entitlements, purse      desk, supervisor
//	                                              (no holder's personal data)
//	GET  /v1/cards/{number}/personalisation       card data and holder (purpose)                        desk, supervisor
//	GET  /v1/cards/events?since=&limit=           card events, no personal data                         supervisor, finance, auditor, service
//	GET  /v1/cards/blocked                        blocked cards and hotlist version                     supervisor, finance, auditor, service
//	GET  /v1/cards/records?since=&limit=          cards' entitlements and benefit revocations for       supervisor, finance, auditor, service
//	                                              clearing (no personal data)
//	GET  /v1/entitlements/expiring?days=30&format=csv  (purpose)                                       desk, supervisor
//	POST /v1/import?dry_run=1                     benefit-register CSV (purpose; IMPORT.md)             supervisor
//	GET  /v1/audit?resident=&after=&limit=        the audit log                                         auditor
//	GET  /v1/me, GET /v1/me/audit                 one's own record and who read it                      resident
//
// # Validator files
//
// Under /v1/validator/ the server hands requests to Options.Validator
// (registry/publish): the signed hotlist and tariff that validators poll.
// Those requests carry no token: validators authenticate the files by
// their signatures, and the files hold no personal data, only card
// numbers and block reasons.
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
	"strings"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/internal/httpserve"
	"github.com/citycard/transit/registry/store"
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
	// Validator serves /v1/validator/ without a token (see the package
	// comment); it sees the path below /v1/validator ("/hotlist"). Nil
	// answers there with 404 and how to enable publishing.
	Validator http.Handler
}

// Limits on request bodies.
const (
	MaxJSONBody   = 1 << 20  // 1 MiB
	MaxImportBody = 64 << 20 // 64 MiB: 180,000 rows take about 40 MiB
)

// Server serves the API. It is an http.Handler.
type Server struct {
	st  store.Store
	loc *time.Location
	now func() time.Time
	log *slog.Logger
	mux *http.ServeMux
}

// ValidatorPrefix is the path under which Options.Validator answers,
// without a token.
const ValidatorPrefix = "/v1/validator/"

// Route is one endpoint and the action class its callers need.
type Route struct {
	Pattern string // as http.ServeMux takes it: "GET /v1/residents/{id}"
	Action  registry.Action
}

type handler func(s *Server, w http.ResponseWriter, r *http.Request, a registry.Access) error

type route struct {
	Route
	h handler
}

// routes is the API. Each route's action is checked against the role
// table before its handler runs.
var routes = []route{
	{Route{"POST /v1/residents", registry.ActRegister}, (*Server).addResident},
	{Route{"GET /v1/residents", registry.ActReadPersonal}, (*Server).findResidents},
	{Route{"GET /v1/residents/{id}", registry.ActReadPersonal}, (*Server).resident},
	{Route{"POST /v1/residents/{id}/entitlements", registry.ActEntitlements}, (*Server).addEntitlement},
	{Route{"POST /v1/residents/{id}/entitlements/{eid}/end", registry.ActEntitlements}, (*Server).endEntitlement},
	{Route{"POST /v1/residents/{id}/cards", registry.ActCards}, (*Server).orderCard},
	{Route{"POST /v1/cards/{number}/status", registry.ActCards}, (*Server).setStatus},
	{Route{"POST /v1/cards/{number}/block", registry.ActCards}, (*Server).block},
	{Route{"POST /v1/cards/{number}/replace", registry.ActCards}, (*Server).replace},
	{Route{"GET /v1/cards/{number}", registry.ActCards}, (*Server).card},
	{Route{"GET /v1/cards/{number}/personalisation", registry.ActPersonalise}, (*Server).personalisation},
	{Route{"GET /v1/cards/events", registry.ActCardEvents}, (*Server).cardEvents},
	{Route{"GET /v1/cards/blocked", registry.ActCardEvents}, (*Server).blocked},
	{Route{"GET /v1/cards/records", registry.ActCardEvents}, (*Server).cardRecords},
	{Route{"GET /v1/entitlements/expiring", registry.ActExpiring}, (*Server).expiring},
	{Route{"POST /v1/import", registry.ActImport}, (*Server).importCSV},
	{Route{"GET /v1/audit", registry.ActAudit}, (*Server).audit},
	{Route{"GET /v1/me", registry.ActOwnData}, (*Server).me},
	{Route{"GET /v1/me/audit", registry.ActOwnData}, (*Server).myAudit},
}

// Routes returns every endpoint with its action class.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, r := range routes {
		out[i] = r.Route
	}
	return out
}

// New returns a Server on st.
func New(st store.Store, opt Options) *Server {
	s := &Server{st: st, loc: opt.Location, now: opt.Now, log: opt.Logger, mux: http.NewServeMux()}
	if s.loc == nil {
		s.loc = time.UTC
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, rt := range routes {
		s.mux.Handle(rt.Pattern, s.wrap(rt))
	}
	if opt.Validator != nil {
		s.mux.Handle(ValidatorPrefix, http.StripPrefix(strings.TrimSuffix(ValidatorPrefix, "/"), opt.Validator))
	} else {
		s.mux.HandleFunc(ValidatorPrefix, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "this registry publishes no hotlist or tariff; start it with its HSM and a hotlist directory (transit registry serve --help)")
		})
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+"; the API is under /v1 (see registry/api)")
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Responses carry personal data: no cache may keep them.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// today is the city's current date.
func (s *Server) today() registry.Date { return registry.Today(s.now(), s.loc) }

// wrap authenticates, checks the role table, and runs the handler.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &httpserve.StatusWriter{ResponseWriter: w}
		var actor registry.Actor
		defer func() {
			s.log.Info("request", "route", rt.Pattern, "status", sw.Status, "user", actor.User, "role", actor.Role,
				"duration", time.Since(start).Round(time.Microsecond))
		}()
		var err error
		actor, err = s.authenticate(r)
		if err != nil {
			s.fail(sw, r, err)
			return
		}
		if !registry.Allowed(actor.Role, rt.Action) {
			s.fail(sw, r, fmt.Errorf("%w: role %s may not %s (%s); ask a user whose role may", registry.ErrForbidden, actor.Role, rt.Action, rt.Pattern))
			return
		}
		purpose := r.URL.Query().Get("purpose")
		if purpose == "" {
			purpose = r.Header.Get("Purpose")
		}
		if err := rt.h(s, sw, r, registry.Access{Actor: actor, Purpose: purpose}); err != nil {
			s.fail(sw, r, err)
		}
	})
}

// authenticate maps the bearer token to its actor.
func (s *Server) authenticate(r *http.Request) (registry.Actor, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" {
		return registry.Actor{}, fmt.Errorf("%w: no API token; send `Authorization: Bearer <token>` (transit registry token create makes one)", registry.ErrUnauthenticated)
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return registry.Actor{}, fmt.Errorf("%w: the Authorization header must be `Bearer <token>`", registry.ErrUnauthenticated)
	}
	return s.st.Authenticate(r.Context(), registry.HashToken(strings.TrimSpace(token)))
}

// fail writes err as a JSON error with the status its kind calls for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		tooBig   *http.MaxBytesError
		problems registry.ImportErrors
	)
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &tooBig):
		status = http.StatusRequestEntityTooLarge
		err = fmt.Errorf("request body over %d bytes; send less (split an import file)", tooBig.Limit)
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
	}
	if status == http.StatusInternalServerError {
		// The client gets an id, not database details; the log has both.
		id := requestID()
		s.log.Error("request failed", "route", r.Pattern, "error", err, "id", id)
		err = fmt.Errorf("the registry failed (error id %s); try again, and report the id if it persists", id)
	}
	body := errorBody{Error: err.Error()}
	if errors.As(err, &problems) {
		for _, p := range problems {
			body.Problems = append(body.Problems, problem{Line: p.Line, Field: p.Field, Problem: p.Problem()})
		}
	}
	writeJSON(w, status, body)
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
// misspelt field is an error rather than a silently missing value.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
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
