package console_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/registry"
)

// phone makes the tab a 390 px wide phone screen.
func phone(t *testing.T, ctx context.Context) {
	t.Helper()
	_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: 390, Height: 844, DeviceScaleFactor: 2, Mobile: true})
	must(t, "emulate a phone", err)
}

// noSideScroll fails the test when the page is wider than the screen:
// on a phone, nothing may make the page scroll sideways.
func noSideScroll(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	w := run(t, ctx, "widths", chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]`))
	if w[0] > w[1] {
		t.Errorf("%s: the page is %d px wide on a %d px screen (window %d): it scrolls sideways", what, w[0], w[1], w[2])
	}
	if w[2] != 390 {
		t.Errorf("%s: the window is %d px wide, want the phone's 390", what, w[2])
	}
}

// TestBrowserResidentBlocksLostCard: on a phone, in Ukrainian, a
// resident reads their page (Ukrainian dates, reflowed tables), blocks
// their lost card through the confirmation, and the next hotlist the
// registry publishes makes a validator refuse it.
func TestBrowserResidentBlocksLostCard(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	vl := newValidatorList(t, f)
	vl.update(t)
	ctx := newBrowser(t)
	shots := t.TempDir()
	phone(t, ctx)
	browserLogin(t, ctx, f, aliceUser, "uk")
	noSideScroll(t, ctx, "/me")
	accessible(t, ctx, "phone-me")
	screenshot(t, ctx, shots, "phone-me")

	ents := run(t, ctx, "entitlements", chromedp.Text(chromedp.ID("entitlements")))
	for _, want := range []string{"01.01.2026", "31.12.2026", "закінчується через 26 дн."} {
		if !strings.Contains(ents, want) {
			t.Errorf("entitlements %q lack %q", ents, want)
		}
	}
	if strings.Contains(ents, "2026-12-31") {
		t.Errorf("a Ukrainian page shows an ISO date: %q", ents)
	}
	cards := spaced(run(t, ctx, "cards", chromedp.Text(chromedp.ID("cards"))))
	if !strings.Contains(cards, f.aliceCard.Number.Grouped()) {
		t.Errorf("cards %q: want the number grouped by four", cards)
	}
	// Reflowed, each cell says its column.
	if got := run(t, ctx, "label", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#cards td"), "::before").content`)); !strings.Contains(got, "Номер") {
		t.Errorf("a card cell on a phone is labelled %q, want its column", got)
	}
	log := run(t, ctx, "access log", chromedp.Text(chromedp.ID("audit")))
	if !strings.Contains(log, "переглянуто запис мешканця") || strings.Contains(log, "read resident") {
		t.Errorf("the Ukrainian access log does not translate the actions: %q", log)
	}

	n := f.aliceCard.Number.String()
	must(t, "choose lost", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("reason-"+n), "lost")))
	submit(t, ctx, "block-"+n, 200)
	confirmStep(t, ctx, shots, "phone-me-block-confirm", []string{"Вашу картку " + f.aliceCard.Number.Grouped() + " буде заблоковано: втрата.",
		f.alice.Name, "Розблокувати її неможливо"})
	if got := spaced(run(t, ctx, "button", chromedp.Text(chromedp.ID("confirm-submit")))); got != "Так, заблокувати картку "+f.aliceCard.Number.Grouped() {
		t.Errorf("the confirming button says %q", got)
	}
	noSideScroll(t, ctx, "the block's confirmation")
	if s, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || s.Status != registry.StatusActive {
		t.Fatalf("card on the confirmation page: %v, %v; want still active", s.Status, err)
	}
	submit(t, ctx, "confirm-submit", 200)
	if got := spaced(run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice")))); !strings.Contains(got, "Картку "+f.aliceCard.Number.Grouped()+" заблоковано") {
		t.Errorf("notice %q", got)
	}
	if got := run(t, ctx, "status", chromedp.Text(chromedp.CSS("#card-"+n+" .status"))); !strings.Contains(got, "втрачена") {
		t.Errorf("the card shows as %q, want lost", got)
	}
	noSideScroll(t, ctx, "/me after the block")
	accessible(t, ctx, "phone-me-blocked")
	screenshot(t, ctx, shots, "phone-me-blocked")
	if s, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || s.Status != registry.StatusLost {
		t.Fatalf("card after the block: %v, %v; want lost", s.Status, err)
	}
	vl.update(t)
	if !vl.refuses(f.aliceCard.Number) {
		t.Error("after the next hotlist a validator does not refuse the card the resident blocked")
	}
}

