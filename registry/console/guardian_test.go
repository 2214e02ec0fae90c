package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/validator/tap"
)

// childRide stores one December ride of card for clearing, as a
// validator's batch would.
func childRide(t *testing.T, f *fixture, card uint64, route string) {
	t.Helper()
	tp := tap.Tap{Device: "BUS-7", Seq: 1, Time: time.Date(2026, 12, 3, 8, 10, 0, 0, f.kyiv).UTC(), Card: card, Carrier: "ATP-1", Route: route,
		Result: tap.Accepted, Reason: "ok", Product: "purse", FareKop: 1500, ChargedKop: 1500, CardCommitted: true}
	if _, _, err := f.clr.AddTaps(f.ctx, []tap.Tap{tp}); err != nil {
		t.Fatal(err)
	}
}

// TestGuardianFlow: a desk links a parent to a child on the evidence it
// saw; the parent then sees the child's record and rides, and blocks the
// child's lost card after a confirmation, each step in the child's access
// log under the parent's name; another resident sees nothing of the
// child; once the desk ends the link, neither does the parent.
func TestGuardianFlow(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	child, c := f.child(t)
	childRide(t, f, uint64(c.Number), "CHILD-7")

	// The desk: a wrong number comes back in place; the right one links.
	desk, secret := f.login(deskUser)
	const purpose = "guardian link, request 88"
	page := desk.get(fmt.Sprintf("/desk/residents/%d?purpose=%s", child.ID, url.QueryEscape(purpose))).want(t, http.StatusOK, "the child's record")
	if !strings.Contains(page.body, `id="guardian-number"`) || !strings.Contains(page.body, `id="guardians-none"`) {
		t.Fatalf("the child's desk page has no guardian form:\n%s", page.body)
	}
	adult := desk.get(fmt.Sprintf("/desk/residents/%d?purpose=%s", f.bob.ID, url.QueryEscape(purpose))).want(t, http.StatusOK, "an adult's record")
	if strings.Contains(adult.body, `id="guardian-number"`) {
		t.Error("an adult's desk page offers to link a guardian")
	}
	link := func(number, evidence string) response {
		return desk.post(fmt.Sprintf("/desk/residents/%d/guardians", child.ID), url.Values{"csrf": {secret}, "purpose": {purpose},
			"guardian_number": {number}, "evidence": {evidence}})
	}
	bad := link("3652504575", "свідоцтво про народження І-КВ 123456").want(t, http.StatusBadRequest, "an unregistered guardian")
	if !strings.Contains(bad.body, "3652504575") || !strings.Contains(bad.body, `id="guardian-problem"`) || !strings.Contains(bad.body, "свідоцтво") {
		t.Errorf("the form does not come back with the problem and the input:\n%s", bad.body)
	}
	link(f.alice.RegistryNumber, "свідоцтво про народження І-КВ 123456").want(t, http.StatusSeeOther, "link Alice")
	again := link(f.alice.RegistryNumber, "свідоцтво про народження І-КВ 123456").want(t, http.StatusBadRequest, "link Alice twice")
	if !strings.Contains(again.body, "already linked") {
		t.Errorf("a second link is not refused in place:\n%s", again.body)
	}

	// The parent.
	alice, asecret := f.login(aliceUser)
	me := alice.get("/me").want(t, http.StatusOK, "Alice's page")
	if !strings.Contains(me.body, fmt.Sprintf(`href="/me/children/%d"`, child.ID)) || !strings.Contains(me.body, child.Name) {
		t.Fatalf("Alice's page does not list her child:\n%s", me.body)
	}
	before := f.auditCount(t, child.ID)
	view := alice.get(fmt.Sprintf("/me/children/%d", child.ID)).want(t, http.StatusOK, "the child's page")
	for _, want := range []string{child.Name, "CHILD-7", `id="block-` + c.Number.String()} {
		if !strings.Contains(view.body, want) {
			t.Errorf("the child's page lacks %q", want)
		}
	}
	if strings.Contains(view.body, child.RegistryNumber) {
		t.Error("the parent's view shows the child's registry number")
	}
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: child.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != before+1 || es[len(es)-1].User != registry.ResidentUser(f.alice.ID) || es[len(es)-1].Purpose != registry.PurposeGuardianView {
		t.Errorf("the child's access log after the parent's view: %+v", es[before:])
	}

	// Somebody else sees nothing of the child.
	bob, bsecret := f.login(bobUser)
	for _, r := range []response{
		bob.get(fmt.Sprintf("/me/children/%d", child.ID)),
		bob.post(fmt.Sprintf("/me/children/%d/cards/%s/block", child.ID, c.Number), url.Values{"csrf": {bsecret}, "reason": {"lost"},
			"confirm": {"block " + c.Number.String()}}),
	} {
		if r.status != http.StatusForbidden && r.status != http.StatusNotFound {
			t.Errorf("Bob and the child: status %d", r.status)
		}
		if strings.Contains(r.body, child.Name) || strings.Contains(r.body, "CHILD-7") {
			t.Errorf("Bob sees the child's data:\n%s", r.body)
		}
	}
	if st, _ := f.reg.CardState(f.ctx, c.Number); st.Status != registry.StatusActive {
		t.Fatalf("the child's card is %s after Bob's try", st.Status)
	}

	// The parent blocks the child's lost card, after a confirmation.
	block := fmt.Sprintf("/me/children/%d/cards/%s/block", child.ID, c.Number)
	ask := alice.post(block, url.Values{"csrf": {asecret}, "reason": {"lost"}}).want(t, http.StatusOK, "the confirmation")
	if !strings.Contains(ask.body, `id="confirm-submit"`) || !strings.Contains(ask.body, child.Name) {
		t.Fatalf("no confirmation naming the child:\n%s", ask.body)
	}
	alice.post(block, url.Values{"csrf": {asecret}, "reason": {"lost"}, "confirm": {"block " + c.Number.String()}}).
		want(t, http.StatusSeeOther, "the parent's block")
	if st, _ := f.reg.CardState(f.ctx, c.Number); st.Status != registry.StatusLost {
		t.Errorf("the child's card is %s after the parent's block", st.Status)
	}
	es, _ = f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: child.ID})
	if last := es[len(es)-1]; last.User != registry.ResidentUser(f.alice.ID) || last.Purpose != registry.PurposeGuardianBlock {
		t.Errorf("the block is recorded as %+v", last)
	}

	// The desk ends the link, after a confirmation; the parent then sees
	// nothing of the child.
	cd, err := f.reg.Resident(f.ctx, sup, child.ID)
	links := cd.Guardianships
	if err != nil || len(links) != 1 {
		t.Fatalf("links %+v, %v", links, err)
	}
	end := fmt.Sprintf("/desk/residents/%d/guardians/%d/end", child.ID, links[0].ID)
	noReason := desk.post(end, url.Values{"csrf": {secret}, "purpose": {purpose}}).want(t, http.StatusBadRequest, "no reason")
	if !strings.Contains(noReason.body, fmt.Sprintf(`id="end-guardian-%d-error"`, links[0].ID)) {
		t.Errorf("no reason is not said at the form:\n%s", noReason.body)
	}
	conf := desk.post(end, url.Values{"csrf": {secret}, "purpose": {purpose}, "reason": {"опіку передано"}}).want(t, http.StatusOK, "ask")
	if !strings.Contains(conf.body, f.alice.Name) || !strings.Contains(conf.body, `id="confirm-submit"`) {
		t.Fatalf("the end of the link is not confirmed naming the parent:\n%s", conf.body)
	}
	desk.post(end, url.Values{"csrf": {secret}, "purpose": {purpose}, "reason": {"опіку передано"},
		"confirm": {fmt.Sprintf("end guardian %d", links[0].ID)}}).want(t, http.StatusSeeOther, "end the link")
	gone := alice.get(fmt.Sprintf("/me/children/%d", child.ID)).want(t, http.StatusForbidden, "the child's page after the link ended")
	if strings.Contains(gone.body, child.Name) {
		t.Error("the ended link still shows the child's name")
	}
	if me := alice.get("/me").want(t, http.StatusOK, "Alice's page"); strings.Contains(me.body, "/me/children/") {
		t.Error("Alice's page still lists the child")
	}
}
