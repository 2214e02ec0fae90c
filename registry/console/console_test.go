package console_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store/storetest"
)

func TestLoginStartsSessionPerRole(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct{ user, home string }{
		{deskUser, "/desk"}, {supervisorUser, "/desk"}, {financeUser, "/finance"}, {auditorUser, "/audit"},
		{operatorUser, "/finance/reconciliation"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			u := f.anonymous()
			page := u.get("/login").want(t, http.StatusOK, "login form")
			r := u.post("/login", url.Values{"csrf": {csrf(t, page.body)}, "user": {" " + tc.user + " "}, "password": {f.passwords[tc.user]}})
			r.want(t, http.StatusSeeOther, "sign in")
			if got := r.header.Get("Location"); got != tc.home {
				t.Errorf("start page %q, want %q", got, tc.home)
			}
			var ses *http.Cookie
			for _, c := range (&http.Response{Header: r.header}).Cookies() {
				if c.Name == "console_session" {
					ses = c
				}
			}
			switch {
			case ses == nil:
				t.Fatalf("no session cookie: %v", r.header["Set-Cookie"])
			case !ses.HttpOnly || ses.SameSite != http.SameSiteStrictMode || ses.Path != "/":
				t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ses)
			case len(ses.Value) < 40 || strings.HasPrefix(ses.Value, "rgt_"):
				t.Errorf("session id %q: want a long random id that is not a token", ses.Value)
			}
			if strings.Contains(f.log.String(), f.passwords[tc.user]) {
				t.Error("the password was logged")
			}
		})
	}
	// The session is a token in the registry: a supervisor sees it.
	list, err := f.reg.Tokens(f.ctx, registry.Access{Actor: registry.Actor{User: "s", Role: registry.RoleSupervisor}}, registry.TokenQuery{User: deskUser})
	if err != nil || len(list) != 1 || list[0].Kind != registry.TokenSession || list[0].Expires.Sub(list[0].Created) != registry.StaffSessionTTL {
		t.Errorf("the desk's session in the registry: %+v, %v", list, err)
	}
}

// TestResidentSignIn: a resident signs in with a one-time code sent to
// the contact the registry holds, without a token from a desk; a
// stranger's number gets the same page and no code.
func TestResidentSignIn(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	u, _ := f.login(aliceUser)
	me := u.get("/me").want(t, http.StatusOK, "Alice's page")
	if !strings.Contains(me.body, f.alice.Name) || strings.Contains(me.body, f.bob.Name) {
		t.Errorf("Alice's page:\n%s", me.body)
	}
	stranger := f.anonymous()
	page := stranger.get("/login/resident").want(t, http.StatusOK, "form")
	known := f.anonymous()
	kpage := known.get("/login/resident").want(t, http.StatusOK, "form")
	a := stranger.post("/login/resident", url.Values{"csrf": {csrf(t, page.body)}, "registry_number": {storetest.RegistryNumber(99)}}).want(t, http.StatusOK, "unknown number")
	b := known.post("/login/resident", url.Values{"csrf": {csrf(t, kpage.body)}, "registry_number": {f.bob.RegistryNumber}}).want(t, http.StatusOK, "known number")
	strip := regexp.MustCompile(`value="[^"]*"`)
	if strip.ReplaceAllString(a.body, "") != strip.ReplaceAllString(b.body, "") {
		t.Error("the page after asking for a code differs between a registered number and an unknown one")
	}
	// A wrong code, and a code of another sign-in, do not sign in.
	stranger.post("/login/resident/code", url.Values{"csrf": {csrf(t, a.body)}, "code": {f.code(f.bob.Contact)}}).want(t, http.StatusUnauthorized, "bob's code in the stranger's sign-in")
	known.post("/login/resident/code", url.Values{"csrf": {csrf(t, b.body)}, "code": {"00000000"}}).want(t, http.StatusUnauthorized, "a wrong code")
	r := known.post("/login/resident/code", url.Values{"csrf": {csrf(t, b.body)}, "code": {f.code(f.bob.Contact)}}).want(t, http.StatusSeeOther, "bob's code")
	if r.header.Get("Location") != "/me" {
		t.Errorf("bob goes to %q", r.header.Get("Location"))
	}
	if page := known.get("/me").want(t, http.StatusOK, "bob's page"); !strings.Contains(page.body, f.bob.Name) {
		t.Error("bob does not see his own page")
	}
}

