package notices_test

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Kyiv without the system's tzdata

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notices"
)

func kyiv(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func day(y int, m time.Month, d int) registry.Date { return registry.Date{Year: y, Month: m, Day: d} }

// TestWindowDayBoundaries: the city's day turns at midnight in Kyiv, in
// winter (UTC+2), in summer (UTC+3) and on both days the clocks change.
func TestWindowDayBoundaries(t *testing.T) {
	r := notices.Rule{Location: kyiv(t)}
	for _, c := range []struct {
		utc   time.Time
		today registry.Date
	}{
		{time.Date(2026, 1, 14, 21, 59, 59, 0, time.UTC), day(2026, 1, 14)},
		{time.Date(2026, 1, 14, 22, 0, 0, 0, time.UTC), day(2026, 1, 15)},
		// Spring forward on 29.03.2026 at 03:00 local (01:00 UTC).
		{time.Date(2026, 3, 28, 21, 59, 59, 0, time.UTC), day(2026, 3, 28)},
		{time.Date(2026, 3, 28, 22, 0, 0, 0, time.UTC), day(2026, 3, 29)},
		{time.Date(2026, 3, 29, 20, 59, 59, 0, time.UTC), day(2026, 3, 29)},
		{time.Date(2026, 3, 29, 21, 0, 0, 0, time.UTC), day(2026, 3, 30)},
		// Fall back on 25.10.2026 at 04:00 local (01:00 UTC).
		{time.Date(2026, 10, 24, 20, 59, 59, 0, time.UTC), day(2026, 10, 24)},
		{time.Date(2026, 10, 24, 21, 0, 0, 0, time.UTC), day(2026, 10, 25)},
		{time.Date(2026, 10, 25, 21, 59, 59, 0, time.UTC), day(2026, 10, 25)},
		{time.Date(2026, 10, 25, 22, 0, 0, 0, time.UTC), day(2026, 10, 26)},
	} {
		from, to := r.Window(c.utc)
		if from != c.today || to != c.today.AddDays(30) {
			t.Errorf("window at %s = %s..%s; want %s..%s", c.utc, from, to, c.today, c.today.AddDays(30))
		}
	}
	// UTC, had the zone been forgotten, would say the 28th.
	if from, _ := r.Window(time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC)); from != day(2026, 3, 29) {
		t.Errorf("23:30 UTC on 28.03 is the 29th in Kyiv, got %s", from)
	}
	if _, to := (notices.Rule{Days: 7}).Window(time.Date(2026, 12, 30, 12, 0, 0, 0, time.UTC)); to != day(2027, 1, 6) {
		t.Errorf("a 7-day window from 30.12.2026 ends %s", to)
	}
}

func TestDue(t *testing.T) {
	r := notices.Rule{Location: kyiv(t)}
	// 01.03.2026 00:30 in Kyiv; the window is 01.03..31.03.
	now := time.Date(2026, 2, 28, 22, 30, 0, 0, time.UTC)
	c := func(id int64, ends registry.Date, contact string, out bool) registry.NoticeCandidate {
		return registry.NoticeCandidate{Resident: id, Entitlement: 100 + id, Category: 11, Ends: ends, Contact: contact, OptedOut: out}
	}
	cs := []registry.NoticeCandidate{
		c(1, day(2026, 3, 1), "a@example.org", false),      // ends today
		c(2, day(2026, 3, 31), "+380441234567", false),     // the 30th day
		c(3, day(2026, 4, 1), "c@example.org", false),      // the 31st day
		c(4, day(2026, 2, 28), "d@example.org", false),     // ended yesterday (in Kyiv; today in UTC)
		c(5, day(2026, 3, 10), "e@example.org", true),      // opted out
		c(6, day(2026, 3, 10), "", false),                  // no contact
		c(7, day(2026, 3, 10), "вул. Хрещатик, 1", false),  // a postal address
		c(8, day(2026, 3, 10), "  h@example.org  ", false), // spaces around
	}
	// Pending notices for 1, 2 and 8; the others in the window recorded
	// as dropped, with why; 3 and 4 are outside it.
	want := map[int64]string{1: "", 2: "", 8: "", 5: registry.NoticeOptedOut, 6: registry.NoticeNoContact, 7: registry.NoticeUnreachable}
	check := func(got []registry.Notice, want map[int64]string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("due = %+v; want %d", got, len(want))
		}
		for _, n := range got {
			reason, ok := want[n.Resident]
			if !ok || n.DropReason != reason || n.Kind != registry.NoticeBenefitEnding || n.Entitlement != 100+n.Resident || n.Category != 11 {
				t.Errorf("notice %+v; want resident in %v with drop reason %q", n, want, reason)
			}
		}
	}
	check(r.Due(now, cs), want)
	// A sender that reaches e-mail only.
	r.Reaches = func(contact string) bool { return strings.Contains(contact, "@") }
	want[2] = registry.NoticeUnreachable
	check(r.Due(now, cs), want)
	if got := r.Due(now, nil); len(got) != 0 {
		t.Errorf("due of nothing = %+v", got)
	}
}

