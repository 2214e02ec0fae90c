package console_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/png" // screenshots are checked as PNG
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/simulator/testenv"
)

// The browser tests drive headless Chromium against the console, as a
// person with a keyboard would: type, press buttons, follow links.

// screenshotsVar names a directory that keeps a copy of each screenshot,
// for a person to look at; the tests always write them to a temp dir.
const screenshotsVar = "TRANSIT_CONSOLE_SCREENSHOTS"

// newBrowser starts a fresh headless Chromium (its own profile) and
// returns a tab's context; it is closed when the test ends.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := testenv.Chromium(t)
	// Everything a test does in the browser ends within this time.
	timeout, cancelTimeout := context.WithTimeout(context.Background(), 40*time.Second)
	alloc, cancelAlloc := chromedp.NewExecAllocator(timeout,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// File names are UTF-8 (a desk's documents are named in
		// Ukrainian); under a C locale, as the harness runs, Chromium
		// cannot open such a file to upload it.
		chromedp.Env("LC_ALL=C.UTF-8", "LANG=C.UTF-8"),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		// Close the browser before its profile directory is removed.
		if err := chromedp.Cancel(ctx); err != nil && timeout.Err() == nil {
			t.Logf("close the browser: %v", err)
		}
		cancel()
		cancelAlloc()
		cancelTimeout()
	})
	return ctx
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// run runs an action that returns a value.
func run[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	must(t, what, err)
	return v
}

// submit clicks a button or link and waits for the page it leads to.
func submit(t *testing.T, ctx context.Context, id string, status int64) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID(id)))
	must(t, "click #"+id, err)
	if resp.Status != status {
		t.Fatalf("click #%s: status %d, want %d", id, resp.Status, status)
	}
}

// screenshot saves the whole page as dir/name.png and checks that it is
// a PNG with a picture in it.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	buf := run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	cfg, format, err := image.DecodeConfig(bytes.NewReader(buf))
	if err != nil || format != "png" || cfg.Width < 100 || cfg.Height < 100 {
		t.Fatalf("screenshot %s: %s %dx%d, %v; want a PNG of the page", name, format, cfg.Width, cfg.Height, err)
	}
	file := filepath.Join(dir, name+".png")
	must(t, "save screenshot", os.WriteFile(file, buf, 0o644))
	if fi, err := os.Stat(file); err != nil || fi.Size() == 0 {
		t.Fatalf("screenshot %s: %v, %v", file, fi, err)
	}
	if keep := os.Getenv(screenshotsVar); keep != "" {
		must(t, "keep screenshot", os.WriteFile(filepath.Join(keep, name+".png"), buf, 0o644))
	}
}

// browserLogin signs in through the forms: a staff member's password, a
// resident's one-time code.
func browserLogin(t *testing.T, ctx context.Context, f *fixture, name, lang string) {
	t.Helper()
	if res, ok := f.residents[name]; ok {
		must(t, "open the resident sign-in page", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/login/resident?lang="+lang),
			chromedp.SendKeys(chromedp.ID("registry_number"), res.RegistryNumber)))
		submit(t, ctx, "code-request", 200)
		must(t, "type the code", chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("code"), f.code(res.Contact))))
		submit(t, ctx, "code-submit", 200)
		return
	}
	must(t, "open the login page", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/login?lang="+lang),
		chromedp.SendKeys(chromedp.ID("user"), name), chromedp.SendKeys(chromedp.ID("password"), f.passwords[name])))
	submit(t, ctx, "login-submit", 200)
}