// TestLoginThrottled: wrong passwords past the allowance get 429 with
// Retry-After, and each refusal is logged with the address.
func TestLoginThrottled(t *testing.T) {
	f := newFixture(t, fixtureOptions{strictThrottle: true})
	u := f.anonymous()
	secret := csrf(t, u.get("/login").body)
	var r response
	for range 8 {
		r = u.post("/login", url.Values{"csrf": {secret}, "user": {deskUser}, "password": {"guessing again"}})
	}
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Too many failed attempts") {
		t.Fatalf("the 8th wrong password: %d %v\n%s", r.status, r.header, r.body)
	}
	// The right password waits as well.
	u.post("/login", url.Values{"csrf": {secret}, "user": {deskUser}, "password": {f.passwords[deskUser]}}).want(t, http.StatusTooManyRequests, "the right password while throttled")
	if !strings.Contains(f.log.String(), `kind=password reason="wrong password" addr=127.0.0.1 user=olena.desk`) {
		t.Errorf("refusals are not logged with the address:\n%.2000s", f.log.String())
	}
	if strings.Contains(f.log.String(), "guessing again") {
		t.Error("a password was logged")
	}
}

func TestLoginRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	u := f.anonymous()
	secret := csrf(t, u.get("/login").body)
	good := url.Values{"user": {deskUser}, "password": {f.passwords[deskUser]}}
	r := u.post("/login", url.Values{"csrf": {secret}, "user": {deskUser}, "password": {"not the password"}}).want(t, http.StatusUnauthorized, "wrong password")
	if !strings.Contains(r.body, "Wrong user name or password") || strings.Contains(strings.Join(r.header["Set-Cookie"], ";"), "console_session=") {
		t.Errorf("wrong password: want the message and no session\n%v\n%s", r.header, r.body)
	}
	unknown := u.post("/login", url.Values{"csrf": {secret}, "user": {"nobody"}, "password": {"not the password"}}).want(t, http.StatusUnauthorized, "unknown user")
	if typed := regexp.MustCompile(`id="user" [^>]*>`); typed.ReplaceAllString(unknown.body, "") != typed.ReplaceAllString(r.body, "") {
		t.Error("an unknown user and a wrong password get different pages")
	}
	u.post("/login", url.Values{"csrf": {secret}, "user": {deskUser}, "password": {""}}).want(t, http.StatusBadRequest, "empty password")

	// Without the form's secret, or with one from another browser, the
	// sign-in is refused: nobody can sign a victim in as themselves.
	u.post("/login", good).want(t, http.StatusForbidden, "no csrf")
	other := csrf(t, f.anonymous().get("/login").body)
	withCSRF := func(c string) url.Values {
		v := url.Values{"csrf": {c}}
		for k, x := range good {
			v[k] = x
		}
		return v
	}
	u.post("/login", withCSRF(other)).want(t, http.StatusForbidden, "another browser's csrf")
	fresh := f.anonymous()
	fresh.post("/login", withCSRF(secret)).want(t, http.StatusForbidden, "csrf without its cookie")
	u.get("/desk").want(t, http.StatusSeeOther, "still signed out")
}

func TestRoleEnforcement(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	bobPage := fmt.Sprintf("/desk/residents/%d?purpose=curiosity", f.bob.ID)
	export := "/finance/export?period=" + period + "&format=csv"
	for _, tc := range []struct {
		user   string // "" for nobody signed in
		path   string
		status int
	}{
		{"", "/desk", http.StatusSeeOther},
		{"", "/me", http.StatusSeeOther},
		{"", "/finance", http.StatusSeeOther},
		{"", export, http.StatusSeeOther},
		{deskUser, "/desk", http.StatusOK},
		{deskUser, bobPage, http.StatusOK},
		{deskUser, "/finance", http.StatusForbidden},
		{deskUser, export, http.StatusForbidden},
		{deskUser, "/me", http.StatusForbidden},
		{deskUser, "/audit", http.StatusForbidden},
		{supervisorUser, "/finance", http.StatusOK},
		{financeUser, "/finance", http.StatusOK},
		{financeUser, export, http.StatusOK},
		{financeUser, "/desk", http.StatusForbidden},
		{financeUser, bobPage, http.StatusForbidden},
		{financeUser, "/me", http.StatusForbidden},
		{auditorUser, "/audit", http.StatusOK},
		{auditorUser, "/desk", http.StatusForbidden},
		{auditorUser, "/finance", http.StatusForbidden},
		{aliceUser, "/me", http.StatusOK},
		{aliceUser, bobPage, http.StatusForbidden},
		{aliceUser, "/desk", http.StatusForbidden},
		{aliceUser, "/finance", http.StatusForbidden},
		{aliceUser, export, http.StatusForbidden},
		{aliceUser, "/audit", http.StatusForbidden},
		{aliceUser, "/no/such/page", http.StatusNotFound},
	} {
		who := tc.user
		if who == "" {
			who = "nobody"
		}
		t.Run(who+tc.path, func(t *testing.T) {
			u := f.anonymous()
			if tc.user != "" {
				u, _ = f.login(tc.user)
			}
			r := u.get(tc.path).want(t, tc.status, tc.path)
			if tc.status == http.StatusSeeOther && r.header.Get("Location") != "/login" {
				t.Errorf("redirect to %q, want /login", r.header.Get("Location"))
			}
			if tc.status == http.StatusForbidden && strings.Contains(r.body, f.bob.Name) {
				t.Error("a refused page shows Bob's name")
			}
		})
	}
}

