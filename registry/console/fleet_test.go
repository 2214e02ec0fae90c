package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/validator/tap"
)

// TestFleetPage: finance staff see which validators went silent and which
// run an old hotlist, in Ukrainian with DD.MM.YYYY dates by default; other
// roles are refused.
func TestFleetPage(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := f.clock.Now()
	for _, b := range []struct {
		dev     string
		ago     time.Duration
		hotlist uint64
	}{{"BUS-A", 2 * time.Minute, 40}, {"BUS-B", 3 * time.Hour, 39}} {
		at := now.Add(-b.ago).UTC()
		tp := tap.Tap{Device: b.dev, Seq: 1, Time: at, Result: tap.Accepted, TariffVersion: 7, HotlistVersion: b.hotlist}
		if _, _, err := f.clr.AddBatch(f.ctx, ingest.Batch{Device: b.dev, Created: at, Received: at, Taps: []tap.Tap{tp}}); err != nil {
			t.Fatal(err)
		}
	}
	const path = "/finance/fleet"
	for _, tc := range []struct {
		user   string
		status int
	}{{deskUser, http.StatusForbidden}, {aliceUser, http.StatusForbidden}, {auditorUser, http.StatusForbidden},
		{supervisorUser, http.StatusOK}, {financeUser, http.StatusOK}} {
		u, _ := f.login(tc.user)
		r := u.get(path).want(t, tc.status, tc.user+" opens the fleet")
		if tc.status == http.StatusForbidden && strings.Contains(r.body, "BUS-B") {
			t.Errorf("%s is refused but sees the validators", tc.user)
		}
	}
	if r := f.anonymous().get(path); r.status != http.StatusSeeOther {
		t.Errorf("signed out: %d, want a redirect to sign in", r.status)
	}
	fin, _ := f.login(financeUser)
	page := fin.get(path+"?lang=uk").want(t, http.StatusOK, "fleet").body
	rows := tableRows(element(t, page, "table", "fleet"))
	var busB []string
	for _, r := range rows {
		if len(r) > 0 && r[0] == "BUS-A" {
			t.Errorf("BUS-A uploaded 2 minutes ago with the newest hotlist, yet it is listed as a problem: %q", r)
		}
		if len(r) > 0 && r[0] == "BUS-B" {
			busB = r
		}
	}
	want := []string{"BUS-B", "3 год 0 хв", "05.12.2026 07:00", "05.12.2026 07:00", "1", "7", "39", "+0,0 с", "поза мережею; старий стоп-список"}
	if strings.Join(busB, "|") != strings.Join(want, "|") {
		t.Errorf("BUS-B row %q, want %q", busB, want)
	}
	summary := tableRows(element(t, page, "table", "fleet-summary"))
	// BUS-17 of the fixture has only taps of November: silent a month.
	if !containsRow(summary, []string{"Зі старим стоп-списком (найновіший: 40)", "1"}) || !containsRow(summary, []string{"Мовчать понад 1 годину", "2"}) ||
		!containsRow(summary, []string{"Мовчать понад 7 днів", "1"}) {
		t.Errorf("summary %q", summary)
	}
	if !strings.Contains(page, `<a href="/finance/fleet" aria-current="page">Валідатори</a>`) {
		t.Error("the menu does not mark the fleet page as current")
	}
	all := fin.get(path+"?all=1&lang=en").want(t, http.StatusOK, "all validators").body
	if rows := tableRows(element(t, all, "table", "fleet")); !containsRow(rows, []string{"BUS-A", "2 min", "2026-12-05 09:58", "2026-12-05 09:58", "1", "7", "40", "+0.0 s", ""}) {
		t.Errorf("all validators %q lack BUS-A as it is", rows)
	}
}