func TestBrowserDesk(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := newBrowser(t)
	shots := t.TempDir()
	must(t, "open the console", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/?lang=en")))
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/login") {
		t.Fatalf("signed out, the console opens %s; want the login page", loc)
	}
	screenshot(t, ctx, shots, "login")
	// The first Tab reaches the skip link.
	must(t, "press Tab", chromedp.Do(ctx, chromedp.KeyEvent("\t")))
	if got := run(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.getAttribute("href")`)); got != "#main" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}

	browserLogin(t, ctx, f, deskUser, "en")
	const purpose = "card lost, request 4711"
	must(t, "fill the search", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("q"), "Коваленко"),
		chromedp.SendKeys(chromedp.ID("purpose"), purpose)))
	submit(t, ctx, "search-submit", 200)
	if got := run(t, ctx, "results", chromedp.Text(chromedp.ID("results"))); !strings.Contains(got, f.alice.Name) || strings.Contains(got, f.bob.Name) {
		t.Fatalf("results %q: want Alice only", got)
	}
	screenshot(t, ctx, shots, "desk-search")

	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#results a")))
	must(t, "open the record", err)
	if resp.Status != 200 {
		t.Fatalf("record: status %d", resp.Status)
	}
	if got := run(t, ctx, "name", chromedp.Text(chromedp.ID("resident-name"))); got != f.alice.Name {
		t.Fatalf("record of %q, want %q", got, f.alice.Name)
	}
	screenshot(t, ctx, shots, "resident")

	n := f.aliceCard.Number.String()
	must(t, "fill the block form", chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("reason-"+n), "lost"),
		chromedp.SendKeys(chromedp.ID("note-"+n), "reported by phone")))
	submit(t, ctx, "block-"+n, 200)
	// The block asks first, saying what happens and to whom; nothing
	// changes until the operator confirms.
	confirmStep(t, ctx, shots, "block-confirm", []string{"Card " + f.aliceCard.Number.Grouped() + " will be blocked, reason: lost.",
		f.alice.Name, "It cannot be unblocked"})
	if d, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || d.Status != registry.StatusActive {
		t.Fatalf("card on the confirmation page: %v, %v; want still active", d.Status, err)
	}
	submit(t, ctx, "confirm-submit", 200)
	if got := spaced(run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice")))); !strings.Contains(got, "Card "+f.aliceCard.Number.Grouped()+" is blocked") {
		t.Errorf("notice %q", got)
	}
	d, err := f.reg.CardState(f.ctx, f.aliceCard.Number)
	if err != nil || d.Status != registry.StatusLost {
		t.Fatalf("card after the block: %v, %v; want lost", d.Status, err)
	}
	// The page now offers the replacement.
	run(t, ctx, "replacement form", chromedp.Text(chromedp.ID("replace-"+n)))
	screenshot(t, ctx, shots, "resident-blocked")
}

func TestBrowserFinance(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := newBrowser(t)
	shots, downloads := t.TempDir(), t.TempDir()
	browserLogin(t, ctx, f, financeUser, "uk")
	must(t, "open November", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/finance?period="+period)))
	if lang := run(t, ctx, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "uk" {
		t.Errorf("the page is in %q, want uk (chosen at sign-in)", lang)
	}
	carriers := run(t, ctx, "by carrier", chromedp.Text(chromedp.ID("by-carrier-0")))
	for _, want := range []string{"ATP-1", "85,00", "ATP-2", "50,00", "Разом", "135,00"} {
		if !strings.Contains(carriers, want) {
			t.Errorf("per-carrier table %q lacks %q", carriers, want)
		}
	}
	run(t, ctx, "per-category table", chromedp.Text(chromedp.ID("by-category-0")))
	run(t, ctx, "per-funding table", chromedp.Text(chromedp.ID("by-funding-0")))
	screenshot(t, ctx, shots, "finance")

	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
	must(t, "allow downloads", err)
	must(t, "click the CSV link", chromedp.Do(ctx, chromedp.Click(chromedp.ID("csv"))))
	file := filepath.Join(downloads, "compensation-"+period+".csv")
	var got []byte
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = os.ReadFile(file); err == nil && len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(downloads)
			t.Fatalf("no download %s after 15 s (the directory has %v)", file, entries)
		}
	}
	c, err := report.BuildCompensation(f.ctx, f.clr, report.Query{Period: period, Carrier: "", Detail: report.Detail{Category: true}})
	must(t, "compensation", err)
	var want bytes.Buffer
	must(t, "write CSV", report.WriteCompensation(&want, "csv", c))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("downloaded CSV:\n%s\nwant:\n%s", got, want.Bytes())
	}
}

func TestBrowserResident(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, aliceUser, "en")
	if loc := run(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/me") {
		t.Fatalf("a resident starts at %s, want /me", loc)
	}
	log := run(t, ctx, "access log", chromedp.Text(chromedp.ID("audit")))
	for _, want := range []string{seededPurpose, deskUser, registry.PurposeOwnView} {
		if !strings.Contains(log, want) {
			t.Errorf("access log %q lacks %q", log, want)
		}
	}
	ents := run(t, ctx, "entitlements", chromedp.Text(chromedp.ID("entitlements")))
	if !strings.Contains(ents, "2026-12-31") || !strings.Contains(ents, "ends in 26 days") {
		t.Errorf("entitlements %q: want the expiry and that it is near", ents)
	}
	screenshot(t, ctx, shots, "me")

	resp := run(t, ctx, "open Bob's record", chromedp.NavigateResponse(fmt.Sprintf("%s/desk/residents/%d?purpose=curiosity", f.srv.URL, f.bob.ID)))
	if resp.Status != 403 {
		t.Errorf("Bob's record: status %d, want 403", resp.Status)
	}
	body := run(t, ctx, "page text", chromedp.Evaluate[string](`document.body.innerText`))
	if strings.Contains(body, f.bob.Name) || strings.Contains(body, f.bob.RegistryNumber) {
		t.Errorf("the refusal shows Bob's data:\n%s", body)
	}
	screenshot(t, ctx, shots, "forbidden")
}

// spaced turns the no-break spaces of grouped numbers and amounts into
// plain ones, for comparing page text.
func spaced(s string) string { return strings.ReplaceAll(s, "\u00a0", " ") }

// confirmStep checks the confirmation page the browser is on: it says
// each of want, its confirming button and its way back reach the
// keyboard, and it is saved as a screenshot.
func confirmStep(t *testing.T, ctx context.Context, shots, name string, want []string) {
	t.Helper()
	if h := run(t, ctx, "heading", chromedp.Text(chromedp.CSS("h1"))); h != "Confirm the action" && h != "Підтвердіть дію" {
		t.Fatalf("%s: the page is %q, want the confirmation", name, h)
	}
	text := spaced(run(t, ctx, "confirmation", chromedp.Text(chromedp.CSS("section.confirm"))))
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s: the confirmation %q lacks %q", name, text, w)
		}
	}
	for _, id := range []string{"confirm-submit", "confirm-cancel"} {
		must(t, "focus #"+id, chromedp.Do(ctx, chromedp.Focus(chromedp.ID(id))))
		if got := run(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.id`)); got != id {
			t.Errorf("%s: #%s takes no focus (%q has it)", name, id, got)
		}
	}
	screenshot(t, ctx, shots, name)
}
