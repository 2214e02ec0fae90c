package console_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store/storetest"
)

// deskAudit returns the audit entries, all or about one resident (0 for
// all), as an auditor reads them.
func (f *fixture) deskAudit(t *testing.T, resident int64) []registry.AuditEntry {
	t.Helper()
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: resident})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// deskActions counts the audit entries with action by user with purpose.
func deskActions(es []registry.AuditEntry, action, user, purpose string) int {
	n := 0
	for _, e := range es {
		if e.Action == action && e.User == user && e.Purpose == purpose {
			n++
		}
	}
	return n
}

// deskDossier reads a resident's record as the test (not through the
// console).
func (f *fixture) deskDossier(t *testing.T, id int64) registry.Dossier {
	t.Helper()
	d, err := f.reg.Resident(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleSupervisor}, Purpose: "test check"}, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deskFindNumber returns the residents registered under a registry
// number.
func (f *fixture) deskFindNumber(t *testing.T, number string) []registry.Resident {
	t.Helper()
	rs, err := f.reg.FindResidents(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleSupervisor}, Purpose: "test check"},
		registry.Search{RegistryNumber: number})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// checkDeskAccessible checks what TestAccessible checks of every page:
// a language, the skip link first, one main landmark and one h1, no
// positive tabindex, and a label for every field.
func checkDeskAccessible(t *testing.T, name, b string) {
	t.Helper()
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
	if regexp.MustCompile(`(?i)<script|\sstyle=|\son[a-z]+=`).MatchString(b) {
		t.Errorf("%s: a script or an inline style, which the CSP forbids", name)
	}
	for _, tag := range inputTag.FindAllString(b, -1) {
		if attr(tag, "type") == "hidden" {
			continue
		}
		id := attr(tag, "id")
		if id == "" || !strings.Contains(b, `<label for="`+id+`">`) {
			t.Errorf("%s: field without a label: %s", name, tag)
		}
		// An error at a field is announced with it.
		if attr(tag, "aria-invalid") == "true" && !strings.Contains(attr(tag, "aria-describedby"), id+"-error") {
			t.Errorf("%s: invalid field not described by its error: %s", name, tag)
		}
	}
}

