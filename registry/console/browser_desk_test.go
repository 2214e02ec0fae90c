package console_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store/storetest"
)

// TestBrowserDeskRegisterToReceipt follows a new resident through the
// desk with a keyboard-and-forms browser: register them (a mistyped
// registry number first), grant an entitlement, order a card and open
// the receipt of the order, on screen and as printed.
func TestBrowserDeskRegisterToReceipt(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, deskUser, "en")
	submit(t, ctx, "register-link", 200)

	const (
		name    = "Шевченко Марія"
		purpose = "application for a pensioner's card, request 90"
	)
	number := storetest.RegistryNumber(77)
	mistyped := number[:9] + string('0'+(number[9]-'0'+1)%10)
	must(t, "fill the registration", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("registry_number"), mistyped),
		chromedp.SetValue(chromedp.ID("birth_date"), "1955-04-02"),
		chromedp.SendKeys(chromedp.ID("contact"), "+380501112233"),
		chromedp.SendKeys(chromedp.ID("purpose"), purpose)))
	accessible(t, ctx, "desk-register")
	screenshot(t, ctx, shots, "desk-register")
	submit(t, ctx, "register-submit", 400)
	if got := run(t, ctx, "the number's error", chromedp.Text(chromedp.ID("registry_number-error"))); !strings.Contains(got, "last digit does not match") {
		t.Errorf("error at the number: %q", got)
	}
	if got := run(t, ctx, "the name typed", chromedp.Value(chromedp.ID("name"))); got != name {
		t.Errorf("the form came back with name %q, want %q", got, name)
	}
	if got := run(t, ctx, "invalid", chromedp.Evaluate[string](`document.getElementById("registry_number").getAttribute("aria-invalid")`)); got != "true" {
		t.Errorf("the wrong field is not marked invalid: %q", got)
	}
	if rs, err := f.reg.FindResidents(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleDesk}, Purpose: "test"},
		registry.Search{RegistryNumber: mistyped[:9] + mistyped[9:]}); err == nil && len(rs) != 0 {
		t.Fatalf("a refused form registered %v", rs)
	}
	accessible(t, ctx, "desk-register-errors")
	screenshot(t, ctx, shots, "desk-register-errors")

	must(t, "correct the number", chromedp.Do(ctx,
		chromedp.Clear(chromedp.ID("registry_number")),
		chromedp.SendKeys(chromedp.ID("registry_number"), number)))
	submit(t, ctx, "register-submit", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(got, "registered") {
		t.Errorf("notice after registering: %q", got)
	}
	if got := run(t, ctx, "name", chromedp.Text(chromedp.ID("resident-name"))); got != name {
		t.Fatalf("the record opened is %q's, want %q's", got, name)
	}
	rs, err := f.reg.FindResidents(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleDesk}, Purpose: "test"},
		registry.Search{RegistryNumber: number})
	if err != nil || len(rs) != 1 {
		t.Fatalf("registered: %v, %v", rs, err)
	}
	id := rs[0].ID
	accessible(t, ctx, "desk-registered")
	screenshot(t, ctx, shots, "desk-registered")

	// The grant form is folded under its summary; opening it is a click
	// (or Enter) on the summary.
	must(t, "fill the grant form", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#grant summary")),
		chromedp.WaitVisible(chromedp.ID("grant-category")),
		chromedp.SetValue(chromedp.ID("grant-category"), "11"),
		chromedp.SetValue(chromedp.ID("grant-funding"), "city"),
		chromedp.SetValue(chromedp.ID("grant-valid_from"), "2026-12-01"),
		chromedp.SetValue(chromedp.ID("grant-valid_to"), "2027-11-30"),
		chromedp.SendKeys(chromedp.ID("grant-legal_basis"), "ЗУ «Про пенсійне забезпечення»"),
		chromedp.SendKeys(chromedp.ID("grant-evidence"), "пенсійне посвідчення 654321")))
	accessible(t, ctx, "desk-grant")
	screenshot(t, ctx, shots, "desk-grant")
	submit(t, ctx, "grant-submit", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(got, "granted") {
		t.Errorf("notice after the grant: %q", got)
	}
	ents := run(t, ctx, "entitlements", chromedp.Text(chromedp.ID("entitlements")))
	for _, want := range []string{"pensioner (11)", "2026-12-01", "2027-11-30", "пенсійне посвідчення 654321", "valid"} {
		if !strings.Contains(ents, want) {
			t.Errorf("entitlements %q lack %q", ents, want)
		}
	}
	accessible(t, ctx, "desk-resident-entitlement")
	screenshot(t, ctx, shots, "desk-resident-entitlement")

	submit(t, ctx, "order", 200)
	d, err := f.reg.Resident(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleDesk}, Purpose: "test"}, id)
	if err != nil || len(d.Cards) != 1 || len(d.Entitlements) != 1 {
		t.Fatalf("after the order: %+v, %v; want one card and one entitlement", d.Cards, err)
	}
	if got := spaced(run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice")))); !strings.Contains(got, "Card "+d.Cards[0].Number.Grouped()+" is ordered") {
		t.Errorf("notice after the order: %q", got)
	}
	accessible(t, ctx, "desk-resident-ordered")
	screenshot(t, ctx, shots, "desk-resident-ordered")

	// The receipt link works from the keyboard: focus it, press Enter.
	resp, err := chromedp.RunResponse(ctx, chromedp.Focus(chromedp.ID("receipt-link")), chromedp.KeyEvent("\r"))
	must(t, "open the receipt with Enter", err)
	if resp.Status != 200 {
		t.Fatalf("receipt: status %d", resp.Status)
	}
	for id, want := range map[string]string{"receipt-op": "Card ordered", "receipt-card": d.Cards[0].Number.Grouped(), "receipt-holder": name,
		"receipt-operator": deskUser + " (desk operator)", "receipt-at": "2026-12-05 10:00"} {
		if got := strings.ReplaceAll(run(t, ctx, id, chromedp.Text(chromedp.ID(id))), "\u00a0", " "); got != want {
			t.Errorf("#%s: %q, want %q", id, got, want)
		}
	}
	if got := run(t, ctx, "print hint", chromedp.Text(chromedp.ID("print-hint"))); !strings.Contains(got, "Ctrl+P") {
		t.Errorf("the page does not say how to print: %q", got)
	}
	display := func(sel string) string {
		t.Helper()
		return run(t, ctx, "display of "+sel, chromedp.Evaluate[string](fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).display`, sel)))
	}
	if got := display("header.top"); got == "none" {
		t.Error("on screen, the menu is hidden")
	}
	accessible(t, ctx, "desk-receipt")
	screenshot(t, ctx, shots, "desk-receipt")

	// Printed, the menus and the on-screen notes are left out and the
	// receipt stays.
	_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
	must(t, "emulate print", err)
	for _, sel := range []string{"header.top", ".skip", ".no-print"} {
		if got := display(sel); got != "none" {
			t.Errorf("printed, %s shows (display %q)", sel, got)
		}
	}
	if got := display("#receipt"); got == "none" {
		t.Error("printed, the receipt is hidden")
	}
	accessible(t, ctx, "desk-receipt-print")
	screenshot(t, ctx, shots, "desk-receipt-print")

	// Reading the holder's name for the receipt is in the audit log with
	// the purpose carried from the registration.
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: id})
	must(t, "audit", err)
	var actions []string
	for _, e := range es {
		if e.User == deskUser && e.Purpose == purpose {
			actions = append(actions, e.Action)
		}
	}
	for _, want := range []string{"register resident", "add entitlement", "order card", "read resident"} {
		if !strings.Contains(strings.Join(actions, "|"), want) {
			t.Errorf("audit with the purpose %q lacks %q", actions, want)
		}
	}
	if got, want := len(actions), 8; got != want {
		// Register and read, grant and read, order and read, and the
		// receipt's two reads (the card's data, which names its holder,
		// and the holder's record); the refused form read and wrote
		// nothing.
		t.Errorf("%d audit entries with the purpose (%q), want %d", got, actions, want)
	}
}
