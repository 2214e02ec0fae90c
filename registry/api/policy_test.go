package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/password"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/throttle"
)

// kind is what a route does with personal data, as this test expects it,
// independently of the route table, so that a route added without a
// policy, or with the wrong one, fails here.
type kind string

const (
	kSignIn  kind = "sign-in" // no token; answers hold no personal data
	kNone    kind = "none"    // a token; answers hold no personal data, no purpose needed
	kRead    kind = "read"    // personal data: a purpose, or 400 and nothing audited; with it, audited
	kWrite   kind = "write"   // changes a person's record: audited
	kOwn     kind = "own"     // a resident's own data: no purpose, audited
	kOwnLog  kind = "own log" // a resident's own access log: who read their record
	kSession kind = "session" // ends the caller's own session
	kDevice  kind = "device"  // validators, signed requests
)

var expected = map[string]kind{
	"POST /v1/auth/login":                            kSignIn,
	"POST /v1/auth/resident/code":                    kSignIn,
	"POST /v1/auth/resident/token":                   kSignIn,
	"POST /v1/auth/logout":                           kSession,
	"POST /v1/auth/introspect":                       kNone,
	"GET /v1/tokens":                                 kNone,
	"POST /v1/tokens/{id}/revoke":                    kNone,
	"POST /v1/residents":                             kWrite,
	"GET /v1/residents":                              kRead,
	"GET /v1/residents/{id}":                         kRead,
	"POST /v1/residents/{id}/entitlements":           kWrite,
	"POST /v1/residents/{id}/entitlements/{eid}/end": kWrite,
	"POST /v1/residents/{id}/cards":                  kWrite,
	"POST /v1/cards/{number}/status":                 kWrite,
	"POST /v1/cards/{number}/block":                  kWrite,
	"POST /v1/cards/{number}/replace":                kWrite,
	"GET /v1/cards/{number}":                         kNone,
	"GET /v1/cards/{number}/personalisation":         kRead,
	"GET /v1/cards/events":                           kNone,
	"GET /v1/cards/blocked":                          kNone,
	"GET /v1/cards/records":                          kNone,
	"GET /v1/tariff":                                 kNone,
	"GET /v1/entitlements/expiring":                  kRead,
	"POST /v1/import":                                kRead,
	"GET /v1/audit":                                  kNone,
	"GET /v1/audit/verification":                     kNone,
	"GET /v1/me":                                     kOwn,
	"GET /v1/me/audit":                               kOwnLog,
	"GET /v1/residents/{id}/notices":                 kRead,
	"POST /v1/residents/{id}/notices":                kWrite,
	"GET /v1/me/notices":                             kOwn,
	"POST /v1/me/notices":                            kWrite,
	"GET /metrics":                                   kNone,
	"/v1/validator/":                                 kDevice,
}

// call is one request a route's walk makes.
type call struct {
	role         registry.Role
	token        string // instead of role's
	method, path string
	body         any
	status       int
}

