package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citycard/transit/registry/notices"
	"github.com/citycard/transit/registry/notify"
)

// TestNoticesPages: a resident sees the notice about their benefit that
// was sent, and turns notices off; the desk sees the same and turns them
// back on.
func TestNoticesPages(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	r := &notices.Runner{Store: f.reg, Sender: &notify.File{Path: filepath.Join(t.TempDir(), "notices.jsonl")},
		Rule: notices.Rule{Location: f.kyiv}, Now: f.clock.Now}
	if rep, err := r.Once(context.Background()); err != nil || rep.Sent != 1 {
		t.Fatalf("notices: %+v, %v; want Alice's sent", rep, err)
	}
	u, secret := f.login(aliceUser)
	me := u.get("/me").want(t, http.StatusOK, "my page")
	if !strings.Contains(me.body, `href="/me/notices"`) {
		t.Error("my page has no link to my notices")
	}
	pg := u.get("/me/notices?lang=uk").want(t, http.StatusOK, "my notices")
	for _, want := range []string{"31.12.2026", "380441234567", "Повідомлення увімкнено", `id="notices-off"`} {
		if !strings.Contains(pg.body, want) {
			t.Errorf("my notices page lacks %q:\n%s", want, pg.body)
		}
	}
	if strings.Contains(pg.body, "2026-12-31") {
		t.Error("an ISO date on a Ukrainian page")
	}
	u.post("/me/notices", url.Values{"csrf": {secret}, "opt_out": {"1"}}).want(t, http.StatusSeeOther, "turn notices off")
	pg = u.get("/me/notices?done=off").want(t, http.StatusOK, "after turning off")
	if !strings.Contains(pg.body, "Повідомлення вимкнено: реєстр їх не надсилає") || !strings.Contains(pg.body, `id="notices-on"`) {
		t.Errorf("after turning notices off:\n%s", pg.body)
	}
	bad := u.post("/me/notices", url.Values{"csrf": {secret}, "opt_out": {"maybe"}})
	if bad.status != http.StatusBadRequest || !strings.Contains(bad.body, "Форма повідомлень пошкоджена") {
		t.Errorf("a damaged form: %d", bad.status)
	}

	d, dsecret := f.login(deskUser)
	path := fmt.Sprintf("/desk/residents/%d/notices", f.alice.ID)
	if pg := d.get(path).want(t, http.StatusOK, "desk notices without a purpose"); strings.Contains(pg.body, "31.12.2026") {
		t.Error("the desk saw notices without a purpose")
	}
	pg = d.get(path+"?purpose="+url.QueryEscape("phone call 12")).want(t, http.StatusOK, "desk notices")
	if !strings.Contains(pg.body, "31.12.2026") || !strings.Contains(pg.body, `id="notices-on"`) {
		t.Errorf("the desk's notices page:\n%s", pg.body)
	}
	d.post(path, url.Values{"csrf": {dsecret}, "purpose": {"phone call 12"}, "opt_out": {"0"}}).want(t, http.StatusSeeOther, "desk turns notices on")
	if pg := u.get("/me/notices").want(t, http.StatusOK, "after the desk"); !strings.Contains(pg.body, "Повідомлення увімкнено") {
		t.Errorf("after the desk turned notices on:\n%s", pg.body)
	}
}
