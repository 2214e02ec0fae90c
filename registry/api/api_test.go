package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
)

// now is the tests' clock: 2026-11-20 10:00 in Kyiv.
var now = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

type fixture struct {
	t      testing.TB
	srv    *httptest.Server
	st     store.Store
	tokens map[registry.Role]string
	logs   *syncBuffer
	next   int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with the server's options adjusted by
// opts, which sees the fixture's store.
func newFixtureWith(t testing.TB, opts func(*api.Options, *fixture)) *fixture {
	t.Helper()
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"),
		store.Options{Issuer: 1001, Location: kyiv, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{t: t, st: st, tokens: map[registry.Role]string{}, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := api.Options{Location: kyiv, Now: clock, Logger: log}
	if opts != nil {
		opts(&o, f)
	}
	f.srv = httptest.NewServer(api.New(st, o))
	t.Cleanup(f.srv.Close)
	for _, r := range []registry.Role{registry.RoleDesk, registry.RoleSupervisor, registry.RoleFinance, registry.RoleAuditor, registry.RoleService, registry.RoleOperator} {
		f.tokens[r] = f.token(registry.Actor{User: string(r) + "-user", Role: r})
	}
	return f
}

// token stores a token for actor and returns its secret.
func (f *fixture) token(actor registry.Actor) string {
	f.t.Helper()
	secret, tok, err := registry.NewToken(actor, now)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.AddToken(context.Background(), tok); err != nil {
		f.t.Fatal(err)
	}
	return secret
}

// resident registers a person through the API and returns its id and a
// token of their own.
func (f *fixture) resident() (int64, string) {
	f.t.Helper()
	f.next++
	var r registry.Resident
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/residents", map[string]any{
		"registry_number": storetest.RegistryNumber(f.next), "name": fmt.Sprintf("Петренко Ольга %d", f.next),
		"birth_date": "1955-04-12", "contact": "+380501234567"}), http.StatusCreated, &r)
	return r.ID, f.token(registry.Actor{User: fmt.Sprintf("citizen-%d", r.ID), Role: registry.RoleResident, Resident: r.ID})
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request with a role's token.
func (f *fixture) call(role registry.Role, method, path string, body any) response {
	return f.callToken(f.tokens[role], method, path, body)
}

func (f *fixture) callToken(token, method, path string, body any) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// ok checks the status and decodes the body into v.
func (f *fixture) ok(r response, status int, v any) {
	f.t.Helper()
	if r.status != status {
		f.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			f.t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

// fails checks an error response: status, JSON body, and a message with
// each of wants.
func (f *fixture) fails(r response, status int, wants ...string) {
	f.t.Helper()
	var e struct{ Error string }
	if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Error == "" {
		f.t.Fatalf("status %d body %s; want %d with a JSON error", r.status, r.body, status)
	}
	for _, w := range wants {
		if !strings.Contains(e.Error, w) {
			f.t.Errorf("error %q does not mention %q", e.Error, w)
		}
	}
}

// written summarises the store's state as staff can see it: the audit
// log, card events, and blocked cards.
func (f *fixture) written() string {
	f.t.Helper()
	var a, e, b any
	f.ok(f.call(registry.RoleAuditor, "GET", "/v1/audit", nil), http.StatusOK, &a)
	f.ok(f.call(registry.RoleFinance, "GET", "/v1/cards/events", nil), http.StatusOK, &e)
	f.ok(f.call(registry.RoleFinance, "GET", "/v1/cards/blocked", nil), http.StatusOK, &b)
	js, _ := json.Marshal([]any{a, e, b})
	return string(js)
}

const purpose = "?purpose=desk+visit+ticket+12"

// TestEveryRoleAgainstEveryRoute calls each endpoint with each role's
// token: exactly the roles of the permission table get past the check.
func TestEveryRoleAgainstEveryRoute(t *testing.T) {
	f := newFixture(t)
	id, own := f.resident()
	f.tokens[registry.RoleResident] = own
	var cardJSON struct{ Number string }
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &cardJSON)
	// Independent of registry's table, so that a change to either is
	// caught.
	want := map[registry.Action][]registry.Role{
		registry.ActRegister:     {registry.RoleDesk, registry.RoleSupervisor},
		registry.ActReadPersonal: {registry.RoleDesk, registry.RoleSupervisor},
		registry.ActEntitlements: {registry.RoleDesk, registry.RoleSupervisor},
		registry.ActCards:        {registry.RoleDesk, registry.RoleSupervisor},
		registry.ActPersonalise:  {registry.RoleDesk, registry.RoleSupervisor},
		registry.ActExpiring:     {registry.RoleDesk, registry.RoleSupervisor},
		registry.ActImport:       {registry.RoleSupervisor},
		registry.ActCardEvents:   {registry.RoleSupervisor, registry.RoleFinance, registry.RoleAuditor, registry.RoleService},
		registry.ActAudit:        {registry.RoleAuditor},
		registry.ActOwnData:      {registry.RoleResident},
		registry.ActTokens:       {registry.RoleSupervisor},
		registry.ActIntrospect:   {registry.RoleService},
		registry.ActMetrics:      {registry.RoleOperator},
	}
	routes := api.Routes()
	if len(routes) < 17 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, rt := range routes {
		if rt.Auth != api.AuthToken || rt.Action == "" {
			continue // sign-in and validator routes, and ending one's own session: TestRoutePolicies
		}
		method, path, _ := strings.Cut(rt.Pattern, " ")
		path = strings.NewReplacer("{id}", fmt.Sprint(id), "{eid}", "1", "{number}", cardJSON.Number).Replace(path) + purpose
		for _, role := range registry.Roles {
			r := f.call(role, method, path, "{}")
			allowed := slices.Contains(want[rt.Action], role)
			switch {
			case r.status == http.StatusUnauthorized:
				t.Errorf("%s as %s: 401 %s", rt.Pattern, role, r.body)
			case allowed && r.status == http.StatusForbidden:
				t.Errorf("%s as %s: 403 %s; the role may %s", rt.Pattern, role, r.body, rt.Action)
			case !allowed && r.status != http.StatusForbidden:
				t.Errorf("%s as %s: %d %s; want 403", rt.Pattern, role, r.status, r.body)
			case !allowed && !bytes.Contains(r.body, []byte("role "+string(role)+" may not")):
				t.Errorf("%s as %s: 403 without saying why: %s", rt.Pattern, role, r.body)
			}
		}
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	for name, token := range map[string]string{"no token": "", "unknown token": "rgt_nope"} {
		r := f.callToken(token, "GET", "/v1/cards/blocked", nil)
		f.fails(r, http.StatusUnauthorized, "token")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/cards/blocked", nil)
	req.Header.Set("Authorization", "Basic "+f.tokens[registry.RoleFinance])
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic scheme: %d, want 401", resp.StatusCode)
	}
	f.fails(f.call(registry.RoleFinance, "GET", "/v2/anything", nil), http.StatusNotFound, "/v1")
}

// TestDeskFlow walks a resident from registration to a replaced card.
func TestDeskFlow(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	var ent registry.Entitlement
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements", id), map[string]any{
		"category": 11, "legal_basis": "Law 1788-XII art. 29", "evidence": "pension certificate AB 123456",
		"valid_from": "2026-01-01", "valid_to": "2030-12-31", "funding": "state", "monthly_limit": 0}), http.StatusCreated, &ent)
	var c struct {
		Number, Status string
		Expires        string
	}
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &c)
	if len(c.Number) != 16 || c.Status != "ordered" || c.Expires != "2031-11-20" {
		t.Fatalf("ordered card = %+v", c)
	}
	var p struct {
		Card struct {
			Number       string
			Entitlements []registry.CardEntitlement
			HolderRef    int64 `json:"holder_ref"`
		}
		Holder registry.Holder
	}
	f.ok(f.call(registry.RoleDesk, "GET", "/v1/cards/"+c.Number+"/personalisation"+purpose, nil), http.StatusOK, &p)
	if p.Card.Number != c.Number || p.Holder.Name == "" || p.Card.HolderRef != id || len(p.Card.Entitlements) != 1 ||
		p.Card.Entitlements[0].Category != 11 {
		t.Fatalf("personalisation = %+v", p)
	}
	for _, st := range []string{"personalised", "active"} {
		f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number+"/status", map[string]string{"status": st}), http.StatusOK, &c)
	}
	// Grouped as printed on the card works in the path too.
	grouped := c.Number[:4] + "-" + c.Number[4:8] + "-" + c.Number[8:12] + "-" + c.Number[12:]
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+grouped+"/block", map[string]string{"reason": "lost", "note": "tram 5"}), http.StatusOK, &c)
	if c.Status != "lost" {
		t.Fatalf("after block: %+v", c)
	}
	var bl struct {
		Version uint64
		Cards   []struct{ Card, Reason string }
	}
	f.ok(f.call(registry.RoleFinance, "GET", "/v1/cards/blocked", nil), http.StatusOK, &bl)
	if len(bl.Cards) != 1 || bl.Cards[0].Card != c.Number || bl.Cards[0].Reason != "lost" || bl.Version != 4 {
		t.Fatalf("blocked = %+v; want the lost card at version 4 (ordered, personalised, active, lost)", bl)
	}
	f.fails(f.call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number+"/replace", map[string]any{}), http.StatusBadRequest, "clearing_balance_kop")
	var rep struct{ Replaced, Replacement registry.Card }
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number+"/replace", map[string]any{"clearing_balance_kop": 2500, "card_balance_kop": 2350}), http.StatusCreated, &rep)
	if rep.Replacement.CarriedKop != 2350 || rep.Replacement.BalanceSource != registry.BalanceFromCard || rep.Replaced.Status != registry.StatusReplaced {
		t.Errorf("replace = %+v", rep)
	}
	var evs struct {
		Events []struct {
			Seq    uint64
			Card   string
			Status string
		}
		Next uint64
	}
	f.ok(f.call(registry.RoleFinance, "GET", "/v1/cards/events?since=3&limit=2", nil), http.StatusOK, &evs)
	if len(evs.Events) != 2 || evs.Events[0].Seq != 4 || evs.Events[0].Status != "lost" || evs.Next != 5 {
		t.Errorf("events since 3 = %+v", evs)
	}
	f.fails(f.call(registry.RoleFinance, "GET", "/v1/cards/events?since=-1", nil), http.StatusBadRequest, "since")
	var end registry.Entitlement
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements/%d/end", id, ent.ID),
		map[string]string{"valid_to": "2026-12-31"}), http.StatusOK, &end)
	if end.ValidTo.String() != "2026-12-31" {
		t.Errorf("ended entitlement = %+v", end)
	}
	var d registry.Dossier
	f.ok(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d", id)+purpose, nil), http.StatusOK, &d)
	if len(d.Cards) != 2 || len(d.Entitlements) != 1 {
		t.Errorf("dossier = %+v", d)
	}
	var found struct{ Residents []registry.Resident }
	f.ok(f.call(registry.RoleDesk, "GET", "/v1/residents?name=петренко"+strings.Replace(purpose, "?", "&", 1), nil), http.StatusOK, &found)
	if len(found.Residents) != 1 || found.Residents[0].ID != id {
		t.Errorf("search = %+v", found)
	}
}

