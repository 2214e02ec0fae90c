package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notices"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/simulator/testenv/smtptest"
)

// TestBrowserNoticeReachesSMTP: a resident's benefit ends in 15 days;
// the notice goes through the SMTP sender to a local mail server
// (aiosmtpd), and the resident, signed in, sees it on their notices page
// and turns notices off.
func TestBrowserNoticeReachesSMTP(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	srv := smtptest.Start(t)
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	carol, err := f.reg.AddResident(f.ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(77), Name: "Мельник Галина",
		BirthDate: registry.Date{Year: 1951, Month: time.May, Day: 9}, Contact: "galyna@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.AddEntitlement(f.ctx, sup, registry.Entitlement{ResidentID: carol.ID, Category: registry.CategoryDisability,
		LegalBasis: "ЗУ «Про основи соціальної захищеності осіб з інвалідністю»", Evidence: "довідка МСЕК 42",
		ValidFrom: registry.Date{Year: 2026, Month: time.January, Day: 1}, ValidTo: registry.Date{Year: 2026, Month: time.December, Day: 20},
		Funding: registry.FundingState}); err != nil {
		t.Fatal(err)
	}
	f.residents["carol"] = carol
	mailer := &notify.ByContact{Email: &notify.SMTP{Addr: srv.Addr, From: "registry@city.example", Timeout: 10 * time.Second}}
	r := &notices.Runner{Store: f.reg, Sender: mailer, Rule: notices.Rule{Location: f.kyiv,
		Reaches: func(c string) bool { return mailer.For(c) != "" }}, Now: f.clock.Now}
	if rep, err := r.Once(f.ctx); err != nil || rep.Sent != 1 {
		t.Fatalf("notices: %+v, %v; want Galyna's sent (Alice's contact is a phone, which no sender here reaches)", rep, err)
	}
	got := srv.Wait(1)
	if got[0].To != "<galyna@example.org>" || got[0].Subject != "Ваша пільга на проїзд закінчується 20.12.2026" ||
		!strings.Contains(got[0].Text, "«особа з інвалідністю», категорія 21") {
		t.Fatalf("the mail server got %+v", got[0])
	}

	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, "carol", "uk")
	submit(t, ctx, "notices-link", 200)
	table := run(t, ctx, "notices", chromedp.Text(chromedp.ID("notices")))
	for _, want := range []string{"особа з інвалідністю", "20.12.2026", "надіслано 05.12.2026 10:00 на galyna@example.org"} {
		if !strings.Contains(table, want) {
			t.Errorf("the notices table lacks %q:\n%s", want, table)
		}
	}
	accessible(t, ctx, "me-notices")
	screenshot(t, ctx, shots, "me-notices")
	submit(t, ctx, "notices-off", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(got, "Повідомлення вимкнено") {
		t.Errorf("after turning notices off the page says %q", got)
	}
	if got := run(t, ctx, "state", chromedp.Text(chromedp.ID("notices-state"))); !strings.Contains(got, "не надсилає") {
		t.Errorf("the setting reads %q", got)
	}
	accessible(t, ctx, "me-notices-off")
	screenshot(t, ctx, shots, "me-notices-off")
	rn, err := f.reg.ResidentNotices(f.ctx, sup, carol.ID)
	if err != nil || !rn.OptedOut {
		t.Errorf("after the page: %+v, %v; want opted out", rn, err)
	}
}
