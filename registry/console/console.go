// Package console is the web console of the city card platform: server-
// rendered pages for the issuance desk, finance staff, auditors,
// operators and residents, over the registry store and the clearing
// store.
//
// # Signing in
//
// Staff sign in with their named account's user name and password;
// residents with a one-time code that the registry sends to the contact
// it holds for them (registry/signin, registry/notify), with no token
// issued at a desk. Every failure counts against the browser's address
// and the account; past a free allowance the page answers 429 with
// Retry-After, and every refusal is logged with the address. A sign-in
// stores a session token in the registry (so that a supervisor sees it on
// /tokens, and revoking it or disabling the account ends the session at
// once) and gives the browser only a random session id, in an HttpOnly,
// SameSite=Strict cookie; the session lives in memory, with an idle and
// an absolute expiry, and every request checks its token with the
// registry again. Every POST form carries the session's CSRF secret (the
// sign-in forms a secret of their own, in a short-lived cookie). Pages
// use no JavaScript: plain links, forms and buttons work with a keyboard
// and any browser; the stylesheet is embedded and nothing is loaded from
// elsewhere.
//
// # Who may open what
//
// Every page is registered with a guard (handle) or as public
// (handlePublic, the sign-in pages); a page registered any other way is
// refused, and the route test walks every page ([Server.Routes]).
//
//	/desk, /desk/search, /desk/residents/{id}   desk, supervisor (registry.ActReadPersonal)
//	block, replace, order a card                desk, supervisor (registry.ActCards)
//	/desk/register                              desk, supervisor (registry.ActRegister)
//	grant and end entitlements                  desk, supervisor (registry.ActEntitlements)
//	/desk/cards/{number}/receipt                desk, supervisor (registry.ActReadPersonal)
//	personalise a card on the desk's reader     desk, supervisor (registry.ActCards), with Options.Reader
//	/finance, /finance/export                   finance, supervisor (registry.ActStatements)
//	/finance/reconciliation                     finance, supervisor, operator (registry.ActReconciliation)
//	/finance/fleet                              finance, supervisor, operator (registry.ActReconciliation): validators silent, on old updates
//	/finance/close (month-end checklist)        finance, supervisor (registry.ActStatements)
//	POST /finance/close                         supervisor only (registry.ActCloseStatements), with a signing key, confirmed
//	/tokens, revoke a token                     supervisor (registry.ActTokens)
//	/import, POST /import (upload, dry run)     supervisor (registry.ActImport): the national register's CSV
//	POST /import/apply                          supervisor (registry.ActImport), confirmed
//	/audit                                      auditor (registry.ActAudit)
//	/me                                         resident: only their own record, their cards' rides,
//	                                            and who read their record, with whether the log verified
//	POST /me/cards/{number}/block               resident: block their own card as lost or stolen, confirmed
//	/me/notices                                 resident: their benefit-ending notices, turning them off or on
//	/desk/residents/{id}/notices                desk, supervisor (registry.ActReadPersonal); setting it: ActRegister
//	link or end a parent or guardian            desk, supervisor (registry.ActRegister), ending confirmed
//	/me/children/{id}, block a child's card     resident, while a desk's link to the child stands (the registry checks it), confirmed
//	/me/applications (apply, own documents)     resident: their own applications; documents bounded, CSRF first
//	/desk/applications, one, its documents      desk, supervisor (registry.ActReadPersonal), with a purpose, audited
//	POST /desk/applications/{id}/decide         desk, supervisor (registry.ActRegister), confirmed
//
// Blocking or replacing a card, ending an entitlement, a resident's
// block of their own card and revoking a token take two steps: the form's post answers with a page that says what will
// happen and to whom, and only its confirming post acts; the server
// refuses to act without the confirmation, whatever the browser sends
// (confirm.go). An import of the benefit register previews its dry run
// and imports only from the preview's confirming form, without the file
// sent again (import.go). Closing a month carries its own confirmation on the
// form, naming the period and its figures. The registry records who did
// each.
//
// The console checks the role before a handler runs; the registry store
// checks again and writes the audit entry of every read of personal data.
// Such reads need a stated purpose, which desk pages ask for and then
// carry from page to page; residents reading their own data state none
// (registry.PurposeOwnView). Clearing holds no personal data; its pages
// are guarded by the same role table (registry.Allowed) as clearing's
// own API.
//
// Texts come in Ukrainian and English, chosen by ?lang= (remembered in a
// cookie) or the browser's Accept-Language; Ukrainian is the default.
// Ukrainian pages write days as DD.MM.YYYY, instants as DD.MM.YYYY HH:MM
// in the city's time zone, and hryvnias with a decimal comma and groups
// of three (format.go); card numbers show in groups of four; audit
// actions are translated when shown, never in the log. On a phone the
// tables of a record reflow into one block per row.
// Request logs name the route pattern and the client address, never the
// URL, whose query may carry a purpose.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/statement"
	cstore "github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/desk"
	"github.com/citycard/transit/registry/internal/httpserve"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Options configures a Server.