func TestResidentSeesOnlyOwnData(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	alice, _ := f.login(aliceUser)
	// The resident id comes from the session; a parameter naming Bob
	// changes nothing.
	for _, path := range []string{"/me", fmt.Sprintf("/me?resident=%d", f.bob.ID)} {
		r := alice.get(path).want(t, http.StatusOK, path)
		for _, want := range []string{f.alice.Name, f.alice.RegistryNumber, f.aliceCard.Number.String(), seededPurpose, deskUser, "2026-12-31"} {
			if !strings.Contains(r.body, want) {
				t.Errorf("%s lacks %q", path, want)
			}
		}
		for _, bad := range []string{f.bob.Name, f.bob.RegistryNumber, f.bobCard.Number.String(), f.bob.Contact} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s shows Bob's %q", path, bad)
			}
		}
	}
	alice.get(fmt.Sprintf("/desk/residents/%d?purpose=x", f.bob.ID)).want(t, http.StatusForbidden, "Bob's desk page")
	// Her own visits are in her log under the own-view purpose.
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: aliceUser, Role: registry.RoleResident, Resident: f.alice.ID}}, registry.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if last := es[len(es)-1]; last.User != registry.ResidentUser(f.alice.ID) || last.Purpose != registry.PurposeOwnView {
		t.Errorf("last audit entry %+v: want Alice's own view", last)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	desk, secret := f.login(deskUser)
	_, otherSecret := f.login(supervisorUser)
	block := "/desk/cards/" + f.aliceCard.Number.String() + "/block"
	form := func(csrf string) url.Values {
		v := url.Values{"reason": {"lost"}, "purpose": {"card lost, request 4711"}, "confirm": {"block " + f.aliceCard.Number.String()}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}
	desk.post(block, form("")).want(t, http.StatusForbidden, "block without csrf")
	desk.post(block, form(otherSecret)).want(t, http.StatusForbidden, "block with another session's csrf")
	desk.post("/logout", url.Values{}).want(t, http.StatusForbidden, "logout without csrf")
	if d, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || d.Status != registry.StatusActive {
		t.Fatalf("card after refused forms: %v %v; want still active", d.Status, err)
	}
	desk.get("/desk").want(t, http.StatusOK, "still signed in")
	desk.post(block, form(secret)).want(t, http.StatusSeeOther, "block with csrf")
	if d, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || d.Status != registry.StatusLost {
		t.Fatalf("card after block: %v %v; want lost", d.Status, err)
	}
}

func TestSessionEnds(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	t.Run("logout", func(t *testing.T) {
		desk, secret := f.login(deskUser)
		cookies := desk.c.Jar.Cookies(mustURL(t, f.srv.URL))
		desk.post("/logout", url.Values{"csrf": {secret}}).want(t, http.StatusSeeOther, "logout")
		desk.get("/desk").want(t, http.StatusSeeOther, "after logout")
		// The old id, replayed, is dead on the server too.
		replay := f.anonymous()
		replay.c.Jar.SetCookies(mustURL(t, f.srv.URL), cookies)
		replay.get("/desk").want(t, http.StatusSeeOther, "replayed session id")
	})
	t.Run("new sign-in", func(t *testing.T) {
		// Signing in again from a browser that has a session (a form
		// posted straight to /login) gives a new id and ends the old one.
		desk, _ := f.login(deskUser)
		base := mustURL(t, f.srv.URL)
		old := desk.c.Jar.Cookies(base)
		desk.c.Jar.SetCookies(mustURL(t, f.srv.URL+"/login"), []*http.Cookie{{Name: "console_login", Value: strings.Repeat("p", 43), Path: "/login"}})
		desk.post("/login", url.Values{"csrf": {strings.Repeat("p", 43)}, "user": {supervisorUser}, "password": {f.passwords[supervisorUser]}}).want(t, http.StatusSeeOther, "sign in again")
		if now := desk.c.Jar.Cookies(base); len(now) == 0 || len(old) == 0 || now[0].Value == old[0].Value {
			t.Fatalf("session id not renewed: %v -> %v", old, now)
		}
		replay := f.anonymous()
		replay.c.Jar.SetCookies(base, old)
		replay.get("/desk").want(t, http.StatusSeeOther, "the old session id")
	})
	t.Run("idle", func(t *testing.T) {
		desk, _ := f.login(deskUser)
		f.clock.Advance(20 * time.Minute)
		desk.get("/desk").want(t, http.StatusOK, "after 20 idle minutes")
		f.clock.Advance(31 * time.Minute)
		r := desk.get("/desk").want(t, http.StatusSeeOther, "after 31 idle minutes")
		if r.header.Get("Location") != "/login?expired=1" {
			t.Errorf("redirect %q, want /login?expired=1", r.header.Get("Location"))
		}
		if page := desk.get("/login?expired=1"); !strings.Contains(page.body, "session ended") {
			t.Errorf("login page does not say the session ended:\n%s", page.body)
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		desk, _ := f.login(deskUser)
		for range 12 * 3 {
			f.clock.Advance(20 * time.Minute)
			desk.get("/desk").want(t, http.StatusOK, "busy session")
		}
		f.clock.Advance(time.Minute)
		desk.get("/desk").want(t, http.StatusSeeOther, "after 12 hours")
	})
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// auditCount is the number of audit entries about a resident.
func (f *fixture) auditCount(t *testing.T, resident int64) int {
	t.Helper()
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: resident})
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func TestDeskSearchIsAudited(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	desk, secret := f.login(deskUser)
	const purpose = "card lost, request 4711"
	before := f.auditCount(t, f.alice.ID)

	r := desk.post("/desk/search", url.Values{"csrf": {secret}, "q": {"Ковал"}}).want(t, http.StatusBadRequest, "search without purpose")
	if !strings.Contains(r.body, "State the purpose") {
		t.Errorf("no request for a purpose:\n%s", r.body)
	}
	desk.post("/desk/search", url.Values{"csrf": {secret}, "q": {"Ко"}, "purpose": {purpose}}).want(t, http.StatusBadRequest, "two letters")
	if n := f.auditCount(t, f.alice.ID); n != before {
		t.Fatalf("refused searches wrote %d audit entries", n-before)
	}

	for _, q := range []string{"ковал", f.alice.RegistryNumber} {
		r := desk.post("/desk/search", url.Values{"csrf": {secret}, "q": {q}, "purpose": {purpose}}).want(t, http.StatusOK, "search "+q)
		link := fmt.Sprintf(`href="/desk/residents/%d?purpose=card&#43;lost%%2C&#43;request&#43;4711"`, f.alice.ID)
		if !strings.Contains(r.body, f.alice.Name) || strings.Contains(r.body, f.bob.Name) || !strings.Contains(r.body, link) {
			t.Errorf("search %q: want Alice only, linked with the purpose (%s)\n%s", q, link, r.body)
		}
	}
	if n := f.auditCount(t, f.alice.ID); n != before+2 {
		t.Errorf("two searches wrote %d audit entries about Alice, want 2", n-before)
	}

	// The record asks for a purpose first and reads nothing without one.
	page := fmt.Sprintf("/desk/residents/%d", f.alice.ID)
	r = desk.get(page).want(t, http.StatusOK, "record without purpose")
	if strings.Contains(r.body, f.alice.Name) || !strings.Contains(r.body, `name="purpose"`) {
		t.Errorf("record without purpose: want the purpose form and no data\n%s", r.body)
	}
	r = desk.get(page+"?purpose="+url.QueryEscape(purpose)).want(t, http.StatusOK, "record")
	for _, want := range []string{f.alice.Name, f.alice.RegistryNumber, f.aliceCard.Number.String(), "ends in 26 days", purpose} {
		if !strings.Contains(r.body, want) {
			t.Errorf("record lacks %q", want)
		}
	}
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: f.alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if last := es[len(es)-1]; last.User != deskUser || last.Purpose != purpose || last.Action != "read resident" {
		t.Errorf("last audit entry %+v: want the desk's read with its purpose", last)
	}
	// Personal data and purposes stay out of the request log.
	for _, secret := range []string{f.alice.RegistryNumber, "4711", f.alice.Name} {
		if strings.Contains(f.log.String(), secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

func TestDeskBlockAndReplace(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	desk, secret := f.login(deskUser)
	const purpose = "card stolen, police report 55"
	number := f.aliceCard.Number.String()
	blockForm := url.Values{"csrf": {secret}, "purpose": {purpose}, "reason": {"stolen"}, "note": {"at the market"},
		"resident": {fmt.Sprint(f.alice.ID)}}
	// The block form asks first: a page that says what will happen and
	// to whom, and carries the form to a second one that confirms.
	ask := desk.post("/desk/cards/"+number+"/block", blockForm).want(t, http.StatusOK, "block, unconfirmed")
	grouped := strings.ReplaceAll(f.aliceCard.Number.Grouped(), " ", "\u00a0")
	for _, want := range []string{"Card " + grouped + " will be blocked, reason: stolen.", f.alice.Name, "It cannot be unblocked",
		`name="confirm" value="block ` + number + `"`, `name="note" value="at the market"`, `name="reason" value="stolen"`,
		`id="confirm-cancel"`} {
		if !strings.Contains(ask.body, want) {
			t.Errorf("the confirmation lacks %q:\n%s", want, ask.body)
		}
	}
	if d, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || d.Status != registry.StatusActive {
		t.Fatalf("card after an unconfirmed block: %v %v; want still active", d.Status, err)
	}
	// The confirmation of another card does not confirm this one; a
	// form without the resident cannot even ask.
	other := url.Values{"confirm": {"block " + f.bobCard.Number.String()}}
	for k, v := range blockForm {
		other[k] = v
	}
	desk.post("/desk/cards/"+number+"/block", other).want(t, http.StatusOK, "block with another card's confirmation")
	delete(other, "resident")
	delete(other, "confirm")
	desk.post("/desk/cards/"+number+"/block", other).want(t, http.StatusBadRequest, "block without the resident")
	other.Set("resident", fmt.Sprint(f.bob.ID))
	desk.post("/desk/cards/"+number+"/block", other).want(t, http.StatusNotFound, "block of Alice's card as Bob's")
	if d, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || d.Status != registry.StatusActive {
		t.Fatalf("card after unconfirmed blocks: %v %v; want still active", d.Status, err)
	}
	blockForm.Set("confirm", "block "+number)
	r := desk.post("/desk/cards/"+number+"/block", blockForm)
	r.want(t, http.StatusSeeOther, "block")
	page := desk.get(r.header.Get("Location")).want(t, http.StatusOK, "record after block")
	if !strings.Contains(page.body, "Card "+grouped+" is blocked") || !strings.Contains(page.body, "stolen") {
		t.Errorf("record after block lacks the notice or the status:\n%s", page.body)
	}
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: f.alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(es, func(e registry.AuditEntry) bool {
		return e.Record == "card/"+number && e.Purpose == purpose && e.User == deskUser
	}) {
		t.Errorf("no audit entry of the block with its purpose: %+v", es)
	}

	// Blocking again is a conflict with the lifecycle, said so.
	desk.post("/desk/cards/"+number+"/block", url.Values{"csrf": {secret}, "purpose": {purpose}, "reason": {"lost"}, "confirm": {"block " + number}}).want(t, http.StatusConflict, "block a stolen card")
	// A replacement without a purpose, or with an amount that is not
	// one, is refused before the registry is asked.
	desk.post("/desk/cards/"+number+"/replace", url.Values{"csrf": {secret}, "clearing_balance": {"12,50"}}).want(t, http.StatusBadRequest, "no purpose")
	// A bad amount comes back at its field, with what was typed.
	bad := desk.post("/desk/cards/"+number+"/replace", url.Values{"csrf": {secret}, "purpose": {purpose}, "clearing_balance": {"12.505"},
		"resident": {fmt.Sprint(f.alice.ID)}}).want(t, http.StatusBadRequest, "bad amount")
	for _, want := range []string{`id="clearing-` + number + `-error"`, "write an amount in hryvnias", `value="12.505"`, `aria-invalid="true"`} {
		if !strings.Contains(bad.body, want) {
			t.Errorf("the refused replacement lacks %q", want)
		}
	}
	replaceForm := url.Values{"csrf": {secret}, "purpose": {purpose}, "clearing_balance": {"12,50"}, "card_balance": {""}, "resident": {fmt.Sprint(f.alice.ID)}}
	ask = desk.post("/desk/cards/"+number+"/replace", replaceForm).want(t, http.StatusOK, "replace, unconfirmed")
	for _, want := range []string{"Card " + grouped + " will be replaced by a new one; 12.50 UAH will be carried", f.alice.Name, "stops for good"} {
		if !strings.Contains(ask.body, want) {
			t.Errorf("the replacement's confirmation lacks %q:\n%s", want, ask.body)
		}
	}
	replaceForm.Set("confirm", "replace "+number)
	r = desk.post("/desk/cards/"+number+"/replace", replaceForm)
	r.want(t, http.StatusSeeOther, "replace")
	d, err := f.reg.Resident(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleDesk}, Purpose: "test check"}, f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	var repl registry.Card
	for _, c := range d.Cards {
		if c.Replaces == f.aliceCard.Number {
			repl = c
		}
	}
	if repl.Status != registry.StatusOrdered || repl.CarriedKop != 1250 || repl.BalanceSource != registry.BalanceFromClearing {
		t.Fatalf("replacement %+v: want ordered, carrying 1250 kop from clearing", repl)
	}
	page = desk.get(r.header.Get("Location")).want(t, http.StatusOK, "record after replace")
	if !strings.Contains(page.body, "replaced by new card "+strings.ReplaceAll(repl.Number.Grouped(), " ", "\u00a0")) {
		t.Errorf("no notice of the replacement:\n%s", page.body)
	}
	// A crafted link cannot make the page claim anything.
	page = desk.get(fmt.Sprintf("/desk/residents/%d?purpose=x&done=blocked&card=hello", f.alice.ID)).want(t, http.StatusOK, "crafted notice")
	if strings.Contains(page.body, `id="notice"`) {
		t.Error("a notice shows for a card number that is none")
	}
}

func TestFinanceStatements(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	fin, _ := f.login(financeUser)
	// December 5th: the default period is November.
	r := fin.get("/finance").want(t, http.StatusOK, "finance")
	table := func(id string) string {
		m := regexp.MustCompile(`(?s)<table id="` + id + `">.*?</table>`).FindString(r.body)
		if m == "" {
			t.Fatalf("no table %s:\n%s", id, r.body)
		}
		return regexp.MustCompile(`\s+`).ReplaceAllString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m, " "), " ")
	}
	for id, want := range map[string][]string{
		"by-carrier-0":  {"ATP-1 5 75.00 85.00", "ATP-2 3 45.00 50.00", "Total 8 120.00 135.00"},
		"by-category-0": {"11 5 75.00 75.00", "12 3 45.00 60.00", "Total 8 120.00 135.00"},
		"by-funding-0":  {"city budget 5 75.00 75.00", "state budget 3 45.00 60.00", "Total 8 120.00 135.00"},
	} {
		got := table(id)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", id, got, w)
			}
		}
	}
	if !strings.Contains(r.body, "Draft") || !strings.Contains(r.body, "Only a supervisor may close") {
		t.Errorf("finance page: want the draft note and no close form for finance staff")
	}
	fin.get("/finance?period=November").want(t, http.StatusBadRequest, "bad period")

	// The downloads are clearing/report's, byte for byte.
	c, err := report.BuildCompensation(f.ctx, f.clr, report.Query{Period: period, Carrier: "", Detail: report.Detail{Category: true}})
	if err != nil {
		t.Fatal(err)
	}
	c = f.asConsole(c)
	c.Lang = "en" // the finance user reads English
	for _, format := range []string{"csv", "xlsx"} {
		var want bytes.Buffer
		if err := report.WriteCompensation(&want, format, c); err != nil {
			t.Fatal(err)
		}
		got := fin.get("/finance/export?period="+period+"&format="+format).want(t, http.StatusOK, format)
		if got.body != want.String() {
			t.Errorf("%s export differs from clearing/report:\n%q\nwant\n%q", format, got.body, want.String())
		}
		if cd := got.header.Get("Content-Disposition"); cd != `attachment; filename="compensation-2026-11.`+format+`"` {
			t.Errorf("%s Content-Disposition %q", format, cd)
		}
	}
	fin.get("/finance/export?period="+period+"&format=docx").want(t, http.StatusBadRequest, "unknown format")
}

