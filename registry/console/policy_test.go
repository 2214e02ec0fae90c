package console_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/console"
	"github.com/citycard/transit/registry/store/storetest"

	_ "modernc.org/sqlite" // the registry's file, opened around the store
)

// kind is what a console page does with personal data, as this test
// expects it, independently of the console's own table.
type kind string

const (
	kPublic kind = "public" // no sign-in; shows nobody's data
	kNone   kind = "none"   // signed in; shows no resident's personal data
	kRead   kind = "read"   // shows personal data: asks for a purpose first, then audits
	kWrite  kind = "write"  // changes a person's record: audited
	kOwn    kind = "own"    // a resident's own data: audited
)

// pagePolicy is a page's expected kind and who may open it.
type pagePolicy struct {
	kind  kind
	roles []registry.Role
}

var (
	deskRoles = []registry.Role{registry.RoleDesk, registry.RoleSupervisor}
	everyone  = registry.Roles
)

var expectedPages = map[string]pagePolicy{
	"GET /{$}":                               {kPublic, nil},
	"GET /login":                             {kPublic, nil},
	"POST /login":                            {kPublic, nil},
	"GET /login/resident":                    {kPublic, nil},
	"POST /login/resident":                   {kPublic, nil},
	"POST /login/resident/code":              {kPublic, nil},
	"/":                                      {kPublic, nil},
	"POST /logout":                           {kNone, everyone},
	"GET /desk":                              {kNone, deskRoles},
	"POST /desk/search":                      {kRead, deskRoles},
	"GET /desk/residents/{id}":               {kRead, deskRoles},
	"POST /desk/residents/{id}/cards":        {kWrite, deskRoles},
	"POST /desk/cards/{number}/block":        {kWrite, deskRoles},
	"POST /desk/cards/{number}/replace":      {kWrite, deskRoles},
	"GET /desk/register":                     {kNone, deskRoles},
	"POST /desk/register":                    {kWrite, deskRoles},
	"POST /desk/residents/{id}/entitlements": {kWrite, deskRoles},
	"POST /desk/residents/{id}/entitlements/{eid}/end": {kWrite, deskRoles},
	"GET /desk/cards/{number}/receipt":                 {kRead, deskRoles},
	"POST /desk/cards/{number}/personalise":            {kWrite, deskRoles},
	"GET /finance":                                     {kNone, []registry.Role{registry.RoleSupervisor, registry.RoleFinance}},
	"GET /finance/export":                              {kNone, []registry.Role{registry.RoleSupervisor, registry.RoleFinance}},
	"GET /finance/reconciliation":                      {kNone, []registry.Role{registry.RoleSupervisor, registry.RoleFinance, registry.RoleOperator}},
	"GET /finance/close":                               {kNone, []registry.Role{registry.RoleSupervisor, registry.RoleFinance}},
	"GET /finance/fleet":                               {kNone, []registry.Role{registry.RoleSupervisor, registry.RoleFinance, registry.RoleOperator}},
	"POST /finance/close":                              {kNone, []registry.Role{registry.RoleSupervisor}},
	"GET /tokens":                                      {kNone, []registry.Role{registry.RoleSupervisor}},
	"POST /tokens/{id}/revoke":                         {kNone, []registry.Role{registry.RoleSupervisor}},
	"GET /audit":                                       {kNone, []registry.Role{registry.RoleAuditor}},
	"GET /me":                                          {kOwn, []registry.Role{registry.RoleResident}},
	"POST /me/cards/{number}/block":                    {kOwn, []registry.Role{registry.RoleResident}},
	"GET /me/notices":                                  {kOwn, []registry.Role{registry.RoleResident}},
	"POST /me/notices":                                 {kWrite, []registry.Role{registry.RoleResident}},
	"GET /desk/residents/{id}/notices":                 {kRead, deskRoles},
	"POST /desk/residents/{id}/notices":                {kWrite, deskRoles},
	"GET /me/children/{id}":                            {kOwn, []registry.Role{registry.RoleResident}},
	"GET /me/applications":                             {kOwn, []registry.Role{registry.RoleResident}},
	"POST /me/applications":                            {kOwn, []registry.Role{registry.RoleResident}},
	"GET /me/applications/{id}/files/{fid}":            {kOwn, []registry.Role{registry.RoleResident}},
	"GET /desk/applications":                           {kRead, deskRoles},
	"GET /desk/applications/{id}":                      {kRead, deskRoles},
	"GET /desk/applications/{id}/files/{fid}":          {kRead, deskRoles},
	"POST /desk/applications/{id}/decide":              {kWrite, deskRoles},
	"POST /me/children/{id}/cards/{number}/block":      {kOwn, []registry.Role{registry.RoleResident}},
	"POST /desk/residents/{id}/guardians":              {kWrite, deskRoles},
	"POST /desk/residents/{id}/guardians/{gid}/end":    {kWrite, deskRoles},
	"GET /import":                                      {kNone, []registry.Role{registry.RoleSupervisor}},
	"POST /import":                                     {kRead, []registry.Role{registry.RoleSupervisor}},
	"POST /import/apply":                               {kWrite, []registry.Role{registry.RoleSupervisor}},
}

