package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/password"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/store/storetest"
)

// The attacks of issue 16 on the registry API, each refused.

// testKDF keeps password hashing cheap in tests; production uses
// password.Default.
var testKDF = password.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// withSignIn is a fixture whose sign-in sends codes to a file and hashes
// passwords cheaply, with one staff account per role whose password is
// "<role> password 1".
func withSignIn(t *testing.T) (*fixture, string) {
	t.Helper()
	outbox := filepath.Join(t.TempDir(), "outbox.jsonl")
	f := newFixtureWith(t, func(o *api.Options, f *fixture) {
		si, err := signin.New(signin.Options{Store: f.st, Sender: &notify.File{Path: outbox}, Password: testKDF, Now: o.Now, Log: o.Logger})
		if err != nil {
			t.Fatal(err)
		}
		o.SignIn = si
	})
	for _, role := range registry.StaffRoles {
		h, err := password.Hash(string(role)+" password 1", testKDF)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.AddStaff(context.Background(), registry.StaffAccount{User: "staff-" + string(role), Role: role, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
	}
	return f, outbox
}

// Issue 16, 2: conflict answers named the resident and the card that
// hold a registry number, and GET /v1/cards/N gave the holder and the
// benefit categories, without a purpose or an audit entry.
func TestAttackConflictsAndCardReadsLeakNothing(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	var c registry.Card
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &c)
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/entitlements", id), map[string]any{
		"category": registry.CategoryDisability, "legal_basis": "Закон 875-XII", "evidence": "довідка МСЕК 42", "valid_from": "2026-01-01",
		"valid_to": "2027-12-31", "funding": "state"}), http.StatusCreated, nil)
	audits := f.auditCount()
	dup := f.call(registry.RoleDesk, "POST", "/v1/residents", map[string]string{"registry_number": storetest.RegistryNumber(1),
		"name": "Хтось Інший", "birth_date": "1980-01-01", "contact": ""})
	second := f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil)
	state := f.call(registry.RoleDesk, "GET", "/v1/cards/"+c.Number.String(), nil)
	if dup.status != http.StatusConflict || second.status != http.StatusConflict || state.status != http.StatusOK {
		t.Fatalf("statuses %d %d %d", dup.status, second.status, state.status)
	}
	for what, r := range map[string]response{"duplicate registration": dup, "second card": second} {
		for _, leak := range []string{"resident " + strconv.FormatInt(id, 10), c.Number.String(), c.Number.Grouped(), "Петренко"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("%s answer names %q: %s", what, leak, r.body)
			}
		}
	}
	for _, leak := range []string{"holder_ref", `"category"`, "21", strconv.FormatInt(id, 10) + ","} {
		if strings.Contains(string(state.body), leak) {
			t.Errorf("GET /v1/cards/N answers %q: %s", leak, state.body)
		}
	}
	if got := f.auditCount(); got != audits {
		t.Errorf("the refused and non-personal requests wrote %d audit entries", got-audits)
	}
}