func TestFinanceClose(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	fin, finSecret := f.login(financeUser)
	fin.post("/finance/close", url.Values{"csrf": {finSecret}, "period": {period}}).want(t, http.StatusForbidden, "finance closes")
	desk, deskSecret := f.login(deskUser)
	desk.post("/finance/close", url.Values{"csrf": {deskSecret}, "period": {period}}).want(t, http.StatusForbidden, "desk closes")
	if closed, err := f.clr.ClosedPeriods(f.ctx); err != nil || len(closed) != 0 {
		t.Fatalf("closed periods after refused closes: %v %v", closed, err)
	}

	sup, secret := f.login(supervisorUser)
	page := sup.get("/finance?period="+period).want(t, http.StatusOK, "finance as supervisor")
	if !strings.Contains(page.body, `href="/finance/close?period=2026-11"`) {
		t.Fatalf("no way to the close for the supervisor:\n%s", page.body)
	}
	dialog := sup.get("/finance/close?period="+period).want(t, http.StatusOK, "close dialog")
	for _, want := range []string{`action="/finance/close"`, `name="expect"`, `name="confirm" value="2026-11" required`, "close 2026-11 for good: ", "What is still open in 2026-11",
		// The fixture's one validator was last heard in November.
		"validators silent since before the month ended, which may hold its rides: 1",
		"rides held or not yet proven (not paid until someone decides): ", "batches of rides waiting to be re-rated (the close re-rates them first): "} {
		if !strings.Contains(dialog.body, want) {
			t.Errorf("the close dialog lacks %q:\n%s", want, dialog.body)
		}
	}
	// December is not over: closing it needs "early".
	sup.post("/finance/close", confirmClose(secret, "2026-12", false)).want(t, http.StatusConflict, "close December")
	r := sup.post("/finance/close", confirmClose(secret, period, false)).want(t, http.StatusSeeOther, "close November")
	page = sup.get(r.header.Get("Location")).want(t, http.StatusOK, "after close")
	for _, want := range []string{"Period 2026-11 is closed", "signed with sign-statement@1", "The signature verifies."} {
		if !strings.Contains(page.body, want) {
			t.Errorf("after close, the page lacks %q", want)
		}
	}
	if strings.Contains(page.body, `action="/finance/close"`) {
		t.Error("a closed period still offers to close")
	}
	sts, err := f.clr.Statements(f.ctx, period)
	if err != nil || len(sts) == 0 || !sts[0].Closed || len(sts[0].Signature) == 0 {
		t.Fatalf("statements after close: %+v %v", sts, err)
	}
	sup.post("/finance/close", url.Values{"csrf": {secret}, "period": {"2026-10"}}).want(t, http.StatusBadRequest, "an unconfirmed close")
	sup.post("/finance/close", confirmClose(secret, period, false)).want(t, http.StatusConflict, "close again")
}