// TestEveryPageHasItsPolicy walks every page of the console: each has
// the guard this test expects; each that shows personal data asks for a
// purpose before it reads anything and audits the read once given one;
// each that changes a record audits it; and no other shows a resident's
// name, registry number, birth date or contact.
func TestEveryPageHasItsPolicy(t *testing.T) {
	f := newFixture(t, fixtureOptions{noKeys: true})
	srv, err := console.New(console.Options{Registry: f.reg, Clearing: f.clr})
	if err != nil {
		t.Fatal(err)
	}
	const purpose = "policy walk, request 1"
	alice := f.alice
	_, ordered := f.orderedCard(1, "Ткаченко Ганна")
	// (Birth dates are left out: the registration form's hint shows an
	// example date that happens to be Alice's.)
	secrets := []string{alice.Name, alice.RegistryNumber, alice.Contact, f.bob.Name, f.bob.RegistryNumber}
	d := f.deskDossier(t, alice.ID)
	newcomer := f.residentWithoutCard(t)
	sup0 := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	sup := sup0
	child, childCard := f.childOf(t, alice)
	pending, err := f.reg.SubmitApplication(f.ctx, sup0, registry.Application{Resident: alice.ID, Kind: registry.ApplyBenefit,
		Category: registry.CategoryStudent, Attachments: []registry.Attachment{{Name: "a.pdf", Data: []byte("%PDF-1.4 x")}}})
	if err != nil {
		t.Fatal(err)
	}
	toRefuse, err := f.reg.SubmitApplication(f.ctx, sup0, registry.Application{Resident: f.bob.ID, Kind: registry.ApplyBenefit,
		Category: registry.CategoryStudent, Attachments: []registry.Attachment{{Name: "b.pdf", Data: []byte("%PDF-1.4 y")}}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.reg.AddResident(f.ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(601), Name: "Інша Дитина",
		BirthDate: registry.Date{Year: 2016, Month: time.May, Day: 2}})
	if err != nil {
		t.Fatal(err)
	}
	toEnd, err := f.reg.AddGuardianship(f.ctx, sup, f.bob.ID, other.ID, "рішення органу опіки 17")
	if err != nil {
		t.Fatal(err)
	}

	type step struct {
		user   string
		method string
		path   string
		form   url.Values
		// without is the form without its purpose, for kRead POSTs.
		status int
	}
	// files are the uploads of steps that send a multipart form.
	files := map[string]string{"POST /import": importHeader + aliceRow("ПФУ-2026-000001")}
	steps := map[string]step{
		"GET /{$}":                  {"", "GET", "/", nil, http.StatusSeeOther},
		"GET /login":                {"", "GET", "/login", nil, http.StatusOK},
		"POST /login":               {"", "POST", "/login", url.Values{"user": {"nobody"}, "password": {"wrong"}}, http.StatusForbidden},
		"GET /login/resident":       {"", "GET", "/login/resident", nil, http.StatusOK},
		"POST /login/resident":      {"", "POST", "/login/resident", url.Values{"registry_number": {alice.RegistryNumber}}, http.StatusForbidden},
		"POST /login/resident/code": {"", "POST", "/login/resident/code", url.Values{"code": {"12345678"}}, http.StatusForbidden},
		"/":                         {"", "GET", "/nothing/here", nil, http.StatusNotFound},
		"POST /logout":              {deskUser, "POST", "/logout", url.Values{}, http.StatusSeeOther},
		"GET /desk":                 {deskUser, "GET", "/desk", nil, http.StatusOK},
		"POST /desk/search":         {deskUser, "POST", "/desk/search", url.Values{"q": {alice.RegistryNumber}}, http.StatusOK},
		"GET /desk/residents/{id}":  {deskUser, "GET", fmt.Sprintf("/desk/residents/%d", alice.ID), nil, http.StatusOK},
		"POST /desk/residents/{id}/cards": {deskUser, "POST", fmt.Sprintf("/desk/residents/%d/cards", newcomer.ID),
			url.Values{"purpose": {purpose}}, http.StatusSeeOther},
		"POST /desk/cards/{number}/block": {deskUser, "POST", "/desk/cards/" + f.bobCard.Number.String() + "/block",
			url.Values{"purpose": {purpose}, "reason": {"lost"}, "confirm": {"block " + f.bobCard.Number.String()}}, http.StatusSeeOther},
		"POST /desk/cards/{number}/replace": {deskUser, "POST", "/desk/cards/" + f.bobCard.Number.String() + "/replace",
			url.Values{"purpose": {purpose}, "clearing_balance": {"0"}, "confirm": {"replace " + f.bobCard.Number.String()}}, http.StatusSeeOther},
		"GET /desk/register": {deskUser, "GET", "/desk/register", nil, http.StatusOK},
		"POST /desk/register": {deskUser, "POST", "/desk/register", url.Values{"name": {"Нова Особа"}, "registry_number": {"3652504575"},
			"birth_date": {"1970-01-01"}, "contact": {""}, "purpose": {purpose}}, http.StatusSeeOther},
		"POST /desk/residents/{id}/entitlements": {deskUser, "POST", fmt.Sprintf("/desk/residents/%d/entitlements", alice.ID),
			url.Values{"purpose": {purpose}, "category": {"31"}, "funding": {"state"}, "valid_from": {"2026-09-01"}, "valid_to": {"2027-06-30"},
				"legal_basis": {"ЗУ «Про освіту»"}, "evidence": {"студентський 1"}, "monthly_limit": {"0"}}, http.StatusSeeOther},
		"POST /desk/residents/{id}/entitlements/{eid}/end": {deskUser, "POST", fmt.Sprintf("/desk/residents/%d/entitlements/%d/end", alice.ID, d.Entitlements[0].ID),
			url.Values{"purpose": {purpose}, "valid_to": {"2026-12-20"}, "confirm": {fmt.Sprintf("end %d 2026-12-20", d.Entitlements[0].ID)}}, http.StatusSeeOther},
		"GET /desk/cards/{number}/receipt": {deskUser, "GET", "/desk/cards/" + ordered.Number.String() + "/receipt?op=ordered", nil, http.StatusOK},
		// Without a reader it refuses, saying how to start the console.
		"POST /desk/cards/{number}/personalise": {deskUser, "POST", "/desk/cards/" + ordered.Number.String() + "/personalise",
			url.Values{"purpose": {purpose}}, http.StatusServiceUnavailable},
		"GET /finance":                {financeUser, "GET", "/finance?period=" + period, nil, http.StatusOK},
		"GET /finance/export":         {financeUser, "GET", "/finance/export?period=" + period + "&format=csv", nil, http.StatusOK},
		"GET /finance/reconciliation": {operatorUser, "GET", "/finance/reconciliation?period=" + period, nil, http.StatusOK},
		"GET /finance/close":          {financeUser, "GET", "/finance/close?period=" + period, nil, http.StatusOK},
		"GET /finance/fleet":          {operatorUser, "GET", "/finance/fleet", nil, http.StatusOK},
		"POST /finance/close":         {supervisorUser, "POST", "/finance/close", url.Values{"period": {period}}, http.StatusServiceUnavailable},
		"GET /tokens":                 {supervisorUser, "GET", "/tokens?all=1", nil, http.StatusOK},
		"POST /tokens/{id}/revoke":    {supervisorUser, "POST", "/tokens/0000000000000000/revoke", url.Values{"confirm": {"revoke 0000000000000000"}}, http.StatusNotFound},
		"GET /audit":                  {auditorUser, "GET", "/audit", nil, http.StatusOK},
		"GET /me":                     {aliceUser, "GET", "/me", nil, http.StatusOK},
		"POST /me/cards/{number}/block": {aliceUser, "POST", "/me/cards/" + f.aliceCard.Number.String() + "/block",
			url.Values{"reason": {"lost"}, "confirm": {"block " + f.aliceCard.Number.String()}}, http.StatusSeeOther},
		"GET /me/notices":                  {aliceUser, "GET", "/me/notices", nil, http.StatusOK},
		"POST /me/notices":                 {aliceUser, "POST", "/me/notices", url.Values{"opt_out": {"1"}}, http.StatusSeeOther},
		"GET /desk/residents/{id}/notices": {deskUser, "GET", fmt.Sprintf("/desk/residents/%d/notices", alice.ID), nil, http.StatusOK},
		"POST /desk/residents/{id}/notices": {deskUser, "POST", fmt.Sprintf("/desk/residents/%d/notices", alice.ID),
			url.Values{"purpose": {purpose}, "opt_out": {"0"}}, http.StatusSeeOther},
		"GET /me/children/{id}": {aliceUser, "GET", fmt.Sprintf("/me/children/%d", child.ID), nil, http.StatusOK},
		"GET /me/applications":  {aliceUser, "GET", "/me/applications", nil, http.StatusOK},
		// No multipart body: refused before anything is read.
		"POST /me/applications": {aliceUser, "POST", "/me/applications", url.Values{"kind": {"card"}}, http.StatusUnsupportedMediaType},
		"GET /me/applications/{id}/files/{fid}": {aliceUser, "GET", fmt.Sprintf("/me/applications/%d/files/%d", pending.ID, pending.Attachments[0].ID),
			nil, http.StatusOK},
		"GET /desk/applications":      {deskUser, "GET", "/desk/applications", nil, http.StatusOK},
		"GET /desk/applications/{id}": {deskUser, "GET", fmt.Sprintf("/desk/applications/%d", pending.ID), nil, http.StatusOK},
		"GET /desk/applications/{id}/files/{fid}": {deskUser, "GET", fmt.Sprintf("/desk/applications/%d/files/%d", pending.ID, pending.Attachments[0].ID),
			nil, http.StatusOK},
		"POST /desk/applications/{id}/decide": {deskUser, "POST", fmt.Sprintf("/desk/applications/%d/decide", toRefuse.ID),
			url.Values{"purpose": {purpose}, "decision": {"refuse"}, "reason": {"документ нечитабельний"},
				"confirm": {fmt.Sprintf("refuse application %d", toRefuse.ID)}}, http.StatusSeeOther},
		"POST /me/children/{id}/cards/{number}/block": {aliceUser, "POST", fmt.Sprintf("/me/children/%d/cards/%s/block", child.ID, childCard.Number),
			url.Values{"reason": {"lost"}, "confirm": {"block " + childCard.Number.String()}}, http.StatusSeeOther},
		"POST /desk/residents/{id}/guardians": {deskUser, "POST", fmt.Sprintf("/desk/residents/%d/guardians", other.ID),
			url.Values{"purpose": {purpose}, "guardian_number": {alice.RegistryNumber}, "evidence": {"рішення суду 2-123/26"}}, http.StatusSeeOther},
		"POST /desk/residents/{id}/guardians/{gid}/end": {deskUser, "POST", fmt.Sprintf("/desk/residents/%d/guardians/%d/end", other.ID, toEnd.ID),
			url.Values{"purpose": {purpose}, "reason": {"опіку передано"}, "confirm": {fmt.Sprintf("end guardian %d", toEnd.ID)}}, http.StatusSeeOther},
		"GET /import": {supervisorUser, "GET", "/import", nil, http.StatusOK},
		// Alice's row (files): the dry run compares her record, a read.
		"POST /import": {supervisorUser, "POST", "/import", url.Values{}, http.StatusOK},
		// Nothing waits in a new session.
		"POST /import/apply": {supervisorUser, "POST", "/import/apply", url.Values{"upload": {"x"}, "confirm": {"import x"}}, http.StatusConflict},
	}

	seen := map[string]bool{}
	for _, rt := range f.server.Routes() {
		seen[rt.Pattern] = true
		want, ok := expectedPages[rt.Pattern]
		if !ok {
			t.Errorf("page %s has no policy in this test: decide whether it shows personal data and who may open it, and add it to expectedPages", rt.Pattern)
			continue
		}
		if rt.Public != (want.kind == kPublic) {
			t.Errorf("page %s: public %v; this test expects %s", rt.Pattern, rt.Public, want.kind)
		}
		if !rt.Public && !slices.Equal(sorted(rt.Roles), sorted(want.roles)) {
			t.Errorf("page %s opens to %v; this test expects %v", rt.Pattern, rt.Roles, want.roles)
		}
		st, ok := steps[rt.Pattern]
		if !ok {
			t.Errorf("page %s: no step in this test", rt.Pattern)
			continue
		}
		u, secret := f.anonymous(), ""
		if st.user != "" {
			u, secret = f.login(st.user)
		}
		send := func(path string, form url.Values) response {
			if st.method == http.MethodGet {
				return u.get(path)
			}
			v := url.Values{}
			if secret != "" {
				v.Set("csrf", secret)
			}
			for k, x := range form {
				v[k] = x
			}
			if file, ok := files[rt.Pattern]; ok {
				return u.postFile(path, v, "register.csv", file)
			}
			return u.post(path, v)
		}
		before := f.auditCount(t, 0)
		switch want.kind {
		case kRead:
			r := send(st.path, st.form)
			if n := f.auditCount(t, 0); n != before {
				t.Errorf("%s without a purpose wrote %d audit entries", rt.Pattern, n-before)
			}
			for _, s := range secrets {
				// What the desk typed comes back in its form; nothing
				// else may.
				if strings.Contains(r.body, s) && !strings.Contains(st.form.Encode(), url.QueryEscape(s)) {
					t.Errorf("%s without a purpose shows %q", rt.Pattern, s)
				}
			}
			path, form := st.path, url.Values{"purpose": {purpose}}
			for k, x := range st.form {
				form[k] = x
			}
			if st.method == http.MethodGet {
				sep := "?"
				if strings.Contains(path, "?") {
					sep = "&"
				}
				path += sep + "purpose=" + url.QueryEscape(purpose)
			}
			r = send(path, form).want(t, st.status, rt.Pattern+" with a purpose")
			if n := f.auditCount(t, 0); n <= before {
				t.Errorf("%s showed personal data and wrote no audit entry", rt.Pattern)
			}
		case kWrite, kOwn:
			send(st.path, st.form).want(t, st.status, rt.Pattern)
			if n := f.auditCount(t, 0); n <= before && st.status < 400 {
				t.Errorf("%s touched a person's record and wrote no audit entry", rt.Pattern)
			}
		default:
			r := send(st.path, st.form).want(t, st.status, rt.Pattern)
			for _, s := range secrets {
				if strings.Contains(r.body, s) {
					t.Errorf("%s shows a resident's personal data (%q)", rt.Pattern, s)
				}
			}
			if n := f.auditCount(t, 0); n != before && want.kind == kNone {
				t.Errorf("%s wrote %d audit entries; it shows no personal data", rt.Pattern, n-before)
			}
		}
	}
	for p := range expectedPages {
		if !seen[p] {
			t.Errorf("this test expects a page %s that the console does not have", p)
		}
	}
	// A console made without anything special has the same pages.
	if len(srv.Routes()) != len(f.server.Routes()) {
		t.Errorf("a plain console has %d pages, the fixture's %d", len(srv.Routes()), len(f.server.Routes()))
	}
}

func sorted(rs []registry.Role) []registry.Role {
	out := slices.Clone(rs)
	slices.Sort(out)
	return out
}

// TestPageWithoutGuardRefused: a handler added around the console's
// table is refused, except the health checks.
func TestPageWithoutGuardRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("secret")) })
	f.server.Handle("GET /new-page", ok)
	f.server.Handle("GET /healthz", ok)
	u, _ := f.login(supervisorUser)
	if r := u.get("/new-page"); r.status != http.StatusForbidden || strings.Contains(r.body, "secret") {
		t.Errorf("a page without a guard: %d %s; want 403", r.status, r.body)
	}
	if r := f.anonymous().get("/healthz"); r.status != http.StatusOK {
		t.Errorf("/healthz: %d; want 200", r.status)
	}
}