// fieldError returns the text of the error shown at the field with id.
func fieldError(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<p class="field-error" id="` + regexp.QuoteMeta(id) + `-error"[^>]*>([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// forbiddenFor checks that finance, auditor and resident sessions get 403
// for a GET (form nil) or a POST with their own CSRF secret.
func forbiddenFor(t *testing.T, f *fixture, method, path string, form url.Values) {
	t.Helper()
	for _, who := range []string{financeUser, auditorUser, aliceUser} {
		u, secret := f.login(who)
		var r response
		if method == http.MethodGet {
			r = u.get(path)
		} else {
			v := url.Values{"csrf": {secret}}
			for k, vs := range form {
				v[k] = vs
			}
			r = u.post(path, v)
		}
		r.want(t, http.StatusForbidden, who+" "+method+" "+path)
	}
}

func TestDeskRegister(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	const purpose = "application for a pensioner's card, request 90"
	number := storetest.RegistryNumber(77)
	good := url.Values{"name": {"Шевченко Марія"}, "registry_number": {number[:5] + " " + number[5:]},
		"birth_date": {"1955-04-02"}, "contact": {"вул. Хрещатик 1, кв. 2, Київ"}, "purpose": {purpose}}
	with := func(secret string, kv ...string) url.Values {
		v := url.Values{"csrf": {secret}}
		for k, vs := range good {
			v[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}

	forbiddenFor(t, f, http.MethodGet, "/desk/register", nil)
	forbiddenFor(t, f, http.MethodPost, "/desk/register", good)
	if rs := f.deskFindNumber(t, number); len(rs) != 0 {
		t.Fatalf("refused roles registered %v", rs)
	}

	desk, secret := f.login(deskUser)
	if r := desk.get("/desk").want(t, http.StatusOK, "desk"); !strings.Contains(r.body, `href="/desk/register"`) {
		t.Error("the desk page does not offer registration")
	}
	form := desk.get("/desk/register").want(t, http.StatusOK, "registration form")
	checkDeskAccessible(t, "registration form", form.body)
	for _, field := range []string{"name", "registry_number", "birth_date", "contact", "purpose"} {
		if !strings.Contains(form.body, `name="`+field+`"`) {
			t.Errorf("the form lacks %s", field)
		}
	}

	_, otherSecret := f.login(supervisorUser)
	desk.post("/desk/register", with("")).want(t, http.StatusForbidden, "no csrf")
	desk.post("/desk/register", with(otherSecret)).want(t, http.StatusForbidden, "another session's csrf")

	before := len(f.deskAudit(t, 0))
	wrongCheck := number[:9] + string('0'+(number[9]-'0'+1)%10)
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
		want  string
	}{
		{"check digit", with(secret, "registry_number", wrongCheck), "registry_number", "last digit does not match"},
		{"letters", with(secret, "registry_number", "12345abcde"), "registry_number", "ten digits"},
		{"no number", with(secret, "registry_number", ""), "registry_number", "Fill this in"},
		{"no name", with(secret, "name", "  "), "name", "Fill this in"},
		{"long name", with(secret, "name", strings.Repeat("я", registry.MaxNameLen+1)), "name", "at most 200"},
		{"control character", with(secret, "contact", "line\nbreak"), "contact", "invisible character"},
		{"direction override", with(secret, "name", "Петро \u202eокнелаВ"), "name", "direction of text"},
		{"zero-width space", with(secret, "name", "Пет\u200bро"), "name", "invisible character"},
		{"no date", with(secret, "birth_date", "2026-02-30"), "birth_date", "No such date"},
		{"future", with(secret, "birth_date", "2027-01-01"), "birth_date", "In the future"},
		{"ancient", with(secret, "birth_date", "1899-12-31"), "birth_date", "Before 1900"},
		{"no purpose", with(secret, "purpose", ""), "purpose", "State the purpose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := desk.post("/desk/register", tc.form).want(t, http.StatusBadRequest, tc.name)
			if got := fieldError(t, r.body, tc.field); !strings.Contains(got, tc.want) {
				t.Errorf("error at %s: %q, want %q", tc.field, got, tc.want)
			}
			if !strings.Contains(r.body, `id="problems"`) || !strings.Contains(r.body, `href="#`+tc.field+`"`) {
				t.Error("no list of problems linking to the field")
			}
			// What was typed comes back, so nothing is typed twice.
			if tc.field != "name" && !strings.Contains(r.body, `value="Шевченко Марія"`) {
				t.Error("the name typed is not shown again")
			}
			checkDeskAccessible(t, "registration with errors", r.body)
		})
	}
	if rs := f.deskFindNumber(t, number); len(rs) != 0 {
		t.Fatalf("refused forms registered %v", rs)
	}
	if after := len(f.deskAudit(t, 0)); after != before {
		t.Errorf("refused forms wrote %d audit entries", after-before)
	}

	// The Ukrainian page says it in Ukrainian.
	desk.lang = "uk"
	r := desk.post("/desk/register", with(secret, "registry_number", wrongCheck)).want(t, http.StatusBadRequest, "uk")
	if got := fieldError(t, r.body, "registry_number"); !strings.Contains(got, "Остання цифра") {
		t.Errorf("Ukrainian error %q", got)
	}
	desk.lang = "en"

	r = desk.post("/desk/register", with(secret)).want(t, http.StatusSeeOther, "register")
	rs := f.deskFindNumber(t, number)
	if len(rs) != 1 || rs[0].Name != "Шевченко Марія" || rs[0].BirthDate.String() != "1955-04-02" || rs[0].Contact != good.Get("contact") {
		t.Fatalf("registered %+v", rs)
	}
	id := rs[0].ID
	if loc := r.header.Get("Location"); !strings.HasPrefix(loc, fmt.Sprintf("/desk/residents/%d?", id)) || !strings.Contains(loc, "done=registered") {
		t.Errorf("after registering, go to %q; want the resident's page", loc)
	}
	page := desk.get(r.header.Get("Location")).want(t, http.StatusOK, "the new record")
	for _, want := range []string{"The resident is registered", "Шевченко Марія", number, "grant-submit", `id="order"`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the new record lacks %q", want)
		}
	}
	es := f.deskAudit(t, id)
	if deskActions(es, "register resident", deskUser, purpose) != 1 || deskActions(es, "read resident", deskUser, purpose) != 1 {
		t.Errorf("audit of the registration: %+v; want the registration and the read, with the purpose", es)
	}

	// The same person again: refused, with the way to their record.
	sup, supSecret := f.login(supervisorUser)
	r = sup.post("/desk/register", with(supSecret, "name", "Шевченко М.")).want(t, http.StatusConflict, "register twice")
	if got := fieldError(t, r.body, "registry_number"); !strings.Contains(got, "already registered") {
		t.Errorf("duplicate: %q", got)
	}
	if !strings.Contains(r.body, fmt.Sprintf(`id="existing"`)) || !strings.Contains(r.body, fmt.Sprintf(`href="/desk/residents/%d?purpose=`, id)) {
		t.Errorf("duplicate: no link to the record\n%s", r.body)
	}
	if rs := f.deskFindNumber(t, number); len(rs) != 1 {
		t.Errorf("after the duplicate: %d residents with the number", len(rs))
	}
}

func TestDeskEntitlements(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	const purpose = "benefit review, request 12"
	d := f.deskDossier(t, f.alice.ID)
	if len(d.Entitlements) != 1 {
		t.Fatalf("Alice has %d entitlements, want the fixture's 1", len(d.Entitlements))
	}
	pension := d.Entitlements[0]
	grantPath := fmt.Sprintf("/desk/residents/%d/entitlements", f.alice.ID)
	endPath := fmt.Sprintf("/desk/residents/%d/entitlements/%d/end", f.alice.ID, pension.ID)
	good := url.Values{"purpose": {purpose}, "category": {"31"}, "funding": {"state"}, "valid_from": {"2026-09-01"},
		"valid_to": {"2027-06-30"}, "legal_basis": {"ЗУ «Про освіту»"}, "evidence": {"студентський квиток КВ 123"}, "monthly_limit": {"46"}}
	with := func(secret string, kv ...string) url.Values {
		v := url.Values{"csrf": {secret}}
		for k, vs := range good {
			v[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	count := func() int { t.Helper(); return len(f.deskDossier(t, f.alice.ID).Entitlements) }

	forbiddenFor(t, f, http.MethodPost, grantPath, good)
	forbiddenFor(t, f, http.MethodPost, endPath, url.Values{"purpose": {purpose}, "valid_to": {"2026-12-10"}})

	desk, secret := f.login(deskUser)
	_, otherSecret := f.login(supervisorUser)
	desk.post(grantPath, with("")).want(t, http.StatusForbidden, "grant without csrf")
	desk.post(grantPath, with(otherSecret)).want(t, http.StatusForbidden, "grant with another session's csrf")
	desk.post(endPath, url.Values{"purpose": {purpose}, "valid_to": {"2026-12-10"}}).want(t, http.StatusForbidden, "end without csrf")
	if n := count(); n != 1 {
		t.Fatalf("refused forms left %d entitlements", n)
	}
	if d := f.deskDossier(t, f.alice.ID); d.Entitlements[0].ValidTo != pension.ValidTo {
		t.Fatalf("a refused end moved the last day to %s", d.Entitlements[0].ValidTo)
	}

	// The record shows the entitlement, its document and its near end,
	// with the forms that change it.
	page := desk.get(fmt.Sprintf("/desk/residents/%d?purpose=%s", f.alice.ID, url.QueryEscape(purpose))).want(t, http.StatusOK, "record")
	for _, want := range []string{pension.Evidence, `class="expiring"`, "<strong>ends in 26 days</strong>", `id="grant-submit"`,
		fmt.Sprintf(`id="end-submit-%d"`, pension.ID), fmt.Sprintf(`id="end-%d" name="valid_to" type="date" value="" min=`, pension.ID)} {
		if !strings.Contains(page.body, want) {
			t.Errorf("record lacks %q", want)
		}
	}
	checkDeskAccessible(t, "record", page.body)

	before := f.deskAudit(t, f.alice.ID)
	for _, tc := range []struct {
		name, field, want string
		form              url.Values
	}{
		{"no category", "category", "Choose a benefit category", with(secret, "category", "")},
		{"bad funding", "funding", "city or the state", with(secret, "funding", "oblast")},
		{"no first day", "valid_from", "Fill this in", with(secret, "valid_from", "")},
		{"dates reversed", "valid_to", "Before the first day (2026-09-01)", with(secret, "valid_to", "2026-08-31")},
		{"no basis", "legal_basis", "Fill this in", with(secret, "legal_basis", "")},
		{"no document", "evidence", "Fill this in", with(secret, "evidence", " ")},
		{"limit", "monthly_limit", "from 0 to 255", with(secret, "monthly_limit", "300")},
		// Beyond what a card holds: the registry's own check refuses it
		// and its words show at the field.
		{"past the card's range", "valid_to", "outside what a card holds", with(secret, "valid_to", "2200-01-01")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := desk.post(grantPath, tc.form).want(t, http.StatusBadRequest, tc.name)
			if got := fieldError(t, r.body, "grant-"+tc.field); !strings.Contains(got, tc.want) {
				t.Errorf("error at %s: %q, want %q", tc.field, got, tc.want)
			}
			if !strings.Contains(r.body, `<details class="grant" id="grant" open>`) || !strings.Contains(r.body, `value="студентський квиток КВ 123"`) && tc.field != "evidence" {
				t.Error("the form does not come back open with what was typed")
			}
			checkDeskAccessible(t, "grant with errors", r.body)
		})
	}
	if n := count(); n != 1 {
		t.Fatalf("refused grants stored %d entitlements", n-1)
	}
	after := f.deskAudit(t, f.alice.ID)
	if deskActions(after, "add entitlement", deskUser, purpose) != 0 {
		t.Error("a refused grant is in the audit log as added")
	}
	// Showing the form again read the record again, and says so.
	if got := deskActions(after, "read resident", deskUser, purpose) - deskActions(before, "read resident", deskUser, purpose); got != 8 {
		t.Errorf("%d audited reads for 8 refused forms shown again", got)
	}

	r := desk.post(grantPath, with(secret)).want(t, http.StatusSeeOther, "grant")
	d = f.deskDossier(t, f.alice.ID)
	if len(d.Entitlements) != 2 {
		t.Fatalf("after the grant: %d entitlements", len(d.Entitlements))
	}
	var student registry.Entitlement
	for _, e := range d.Entitlements {
		if e.ID != pension.ID {
			student = e
		}
	}
	if student.Category != registry.CategoryStudent || student.Funding != registry.FundingState || student.MonthlyLimit != 46 ||
		student.ValidFrom.String() != "2026-09-01" || student.ValidTo.String() != "2027-06-30" || student.Evidence != good.Get("evidence") ||
		student.Source != registry.SourceDesk {
		t.Errorf("granted %+v", student)
	}
	if deskActions(f.deskAudit(t, f.alice.ID), "add entitlement", deskUser, purpose) != 1 {
		t.Error("the grant is not in the audit log with its purpose")
	}
	page = desk.get(r.header.Get("Location")).want(t, http.StatusOK, "after the grant")
	if !strings.Contains(page.body, "The entitlement is granted") || !strings.Contains(page.body, "student (31)") {
		t.Errorf("after the grant, the page lacks the notice or the entitlement")
	}

	// Ending: a day the registry refuses comes back at the row, in the
	// page's language, and changes nothing.
	for _, tc := range []struct{ day, want string }{
		{"2027-01-15", "After the entitlement's last day (2026-12-31)"},
		{"2025-12-31", "Before the entitlement's first day (2026-01-01)"},
		{"15.12.2026", "No such date"},
		{"", "Fill this in"},
	} {
		r := desk.post(endPath, url.Values{"csrf": {secret}, "purpose": {purpose}, "valid_to": {tc.day}}).want(t, http.StatusBadRequest, "end on "+tc.day)
		if got := fieldError(t, r.body, fmt.Sprintf("end-%d", pension.ID)); !strings.Contains(got, tc.want) {
			t.Errorf("end on %q: %q, want %q", tc.day, got, tc.want)
		}
		checkDeskAccessible(t, "end with an error", r.body)
	}
	if d := f.deskDossier(t, f.alice.ID); d.Entitlements[0].ValidTo != pension.ValidTo && d.Entitlements[1].ValidTo != pension.ValidTo {
		t.Fatal("a refused end changed the entitlement")
	}
	if deskActions(f.deskAudit(t, f.alice.ID), "end entitlement", deskUser, purpose) != 0 {
		t.Error("a refused end is in the audit log")
	}
	// Bob's entitlement is not Alice's to end.
	bobEnt := f.deskDossier(t, f.bob.ID).Entitlements[0]
	desk.post(fmt.Sprintf("/desk/residents/%d/entitlements/%d/end", f.alice.ID, bobEnt.ID),
		url.Values{"csrf": {secret}, "purpose": {purpose}, "valid_to": {"2026-12-10"}}).want(t, http.StatusNotFound, "Bob's entitlement under Alice")
	desk.post(endPath, url.Values{"csrf": {secret}, "valid_to": {"2026-12-10"}}).want(t, http.StatusBadRequest, "end without purpose")

	// A good day is confirmed first, naming the benefit, the holder and
	// the day; the confirmation of one day does not end it on another.
	ask := desk.post(endPath, url.Values{"csrf": {secret}, "purpose": {purpose}, "valid_to": {"2026-12-10"}}).want(t, http.StatusOK, "end, unconfirmed")
	for _, want := range []string{"The pensioner (11) entitlement will end: its last day is 2026-12-10 (it now runs until 2026-12-31).",
		f.alice.Name, "From 2026-12-11 rides under it are no longer benefit rides", fmt.Sprintf(`name="confirm" value="end %d 2026-12-10"`, pension.ID)} {
		if !strings.Contains(ask.body, want) {
			t.Errorf("the end's confirmation lacks %q:\n%s", want, ask.body)
		}
	}
	desk.post(endPath, url.Values{"csrf": {secret}, "purpose": {purpose}, "valid_to": {"2026-12-09"},
		"confirm": {fmt.Sprintf("end %d 2026-12-10", pension.ID)}}).want(t, http.StatusOK, "end on another day than confirmed")
	if deskActions(f.deskAudit(t, f.alice.ID), "end entitlement", deskUser, purpose) != 0 {
		t.Error("an unconfirmed end is in the audit log")
	}
	r = desk.post(endPath, url.Values{"csrf": {secret}, "purpose": {purpose}, "valid_to": {"2026-12-10"},
		"confirm": {fmt.Sprintf("end %d 2026-12-10", pension.ID)}}).want(t, http.StatusSeeOther, "end")
	for _, e := range f.deskDossier(t, f.alice.ID).Entitlements {
		if e.ID == pension.ID && e.ValidTo.String() != "2026-12-10" {
			t.Errorf("after the end, the pension ends %s", e.ValidTo)
		}
	}
	if deskActions(f.deskAudit(t, f.alice.ID), "end entitlement", deskUser, purpose) != 1 {
		t.Error("the end is not in the audit log with its purpose")
	}
	page = desk.get(r.header.Get("Location")).want(t, http.StatusOK, "after the end")
	if !strings.Contains(page.body, "now ends on 2026-12-10") || !strings.Contains(page.body, "ends in 5 days") {
		t.Errorf("after the end, the page lacks the notice or the new state")
	}
	// A crafted link cannot make the page claim an end.
	page = desk.get(fmt.Sprintf("/desk/residents/%d?purpose=x&done=ended&to=soon", f.alice.ID)).want(t, http.StatusOK, "crafted")
	if strings.Contains(page.body, `id="notice"`) {
		t.Error("a notice shows for a day that is none")
	}
}

// receiptLink returns the receipt link of a desk page, unescaped.
func receiptLink(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`<a href="([^"]+)" id="receipt-link"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no receipt link on the page:\n%s", body)
	}
	return html.UnescapeString(m[1])
}

func TestDeskReceipt(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	const purpose = "card stolen, police report 55"
	f.clock.Advance(90 * time.Minute) // 11:30 in Kyiv
	desk, secret := f.login(deskUser)
	number := f.aliceCard.Number.String()
	receipt := func(n, op string) string {
		return "/desk/cards/" + n + "/receipt?op=" + op + "&purpose=" + url.QueryEscape(purpose)
	}

	forbiddenFor(t, f, http.MethodGet, receipt(number, "blocked"), nil)

	r := desk.post("/desk/cards/"+number+"/block", url.Values{"csrf": {secret}, "purpose": {purpose}, "reason": {"stolen"}, "confirm": {"block " + number}}).want(t, http.StatusSeeOther, "block")
	page := desk.get(r.header.Get("Location")).want(t, http.StatusOK, "after the block")
	link := receiptLink(t, page.body)
	if link != receipt(number, "blocked") {
		t.Errorf("receipt link %q, want %q", link, receipt(number, "blocked"))
	}
	before := f.deskAudit(t, f.alice.ID)
	f.clock.Advance(2 * time.Minute)
	rc := desk.get(link).want(t, http.StatusOK, "block receipt")
	for _, want := range []string{"Card blocked", number, f.alice.Name, "stolen", "2026-12-05 11:30", "2026-12-05 11:32", "Europe/Kyiv",
		deskUser + " (desk operator)", "Operator's signature", "Card holder's signature", "Ctrl+P", `class="no-print"`} {
		if !strings.Contains(html.UnescapeString(rc.body), want) {
			t.Errorf("block receipt lacks %q", want)
		}
	}
	checkDeskAccessible(t, "receipt", rc.body)
	after := f.deskAudit(t, f.alice.ID)
	if got := deskActions(after, "read resident", deskUser, purpose) - deskActions(before, "read resident", deskUser, purpose); got != 1 {
		t.Errorf("the receipt wrote %d audited reads with the purpose, want 1", got)
	}

	// Refused receipts read nothing.
	before = f.deskAudit(t, 0)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{receipt(number, "activated"), http.StatusConflict}, // the card is not active
		{receipt(number, "replaced"), http.StatusConflict},
		{receipt(number, "stolen-by-aliens"), http.StatusBadRequest},
		{receipt(number, ""), http.StatusBadRequest},
		{receipt("1001000000000000", "blocked"), http.StatusNotFound},
		{"/desk/cards/not-a-card/receipt?op=blocked&purpose=x", http.StatusNotFound},
	} {
		r := desk.get(tc.path).want(t, tc.status, tc.path)
		main := r.body[strings.Index(r.body, "<main"):]
		if strings.Contains(main, f.alice.Name) || strings.Contains(main, "aliens") {
			t.Errorf("%s: the refusal shows the name or the link's words", tc.path)
		}
	}
	// Without a purpose, the page asks for one first and reads nothing.
	ask := desk.get("/desk/cards/"+number+"/receipt?op=blocked").want(t, http.StatusOK, "receipt without purpose")
	if strings.Contains(ask.body, f.alice.Name) || !strings.Contains(ask.body, `name="purpose"`) || !strings.Contains(ask.body, `name="op" value="blocked"`) {
		t.Errorf("receipt without purpose: want the purpose form carrying the operation, and no name\n%s", ask.body)
	}
	checkDeskAccessible(t, "receipt purpose", ask.body)
	// The refused receipts may each have read the card; none read the
	// holder.
	for _, e := range f.deskAudit(t, 0)[len(before):] {
		t.Errorf("a refused receipt wrote %+v", e)
	}

	r = desk.post("/desk/cards/"+number+"/replace", url.Values{"csrf": {secret}, "purpose": {purpose}, "clearing_balance": {"12,50"}, "confirm": {"replace " + number}}).want(t, http.StatusSeeOther, "replace")
	page = desk.get(r.header.Get("Location")).want(t, http.StatusOK, "after the replacement")
	var repl registry.Card
	for _, c := range f.deskDossier(t, f.alice.ID).Cards {
		if c.Replaces == f.aliceCard.Number {
			repl = c
		}
	}
	if link := receiptLink(t, page.body); link != receipt(number, "replaced") {
		t.Errorf("receipt link %q after the replacement", link)
	}
	rc = desk.get(receipt(number, "replaced")).want(t, http.StatusOK, "replacement receipt")
	for _, want := range []string{"Card replaced", f.aliceCard.Number.Grouped(), repl.Number.Grouped(), "12.50", f.alice.Name} {
		if !strings.Contains(strings.ReplaceAll(rc.body, "\u00a0", " "), want) {
			t.Errorf("replacement receipt lacks %q", want)
		}
	}
	// The new card waits for personalisation: its order has a receipt too.
	desk.get(receipt(repl.Number.String(), "ordered")).want(t, http.StatusOK, "the replacement's order")

	// Ordering a first card.
	newcomer, err := f.reg.AddResident(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleDesk}, Purpose: "test"},
		registry.Resident{RegistryNumber: storetest.RegistryNumber(5), Name: "Мельник Петро", BirthDate: registry.Date{Year: 1960, Month: 5, Day: 6}})
	if err != nil {
		t.Fatal(err)
	}
	r = desk.post(fmt.Sprintf("/desk/residents/%d/cards", newcomer.ID), url.Values{"csrf": {secret}, "purpose": {purpose}}).want(t, http.StatusSeeOther, "order")
	page = desk.get(r.header.Get("Location")).want(t, http.StatusOK, "after the order")
	cards := f.deskDossier(t, newcomer.ID).Cards
	if len(cards) != 1 {
		t.Fatalf("after the order: %d cards", len(cards))
	}
	if link := receiptLink(t, page.body); link != receipt(cards[0].Number.String(), "ordered") {
		t.Errorf("receipt link %q after the order", link)
	}
	rc = desk.get(receipt(cards[0].Number.String(), "ordered")).want(t, http.StatusOK, "order receipt")
	if !strings.Contains(rc.body, "Card ordered") || !strings.Contains(rc.body, "Мельник Петро") || strings.Contains(rc.body, f.alice.Name) {
		t.Errorf("order receipt:\n%s", rc.body)
	}
	desk.lang = "uk"
	if rc := desk.get(receipt(cards[0].Number.String(), "ordered")); !strings.Contains(rc.body, "Замовлення картки") || !strings.Contains(rc.body, "Підпис оператора") {
		t.Error("the receipt is not in Ukrainian")
	}

	// The print stylesheet leaves the menus off the paper.
	css := desk.get("/static/console.css").want(t, http.StatusOK, "stylesheet").body
	print := css[strings.Index(css, "@media print"):]
	if !strings.Contains(print, ".top") || !strings.Contains(print, ".no-print") || !strings.Contains(print, "display: none") {
		t.Errorf("print stylesheet %q: want the header and the on-screen notes hidden", print)
	}
}

func TestDeskReceiptLinkOnlyForRealOutcomes(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	desk, _ := f.login(deskUser)
	n := card.Number(f.aliceCard.Number).String()
	for _, q := range []string{"done=blocked&card=hello", "done=lunch&card=" + n, "card=" + n} {
		page := desk.get(fmt.Sprintf("/desk/residents/%d?purpose=x&%s", f.alice.ID, q)).want(t, http.StatusOK, q)
		if strings.Contains(page.body, `id="receipt-link"`) {
			t.Errorf("%s: a receipt link shows", q)
		}
	}
	page := desk.get(fmt.Sprintf("/desk/residents/%d?purpose=x&done=personalised&card=%s", f.alice.ID, n)).want(t, http.StatusOK, "personalised")
	if link := receiptLink(t, page.body); link != "/desk/cards/"+n+"/receipt?op=personalised&purpose=x" {
		t.Errorf("after personalising, receipt link %q", link)
	}
}