func TestJudge(t *testing.T) {
	r := notices.Rule{Location: kyiv(t)}
	now := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	ends := day(2026, 3, 20)
	ok := registry.NoticeClaim{Notice: registry.Notice{ID: 1, Ends: ends, Contact: "a@example.org"}, CurrentContact: "a@example.org", CurrentEnds: ends}
	if d := r.Judge(now, ok); d != "" {
		t.Errorf("a notice that is due: dropped %q", d)
	}
	moved := ok
	moved.CurrentContact = "new@example.org"
	if d := r.Judge(now, moved); d != "" {
		t.Errorf("a changed contact: dropped %q; want it sent to the new one", d)
	}
	for _, c := range []struct {
		name string
		edit func(*registry.NoticeClaim)
		want string
	}{
		{"opted out", func(c *registry.NoticeClaim) { c.OptedOut = true }, "opted out"},
		{"contact cleared", func(c *registry.NoticeClaim) { c.CurrentContact = "" }, "contact was cleared"},
		{"contact now a postal address", func(c *registry.NoticeClaim) { c.CurrentContact = "вул. Хрещатик, 1" }, "cannot receive"},
		{"end moved", func(c *registry.NoticeClaim) { c.CurrentEnds = day(2026, 3, 15) }, "changed to 15.03.2026"},
		{"entitlement gone", func(c *registry.NoticeClaim) { c.CurrentEnds = registry.Date{} }, "no longer exists"},
		{"ended already", func(c *registry.NoticeClaim) { c.Ends, c.CurrentEnds = day(2026, 3, 9), day(2026, 3, 9) }, "ended before"},
	} {
		x := ok
		c.edit(&x)
		if d := r.Judge(now, x); !strings.Contains(d, c.want) {
			t.Errorf("%s: dropped %q; want %q", c.name, d, c.want)
		}
	}
	// The last day itself is still worth telling, until midnight in Kyiv
	// (UTC+2 in early March).
	last := ok
	last.Ends, last.CurrentEnds = day(2026, 3, 9), day(2026, 3, 9)
	if d := r.Judge(time.Date(2026, 3, 9, 21, 59, 0, 0, time.UTC), last); d != "" {
		t.Errorf("23:59 on the last day: dropped %q", d)
	}
	if d := r.Judge(time.Date(2026, 3, 9, 22, 0, 0, 0, time.UTC), last); d == "" {
		t.Error("00:00 the day after the last day: not dropped")
	}
}

func TestMessage(t *testing.T) {
	m := notices.Message(registry.Notice{ID: 42, Category: 11, Ends: day(2026, 12, 31)}, "a@example.org")
	if m.To != "a@example.org" || m.ID != "notice-42" || m.Subject != "Ваша пільга на проїзд закінчується 31.12.2026" {
		t.Errorf("message = %+v", m)
	}
	for _, want := range []string{"«пенсіонер», категорія 11", "до 31.12.2026 включно", "кабінеті мешканця"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text, "2026-12-31") {
		t.Error("an ISO date in a Ukrainian text")
	}
	if m := notices.Message(registry.Notice{Category: 77, Ends: day(2027, 1, 5)}, "x"); !strings.Contains(m.Text, "(категорія 77) діє до 05.01.2027") {
		t.Errorf("an unknown category:\n%s", m.Text)
	}
}

func TestRetryBackoff(t *testing.T) {
	r := &notices.Runner{FirstRetry: time.Minute}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute}
	for i, w := range want {
		if got := r.Retry(i + 1); got != w {
			t.Errorf("Retry(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := r.Retry(100); got != notices.MaxRetry {
		t.Errorf("Retry(100) = %s, want the cap %s", got, notices.MaxRetry)
	}
	if got := (&notices.Runner{}).Retry(1); got != notices.DefaultFirstRetry {
		t.Errorf("default first retry = %s", got)
	}
}
