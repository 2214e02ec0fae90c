package notices_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to clear a contact behind the store's back

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notices"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/simulator/testenv/smtptest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// outbox records what it is given, failing as told first.
type outbox struct {
	mu   sync.Mutex
	got  []notify.Message
	fail map[string][]error // by contact: errors to return, in turn
}

func (o *outbox) Send(_ context.Context, m notify.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if errs := o.fail[m.To]; len(errs) > 0 {
		o.fail[m.To] = errs[1:]
		return errs[0]
	}
	o.got = append(o.got, m)
	return nil
}

func (o *outbox) Name() string { return "test" }

type senderFunc func(context.Context, notify.Message) error

func (s senderFunc) Send(ctx context.Context, m notify.Message) error { return s(ctx, m) }

type fixture struct {
	t     *testing.T
	ctx   context.Context
	path  string
	clock *clock
	st    *sqlite.Store
	desk  registry.Access
	n     int
}

// 20.11.2026 10:00 in Kyiv.
var start = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "registry.db"), clock: &clock{t: start},
		desk: registry.Access{Actor: registry.Actor{User: "olena.desk", Role: registry.RoleDesk}, Purpose: "benefit, ticket 1"}}
	st, err := sqlite.Open(f.ctx, f.path, f.opt())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	return f
}

func (f *fixture) opt() store.Options {
	return store.Options{Issuer: storetest.Issuer, Location: kyiv(f.t), Now: f.clock.Now}
}

// resident registers a person with contact whose pension ends in days.
func (f *fixture) resident(contact string, days int) (registry.Resident, registry.Entitlement) {
	f.t.Helper()
	f.n++
	r, err := f.st.AddResident(f.ctx, f.desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(f.n), Name: fmt.Sprintf("Оксана %d", f.n),
		BirthDate: day(1950, 3, 1), Contact: contact})
	if err != nil {
		f.t.Fatal(err)
	}
	today := registry.Today(f.clock.Now(), kyiv(f.t))
	e, err := f.st.AddEntitlement(f.ctx, f.desk, registry.Entitlement{ResidentID: r.ID, Category: registry.CategoryPensioner,
		LegalBasis: "Law 1788-XII art. 29", Evidence: "pension certificate AA 1", ValidFrom: day(2026, 1, 1), ValidTo: today.AddDays(days),
		Funding: registry.FundingState})
	if err != nil {
		f.t.Fatal(err)
	}
	return r, e
}

func (f *fixture) runner(s notify.Sender) *notices.Runner {
	return &notices.Runner{Store: f.st, Sender: s, Rule: notices.Rule{Location: kyiv(f.t)}, Now: f.clock.Now,
		FirstRetry: time.Minute, MaxAttempts: 3}
}

func (f *fixture) once(r *notices.Runner, want notices.Report) {
	f.t.Helper()
	got, err := r.Once(f.ctx)
	if err != nil {
		f.t.Fatalf("Once: %v", err)
	}
	if got != want {
		f.t.Errorf("Once = %+v; want %+v", got, want)
	}
}