// Issue 16, 4: a token back-dated to the year 2000 worked, and tokens
// could be neither listed nor revoked.
func TestAttackTokensEndAndCanBeRevoked(t *testing.T) {
	f := newFixture(t)
	secret, tok, err := registry.NewToken(registry.Actor{User: "old.script", Role: registry.RoleSupervisor}, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.AddToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	f.fails(f.callToken(secret, "GET", "/v1/cards/blocked", nil), http.StatusUnauthorized, "ended")

	victim := f.token(registry.Actor{User: "stolen.laptop", Role: registry.RoleDesk})
	f.ok(f.callToken(victim, "GET", "/v1/cards/"+"1001000000000015", nil), http.StatusNotFound, nil)
	var list struct{ Tokens []registry.TokenInfo }
	f.ok(f.call(registry.RoleSupervisor, "GET", "/v1/tokens?user=stolen.laptop", nil), http.StatusOK, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].LastUsed.IsZero() {
		t.Fatalf("token list %+v; want the laptop's token with its last use", list)
	}
	id := list.Tokens[0].ID
	f.fails(f.call(registry.RoleSupervisor, "POST", "/v1/tokens/"+id+"/revoke", map[string]bool{}), http.StatusBadRequest, "confirm")
	f.fails(f.call(registry.RoleDesk, "POST", "/v1/tokens/"+id+"/revoke", map[string]bool{"confirm": true}), http.StatusForbidden, "may not")
	var revoked registry.TokenInfo
	f.ok(f.call(registry.RoleSupervisor, "POST", "/v1/tokens/"+id+"/revoke", map[string]bool{"confirm": true}), http.StatusOK, &revoked)
	if revoked.RevokedBy != "supervisor-user" {
		t.Errorf("revoked %+v; want it to record who", revoked)
	}
	f.fails(f.callToken(victim, "GET", "/v1/cards/blocked", nil), http.StatusUnauthorized, "revoked")
}

// Issue 16, 5: 300 wrong tokens in 2.2 s were all answered 401, and the
// log line had no client address.
func TestAttackWrongTokensAreThrottled(t *testing.T) {
	f := newFixture(t)
	var throttled response
	for i := range 300 {
		r := f.callToken(fmt.Sprintf("rgt_guess%d", i), "GET", "/v1/cards/blocked", nil)
		if r.status == http.StatusTooManyRequests {
			throttled = r
			break
		}
		if r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s", i, r.status, r.body)
		}
	}
	if throttled.status != http.StatusTooManyRequests {
		t.Fatal("300 wrong tokens were all answered 401; want 429 after a few")
	}
	if n, err := strconv.Atoi(throttled.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("429 with Retry-After %q; want whole seconds", throttled.header.Get("Retry-After"))
	}
	// The right token from the same address waits too: the address is
	// slowed, whatever it sends.
	if r := f.call(registry.RoleFinance, "GET", "/v1/cards/blocked", nil); r.status != http.StatusTooManyRequests {
		t.Errorf("a good token from the throttled address: %d; want 429", r.status)
	}
	logs := f.logs.String()
	if !regexp.MustCompile(`msg="sign-in refused" kind=token reason="unknown, ended or revoked" addr=127\.0\.0\.1`).MatchString(logs) {
		t.Errorf("the log does not say who guessed:\n%.2000s", logs)
	}
	if strings.Contains(logs, "rgt_guess") {
		t.Error("the log holds a guessed token")
	}
}

// Staff sign in with a named account's password; wrong passwords are
// throttled per account, even from many addresses.
func TestStaffPasswordSignIn(t *testing.T) {
	f, _ := withSignIn(t)
	var s struct {
		Token   string
		Expires time.Time
		Role    registry.Role
	}
	f.ok(f.callToken("", "POST", "/v1/auth/login", map[string]string{"user": "staff-desk", "password": "desk password 1"}), http.StatusOK, &s)
	if s.Role != registry.RoleDesk || !strings.HasPrefix(s.Token, "rgt_") || s.Expires.Sub(now) != registry.StaffSessionTTL {
		t.Fatalf("sign-in %+v", s)
	}
	f.ok(f.callToken(s.Token, "GET", "/v1/residents?name=петренко"+"&"+purpose[1:], nil), http.StatusOK, nil)
	f.ok(f.callToken(s.Token, "POST", "/v1/auth/logout", nil), http.StatusOK, nil)
	f.fails(f.callToken(s.Token, "GET", "/v1/residents?name=петренко&"+purpose[1:], nil), http.StatusUnauthorized, "revoked")

	// The same answer for an unknown user and a wrong password.
	bad := f.callToken("", "POST", "/v1/auth/login", map[string]string{"user": "staff-desk", "password": "not the password"})
	unknown := f.callToken("", "POST", "/v1/auth/login", map[string]string{"user": "nobody", "password": "not the password"})
	if bad.status != http.StatusUnauthorized || string(bad.body) != string(unknown.body) {
		t.Errorf("wrong password %d %s, unknown user %d %s; want the same 401", bad.status, bad.body, unknown.status, unknown.body)
	}
	var last response
	for range 10 {
		last = f.callToken("", "POST", "/v1/auth/login", map[string]string{"user": "staff-supervisor", "password": "guess guess guess"})
	}
	if last.status != http.StatusTooManyRequests || last.header.Get("Retry-After") == "" {
		t.Errorf("the 10th wrong password: %d; want 429 with Retry-After", last.status)
	}
	// Even the right one waits while the account is throttled.
	f.fails(f.callToken("", "POST", "/v1/auth/login", map[string]string{"user": "staff-supervisor", "password": "supervisor password 1"}),
		http.StatusTooManyRequests, "wait")
	if !strings.Contains(f.logs.String(), `kind=password reason="wrong password" addr=127.0.0.1 user=staff-supervisor`) {
		t.Errorf("failed sign-ins are not logged with the address:\n%.3000s", f.logs.String())
	}
	if strings.Contains(f.logs.String(), "guess guess") {
		t.Error("the log holds a password")
	}
}