// TestEveryRouteHasItsPolicy walks every route of the API: each has the
// policy this test expects; each that returns personal data refuses
// without a purpose and writes nothing to the audit log, and with one
// answers and writes audit entries; each that changes a person's record
// writes an audit entry; and no other answers with a resident's name,
// registry number, birth date or contact.
func TestEveryRouteHasItsPolicy(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "t"}))
	var mon *auditchain.Monitor
	f := newFixtureWith(t, func(o *api.Options, f *fixture) {
		o.Gatherer = reg
		mon = &auditchain.Monitor{Source: f.st}
		o.Audit = mon
	})
	ctx := context.Background()

	// The people the walk reads and changes.
	a, aToken := f.resident()
	var aRes struct{ Resident registry.Resident }
	f.ok(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d", a)+purpose, nil), http.StatusOK, &aRes)
	var ent registry.Entitlement
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements", a), map[string]any{
		"category": 11, "legal_basis": "Закон 1788-XII", "evidence": "посвідчення 1", "valid_from": "2026-01-01",
		"valid_to": "2026-12-31", "funding": "city"}), http.StatusCreated, &ent)
	var ordered registry.Card
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", a), nil), http.StatusCreated, &ordered)
	b, _ := f.resident() // gets a card during the walk
	c, _ := f.resident()
	var active registry.Card
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", c), nil), http.StatusCreated, &active)
	for _, to := range []string{"personalised", "active"} {
		f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+active.Number.String()+"/status", map[string]string{"status": to}), http.StatusOK, nil)
	}
	spare := f.token(registry.Actor{User: "spare", Role: registry.RoleDesk})
	ending := f.token(registry.Actor{User: "leaving", Role: registry.RoleDesk})
	if _, err := mon.Check(ctx); err != nil {
		t.Fatal(err)
	}
	sample, err := os.ReadFile("../../testdata/registry/benefit-recipients.csv")
	if err != nil {
		t.Fatal(err)
	}
	tokenID := func(secret string) string { return registry.TokenID(registry.HashToken(secret)) }
	secrets := []string{aRes.Resident.Name, aRes.Resident.RegistryNumber, aRes.Resident.Contact, aRes.Resident.BirthDate.String(), "holder_ref"}

	calls := map[string]call{
		"POST /v1/auth/login":          {method: "POST", path: "/v1/auth/login", body: map[string]string{"user": "nobody", "password": "wrong password!"}, status: 401},
		"POST /v1/auth/resident/code":  {method: "POST", path: "/v1/auth/resident/code", body: map[string]string{"registry_number": aRes.Resident.RegistryNumber}, status: 503},
		"POST /v1/auth/resident/token": {method: "POST", path: "/v1/auth/resident/token", body: map[string]string{"sign_in": "x", "code": "12345678"}, status: 503},
		"POST /v1/auth/logout":         {token: ending, method: "POST", path: "/v1/auth/logout", status: 200},
		"POST /v1/auth/introspect":     {role: registry.RoleService, method: "POST", path: "/v1/auth/introspect", body: map[string]string{"token": aToken}, status: 200},
		"GET /v1/tokens":               {role: registry.RoleSupervisor, method: "GET", path: "/v1/tokens?all=1", status: 200},
		"POST /v1/tokens/{id}/revoke":  {role: registry.RoleSupervisor, method: "POST", path: "/v1/tokens/" + tokenID(spare) + "/revoke", body: map[string]bool{"confirm": true}, status: 200},
		"POST /v1/residents":           {role: registry.RoleDesk, method: "POST", path: "/v1/residents", body: map[string]string{"registry_number": "3652504575", "name": "Нова Особа", "birth_date": "1970-01-01", "contact": ""}, status: 201},
		"GET /v1/residents":            {role: registry.RoleDesk, method: "GET", path: "/v1/residents?registry_number=" + aRes.Resident.RegistryNumber, status: 200},
		"GET /v1/residents/{id}":       {role: registry.RoleDesk, method: "GET", path: fmt.Sprintf("/v1/residents/%d", a), status: 200},
		"POST /v1/residents/{id}/entitlements": {role: registry.RoleDesk, method: "POST", path: fmt.Sprintf("/v1/residents/%d/entitlements", a), body: map[string]any{
			"category": 31, "legal_basis": "Закон", "evidence": "студентський 1", "valid_from": "2026-09-01", "valid_to": "2027-06-30", "funding": "city"}, status: 201},
		"POST /v1/residents/{id}/entitlements/{eid}/end": {role: registry.RoleDesk, method: "POST", path: fmt.Sprintf("/v1/residents/%d/entitlements/%d/end", a, ent.ID), body: map[string]string{"valid_to": "2026-12-20"}, status: 200},
		"POST /v1/residents/{id}/cards":                  {role: registry.RoleDesk, method: "POST", path: fmt.Sprintf("/v1/residents/%d/cards", b), status: 201},
		"POST /v1/cards/{number}/status":                 {role: registry.RoleDesk, method: "POST", path: "/v1/cards/" + ordered.Number.String() + "/status", body: map[string]string{"status": "personalised"}, status: 200},
		"POST /v1/cards/{number}/block":                  {role: registry.RoleDesk, method: "POST", path: "/v1/cards/" + active.Number.String() + "/block", body: map[string]string{"reason": "lost"}, status: 200},
		"POST /v1/cards/{number}/replace":                {role: registry.RoleDesk, method: "POST", path: "/v1/cards/" + active.Number.String() + "/replace", body: map[string]int{"clearing_balance_kop": 100}, status: 201},
		"GET /v1/cards/{number}":                         {role: registry.RoleDesk, method: "GET", path: "/v1/cards/" + ordered.Number.String(), status: 200},
		"GET /v1/cards/{number}/personalisation":         {role: registry.RoleDesk, method: "GET", path: "/v1/cards/" + ordered.Number.String() + "/personalisation", status: 200},
		"GET /v1/cards/events":                           {role: registry.RoleFinance, method: "GET", path: "/v1/cards/events", status: 200},
		"GET /v1/cards/blocked":                          {role: registry.RoleFinance, method: "GET", path: "/v1/cards/blocked", status: 200},
		"GET /v1/cards/records":                          {role: registry.RoleService, method: "GET", path: "/v1/cards/records", status: 200},
		"GET /v1/tariff":                                 {role: registry.RoleService, method: "GET", path: "/v1/tariff", status: 404},
		"GET /v1/entitlements/expiring":                  {role: registry.RoleDesk, method: "GET", path: "/v1/entitlements/expiring?days=60", status: 200},
		"POST /v1/import":                                {role: registry.RoleSupervisor, method: "POST", path: "/v1/import", body: string(sample), status: 200},
		"GET /v1/audit":                                  {role: registry.RoleAuditor, method: "GET", path: "/v1/audit", status: 200},
		"GET /v1/audit/verification":                     {role: registry.RoleAuditor, method: "GET", path: "/v1/audit/verification", status: 200},
		"GET /v1/me":                                     {token: aToken, method: "GET", path: "/v1/me", status: 200},
		"GET /v1/me/audit":                               {token: aToken, method: "GET", path: "/v1/me/audit", status: 200},
		"GET /v1/residents/{id}/notices":                 {role: registry.RoleDesk, method: "GET", path: fmt.Sprintf("/v1/residents/%d/notices", a), status: 200},
		"POST /v1/residents/{id}/notices":                {role: registry.RoleDesk, method: "POST", path: fmt.Sprintf("/v1/residents/%d/notices", b), body: map[string]bool{"opt_out": true}, status: 200},
		"GET /v1/me/notices":                             {token: aToken, method: "GET", path: "/v1/me/notices", status: 200},
		"POST /v1/me/notices":                            {token: aToken, method: "POST", path: "/v1/me/notices", body: map[string]bool{"opt_out": true}, status: 200},
		"GET /metrics":                                   {role: registry.RoleOperator, method: "GET", path: "/metrics", status: 200},
		"/v1/validator/":                                 {method: "GET", path: "/v1/validator/hotlist", status: 404},
	}

	seen := map[string]bool{}
	for _, rt := range api.Routes() {
		seen[rt.Pattern] = true
		k, ok := expected[rt.Pattern]
		if !ok {
			t.Errorf("route %s has no policy in this test: decide whether it returns personal data and add it to expected", rt.Pattern)
			continue
		}
		if rt.Personal != (k == kRead || k == kOwn) {
			t.Errorf("route %s: Personal = %v; this test expects %s", rt.Pattern, rt.Personal, k)
		}
		if want := map[kind]api.Auth{kSignIn: api.AuthSignIn, kDevice: api.AuthDevice}[k]; want != "" && rt.Auth != want || want == "" && rt.Auth != api.AuthToken {
			t.Errorf("route %s: authentication %q; this test expects %s", rt.Pattern, rt.Auth, k)
		}
		cl, ok := calls[rt.Pattern]
		if !ok {
			t.Errorf("route %s: no call in this test", rt.Pattern)
			continue
		}
		send := func(p string) response {
			tok := cl.token
			if tok == "" && cl.role != "" {
				tok = f.tokens[cl.role]
			}
			return f.callToken(tok, cl.method, p, cl.body)
		}
		before := f.auditCount()
		switch k {
		case kRead:
			r := send(cl.path)
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "purpose") {
				t.Errorf("%s without a purpose: %d %s; want 400 asking for one", rt.Pattern, r.status, r.body)
			}
			if n := f.auditCount(); n != before {
				t.Errorf("%s without a purpose wrote %d audit entries", rt.Pattern, n-before)
			}
			sep := "?"
			if strings.Contains(cl.path, "?") {
				sep = "&"
			}
			r = send(cl.path + sep + purpose[1:])
			if r.status != cl.status {
				t.Fatalf("%s with a purpose: %d %s; want %d", rt.Pattern, r.status, r.body, cl.status)
			}
			if n := f.auditCount(); n <= before {
				t.Errorf("%s read personal data and wrote no audit entry", rt.Pattern)
			}
		case kOwn, kWrite:
			r := send(cl.path)
			if r.status != cl.status {
				t.Fatalf("%s: %d %s; want %d", rt.Pattern, r.status, r.body, cl.status)
			}
			if n := f.auditCount(); n <= before {
				t.Errorf("%s touched a person's record and wrote no audit entry", rt.Pattern)
			}
		default:
			r := send(cl.path)
			if r.status != cl.status {
				t.Fatalf("%s: %d %s; want %d", rt.Pattern, r.status, r.body, cl.status)
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(string(r.body), s) {
					t.Errorf("%s answers with a resident's personal data (%q): %s", rt.Pattern, s, r.body)
				}
			}
			if k == kNone || k == kOwnLog || k == kSession {
				if n := f.auditCount(); n != before {
					t.Errorf("%s wrote %d audit entries; it reads no personal data", rt.Pattern, n-before)
				}
			}
		}
	}
	for p := range expected {
		if !seen[p] {
			t.Errorf("this test expects a route %s that the API does not have", p)
		}
	}
	// The chain still verifies after all that.
	if rep, err := mon.Check(ctx); err != nil || !rep.OK() {
		t.Fatalf("audit chain after the walk: %+v, %v", rep, err)
	}
}