func (f *fixture) notices(id int64) []registry.Notice {
	f.t.Helper()
	rn, err := f.st.ResidentNotices(f.ctx, f.desk, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return rn.Notices
}

func TestRunnerSendsOnce(t *testing.T) {
	f := newFixture(t)
	a, ea := f.resident("a@example.org", 10)
	f.resident("b@example.org", 31)         // not yet
	f.resident("вул. Хрещатик, 1", 5)       // no sender reaches it
	c, _ := f.resident("+380441234567", 30) // the last day in the window
	out := &outbox{}
	r := f.runner(out)
	// The postal address: recorded as not sent, once.
	f.once(r, notices.Report{Queued: 2, Sent: 2, Dropped: 1})
	if len(out.got) != 2 || out.got[0].To != "a@example.org" || out.got[1].To != c.Contact {
		t.Fatalf("sent %+v", out.got)
	}
	if want := notices.DMY(ea.ValidTo); !strings.Contains(out.got[0].Subject, want) || !strings.Contains(out.got[0].Text, want) {
		t.Errorf("the notice does not say %s: %+v", want, out.got[0])
	}
	// Again: nothing new. A day later b's benefit ends in 30 days.
	f.once(r, notices.Report{})
	f.clock.Add(24 * time.Hour)
	f.once(r, notices.Report{Queued: 1, Sent: 1})
	f.once(r, notices.Report{})
	if len(out.got) != 3 {
		t.Errorf("sent %d messages; want 3, each once", len(out.got))
	}
	ns := f.notices(a.ID)
	if len(ns) != 1 || ns[0].SentTo != "a@example.org" || ns[0].Sender != "test" || !ns[0].Sent.Equal(start) {
		t.Errorf("a's notices = %+v", ns)
	}
	es, err := f.st.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "m", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	var sent int
	for _, e := range es {
		if strings.HasPrefix(e.Action, "benefit-ending notice sent") && e.Purpose == registry.PurposeNotice {
			sent++
		}
	}
	if sent != 1 {
		t.Errorf("audit of a = %+v; want one send with the notice purpose", es)
	}
}

func TestRunnerRetriesAndGivesUp(t *testing.T) {
	f := newFixture(t)
	down := errors.New("dial tcp: connection refused")
	a, _ := f.resident("a@example.org", 10)
	b, _ := f.resident("b@example.org", 10)
	out := &outbox{fail: map[string][]error{"a@example.org": {down}, "b@example.org": {down, down, down}}}
	r := f.runner(out)
	f.once(r, notices.Report{Queued: 2, Failed: 2})
	// Not before the retry wait.
	f.clock.Add(59 * time.Second)
	f.once(r, notices.Report{})
	f.clock.Add(time.Second)
	f.once(r, notices.Report{Sent: 1, Failed: 1})
	if ns := f.notices(a.ID); len(ns) != 1 || ns[0].Attempts != 2 || ns[0].SentTo == "" {
		t.Errorf("a = %+v", ns)
	}
	// b's third attempt, after 2 minutes, is its last.
	f.clock.Add(2 * time.Minute)
	f.once(r, notices.Report{Dropped: 1})
	ns := f.notices(b.ID)
	if len(ns) != 1 || ns[0].Attempts != 3 || !strings.Contains(ns[0].DropReason, "gave up after 3 attempts: dial tcp") {
		t.Errorf("b = %+v", ns)
	}
	f.clock.Add(time.Hour)
	f.once(r, notices.Report{})
	if len(out.got) != 1 {
		t.Errorf("sent %+v", out.got)
	}
}

func TestRunnerDropsWhatCannotArrive(t *testing.T) {
	f := newFixture(t)
	gone, _ := f.resident("gone@example.org", 10)
	out, _ := f.resident("out@example.org", 10)
	cleared, _ := f.resident("cleared@example.org", 10)
	moved, em := f.resident("moved@example.org", 20)
	box := &outbox{fail: map[string][]error{"gone@example.org": {fmt.Errorf("notify: %w: %w: 550", notify.ErrUnreachable, notify.ErrRefused)}}}
	r := f.runner(box)
	// Queue all four without sending: a sender that is down.
	r.Sender = senderFunc(func(context.Context, notify.Message) error { return errors.New("down") })
	f.once(r, notices.Report{Queued: 4, Failed: 4})
	r.Sender = box
	// Meanwhile: one opts out, one's contact is cleared, one's benefit is
	// ended earlier (a new notice for the new end).
	if err := f.st.SetNoticeOptOut(f.ctx, registry.Access{Actor: registry.Actor{User: "r", Role: registry.RoleResident, Resident: out.ID}}, out.ID, true); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE residents SET contact = '' WHERE id = ?", cleared.ID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	today := registry.Today(f.clock.Now(), kyiv(t))
	if _, err := f.st.EndEntitlement(f.ctx, f.desk, moved.ID, em.ID, today.AddDays(3)); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Minute)
	f.once(r, notices.Report{Queued: 1, Sent: 1, Dropped: 4})
	for id, want := range map[int64]string{gone.ID: "refused the address", out.ID: "opted out", cleared.ID: "contact was cleared"} {
		if ns := f.notices(id); len(ns) != 1 || !strings.Contains(ns[0].DropReason, want) || !ns[0].Sent.IsZero() {
			t.Errorf("resident %d: %+v; want dropped: %s", id, ns, want)
		}
	}
	ns := f.notices(moved.ID)
	if len(ns) != 2 || ns[0].Ends != today.AddDays(3) || ns[0].SentTo != "moved@example.org" || !strings.Contains(ns[1].DropReason, notices.DMY(today.AddDays(3))) {
		t.Errorf("moved: %+v", ns)
	}
	if len(box.got) != 1 || !strings.Contains(box.got[0].Text, notices.DMY(today.AddDays(3))) {
		t.Errorf("sent %+v; want the notice about the new end only", box.got)
	}
}

// TestRunnerThroughSMTP sends a notice through the SMTP sender to a real
// local mail server (aiosmtpd, which the test script installs).
func TestRunnerThroughSMTP(t *testing.T) {
	srv := smtptest.Start(t)
	f := newFixture(t)
	a, ea := f.resident("oksana@example.org", 7)
	smtp := &notify.SMTP{Addr: srv.Addr, From: "registry@city.example", Timeout: 10 * time.Second}
	r := f.runner(&notify.ByContact{Email: smtp})
	f.once(r, notices.Report{Queued: 1, Sent: 1})
	got := srv.Wait(1)
	ns := f.notices(a.ID)
	if len(ns) != 1 || ns[0].Sender != "smtp" || ns[0].SentTo != a.Contact {
		t.Fatalf("notices = %+v", ns)
	}
	m := got[0]
	ends := notices.DMY(ea.ValidTo)
	if m.To != "<oksana@example.org>" || m.Subject != "Ваша пільга на проїзд закінчується "+ends ||
		!strings.Contains(m.Text, "«пенсіонер», категорія 11) діє до "+ends+" включно") || m.MessageID != fmt.Sprintf("<notice-%d@city.example>", ns[0].ID) {
		t.Errorf("the server got %+v", m)
	}
	f.clock.Add(time.Hour)
	f.once(r, notices.Report{})
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("the server holds %d messages; want 1", n)
	}
}