// Residents sign in without any staff-issued token: a one-time code goes
// to the contact the registry holds, and the answer to a stranger is the
// same as to the resident.
func TestResidentSignInWithCode(t *testing.T) {
	f, outbox := withSignIn(t)
	id, _ := f.resident()
	var rd struct{ Resident registry.Resident }
	f.ok(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d", id)+purpose, nil), http.StatusOK, &rd)

	var known, stranger struct {
		SignIn  string `json:"sign_in"`
		Message string
	}
	f.ok(f.callToken("", "POST", "/v1/auth/resident/code", map[string]string{"registry_number": rd.Resident.RegistryNumber}), http.StatusAccepted, &known)
	f.ok(f.callToken("", "POST", "/v1/auth/resident/code", map[string]string{"registry_number": storetest.RegistryNumber(77)}), http.StatusAccepted, &stranger)
	if known.Message != stranger.Message || len(known.SignIn) != len(stranger.SignIn) || known.SignIn == stranger.SignIn {
		t.Errorf("answers differ: %+v / %+v", known, stranger)
	}
	msgs, err := notify.ReadFile(outbox)
	if err != nil || len(msgs) != 1 || msgs[0].To != rd.Resident.Contact {
		t.Fatalf("outbox %+v, %v; want one message to %s", msgs, err, rd.Resident.Contact)
	}
	code := regexp.MustCompile(`\b\d{8}\b`).FindString(msgs[0].Text)
	if code == "" {
		t.Fatalf("no code in %q", msgs[0].Text)
	}
	f.fails(f.callToken("", "POST", "/v1/auth/resident/token", map[string]string{"sign_in": stranger.SignIn, "code": code}), http.StatusUnauthorized, "code")
	f.fails(f.callToken("", "POST", "/v1/auth/resident/token", map[string]string{"sign_in": known.SignIn, "code": "00000000"}), http.StatusUnauthorized, "code")
	var s struct {
		Token   string
		Expires time.Time
	}
	f.ok(f.callToken("", "POST", "/v1/auth/resident/token", map[string]string{"sign_in": known.SignIn, "code": code}), http.StatusOK, &s)
	if s.Expires.Sub(now) != registry.ResidentSessionTTL {
		t.Errorf("a resident's session ends %s", s.Expires)
	}
	var me registry.Dossier
	f.ok(f.callToken(s.Token, "GET", "/v1/me", nil), http.StatusOK, &me)
	if me.Resident.ID != id {
		t.Fatalf("signed in as %d, want %d", me.Resident.ID, id)
	}
	f.fails(f.callToken(s.Token, "GET", fmt.Sprintf("/v1/residents/%d", id)+purpose, nil), http.StatusForbidden, "may not")
	// The code is used up.
	f.fails(f.callToken("", "POST", "/v1/auth/resident/token", map[string]string{"sign_in": known.SignIn, "code": code}), http.StatusUnauthorized, "code")
	var log struct {
		Entries []struct {
			Action, Purpose string
			Verified        bool
		}
	}
	f.ok(f.callToken(s.Token, "GET", "/v1/me/audit", nil), http.StatusOK, &log)
	found := false
	for _, e := range log.Entries {
		found = found || e.Purpose == "resident sign-in: one-time code sent to the registered contact"
	}
	if !found {
		t.Errorf("the resident's access log does not show the contact read for the code: %+v", log)
	}
	// A bad registry number is a plain input error, the same for all.
	f.fails(f.callToken("", "POST", "/v1/auth/resident/code", map[string]string{"registry_number": "123"}), http.StatusBadRequest, "registry_number")
}

// Issue 16, 8: names took bidi overrides and zero-width spaces, invalid
// UTF-8 was replaced without a word, purposes took CR/LF and NUL into the
// audit log, and NFC and NFD spellings of a name did not find each other.
func TestAttackOddText(t *testing.T) {
	f := newFixture(t)
	before := f.written()
	for _, name := range []string{"Петро \u202eокнелаВ", "Пет\u200bро", "Петро\u2066"} {
		f.fails(f.call(registry.RoleDesk, "POST", "/v1/residents", map[string]string{"registry_number": "3652504575", "name": name,
			"birth_date": "1970-01-01", "contact": ""}), http.StatusBadRequest, "name", "U+")
	}
	raw := "{\"registry_number\": \"3652504575\", \"name\": \"Пет\xffро\", \"birth_date\": \"1970-01-01\", \"contact\": \"\"}"
	f.fails(f.call(registry.RoleDesk, "POST", "/v1/residents", raw), http.StatusBadRequest, "UTF-8")
	surrogate := `{"registry_number": "3652504575", "name": "Пет\ud800ро", "birth_date": "1970-01-01", "contact": ""}`
	f.fails(f.call(registry.RoleDesk, "POST", "/v1/residents", surrogate), http.StatusBadRequest, "replacement character")
	id, _ := f.resident()
	if f.written() == before {
		t.Fatal("the good registration wrote nothing")
	}
	before = f.written()
	for _, p := range []string{"visit\r\n2026-11-20 auditor read nothing", "visit\x00", "visit \u202e"} {
		f.fails(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d?purpose=%s", id, url.QueryEscape(p)), nil), http.StatusBadRequest, "purpose")
	}
	if f.written() != before {
		t.Error("a refused purpose wrote to the audit log")
	}
	var nfc registry.Resident
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/residents", map[string]string{"registry_number": "3652504575",
		"name": "И\u0306осипенко Олена", "birth_date": "1970-01-01", "contact": "вул. І\u0308жакевича 1"}), http.StatusCreated, &nfc)
	if nfc.Name != "Йосипенко Олена" || nfc.Contact != "вул. Їжакевича 1" {
		t.Errorf("stored %q, %q; want NFC", nfc.Name, nfc.Contact)
	}
	var found struct{ Residents []registry.Resident }
	f.ok(f.call(registry.RoleDesk, "GET", "/v1/residents?name="+url.QueryEscape("И\u0306осипенко")+"&"+purpose[1:], nil), http.StatusOK, &found)
	if len(found.Residents) != 1 || found.Residents[0].ID != nfc.ID {
		t.Errorf("an NFD search found %+v", found)
	}
}