type Options struct {
	// Registry is the registry store: residents, cards, tokens, audit.
	// Required.
	Registry store.Store
	// Clearing is the clearing store the finance pages read. Required.
	Clearing cstore.Store
	// Statements closes and verifies statements. Without it the finance
	// pages show statements but cannot close or verify them.
	Statements *statement.Service
	// Names is the finance register (carriers' legal details, category
	// names); nil names carriers and categories by their codes.
	Names *register.Register
	// Location is the city's time zone, in which pages show times and
	// which decides "today"; nil means UTC.
	Location *time.Location
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// Logger receives a line per request; nil means slog.Default().
	Logger *slog.Logger
	// IdleTimeout and MaxLifetime end sessions; zero means the defaults.
	IdleTimeout, MaxLifetime time.Duration
	// SecureCookies marks cookies Secure: set it when the console is
	// served over HTTPS (behind a TLS-terminating proxy).
	SecureCookies bool
	// MaxUpload bounds an uploaded file (the benefit register's CSV);
	// 0 means MaxImportUpload.
	MaxUpload int64
	// Reader is the desk's card reader (desk.PCSC on the desk machine)
	// and CardKeys the desk's card keys (the issuer keystore or the
	// city's token). With both, desk pages personalise ordered cards on
	// the reader (personalise.go); without them they offer no such
	// button.
	Reader   desk.Reader
	CardKeys *cardkey.Source
	// CardWait bounds the wait for a card on Reader; zero means
	// DefaultCardWait, and it may not exceed MaxCardWait.
	CardWait time.Duration
	// SignIn checks staff passwords and residents' codes; nil means one
	// over Registry with default settings and no resident sign-in.
	SignIn *signin.Service
	// Audit, if set, is the monitor whose last verification of the
	// audit chain the resident's and the auditor's pages show.
	Audit *auditchain.Monitor
}

// MaxFormBody bounds a form submission; the console's forms are small.
const MaxFormBody = 64 << 10

// Server serves the console. It is an http.Handler.
type Server struct {
	reg    store.Store
	clr    cstore.Store
	stmts  *statement.Service
	names  *register.Register
	loc    *time.Location
	now    func() time.Time
	log    *slog.Logger
	secure bool
	// maxUpload bounds an upload (Options.MaxUpload).
	maxUpload int64
	sessions  *sessions
	pages     map[string]*template.Template
	css       []byte
	mux       *http.ServeMux
	station   *station // the desk's reader and card keys; nil without
	signin    *signin.Service
	monitor   *auditchain.Monitor
	table     []route // every page, for the route test and ServeHTTP
	imports   pendingImports
}

