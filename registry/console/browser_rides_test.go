package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserResidentRides signs in as a resident, picks a month of rides
// with the selector and pages through it with the links, as a person
// with a keyboard and no JavaScript would.
func TestBrowserResidentRides(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	seedRides(t, f)
	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, f, aliceUser, "en")

	rowCount := func() int {
		t.Helper()
		return run(t, ctx, "count rides", chromedp.Evaluate[int](`document.querySelectorAll("#rides tbody tr").length`))
	}
	// The current month first: December, with one ride.
	if got := run(t, ctx, "month", chromedp.Evaluate[string](`document.getElementById("month").value`)); got != "2026-12" {
		t.Errorf("the month selector starts at %q, want 2026-12", got)
	}
	if n := rowCount(); n != 1 {
		t.Errorf("December: %d rides, want 1", n)
	}

	must(t, "choose November", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("month"), "2026-11")))
	submit(t, ctx, "rides-show", 200)
	if n := rowCount(); n != 25 {
		t.Fatalf("November's first page: %d rides, want 25", n)
	}
	table := run(t, ctx, "rides", chromedp.Text(chromedp.ID("rides")))
	for _, want := range []string{"Rides, November 2026, newest first", "2026-11-30 23:30", "pensioner (11)", "ELEKTROTRANS", "15.00",
		f.aliceCard.Number.String()[:4]} {
		if !strings.Contains(table, want) {
			t.Errorf("November's first page lacks %q:\n%s", want, table)
		}
	}
	accessible(t, ctx, "me-rides")
	screenshot(t, ctx, shots, "me-rides")

	submit(t, ctx, "rides-older", 200)
	if n := rowCount(); n != 13 {
		t.Errorf("November's second page: %d rides, want 13", n)
	}
	// Card numbers show grouped, with no-break spaces.
	table = strings.ReplaceAll(run(t, ctx, "rides", chromedp.Text(chromedp.ID("rides"))), "\u00a0", " ")
	for _, want := range []string{"refused: not enough money on the card", f.aliceCard.Number.Grouped()} {
		if !strings.Contains(table, want) {
			t.Errorf("November's second page lacks %q:\n%s", want, table)
		}
	}
	body := strings.ReplaceAll(run(t, ctx, "page text", chromedp.Evaluate[string](`document.body.innerText`)), "\u00a0", " ")
	if strings.Contains(body, f.bobCard.Number.String()) || strings.Contains(body, f.bobCard.Number.Grouped()) || strings.Contains(body, "BOB-ONLY") {
		t.Errorf("Alice's rides show Bob's:\n%s", body)
	}
	accessible(t, ctx, "me-rides-older")
	screenshot(t, ctx, shots, "me-rides-older")

	// Back to the newest, and in Ukrainian.
	submit(t, ctx, "rides-newer", 200)
	if n := rowCount(); n != 25 {
		t.Errorf("back on the first page: %d rides, want 25", n)
	}
	must(t, "switch to Ukrainian", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[hreflang="uk"]`)), chromedp.WaitVisible(chromedp.ID("rides"))))
	caption := run(t, ctx, "caption", chromedp.Text(chromedp.CSS("#rides caption")))
	if caption != "Поїздки: Листопад 2026, від найновіших" {
		t.Errorf("Ukrainian caption %q", caption)
	}
}
