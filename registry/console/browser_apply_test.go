package console_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserApplicationToAcceptance is issue 20's "an application from
// submission to acceptance": a resident, in Ukrainian, applies for a
// student's benefit with a scan; a desk, in another browser, opens the
// queue with a purpose, reads the application, grants the benefit and
// confirms; the resident then sees it accepted and the benefit on their
// record.
func TestBrowserApplicationToAcceptance(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	shots := t.TempDir()
	scan := filepath.Join(t.TempDir(), "студентський.pdf")
	must(t, "write the scan", os.WriteFile(scan, []byte(pdfFile), 0o600))

	res := newBrowser(t)
	browserLogin(t, res, f, aliceUser, "uk")
	must(t, "open the applications", chromedp.Do(res, chromedp.Navigate(f.srv.URL+"/me/applications"),
		chromedp.WaitVisible(chromedp.ID("apply-submit")),
		chromedp.Click(chromedp.ID("kind-benefit")),
		chromedp.SetValue(chromedp.ID("apply-category"), "31"),
		chromedp.SetUploadFiles(chromedp.ID("apply-files"), []string{scan}),
		chromedp.SendKeys(chromedp.ID("apply-note"), "студентка 2 курсу")))
	accessible(t, res, "the application form")
	screenshot(t, res, shots, "apply-form")
	submit(t, res, "apply-submit", 200)
	if notice := run(t, res, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(notice, "Заяву подано") {
		t.Errorf("after applying: %q", notice)
	}
	if row := run(t, res, "row", chromedp.Text(chromedp.CSS("#applications tbody tr"))); !strings.Contains(row, "студентський.pdf") ||
		!strings.Contains(row, "чекає на рішення") {
		t.Errorf("the application's row: %q", row)
	}

	desk := newBrowser(t)
	browserLogin(t, desk, f, deskUser, "uk")
	must(t, "open the queue", chromedp.Do(desk, chromedp.Navigate(f.srv.URL+"/desk/applications"),
		chromedp.SendKeys(chromedp.ID("purpose"), "заяви онлайн, зміна 3")))
	submit(t, desk, "purpose-submit", 200)
	accessible(t, desk, "the desk's queue")
	screenshot(t, desk, shots, "apply-queue")
	must(t, "open the application", chromedp.Do(desk, chromedp.Click(chromedp.CSS(`#applications a[id^="open-"]`)),
		chromedp.WaitVisible(chromedp.ID("accept-form"))))
	if what := run(t, desk, "what", chromedp.Text(chromedp.ID("application-what"))); !strings.Contains(what, "студент") {
		t.Errorf("the application is for %q", what)
	}
	must(t, "fill the grant", chromedp.Do(desk, chromedp.SetValue(chromedp.ID("grant-funding"), "city"),
		chromedp.SetValue(chromedp.ID("grant-valid_to"), "2027-06-30"),
		chromedp.SendKeys(chromedp.ID("grant-legal_basis"), "ЗУ «Про освіту»"),
		chromedp.SetValue(chromedp.ID("grant-monthly_limit"), "50")))
	accessible(t, desk, "the desk's application page")
	screenshot(t, desk, shots, "apply-decide")
	submit(t, desk, "accept-submit", 200)
	if whom := run(t, desk, "whom", chromedp.Text(chromedp.ID("confirm-whom"))); !strings.Contains(whom, f.alice.Name) {
		t.Errorf("the confirmation names %q", whom)
	}
	screenshot(t, desk, shots, "apply-confirm")
	submit(t, desk, "confirm-submit", 200)
	if notice := run(t, desk, "notice", chromedp.Text(chromedp.ID("notice"))); !strings.Contains(notice, "задоволено") {
		t.Errorf("after accepting: %q", notice)
	}

	must(t, "reload", chromedp.Do(res, chromedp.Navigate(f.srv.URL+"/me/applications"), chromedp.WaitVisible(chromedp.ID("applications"))))
	if row := run(t, res, "row", chromedp.Text(chromedp.CSS("#applications tbody tr"))); !strings.Contains(row, "задоволено") {
		t.Errorf("the resident's row after acceptance: %q", row)
	}
	accessible(t, res, "the resident's applications")
	screenshot(t, res, shots, "apply-accepted")
	must(t, "open my record", chromedp.Do(res, chromedp.Navigate(f.srv.URL+"/me"), chromedp.WaitVisible(chromedp.ID("entitlements"))))
	if ents := run(t, res, "benefits", chromedp.Text(chromedp.ID("entitlements"))); !strings.Contains(ents, "30.06.2027") {
		t.Errorf("the new benefit is not on the resident's record:\n%s", ents)
	}
}
