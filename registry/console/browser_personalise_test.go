package console_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	regfixture "github.com/citycard/transit/registry/internal/fixture"
)

// TestBrowserPersonalise: at the desk, the operator presses the button
// beside an ordered card; first with no card on the reader (the page
// says what to do and offers the button again), then with one.
func TestBrowserPersonalise(t *testing.T) {
	keys := regfixture.CardKeys(t, hsm.Roles...)
	st := newStation(t, 2*time.Second, keys)
	res, c := st.orderedCard(1, "Шевченко Марія")
	ctx := newBrowser(t)
	shots := t.TempDir()
	browserLogin(t, ctx, st.fixture, deskUser, "en")
	must(t, "open the record", chromedp.Do(ctx, chromedp.Navigate(st.srv.URL+residentPath(res.ID, issuePurpose))))
	n := c.Number.String()
	if got := run(t, ctx, "button", chromedp.Text(chromedp.ID("personalise-"+n))); got != "Personalise on this desk's reader" {
		t.Fatalf("button %q", got)
	}
	if !run(t, ctx, "hand-over box", chromedp.Evaluate[bool](`document.getElementById("handover-`+n+`").checked`)) {
		t.Error("the hand-over box is not ticked by default")
	}
	accessible(t, ctx, "personalise-button")
	screenshot(t, ctx, shots, "personalise-button")

	// Pressed before the card is on the reader.
	st.reader.take()
	submit(t, ctx, "personalise-"+n, 504)
	if got := run(t, ctx, "problem", chromedp.Text(chromedp.ID("problem"))); !strings.Contains(got, "No card was put on the reader within 2 s") {
		t.Errorf("problem %q", got)
	}
	accessible(t, ctx, "personalise-no-card")
	screenshot(t, ctx, shots, "personalise-no-card")

	// The card is put on; the operator presses again from that page.
	vc := blankCard()
	st.reader.put(vc, vc.UID())
	submit(t, ctx, "personalise-again", 200)
	if got := run(t, ctx, "notice", chromedp.Text(chromedp.ID("personalise-notice"))); !strings.Contains(got, "Card "+n+" is personalised and handed over") {
		t.Errorf("notice %q", got)
	}
	href := run(t, ctx, "receipt link", chromedp.Evaluate[string](`(document.querySelector('a[href*="/receipt"]') || {}).pathname || ""`))
	if href != fmt.Sprintf("/desk/cards/%s/receipt", n) {
		t.Errorf("receipt link %q", href)
	}
	accessible(t, ctx, "personalised")
	screenshot(t, ctx, shots, "personalised")
	if got := st.status(c.Number); got != registry.StatusActive {
		t.Fatalf("card is %s in the registry, want active", got)
	}
	if held := regfixture.ReadCard(t, vc, keys); held.Number != c.Number || held.Holder != res.Name {
		t.Fatalf("the card holds %+v", held)
	}
}