// Clearing checks callers with the registry: a service token asks whose
// a token is; revocation shows at once.
func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	fin := f.token(registry.Actor{User: "iryna", Role: registry.RoleFinance})
	var in struct {
		Active bool
		User   string
		Role   registry.Role
	}
	f.ok(f.call(registry.RoleService, "POST", "/v1/auth/introspect", map[string]string{"token": fin}), http.StatusOK, &in)
	if !in.Active || in.User != "iryna" || in.Role != registry.RoleFinance {
		t.Fatalf("introspect %+v", in)
	}
	f.fails(f.call(registry.RoleFinance, "POST", "/v1/auth/introspect", map[string]string{"token": fin}), http.StatusForbidden, "may not")
	var list struct{ Tokens []registry.TokenInfo }
	f.ok(f.call(registry.RoleSupervisor, "GET", "/v1/tokens?user=iryna", nil), http.StatusOK, &list)
	f.ok(f.call(registry.RoleSupervisor, "POST", "/v1/tokens/"+list.Tokens[0].ID+"/revoke", map[string]bool{"confirm": true}), http.StatusOK, nil)
	f.ok(f.call(registry.RoleService, "POST", "/v1/auth/introspect", map[string]string{"token": fin}), http.StatusOK, &in)
	if in.Active {
		t.Error("a revoked token is still active")
	}
	f.ok(f.call(registry.RoleService, "POST", "/v1/auth/introspect", map[string]string{"token": "rgt_made_up"}), http.StatusOK, &in)
	if in.Active {
		t.Error("a made-up token is active")
	}
}