// New returns a Server over the stores in opt.
func New(opt Options) (*Server, error) {
	if opt.Registry == nil || opt.Clearing == nil {
		return nil, errors.New("console: both the registry store and the clearing store are required")
	}
	s := &Server{reg: opt.Registry, clr: opt.Clearing, stmts: opt.Statements, names: opt.Names, loc: opt.Location, now: opt.Now,
		log: opt.Logger, secure: opt.SecureCookies, sessions: newSessions(opt.IdleTimeout, opt.MaxLifetime),
		mux: http.NewServeMux(), signin: opt.SignIn, monitor: opt.Audit, maxUpload: opt.MaxUpload}
	if s.maxUpload <= 0 {
		s.maxUpload = MaxImportUpload
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
	var err error
	if s.signin == nil {
		if s.signin, err = signin.New(signin.Options{Store: opt.Registry, Now: s.now, Log: s.log}); err != nil {
			return nil, err
		}
	}
	if s.station, err = newStation(opt); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	if s.css, err = fs.ReadFile(assets, "static/console.css"); err != nil {
		return nil, fmt.Errorf("console: read the stylesheet: %w", err)
	}
	s.routes()
	return s, nil
}

// guard says which roles may use a route.
type guard func(registry.Role) bool

// can lets in the roles the registry's table allows act.
func can(act registry.Action) guard {
	return func(r registry.Role) bool { return registry.Allowed(r, act) }
}

var (
	anyRole          guard = func(registry.Role) bool { return true }
	readStatements         = can(registry.ActStatements)
	readRecon              = can(registry.ActReconciliation)
	closeStatements        = can(registry.ActCloseStatements)
	readPersonalData       = can(registry.ActReadPersonal)
	changeCards            = can(registry.ActCards)
	manageTokens           = can(registry.ActTokens)
	importRegister         = can(registry.ActImport)
)

func (s *Server) routes() {
	s.mux.HandleFunc("GET /static/console.css", func(w http.ResponseWriter, r *http.Request) {
		// Not personal data: browsers may keep it for an hour.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Write(s.css) //nolint:errcheck // the client went away
	})
	s.handlePublic("GET /{$}", (*Server).home)
	s.handlePublic("GET /login", (*Server).loginForm)
	s.handlePublic("POST /login", (*Server).login)
	s.handlePublic("GET /login/resident", (*Server).residentForm)
	s.handlePublic("POST /login/resident", (*Server).residentCode)
	s.handlePublic("POST /login/resident/code", (*Server).residentSignIn)
	s.handle("POST /logout", anyRole, (*Server).logout)

	s.handle("GET /desk", readPersonalData, (*Server).deskSearchForm)
	s.handle("POST /desk/search", readPersonalData, (*Server).deskSearch)
	s.handle("GET /desk/residents/{id}", readPersonalData, (*Server).deskResident)
	s.handle("POST /desk/residents/{id}/cards", changeCards, (*Server).deskOrderCard)
	s.handle("POST /desk/cards/{number}/block", changeCards, (*Server).deskBlock)
	s.handle("POST /desk/cards/{number}/replace", changeCards, (*Server).deskReplace)
	s.handle("GET /desk/register", can(registry.ActRegister), (*Server).deskRegisterForm)
	s.handle("POST /desk/register", can(registry.ActRegister), (*Server).deskRegister)
	s.handle("POST /desk/residents/{id}/entitlements", can(registry.ActEntitlements), (*Server).deskGrant)
	s.handle("POST /desk/residents/{id}/entitlements/{eid}/end", can(registry.ActEntitlements), (*Server).deskEndEntitlement)
	s.handle("GET /desk/cards/{number}/receipt", readPersonalData, (*Server).deskReceipt)
	s.handle("POST /desk/cards/{number}/personalise", changeCards, (*Server).deskPersonalise)

	s.handle("GET /finance", readStatements, (*Server).finance)
	s.handle("GET /finance/export", readStatements, (*Server).financeExport)
	s.handle("GET /finance/reconciliation", readRecon, (*Server).financeReconciliation)
	s.handle("GET /finance/close", readStatements, (*Server).financeCloseForm)
	s.handle("GET /finance/fleet", readRecon, (*Server).fleetView)
	s.handle("POST /finance/close", closeStatements, (*Server).financeClose)

	s.handle("GET /tokens", manageTokens, (*Server).tokens)
	s.handle("POST /tokens/{id}/revoke", manageTokens, (*Server).revokeToken)

	// The national benefit register's import (import.go).
	s.handle("GET /import", importRegister, (*Server).importForm)
	s.handleUpload("POST /import", importRegister, (*Server).importUpload)
	s.handle("POST /import/apply", importRegister, (*Server).importApply)

	s.handle("GET /audit", can(registry.ActAudit), (*Server).auditLog)
	s.handle("GET /me", can(registry.ActOwnData), (*Server).me)
	s.handle("POST /me/cards/{number}/block", can(registry.ActOwnData), (*Server).meBlock)
	// Online applications (applications.go).
	s.handle("GET /me/applications", can(registry.ActOwnData), (*Server).myApplications)
	s.handleUpload("POST /me/applications", can(registry.ActOwnData), (*Server).apply)
	s.handle("GET /me/applications/{id}/files/{fid}", can(registry.ActOwnData), (*Server).myAttachment)
	s.handle("GET /desk/applications", readPersonalData, (*Server).deskApplications)
	s.handle("GET /desk/applications/{id}", readPersonalData, (*Server).deskApplication)
	s.handle("GET /desk/applications/{id}/files/{fid}", readPersonalData, (*Server).deskAttachment)
	s.handle("POST /desk/applications/{id}/decide", can(registry.ActRegister), (*Server).deskDecide)
	// Parents and guardians (guardian.go).
	s.handle("GET /me/children/{id}", can(registry.ActOwnData), (*Server).meChild)
	s.handle("POST /me/children/{id}/cards/{number}/block", can(registry.ActOwnData), (*Server).meChildBlock)
	s.handle("POST /desk/residents/{id}/guardians", can(registry.ActRegister), (*Server).deskLinkGuardian)
	s.handle("POST /desk/residents/{id}/guardians/{gid}/end", can(registry.ActRegister), (*Server).deskEndGuardian)
	// Benefit-ending notices (notices.go).
	s.handle("GET /me/notices", can(registry.ActOwnData), (*Server).myNotices)
	s.handle("POST /me/notices", can(registry.ActOwnData), (*Server).setMyNotices)
	s.handle("GET /desk/residents/{id}/notices", readPersonalData, (*Server).deskNotices)
	s.handle("POST /desk/residents/{id}/notices", can(registry.ActRegister), (*Server).deskSetNotices)

	s.handlePublic("/", func(*Server, http.ResponseWriter, *http.Request, *request) error {
		return &pageError{status: http.StatusNotFound, key: "err.404"}
	})
}

// route is one page and who may open it.
type route struct {
	pattern string
	public  bool
	allow   guard
}

// Route is a page of the console and the roles that may open it, for
// tests that walk every page.
type Route struct {
	Pattern string
	// Public pages need no sign-in (the sign-in pages themselves).
	Public bool
	// Roles may open the page; nil for a public one.
	Roles []registry.Role
}

// Routes returns every page with the roles its guard lets in.
func (s *Server) Routes() []Route {
	out := make([]Route, 0, len(s.table))
	for _, rt := range s.table {
		r := Route{Pattern: rt.pattern, Public: rt.public}
		if !rt.public {
			for _, role := range registry.Roles {
				if rt.allow(role) {
					r.Roles = append(r.Roles, role)
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// healthPatterns answer without a guard: they reveal nothing.
var healthPatterns = map[string]bool{"GET /healthz": true, "GET /readyz": true, "/healthz": true, "/readyz": true}

// request is what the console knows about a request before its handler
// runs.
type request struct {
	lang string
	// ses is the signed-in session (a copy), nil on public pages
	// without one; sid is its id.
	ses *session
	sid string
	// upload is a multipart form's reader past its CSRF secret, on an
	// upload route (handleUpload).
	upload *multipart.Reader
}

type handler func(s *Server, w http.ResponseWriter, r *http.Request, rq *request) error

// handle registers h under pattern for the signed-in users whose role
// allow lets in; a POST also needs the session's CSRF secret. A page
// without a guard is a programming error, reported when the console is
// made: public pages use handlePublic.
func (s *Server) handle(pattern string, allow guard, h handler) {
	if allow == nil {
		panic("console: page " + pattern + " has no guard; give it one, or use handlePublic for a page without sign-in")
	}
	s.register(pattern, false, false, allow, h)
}

// handleUpload registers a POST of a multipart form with a file, for the
// users allow lets in. Its CSRF secret is the form's first field,
// checked before anything else is read (checkUpload); the handler reads
// the rest from request.upload, within Options.MaxUpload.
func (s *Server) handleUpload(pattern string, allow guard, h handler) {
	if allow == nil {
		panic("console: upload " + pattern + " has no guard")
	}
	s.register(pattern, false, true, allow, h)
}

// handlePublic registers a page anyone may open: the sign-in pages.
func (s *Server) handlePublic(pattern string, h handler) { s.register(pattern, true, false, nil, h) }

func (s *Server) register(pattern string, public, upload bool, allow guard, h handler) {
	s.table = append(s.table, route{pattern: pattern, public: public, allow: allow})
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &httpserve.StatusWriter{ResponseWriter: w}
		rq := &request{}
		defer func() {
			var user string
			var role registry.Role
			if rq.ses != nil {
				user, role = rq.ses.actor.User, rq.ses.actor.Role
			}
			s.log.Info("console request", "route", pattern, "status", sw.Status, "user", user, "role", role,
				"addr", clientAddr(r), "duration", time.Since(start).Round(time.Microsecond))
		}()
		var explicit bool
		rq.lang, explicit = chooseLang(r)
		if explicit {
			http.SetCookie(sw, &http.Cookie{Name: langCookie, Value: rq.lang, Path: "/", MaxAge: 365 * 24 * 3600,
				HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
		}
		if err := s.authenticate(r, rq); err != nil {
			s.fail(sw, r, rq, err)
			return
		}
		if allow != nil {
			if rq.ses == nil {
				target := "/login"
				if _, err := r.Cookie(sessionCookie); err == nil {
					target += "?expired=1"
				}
				http.Redirect(sw, r, target, http.StatusSeeOther)
				return
			}
			if !allow(rq.ses.actor.Role) {
				s.fail(sw, r, rq, &pageError{status: http.StatusForbidden, key: "err.role", args: []any{roleName(rq.lang, rq.ses.actor.Role)}})
				return
			}
			switch {
			case upload:
				mr, err := s.checkUpload(sw, r, rq.ses.csrf)
				if err != nil {
					s.fail(sw, r, rq, err)
					return
				}
				rq.upload = mr
			case r.Method == http.MethodPost:
				if err := s.checkForm(sw, r, rq.ses.csrf); err != nil {
					s.fail(sw, r, rq, err)
					return
				}
			}
		}
		if err := h(s, sw, r, rq); err != nil {
			s.fail(sw, r, rq, err)
		}
	}))
}

// authenticate finds the request's session, if any, and checks its token
// with the registry again: a revoked token or a disabled account ends it.
func (s *Server) authenticate(r *http.Request, rq *request) error {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	ses := s.sessions.get(c.Value, s.now())
	if ses == nil {
		return nil
	}
	ti, err := s.signin.Session(r.Context(), ses.tokenHash)
	if errors.Is(err, registry.ErrUnauthenticated) {
		s.sessions.end(c.Value)
		return nil
	}
	if err != nil {
		return fmt.Errorf("check the session's token: %w", err)
	}
	ses.actor = ti.Actor
	rq.ses, rq.sid = ses, c.Value
	return nil
}

// clientAddr is the browser's address, for throttling and the log.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// checkForm reads a POST form (bounded) and checks its CSRF secret.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request, secret string) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBody)
	if err := r.ParseForm(); err != nil {
		return &pageError{status: http.StatusBadRequest, key: "err.400", err: err}
	}
	if !sameSecret(secret, r.PostFormValue("csrf")) {
		return &pageError{status: http.StatusForbidden, key: "err.csrf"}
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Pages carry personal data: no cache may keep them, no other site
	// may frame them, and they load nothing from anywhere else.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	if _, pattern := s.mux.Handler(r); pattern != "" && !s.known(pattern) && !healthPatterns[pattern] {
		// A page added around handle is refused, not served unguarded.
		s.log.Error("request to a console page without a guard refused", "route", pattern, "addr", clientAddr(r))
		http.Error(w, "this page has no access guard and is refused", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// known reports whether pattern was registered with handle or
// handlePublic (the stylesheet is registered directly: it is no page).
func (s *Server) known(pattern string) bool {
	if pattern == "GET /static/console.css" {
		return true
	}
	for _, rt := range s.table {
		if rt.pattern == pattern {
			return true
		}
	}
	return false
}

// Handle adds a handler outside the console's pages: only /healthz and
// /readyz, which reveal nothing, are served that way; anything else is
// refused until it is registered with a guard.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// home sends a signed-in user to their start page, anyone else to the
// login page.
func (s *Server) home(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.ses == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	home := homeFor(rq.ses.actor.Role)
	if home == "" {
		return &pageError{status: http.StatusForbidden, key: "login.norole"}
	}
	http.Redirect(w, r, home, http.StatusSeeOther)
	return nil
}

// homeFor is the start page of a role, derived from the same guards as
// the routes; "" for a role with no page here (a machine's token).
func homeFor(r registry.Role) string {
	switch {
	case readPersonalData(r):
		return "/desk"
	case readStatements(r):
		return "/finance"
	case readRecon(r):
		return "/finance/reconciliation"
	case registry.Allowed(r, registry.ActAudit):
		return "/audit"
	case registry.Allowed(r, registry.ActOwnData):
		return "/me"
	}
	return ""
}

// pageError is a failure the console itself decides on, with a
// translated message.
type pageError struct {
	status int
	key    string
	args   []any
	err    error // the cause, for the log
}

func (e *pageError) Error() string {
	if e.err != nil {
		return fmt.Sprintf("%s (%d): %v", e.key, e.status, e.err)
	}
	return fmt.Sprintf("%s (%d)", e.key, e.status)
}

func (e *pageError) Unwrap() error { return e.err }

// errorPage is what the error template shows.
type errorPage struct {
	Status  int
	Heading string
	Detail  string
	Back    string
}

// fail renders err as an error page with the status its kind calls for.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var (
		pe     *pageError
		tooBig *http.MaxBytesError
	)
	status, detail := http.StatusInternalServerError, ""
	switch {
	case errors.As(err, &pe):
		status, detail = pe.status, translate(rq.lang, pe.key, pe.args...)
	case errors.As(err, &tooBig):
		status, detail = http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, registry.ErrUnauthenticated):
		status = http.StatusUnauthorized
	case errors.Is(err, registry.ErrForbidden):
		status = http.StatusForbidden
	case errors.Is(err, registry.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, registry.ErrDuplicate), errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrTransition),
		errors.Is(err, cstore.ErrPeriodClosed), errors.Is(err, statement.ErrNotOver):
		status = http.StatusConflict
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, registry.ErrNoPurpose):
		status = http.StatusBadRequest
	case errors.Is(err, signin.ErrThrottled):
		status = http.StatusTooManyRequests
		var te *signin.ThrottledError
		if errors.As(err, &te) {
			w.Header().Set("Retry-After", strconv.Itoa(int(te.RetryAfter().Seconds())))
		}
	}
	if detail == "" {
		// Registry and clearing errors say in English what went wrong
		// and what to do; the heading above them is translated.
		detail = err.Error()
	}
	if status >= http.StatusInternalServerError {
		// The browser gets an id, not database details; the log has both.
		id := randomToken()[:12]
		s.log.Error("console request failed", "route", r.Pattern, "error", err, "id", id)
		detail = translate(rq.lang, "err.id", id)
	}
	heading := fmt.Sprintf("err.%d", status)
	if _, ok := messages[rq.lang][heading]; !ok {
		heading = "err.title"
	}
	back := "/"
	if rq.ses == nil {
		back = "/login"
	}
	s.render(w, r, rq, status, "error", heading, errorPage{Status: status, Heading: translate(rq.lang, heading), Detail: detail, Back: back}, "")
}

// Serve serves h on ln until ctx is done, then stops accepting and waits
// up to 10 s for requests in flight.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return httpserve.Serve(ctx, ln, h, "console", time.Minute)
}

// withQuery returns path with the query parameters kv (name, value...).
func withQuery(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}