// auditCount is the number of audit entries.
func (f *fixture) auditCount() int {
	f.t.Helper()
	var a struct{ Entries []json.RawMessage }
	f.ok(f.call(registry.RoleAuditor, "GET", "/v1/audit", nil), http.StatusOK, &a)
	return len(a.Entries)
}

// TestRouteWithoutPolicyRefused: a handler added to the server outside
// the route table is refused, except the health checks.
func TestRouteWithoutPolicyRefused(t *testing.T) {
	f := newFixture(t)
	srv := f.srv.Config.Handler.(*api.Server)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) })
	srv.Handle("GET /v1/new-thing", ok)
	srv.Handle("GET /healthz", ok)
	if r := f.callToken("", "GET", "/v1/new-thing", nil); r.status != http.StatusForbidden || strings.Contains(string(r.body), "secret") {
		t.Errorf("a route without a policy: %d %s; want 403", r.status, r.body)
	}
	if r := f.call(registry.RoleSupervisor, "GET", "/v1/new-thing", nil); r.status != http.StatusForbidden {
		t.Errorf("a route without a policy, with a token: %d; want 403", r.status)
	}
	if r := f.callToken("", "GET", "/healthz", nil); r.status != http.StatusOK {
		t.Errorf("/healthz: %d; want 200 without a token", r.status)
	}
}