func TestFinanceCloseNeedsKeys(t *testing.T) {
	f := newFixture(t, fixtureOptions{noKeys: true})
	sup, secret := f.login(supervisorUser)
	page := sup.get("/finance?period="+period).want(t, http.StatusOK, "finance without keys")
	if strings.Contains(page.body, `action="/finance/close"`) || !strings.Contains(page.body, "without a signing key") {
		t.Errorf("without keys: want no close form and the reason")
	}
	sup.post("/finance/close", url.Values{"csrf": {secret}, "period": {period}}).want(t, http.StatusServiceUnavailable, "close without keys")
}

func TestLanguages(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, tc := range []struct{ accept, query, lang, text string }{
		{"", "", "uk", "Увійти"},
		{"en-GB,en;q=0.9", "", "en", "Sign in"},
		{"uk-UA,uk;q=0.9,en;q=0.8", "", "uk", "Увійти"},
		{"de-DE,en;q=0.5", "", "en", "Sign in"},
		{"en;q=0.4,uk;q=0.6", "", "uk", "Увійти"},
		{"uk", "?lang=en", "en", "Sign in"},
		{"en", "?lang=uk", "uk", "Увійти"},
	} {
		u := f.anonymous()
		u.lang = tc.accept
		r := u.get("/login"+tc.query).want(t, http.StatusOK, "login")
		if !strings.Contains(r.body, `<html lang="`+tc.lang+`">`) || !strings.Contains(r.body, tc.text) {
			t.Errorf("Accept-Language %q %s: want lang %s and %q", tc.accept, tc.query, tc.lang, tc.text)
		}
		if tc.query != "" {
			// The choice is remembered over the browser's preference.
			if again := u.get("/login"); !strings.Contains(again.body, `<html lang="`+tc.lang+`">`) {
				t.Errorf("?lang=%s was not remembered", tc.lang)
			}
		}
	}
	// Signed-in pages are translated too, errors included.
	desk, _ := f.login(deskUser)
	desk.lang = "uk"
	desk.get("/desk?lang=uk").want(t, http.StatusOK, "desk in Ukrainian")
	r := desk.get("/finance").want(t, http.StatusForbidden, "finance in Ukrainian")
	if !strings.Contains(r.body, "Вам не можна відкривати цю сторінку") || !strings.Contains(r.body, "оператор видачі") {
		t.Errorf("the refusal is not in Ukrainian:\n%s", r.body)
	}
}