// TestBrowserDeskConfirmations walks the desk's confirmation steps that
// TestBrowserDesk does not (ending an entitlement, replacing a card),
// with a way back that changes nothing and a replacement amount that
// comes back at its field; and the desk's record on a phone.
func TestBrowserDeskConfirmations(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, deskUser, "en")
	const purpose = "benefit ended, letter 31"
	record := fmt.Sprintf("%s/desk/residents/%d?purpose=%s", f.srv.URL, f.alice.ID, url.QueryEscape(purpose))
	must(t, "open the record", chromedp.Do(ctx, chromedp.Navigate(record)))
	d := f.deskDossier(t, f.alice.ID)
	ent := d.Entitlements[0]
	eid := fmt.Sprint(ent.ID)
	if v := run(t, ctx, "end day", chromedp.Value(chromedp.ID("end-"+eid))); v != "" {
		t.Errorf("the end form comes filled with %q; want it empty", v)
	}

	// End: the confirmation, then the way back, which changes nothing.
	must(t, "type the last day", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("end-"+eid), "2026-12-10")))
	submit(t, ctx, "end-submit-"+eid, 200)
	confirmStep(t, ctx, shots, "desk-end-confirm", []string{"The pensioner (11) entitlement will end: its last day is 2026-12-10",
		f.alice.Name, "From 2026-12-11 rides under it are no longer benefit rides"})
	submit(t, ctx, "confirm-cancel", 200)
	if got := f.deskDossier(t, f.alice.ID).Entitlements[0].ValidTo; got != ent.ValidTo {
		t.Fatalf("the way back ended the entitlement on %s", got)
	}
	must(t, "type the last day again", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("end-"+eid), "2026-12-10")))
	submit(t, ctx, "end-submit-"+eid, 200)
	submit(t, ctx, "confirm-submit", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(got, "2026-12-10") {
		t.Errorf("notice after the end: %q", got)
	}
	if got := f.deskDossier(t, f.alice.ID).Entitlements[0].ValidTo.String(); got != "2026-12-10" {
		t.Errorf("after the confirmed end the entitlement runs until %s", got)
	}

	// Block (confirmed), then replace: a bad amount comes back at its
	// field with what was typed; a good one asks to confirm.
	n := f.aliceCard.Number.String()
	must(t, "fill the block form", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("reason-"+n), "stolen")))
	submit(t, ctx, "block-"+n, 200)
	confirmStep(t, ctx, shots, "desk-block-stolen-confirm", []string{"will be blocked, reason: stolen", f.alice.Name})
	submit(t, ctx, "confirm-submit", 200)
	must(t, "type a bad amount", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("clearing-"+n), "12.505")))
	submit(t, ctx, "replace-"+n, 400)
	if got := run(t, ctx, "the amount's error", chromedp.Text(chromedp.ID("clearing-"+n+"-error"))); !strings.Contains(got, "write an amount in hryvnias") {
		t.Errorf("error at the amount: %q", got)
	}
	if got := run(t, ctx, "the amount typed", chromedp.Value(chromedp.ID("clearing-"+n))); got != "12.505" {
		t.Errorf("the form came back with %q, want what was typed", got)
	}
	accessible(t, ctx, "desk-replace-error")
	screenshot(t, ctx, shots, "desk-replace-error")
	must(t, "correct the amount", chromedp.Do(ctx, chromedp.Clear(chromedp.ID("clearing-"+n)), chromedp.SendKeys(chromedp.ID("clearing-"+n), "12,50")))
	submit(t, ctx, "replace-"+n, 200)
	confirmStep(t, ctx, shots, "desk-replace-confirm", []string{"will be replaced by a new one; 12.50 UAH will be carried", f.alice.Name, "stops for good"})
	submit(t, ctx, "confirm-submit", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(got, "replaced by new card") {
		t.Errorf("notice after the replacement: %q", got)
	}

	// The desk's record on a phone, in Ukrainian.
	phone(t, ctx)
	must(t, "open the record in Ukrainian", chromedp.Do(ctx, chromedp.Navigate(record+"&lang=uk")))
	noSideScroll(t, ctx, "the desk's record")
	body := run(t, ctx, "page text", chromedp.Evaluate[string](`document.body.innerText`))
	for _, want := range []string{"10.12.2026", "01.03.1950", "12,50"} {
		if !strings.Contains(body, want) {
			t.Errorf("the Ukrainian record lacks %q", want)
		}
	}
	accessible(t, ctx, "phone-desk-record")
	screenshot(t, ctx, shots, "phone-desk-record")
}