// TestBadInput: each wrong request gets a clear error and the status its
// kind calls for, and leaves nothing written.
func TestBadInput(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	var c struct{ Number string }
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &c)
	unknownCard, err := card.NewNumber(1001, 999_999)
	if err != nil {
		t.Fatal(err)
	}
	person := func(number, birth string) map[string]any {
		return map[string]any{"registry_number": number, "name": "Іваненко Петро", "birth_date": birth, "contact": ""}
	}
	for _, tc := range []struct {
		name         string
		role         registry.Role
		method, path string
		body         any
		status       int
		wants        []string
	}{
		{"invalid registry number", registry.RoleDesk, "POST", "/v1/residents", person("3652504576", "2000-01-01"),
			http.StatusBadRequest, []string{"registry_number", "check digit"}},
		{"registry number of 9 digits", registry.RoleDesk, "POST", "/v1/residents", person("365250457", "2000-01-01"),
			http.StatusBadRequest, []string{"registry_number", "10 digits"}},
		{"invalid date", registry.RoleDesk, "POST", "/v1/residents", person("3652504575", "2000-02-30"),
			http.StatusBadRequest, []string{"birth_date", "YYYY-MM-DD"}},
		{"date in the future", registry.RoleDesk, "POST", "/v1/residents", person("3652504575", "2030-01-01"),
			http.StatusBadRequest, []string{"birth_date", "future"}},
		{"duplicate person", registry.RoleDesk, "POST", "/v1/residents", person(storetest.RegistryNumber(1), "1955-04-12"),
			http.StatusConflict, []string{"already registered", "find the record"}},
		{"unknown field", registry.RoleDesk, "POST", "/v1/residents", map[string]any{"rnokpp": "3652504575"},
			http.StatusBadRequest, []string{"rnokpp"}},
		{"not JSON", registry.RoleDesk, "POST", "/v1/residents", "{", http.StatusBadRequest, []string{"JSON"}},
		{"second card", registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil,
			http.StatusConflict, []string{"(ordered)", "one card"}},
		{"transition not allowed", registry.RoleDesk, "POST", "/v1/cards/" + c.Number + "/status", map[string]string{"status": "active"},
			http.StatusConflict, []string{"ordered", "cannot become active", "personalised"}},
		{"replace an ordered card", registry.RoleDesk, "POST", "/v1/cards/" + c.Number + "/replace", map[string]int{"clearing_balance_kop": 0},
			http.StatusConflict, []string{"cannot become replaced"}},
		{"block without a reason", registry.RoleDesk, "POST", "/v1/cards/" + c.Number + "/block", map[string]string{},
			http.StatusBadRequest, []string{"reason"}},
		{"bad card number", registry.RoleDesk, "POST", "/v1/cards/1001000000000001/status", map[string]string{"status": "active"},
			http.StatusBadRequest, []string{"check"}},
		{"unknown card", registry.RoleDesk, "POST", "/v1/cards/" + unknownCard.String() + "/status", map[string]string{"status": "active"},
			http.StatusNotFound, []string{"no card"}},
		{"no purpose", registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d", id), nil,
			http.StatusBadRequest, []string{"purpose"}},
		{"no purpose for a search", registry.RoleDesk, "GET", "/v1/residents?name=петренко", nil,
			http.StatusBadRequest, []string{"purpose"}},
		{"no purpose for personalisation", registry.RoleDesk, "GET", "/v1/cards/" + c.Number + "/personalisation", nil,
			http.StatusBadRequest, []string{"purpose"}},
		{"role not allowed", registry.RoleFinance, "GET", fmt.Sprintf("/v1/residents/%d", id) + purpose, nil,
			http.StatusForbidden, []string{"role finance may not"}},
		{"role not allowed to write", registry.RoleAuditor, "POST", "/v1/residents", person("3652504575", "2000-01-01"),
			http.StatusForbidden, []string{"role auditor may not"}},
		{"bad id", registry.RoleDesk, "POST", "/v1/residents/abc/cards", nil, http.StatusBadRequest, []string{"id"}},
		{"unknown resident", registry.RoleDesk, "GET", "/v1/residents/999" + purpose, nil, http.StatusNotFound, []string{"999"}},
		{"entitlement date", registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements", id), map[string]any{
			"category": 11, "legal_basis": "L", "evidence": "E", "valid_from": "2026-01-01", "valid_to": "31.12.2026", "funding": "city"},
			http.StatusBadRequest, []string{"valid_to"}},
		{"entitlement funding", registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements", id), map[string]any{
			"category": 11, "legal_basis": "L", "evidence": "E", "valid_from": "2026-01-01", "valid_to": "2026-12-31", "funding": "oblast"},
			http.StatusBadRequest, []string{"funding", "city or state"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			before := f.written()
			f.fails(f.call(tc.role, tc.method, tc.path, tc.body), tc.status, tc.wants...)
			if after := f.written(); after != before {
				t.Errorf("a refused request changed the registry:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// TestResidentSeesOwnDataOnly: a resident sees their record, cards,
// entitlements and who read them, and nobody else's.
func TestResidentSeesOwnDataOnly(t *testing.T) {
	f := newFixture(t)
	a, aToken := f.resident()
	b, bToken := f.resident()
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", a), nil), http.StatusCreated, nil)
	f.ok(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d?purpose=phone+call+about+card", a), nil), http.StatusOK, nil)
	f.ok(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d?purpose=other+person", b), nil), http.StatusOK, nil)

	var d registry.Dossier
	f.ok(f.callToken(aToken, "GET", "/v1/me", nil), http.StatusOK, &d)
	if d.Resident.ID != a || len(d.Cards) != 1 {
		t.Errorf("GET /v1/me = %+v; want resident %d with one card", d, a)
	}
	f.fails(f.callToken(aToken, "GET", fmt.Sprintf("/v1/residents/%d", b)+purpose, nil), http.StatusForbidden)
	f.fails(f.callToken(aToken, "GET", fmt.Sprintf("/v1/audit?resident=%d", b), nil), http.StatusForbidden)

	var au struct{ Entries []registry.AuditEntry }
	f.ok(f.callToken(aToken, "GET", "/v1/me/audit", nil), http.StatusOK, &au)
	var sawCall bool
	for _, e := range au.Entries {
		if e.Resident != a {
			t.Errorf("resident %d sees an entry about %d: %+v", a, e.Resident, e)
		}
		if e.Purpose == "phone call about card" && e.User == "desk-user" && e.Action == "read resident" {
			sawCall = true
		}
		if e.Purpose == "other person" {
			t.Errorf("resident %d sees the read of resident %d", a, b)
		}
	}
	if !sawCall {
		t.Errorf("resident %d does not see the desk's read of their record: %+v", a, au.Entries)
	}
	f.ok(f.callToken(bToken, "GET", "/v1/me/audit", nil), http.StatusOK, &au)
	for _, e := range au.Entries {
		if e.Resident != b {
			t.Errorf("resident %d sees an entry about %d", b, e.Resident)
		}
	}
}

func TestImport(t *testing.T) {
	f := newFixture(t)
	sample, err := os.ReadFile("../../testdata/registry/benefit-recipients.csv")
	if err != nil {
		t.Fatal(err)
	}
	before := f.written()
	var rep registry.ImportReport
	f.ok(f.call(registry.RoleSupervisor, "POST", "/v1/import"+purpose+"&dry_run=1", string(sample)), http.StatusOK, &rep)
	if !rep.DryRun || rep.Rows != 6 || rep.NewResidents != 4 || rep.NewEntitlements != 5 || rep.Ignored != 1 {
		t.Errorf("dry run = %+v; want 4 new residents, 5 entitlements, 1 ignored end", rep)
	}
	if after := f.written(); after != before {
		t.Errorf("dry run wrote:\n%s\n%s", before, after)
	}
	f.ok(f.call(registry.RoleSupervisor, "POST", "/v1/import"+purpose, string(sample)), http.StatusOK, &rep)
	if rep.DryRun || rep.NewResidents != 4 || rep.NewEntitlements != 5 {
		t.Errorf("import = %+v", rep)
	}
	f.ok(f.call(registry.RoleSupervisor, "POST", "/v1/import"+purpose, string(sample)), http.StatusOK, &rep)
	if rep.Unchanged != 5 || len(rep.Changes) != 0 {
		t.Errorf("second import = %+v; want 5 unchanged", rep)
	}

	bad := strings.Replace(string(sample), ";state;", ";oblast;", 1)
	bad = strings.Replace(bad, "02.11.1948", "31.11.1948", 1)
	before = f.written()
	var e struct {
		Error    string
		Problems []struct {
			Line           int
			Field, Problem string
		}
	}
	f.ok(f.call(registry.RoleSupervisor, "POST", "/v1/import"+purpose+"&dry_run=0", bad), http.StatusBadRequest, &e)
	if len(e.Problems) != 2 || e.Problems[0].Line != 2 || e.Problems[0].Field != "funding" || e.Problems[1].Line != 3 || e.Problems[1].Field != "birth_date" {
		t.Errorf("bad file = %+v; want problems on line 2 (funding) and 3 (birth_date)", e)
	}
	if after := f.written(); after != before {
		t.Errorf("a bad file wrote something")
	}
	f.fails(f.call(registry.RoleSupervisor, "POST", "/v1/import", string(sample)), http.StatusBadRequest, "purpose")
	f.fails(f.call(registry.RoleSupervisor, "POST", "/v1/import"+purpose+"&dry_run=maybe", string(sample)), http.StatusBadRequest, "dry_run")
	f.fails(f.call(registry.RoleDesk, "POST", "/v1/import"+purpose, string(sample)), http.StatusForbidden, "role desk may not")
}

func TestExpiring(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	for i, to := range []string{"2026-12-20", "2026-12-21", "2027-01-15"} {
		f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements", id), map[string]any{
			"category": 11 + i, "legal_basis": "=HYPERLINK(\"http://x\")", "evidence": "E", "valid_from": "2026-01-01",
			"valid_to": to, "funding": "city"}), http.StatusCreated, nil)
	}
	var js struct {
		From, To     string
		Entitlements []registry.Expiring
	}
	f.ok(f.call(registry.RoleDesk, "GET", "/v1/entitlements/expiring"+purpose, nil), http.StatusOK, &js)
	if js.From != "2026-11-20" || js.To != "2026-12-20" || len(js.Entitlements) != 1 || js.Entitlements[0].Name == "" {
		t.Errorf("expiring (30 days) = %+v", js)
	}
	r := f.call(registry.RoleDesk, "GET", "/v1/entitlements/expiring"+purpose+"&days=60&format=csv", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s", r.status, r.body)
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 4 || strings.Join(recs[0], ",") != strings.Join(api.ExpiringCSVHeader, ",") {
		t.Fatalf("CSV = %q, %v", recs, err)
	}
	// OWASP's rule leaves no + first, a phone's either: a spreadsheet
	// shows it as text, quote hidden.
	if recs[1][2] != "'+380501234567" || !strings.HasPrefix(recs[1][8], "'=") {
		t.Errorf("CSV row = %q; want the phone and the formula defused", recs[1])
	}
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/entitlements/expiring"+purpose+"&days=0", nil), http.StatusBadRequest, "days")
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/entitlements/expiring"+purpose+"&format=xlsx", nil), http.StatusBadRequest, "format")
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/entitlements/expiring", nil), http.StatusBadRequest, "purpose")
}

// TestLogsCarryNoPersonalData: query strings may hold registry numbers,
// so request logs name the route pattern only.
func TestLogsCarryNoPersonalData(t *testing.T) {
	f := newFixture(t)
	f.resident()
	number := storetest.RegistryNumber(1)
	f.ok(f.call(registry.RoleDesk, "GET", "/v1/residents?registry_number="+number+"&purpose=x", nil), http.StatusOK, nil)
	logs := f.logs.String()
	if strings.Contains(logs, number) || strings.Contains(logs, "Петренко") {
		t.Errorf("logs carry personal data:\n%s", logs)
	}
	if !strings.Contains(logs, `route="GET /v1/residents"`) || !strings.Contains(logs, "user=desk-user") {
		t.Errorf("logs lack the route or user:\n%s", logs)
	}
}

func TestResponsesAreNotCached(t *testing.T) {
	f := newFixture(t)
	r := f.call(registry.RoleFinance, "GET", "/v1/cards/blocked", nil)
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
	}
}