// FuzzAPI sends arbitrary requests with a supervisor's token: nothing a
// caller sends may make the registry fail (5xx), and every answer is
// JSON but the metrics and exports.
func FuzzAPI(f *testing.F) {
	// The fuzzer's load throttles no one: one address sends everything.
	fx := newFixtureWith(f, func(o *api.Options, fx *fixture) {
		generous := throttle.Policy{Free: 1 << 30, Window: time.Second, Base: time.Millisecond, Max: time.Millisecond}
		si, err := signin.New(signin.Options{Store: fx.st, Password: password.Params{Time: 1, MemoryKiB: 64, Threads: 1},
			Sender: &notify.File{Path: filepath.Join(f.TempDir(), "outbox")}, CodesPerHour: 1 << 30,
			Now: o.Now, Log: o.Logger, PerAddress: generous, PerAccount: generous})
		if err != nil {
			f.Fatal(err)
		}
		o.SignIn = si
		o.Logger = slog.New(slog.DiscardHandler)
	})
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/v1/residents", `{"registry_number":"3652504575","name":"Пет\u202eро","birth_date":"1970-01-01","contact":""}`},
		{"GET", "/v1/residents?name=%D0%BF%D0%B5%D1%82&purpose=x", ""},
		{"POST", "/v1/auth/login", `{"user":"a","password":"b"}`},
		{"POST", "/v1/auth/resident/code", `{"registry_number":"x"}`},
		{"POST", "/v1/tokens/zz/revoke", `{"confirm":true}`},
		{"POST", "/v1/import?purpose=p&dry_run=1", "rnokpp;name\n1;\xff"},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if method != "GET" && method != "POST" {
			return
		}
		req, err := http.NewRequest(method, fx.srv.URL+"/"+strings.TrimPrefix(path, "/"), strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+fx.tokens[registry.RoleSupervisor])
		resp, err := fx.srv.Client().Do(req)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, b)
		}
	})
}