func TestSecurityHeadersAndAssets(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	u := f.anonymous()
	r := u.get("/login").want(t, http.StatusOK, "login")
	for h, want := range map[string]string{
		"Cache-Control":          "no-store",
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Content-Language":       "en",
	} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q: want nothing but the own stylesheet", csp)
	}
	css := u.get("/static/console.css").want(t, http.StatusOK, "stylesheet")
	if !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || !strings.Contains(css.body, ".skip:focus") {
		t.Errorf("stylesheet: %q, %d bytes", css.header.Get("Content-Type"), len(css.body))
	}
	// Nothing is loaded from elsewhere and no script runs.
	if regexp.MustCompile(`(?i)<script|src="http|href="http`).MatchString(r.body) {
		t.Errorf("the page loads something from outside or runs a script:\n%s", r.body)
	}
}

var (
	inputTag = regexp.MustCompile(`<(input|select)\b[^>]*>`)
	attr     = func(tag, name string) string {
		m := regexp.MustCompile(`\b` + name + `="([^"]*)"`).FindStringSubmatch(tag)
		if m == nil {
			return ""
		}
		return m[1]
	}
)

// TestAccessible checks every main page for what a screen-reader and
// keyboard user needs: a language, a skip link first, a main landmark, a
// label for every field and no positive tabindex.
func TestAccessible(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	desk, secret := f.login(deskUser)
	fin, _ := f.login(supervisorUser)
	alice, _ := f.login(aliceUser)
	audit, _ := f.login(auditorUser)
	pages := map[string]response{
		"login":          f.anonymous().get("/login"),
		"desk":           desk.get("/desk"),
		"search results": desk.post("/desk/search", url.Values{"csrf": {secret}, "q": {"Ковал"}, "purpose": {"check"}}),
		"purpose form":   desk.get(fmt.Sprintf("/desk/residents/%d", f.alice.ID)),
		"record":         desk.get(fmt.Sprintf("/desk/residents/%d?purpose=check", f.alice.ID)),
		"finance":        fin.get("/finance?period=" + period),
		"me":             alice.get("/me"),
		"audit":          audit.get("/audit"),
		"error":          alice.get("/finance"),
	}
	for name, r := range pages {
		b := r.body
		if !regexp.MustCompile(`<html lang="(uk|en)">`).MatchString(b) {
			t.Errorf("%s: no lang on <html>", name)
		}
		if i, j := strings.Index(b, `<a class="skip" href="#main">`), strings.Index(b, "<a "); i < 0 || i != j {
			t.Errorf("%s: the first link is not the skip link", name)
		}
		if !strings.Contains(b, `<main id="main"`) || strings.Count(b, "<h1>") != 1 {
			t.Errorf("%s: want one main landmark and one h1", name)
		}
		if regexp.MustCompile(`tabindex="[1-9]`).MatchString(b) {
			t.Errorf("%s: a positive tabindex breaks the keyboard order", name)
		}
		fields := 0
		for _, tag := range inputTag.FindAllString(b, -1) {
			if attr(tag, "type") == "hidden" {
				continue
			}
			fields++
			id := attr(tag, "id")
			if id == "" || !strings.Contains(b, `<label for="`+id+`">`) {
				t.Errorf("%s: field without a label: %s", name, tag)
			}
		}
		if name != "error" && name != "me" && fields == 0 {
			t.Errorf("%s: no fields found; the check is not looking", name)
		}
	}
}
