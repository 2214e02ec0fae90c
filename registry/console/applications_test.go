package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/citycard/transit/registry"
)

// Documents as a resident attaches them.
const (
	pdfFile = "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
	exeFile = "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
)

var applicationID = regexp.MustCompile(`id="open-([0-9]+)"`)

// TestApplicationFlow: a resident applies for a benefit with a scan; a
// wrong file and a second application are refused in place; the desk
// sees the queue, opens the document (audited), refuses without a
// reason in vain, and accepts after a confirmation; the benefit is then
// on the resident's record and the resident sees the decision.
func TestApplicationFlow(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	alice, asecret := f.login(aliceUser)
	alice.get("/me/applications").want(t, http.StatusOK, "the application page")
	form := url.Values{"csrf": {asecret}, "kind": {"benefit"}, "category": {"31"}, "note": {"студентка"}}
	exe := alice.postFiles("/me/applications", form, "files", [2]string{"довідка.pdf", exeFile}).want(t, http.StatusBadRequest, "an executable")
	if !strings.Contains(exe.body, `id="apply-problem"`) || !strings.Contains(exe.body, "not a PDF, JPEG or PNG") || !strings.Contains(exe.body, "студентка") {
		t.Errorf("the executable is not refused in place with the note kept:\n%s", exe.body)
	}
	nofile := alice.postFiles("/me/applications", form, "files").want(t, http.StatusBadRequest, "no document")
	if !strings.Contains(nofile.body, "attach the document") {
		t.Errorf("an application without a document:\n%s", nofile.body)
	}
	forged := url.Values{"kind": {"benefit"}, "category": {"31"}}
	alice.postFiles("/me/applications", forged, "files", [2]string{"a.pdf", pdfFile}).want(t, http.StatusForbidden, "no CSRF secret")
	alice.postFiles("/me/applications", form, "files", [2]string{`..\..\студентський.pdf`, pdfFile}).want(t, http.StatusSeeOther, "apply")
	again := alice.postFiles("/me/applications", form, "files", [2]string{"a.pdf", pdfFile}).want(t, http.StatusBadRequest, "apply twice")
	if !strings.Contains(again.body, "already waiting") {
		t.Errorf("a second application is not refused in place:\n%s", again.body)
	}
	mine := alice.get("/me/applications").want(t, http.StatusOK, "the list")
	if !strings.Contains(mine.body, "студентський.pdf") || !strings.Contains(mine.body, "waiting for a desk") {
		t.Errorf("the resident's list:\n%s", mine.body)
	}

	// Bob cannot read Alice's document.
	bob, _ := f.login(bobUser)
	aps, err := f.reg.Applications(f.ctx, registry.Access{Actor: registry.Actor{User: "t", Role: registry.RoleDesk}, Purpose: "test"},
		registry.ApplicationQuery{Status: registry.ApplicationSubmitted})
	if err != nil || len(aps) != 1 {
		t.Fatalf("queue %+v, %v", aps, err)
	}
	ap := aps[0]
	doc := fmt.Sprintf("/me/applications/%d/files/%d", ap.ID, ap.Attachments[0].ID)
	if r := bob.get(doc); r.status != http.StatusNotFound || strings.Contains(r.body, "%PDF") {
		t.Errorf("Bob reads Alice's document: %d", r.status)
	}
	own := alice.get(doc).want(t, http.StatusOK, "Alice's document")
	if own.body != pdfFile || own.header.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(own.header.Get("Content-Disposition"), "attachment") {
		t.Errorf("Alice's document: %q %q", own.header.Get("Content-Type"), own.header.Get("Content-Disposition"))
	}

	// The desk.
	desk, secret := f.login(deskUser)
	const purpose = "online applications, shift 3"
	if r := desk.get("/desk/applications").want(t, http.StatusOK, "the queue without a purpose"); strings.Contains(r.body, f.alice.Name) {
		t.Error("the queue shows names before a purpose is given")
	}
	q := url.QueryEscape(purpose)
	queue := desk.get("/desk/applications?purpose="+q).want(t, http.StatusOK, "the queue")
	if m := applicationID.FindStringSubmatch(queue.body); m == nil || m[1] != fmt.Sprint(ap.ID) || !strings.Contains(queue.body, f.alice.Name) {
		t.Fatalf("the queue:\n%s", queue.body)
	}
	before := f.auditCount(t, f.alice.ID)
	desk.get(fmt.Sprintf("/desk/applications/%d/files/%d?purpose=%s", ap.ID, ap.Attachments[0].ID, q)).want(t, http.StatusOK, "the desk's document")
	if f.auditCount(t, f.alice.ID) != before+1 {
		t.Error("the desk's read of the document is not audited")
	}
	decide := fmt.Sprintf("/desk/applications/%d/decide", ap.ID)
	noReason := desk.post(decide, url.Values{"csrf": {secret}, "purpose": {purpose}, "decision": {"refuse"}}).want(t, http.StatusBadRequest, "refuse without a reason")
	if !strings.Contains(noReason.body, `id="decide-problem"`) {
		t.Errorf("a refusal without a reason is not said in place:\n%s", noReason.body)
	}
	accept := url.Values{"csrf": {secret}, "purpose": {purpose}, "decision": {"accept"}, "funding": {"city"}, "valid_from": {"2026-12-01"},
		"valid_to": {"2027-06-30"}, "legal_basis": {"ЗУ «Про освіту»"}, "evidence": {"студентський квиток КВ 1 (онлайн-заява)"}, "monthly_limit": {"50"}}
	conf := desk.post(decide, accept).want(t, http.StatusOK, "the confirmation")
	if !strings.Contains(conf.body, `id="confirm-submit"`) || !strings.Contains(conf.body, f.alice.Name) {
		t.Fatalf("no confirmation naming the applicant:\n%s", conf.body)
	}
	d, _ := f.reg.Resident(f.ctx, registry.Access{Actor: registry.Actor{User: "t", Role: registry.RoleDesk}, Purpose: "test"}, f.alice.ID)
	n := len(d.Entitlements)
	accept.Set("confirm", fmt.Sprintf("accept application %d", ap.ID))
	desk.post(decide, accept).want(t, http.StatusSeeOther, "accept")
	d, _ = f.reg.Resident(f.ctx, registry.Access{Actor: registry.Actor{User: "t", Role: registry.RoleDesk}, Purpose: "test"}, f.alice.ID)
	if len(d.Entitlements) != n+1 || d.Entitlements[len(d.Entitlements)-1].Category != registry.CategoryStudent {
		t.Errorf("the accepted application's entitlement: %+v", d.Entitlements)
	}
	if r := desk.post(decide, accept); r.status != http.StatusConflict {
		t.Errorf("deciding twice: %d", r.status)
	}
	if mine := alice.get("/me/applications").want(t, http.StatusOK, "the list"); !strings.Contains(mine.body, "accepted") {
		t.Errorf("the resident does not see the decision:\n%s", mine.body)
	}
}
