package console_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserParentSeesChildsRide is issue 20's "a parent who sees a
// child's ride": on a phone, in Ukrainian, a parent opens their child's
// record from their own page, sees the child's ride, and blocks the
// child's lost card through the confirmation dialog.
func TestBrowserParentSeesChildsRide(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	child, c := f.childOf(t, f.alice)
	childRide(t, f, uint64(c.Number), "CHILD-7")
	ctx := newBrowser(t)
	shots := t.TempDir()
	phone(t, ctx)
	browserLogin(t, ctx, f, aliceUser, "uk")

	must(t, "open the child's page", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/me"),
		chromedp.WaitVisible(chromedp.ID("children"))))
	submit(t, ctx, fmt.Sprintf("child-%d", child.ID), 200)
	if got := run(t, ctx, "name", chromedp.Text(chromedp.ID("resident-name"))); got != child.Name {
		t.Errorf("the child's page names %q, want %q", got, child.Name)
	}
	rides := spaced(run(t, ctx, "rides", chromedp.Text(chromedp.ID("rides"))))
	for _, want := range []string{"CHILD-7", "03.12.2026", "ATP-1", "15,00"} {
		if !strings.Contains(rides, want) {
			t.Errorf("the child's rides lack %q:\n%s", want, rides)
		}
	}
	noSideScroll(t, ctx, "the child's page")
	accessible(t, ctx, "the child's page")
	screenshot(t, ctx, shots, "child-rides")

	n := c.Number.String()
	must(t, "choose lost", chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("reason-"+n), "lost")))
	submit(t, ctx, "block-"+n, 200)
	if whom := run(t, ctx, "whom", chromedp.Text(chromedp.ID("confirm-whom"))); !strings.Contains(whom, child.Name) {
		t.Errorf("the confirmation names %q, not the child", whom)
	}
	accessible(t, ctx, "the confirmation of the child's block")
	screenshot(t, ctx, shots, "child-block-confirm")
	submit(t, ctx, "confirm-submit", 200)
	if notice := spaced(run(t, ctx, "notice", chromedp.Text(chromedp.ID("notice")))); !strings.Contains(notice, c.Number.Grouped()) {
		t.Errorf("after the block: %q", notice)
	}
	if status := run(t, ctx, "status", chromedp.Text(chromedp.CSS("#card-"+n+" .status"))); !strings.Contains(status, "втрачен") {
		t.Errorf("the child's card shows %q after the block", status)
	}
	screenshot(t, ctx, shots, "child-blocked")
}