// TestBrowserTokenRevokeConfirmation: a supervisor revokes a desk
// operator's session through the confirmation page, which names whose
// it is; a post without the confirmation revokes nothing, and the
// revoked session ends at once.
func TestBrowserTokenRevokeConfirmation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	deskU, _ := f.login(deskUser)
	deskU.get("/desk").want(t, 200, "the desk signed in")
	sup := registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleSupervisor}}
	list, err := f.reg.Tokens(f.ctx, sup, registry.TokenQuery{User: deskUser})
	must(t, "tokens", err)
	if len(list) != 1 {
		t.Fatalf("the desk operator has %d live tokens, want their session", len(list))
	}
	id := list[0].ID

	// The server refuses without the confirmation, whatever the browser
	// sends: the old checkbox's "yes" confirms nothing.
	supU, secret := f.login(supervisorUser)
	ask := supU.post("/tokens/"+id+"/revoke?lang=en", url.Values{"csrf": {secret}, "confirm": {"yes"}}).want(t, 200, "revoke, unconfirmed")
	if !strings.Contains(ask.body, "Token "+id+" (session) will be revoked.") || !strings.Contains(ask.body, deskUser+" (desk operator)") {
		t.Errorf("the confirmation does not say whose token:\n%s", ask.body)
	}
	deskU.get("/desk").want(t, 200, "the desk after an unconfirmed revoke")

	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, supervisorUser, "en")
	must(t, "open the tokens", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/tokens")))
	submit(t, ctx, "revoke-"+id, 200)
	confirmStep(t, ctx, shots, "token-revoke-confirm", []string{"Token " + id + " (session) will be revoked.", deskUser + " (desk operator)",
		"This cannot be undone"})
	submit(t, ctx, "confirm-submit", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(got, "revoked") {
		t.Errorf("notice after the revoke: %q", got)
	}
	if r := deskU.get("/desk"); r.status == 200 {
		t.Error("the revoked session still opens the desk")
	}
}

// TestBrowserCloseConfirmation: the month-end close is confirmed on its
// form by a tick that names the period and its figures; the form cannot
// be sent without it, the server refuses a close without it, and the
// confirmed close closes the period.
func TestBrowserCloseConfirmation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	closed := func() bool {
		t.Helper()
		sts, err := f.clr.Statements(f.ctx, period)
		must(t, "statements", err)
		return len(sts) > 0 && sts[0].Closed
	}
	supU, secret := f.login(supervisorUser)
	supU.post("/finance/close", url.Values{"csrf": {secret}, "period": {period}}).want(t, 400, "close without the confirmation")
	if closed() {
		t.Fatal("a close without the confirmation closed the period")
	}

	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, supervisorUser, "uk")
	must(t, "open the close", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/finance/close?period="+period)))
	label := spaced(run(t, ctx, "confirmation", chromedp.Text(chromedp.CSS(`label[for="confirm"]`))))
	for _, want := range []string{period, "8 пільгових поїздок", "135,00 грн", "назавжди"} {
		if !strings.Contains(label, want) {
			t.Errorf("the close's confirmation %q lacks %q", label, want)
		}
	}
	if ok := run(t, ctx, "validity", chromedp.Evaluate[bool](`document.getElementById("close-submit").form.checkValidity()`)); ok {
		t.Error("the close form can be sent without the confirmation")
	}
	accessible(t, ctx, "close-confirm")
	screenshot(t, ctx, shots, "close-confirm")
	must(t, "tick the confirmation", chromedp.Do(ctx, chromedp.Click(chromedp.ID("confirm"))))
	submit(t, ctx, "close-submit", 200)
	if !closed() {
		t.Fatal("the confirmed close left the period open")
	}
}