// TestAccessLogShowsVerification: the resident's access log says whether
// the audit chain verified and marks the entries it covered; after a
// hand edit of the database it says the log was altered, and where.
func TestAccessLogShowsVerification(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	alice, _ := f.login(aliceUser)
	if r := alice.get("/me").want(t, http.StatusOK, "before any check"); !strings.Contains(r.body, "has not been checked yet") {
		t.Errorf("before a check the page does not say so:\n%s", r.body)
	}
	if _, err := f.monitor.Check(f.ctx); err != nil {
		t.Fatal(err)
	}
	r := alice.get("/me").want(t, http.StatusOK, "after a check")
	if !strings.Contains(r.body, `id="audit-check"`) || !strings.Contains(r.body, "chain of entries is whole") || !strings.Contains(r.body, "entry verified") {
		t.Errorf("after a good check the page does not say the log verified:\n%s", r.body)
	}
	// Someone with the database's keys edits the seeded desk visit.
	db, err := sql.Open("sqlite", "file:"+f.regPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TRIGGER audit_log_no_update",
		"UPDATE audit_log SET purpose = 'routine' WHERE purpose = '" + seededPurpose + "'",
		"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'append-only'); END"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rep, err := f.monitor.Check(f.ctx)
	if err != nil || rep.OK() {
		t.Fatalf("the check after the edit: %+v, %v", rep, err)
	}
	r = alice.get("/me").want(t, http.StatusOK, "after the edit")
	if !strings.Contains(r.body, "WARNING") || !strings.Contains(r.body, fmt.Sprintf("audit entry %d", rep.First.Seq)) || strings.Contains(r.body, "entry verified") {
		t.Errorf("after the edit the page does not say the log was altered:\n%s", r.body)
	}
}
