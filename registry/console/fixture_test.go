package console_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Kyiv without the system's tzdata

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	cstore "github.com/citycard/transit/clearing/store"
	csqlite "github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/console"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/password"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/store"
	rsqlite "github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/registry/throttle"
	"github.com/citycard/transit/validator/tap"
)

// clock is a settable time source shared by the stores and the console.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects the console's log lines from the server's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// fixture is a console over SQLite registry and clearing stores seeded
// with two residents, their cards, staff tokens, and a month of benefit
// rides.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	kyiv   *time.Location
	clock  *clock
	reg    store.Store
	clr    cstore.Store
	srv    *httptest.Server
	server *console.Server
	log    *syncBuffer
	// passwords are the staff accounts' passwords by user name;
	// residents maps a resident's user name in the tests to the record
	// they sign in as, with a code from outbox.
	passwords map[string]string
	residents map[string]registry.Resident
	outbox    string
	monitor   *auditchain.Monitor
	regPath   string // the registry's SQLite file

	alice, bob         registry.Resident
	aliceCard, bobCard registry.Card
}

// Users of the fixture, one per role (two residents).
const (
	deskUser       = "olena.desk"
	supervisorUser = "petro.supervisor"
	financeUser    = "iryna.finance"
	auditorUser    = "taras.auditor"
	operatorUser   = "oleh.operator"
	aliceUser      = "alice"
	bobUser        = "bob"
)

// The fixture's month of rides; see seedClearing for the sums.
const period = "2026-11"

// seededPurpose is the purpose of the desk read the fixture records
// about Alice, which her own page must show.
const seededPurpose = "seeded: change of address, request 17"

type fixtureOptions struct {
	noKeys bool // a console without the statement signing key
	// strictThrottle keeps the production throttles, for the tests of
	// throttling; otherwise a test may sign in often.
	strictThrottle bool
	// options, if set, adjusts the console's options (a card reader).
	options func(*console.Options)
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	f := &fixture{t: t, ctx: ctx, kyiv: kyiv, log: &syncBuffer{}, passwords: map[string]string{}, residents: map[string]registry.Resident{},
		outbox: filepath.Join(dir, "outbox.jsonl"),
		// December 5th: November is over and can be closed; Alice's
		// pensioner entitlement ends within 30 days.
		clock: &clock{now: time.Date(2026, 12, 5, 10, 0, 0, 0, kyiv)}}

	f.regPath = filepath.Join(dir, "registry.db")
	reg, err := rsqlite.Open(ctx, f.regPath, store.Options{Issuer: 1001, Location: kyiv, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	f.reg = reg
	clr, err := csqlite.Open(ctx, filepath.Join(dir, "clearing.db"), cstore.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clr.Close() })
	f.clr = clr
	f.seedRegistry()
	f.seedClearing()

	opt := console.Options{Registry: reg, Clearing: clr, Location: kyiv, Now: f.clock.Now,
		Logger: slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	// Sign-in as in production, but with cheap password hashes and
	// room for the many sign-ins of a test from one address.
	generous := throttle.Policy{Free: 1000, Window: time.Minute, Base: time.Second, Max: time.Minute}
	so := signin.Options{Store: reg, Sender: &notify.File{Path: f.outbox}, Password: testKDF,
		Now: f.clock.Now, Log: opt.Logger, PerAddress: generous, PerAccount: generous, CodesPerHour: 1000}
	if o.strictThrottle {
		so.PerAddress, so.PerAccount, so.CodesPerHour = throttle.Policy{}, throttle.Policy{}, 0
	}
	opt.SignIn, err = signin.New(so)
	if err != nil {
		t.Fatal(err)
	}
	f.monitor = &auditchain.Monitor{Source: reg, Now: f.clock.Now, Log: opt.Logger}
	opt.Audit = f.monitor
	if !o.noKeys {
		ks, err := hsm.CreateKeystore(filepath.Join(dir, "keys"), []byte("test passphrase"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ks.Close() })
		if _, err := ks.Generate(ctx, hsm.LabelSignStatement, hsm.KindSigning); err != nil {
			t.Fatal(err)
		}
		opt.Statements = &statement.Service{Store: clr, Keys: ks, Location: kyiv, Now: f.clock.Now, Log: opt.Logger}
	}
	if o.options != nil {
		o.options(&opt)
	}
	srv, err := console.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	f.server = srv
	f.srv = httptest.NewServer(srv)
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console log:\n%s", f.log.String())
		}
	})
	return f
}

func (f *fixture) seedRegistry() {
	t, ctx := f.t, f.ctx
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	var err error
	if f.alice, err = f.reg.AddResident(ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(1),
		Name: "Коваленко Оксана", BirthDate: registry.Date{Year: 1950, Month: time.March, Day: 1}, Contact: "+380441234567"}); err != nil {
		t.Fatal(err)
	}
	if f.bob, err = f.reg.AddResident(ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(2),
		Name: "Бондаренко Іван", BirthDate: registry.Date{Year: 1948, Month: time.July, Day: 15}, Contact: "bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []registry.Entitlement{
		{ResidentID: f.alice.ID, Category: registry.CategoryPensioner, LegalBasis: "ЗУ «Про пенсійне забезпечення»", Evidence: "пенсійне посвідчення 123456",
			ValidFrom: registry.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: registry.Date{Year: 2026, Month: 12, Day: 31}, Funding: registry.FundingCity},
		{ResidentID: f.bob.ID, Category: registry.CategoryVeteran, LegalBasis: "ЗУ «Про статус ветеранів війни»", Evidence: "посвідчення УБД 7788",
			ValidFrom: registry.Date{Year: 2025, Month: 1, Day: 1}, ValidTo: registry.Date{Year: 2030, Month: 12, Day: 31}, Funding: registry.FundingState, MonthlyLimit: 60},
	} {
		if _, err := f.reg.AddEntitlement(ctx, sup, e); err != nil {
			t.Fatal(err)
		}
	}
	activeCard := func(resident int64) registry.Card {
		c, err := f.reg.OrderCard(ctx, sup, resident)
		if err != nil {
			t.Fatal(err)
		}
		for _, to := range []registry.Status{registry.StatusPersonalised, registry.StatusActive} {
			if c, err = f.reg.Transition(ctx, sup, c.Number, registry.Change{To: to}); err != nil {
				t.Fatal(err)
			}
		}
		return c
	}
	f.aliceCard, f.bobCard = activeCard(f.alice.ID), activeCard(f.bob.ID)
	for _, a := range []registry.StaffAccount{
		{User: deskUser, Role: registry.RoleDesk},
		{User: supervisorUser, Role: registry.RoleSupervisor},
		{User: financeUser, Role: registry.RoleFinance},
		{User: auditorUser, Role: registry.RoleAuditor},
		{User: operatorUser, Role: registry.RoleOperator},
	} {
		f.staff(a.User, a.Role)
	}
	f.residents[aliceUser], f.residents[bobUser] = f.alice, f.bob
	// A desk visit about Alice, which her access log must show.
	desk := registry.Access{Actor: registry.Actor{User: deskUser, Role: registry.RoleDesk}, Purpose: seededPurpose}
	if _, err := f.reg.Resident(ctx, desk, f.alice.ID); err != nil {
		t.Fatal(err)
	}
}

// seedClearing stores November's rides, which clearing's re-rating
// proves (prove): Alice's card was a pensioner's (category 11, the city
// pays the full fare) until 3 November and a veteran's (12, the state
// pays a flat 20.00 per ride) from the 4th. Per carrier: ATP-1 5 rides,
// fares 75.00, compensation 85.00; ATP-2 3 rides, 45.00 and 50.00. Per
// category: 11 5 rides, 75.00 and 75.00; 12 3 rides, 45.00 and 60.00.
// Per funding: city 5 rides, 75.00; state 3 rides, 45.00 and 60.00.
// Total 8 rides, fares 120.00, compensation 135.00. A purse ride owes
// nothing.
func (f *fixture) seedClearing() {
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, f.kyiv)
	var taps []tap.Tap
	add := func(carrier, category, funding string, comp int64, n int) {
		for range n {
			seq := uint64(len(taps) + 1)
			when := at.Add(time.Duration(seq) * time.Hour)
			if category == "12" {
				when = when.Add(24 * time.Hour)
			}
			taps = append(taps, tap.Tap{Device: "BUS-17", Seq: seq, Time: when, Card: uint64(f.aliceCard.Number),
				Carrier: carrier, Route: "5", Result: tap.Accepted, Product: "benefit", Category: category, Funding: funding,
				FareKop: 1500, CompensationKop: comp, TariffVersion: fixtureTariff, CardCommitted: true})
		}
	}
	add("ATP-1", "11", "city", 1500, 3)
	add("ATP-1", "12", "state", 2000, 2)
	add("ATP-2", "11", "city", 1500, 2)
	add("ATP-2", "12", "state", 2000, 1)
	taps = append(taps, tap.Tap{Device: "BUS-17", Seq: uint64(len(taps) + 1), Time: at.Add(48 * time.Hour), Card: uint64(f.bobCard.Number),
		Carrier: "ATP-2", Route: "5", Result: tap.Accepted, Product: "purse", FareKop: 1500, ChargedKop: 1500, CardCommitted: true})
	f.prove([]cstore.CardRecord{{Card: uint64(f.aliceCard.Number), Entitlements: []cstore.RecordEntitlement{
		entitled(11, "2020-01-01", "2026-11-03", "city"), entitled(12, "2026-11-04", "2030-12-31", "state")}}})
	if _, _, err := f.clr.AddTaps(f.ctx, taps); err != nil {
		f.t.Fatal(err)
	}
}

// user is a browser without JavaScript: a cookie jar, redirects not
// followed so that tests see them.
type user struct {
	t    *testing.T
	f    *fixture
	c    *http.Client
	lang string // Accept-Language
}

func (f *fixture) anonymous() *user {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &user{t: f.t, f: f, lang: "en", c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   string
}

func (u *user) do(method, path string, form url.Values) response {
	u.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(u.f.ctx, method, u.f.srv.URL+path, body)
	if err != nil {
		u.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if u.lang != "" {
		req.Header.Set("Accept-Language", u.lang)
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (u *user) get(path string) response { u.t.Helper(); return u.do(http.MethodGet, path, nil) }

func (u *user) post(path string, form url.Values) response {
	u.t.Helper()
	return u.do(http.MethodPost, path, form)
}

// postFile posts a multipart form as a browser sends the import page's:
// the CSRF secret first, then the other fields, then the file.
func (u *user) postFile(path string, form url.Values, fileName, content string) response {
	u.t.Helper()
	return u.postFiles(path, form, "file", [2]string{fileName, content})
}

// postFiles posts form as multipart, its CSRF secret first, with files
// (name, content) under field.
func (u *user) postFiles(path string, form url.Values, field string, files ...[2]string) response {
	u.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if v := form.Get("csrf"); v != "" {
		mw.WriteField("csrf", v) //nolint:errcheck // into memory
	}
	for _, k := range slices.Sorted(maps.Keys(form)) {
		if k != "csrf" {
			mw.WriteField(k, form.Get(k)) //nolint:errcheck
		}
	}
	for _, f := range files {
		fw, err := mw.CreateFormFile(field, f[0])
		if err != nil {
			u.t.Fatal(err)
		}
		fw.Write([]byte(f[1])) //nolint:errcheck
	}
	mw.Close() //nolint:errcheck
	req, err := http.NewRequestWithContext(u.f.ctx, http.MethodPost, u.f.srv.URL+path, &body)
	if err != nil {
		u.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	if u.lang != "" {
		req.Header.Set("Accept-Language", u.lang)
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.t.Fatalf("POST %s: read: %v", path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// want fails the test unless r has status.
func (r response) want(t *testing.T, status int, what string) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, r.status, status, r.body)
	}
	return r
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF secret of the first form in body.
func csrf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", body)
	}
	return m[1]
}

// testKDF keeps password hashing cheap in tests.
var testKDF = password.Params{Time: 1, MemoryKiB: 64, Threads: 1}

// staff adds a staff account whose password is the user name and
// " password 1".
func (f *fixture) staff(user string, role registry.Role) {
	f.t.Helper()
	pw := user + " password 1"
	h, err := password.Hash(pw, testKDF)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.reg.AddStaff(f.ctx, registry.StaffAccount{User: user, Role: role, PasswordHash: h}); err != nil {
		f.t.Fatal(err)
	}
	f.passwords[user] = pw
}

// code returns the newest one-time code the outbox holds for contact.
func (f *fixture) code(contact string) string {
	f.t.Helper()
	msgs, err := notify.ReadFile(f.outbox)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To == contact {
			if c := codeRE.FindString(msgs[i].Text); c != "" {
				return c
			}
		}
	}
	f.t.Fatalf("no code for %s in the outbox", contact)
	return ""
}

var codeRE = regexp.MustCompile(`\b[0-9]{8}\b`)

// login signs in as name (a staff member with their password, or a
// resident with a one-time code) and returns the signed-in user and the
// CSRF secret of the session.
func (f *fixture) login(name string) (*user, string) {
	f.t.Helper()
	u := f.anonymous()
	var r response
	if res, ok := f.residents[name]; ok {
		page := u.get("/login/resident").want(f.t, http.StatusOK, "resident sign-in form")
		sent := u.post("/login/resident", url.Values{"csrf": {csrf(f.t, page.body)}, "registry_number": {res.RegistryNumber}}).
			want(f.t, http.StatusOK, "ask for a code as "+name)
		r = u.post("/login/resident/code", url.Values{"csrf": {csrf(f.t, sent.body)}, "code": {f.code(res.Contact)}}).
			want(f.t, http.StatusSeeOther, "sign in as "+name)
	} else {
		page := u.get("/login").want(f.t, http.StatusOK, "login form")
		r = u.post("/login", url.Values{"csrf": {csrf(f.t, page.body)}, "user": {name}, "password": {f.passwords[name]}}).
			want(f.t, http.StatusSeeOther, "sign in as "+name)
	}
	home := u.get(r.header.Get("Location")).want(f.t, http.StatusOK, name+"'s start page")
	return u, csrf(f.t, home.body)
}

// asConsole sets what the console sets in a report it exports: the
// city's zone, the page's language and the console's clock.
func (f *fixture) asConsole(c report.Compensation) report.Compensation {
	c.Location, c.Lang, c.Created = f.kyiv, "uk", f.clock.Now()
	return c
}

// confirmClose returns the form of a confirmed close of period, as the
// close dialog posts it.
func confirmClose(secret, period string, early bool) url.Values {
	v := url.Values{"csrf": {secret}, "period": {period}, "confirm": {period}}
	if early {
		v.Set("early", "1")
	}
	return v
}

// residentWithoutCard registers a fresh resident who has no card.
func (f *fixture) residentWithoutCard(t *testing.T) registry.Resident {
	t.Helper()
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	r, err := f.reg.AddResident(f.ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(500), Name: "Без Картки",
		BirthDate: registry.Date{Year: 1960, Month: time.June, Day: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// childOf registers a child of parent's (f.child) and links the two on a
// birth certificate, as a desk does.
func (f *fixture) childOf(t *testing.T, parent registry.Resident) (registry.Resident, registry.Card) {
	t.Helper()
	child, c := f.child(t)
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	if _, err := f.reg.AddGuardianship(f.ctx, sup, parent.ID, child.ID, "свідоцтво про народження І-КВ 123456"); err != nil {
		t.Fatal(err)
	}
	return child, c
}

// child registers a child born in 2015, with an active card.
func (f *fixture) child(t *testing.T) (registry.Resident, registry.Card) {
	t.Helper()
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	child, err := f.reg.AddResident(f.ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(600), Name: "Коваленко Марко",
		BirthDate: registry.Date{Year: 2015, Month: time.April, Day: 12}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.reg.OrderCard(f.ctx, sup, child.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []registry.Status{registry.StatusPersonalised, registry.StatusActive} {
		if c, err = f.reg.Transition(f.ctx, sup, c.Number, registry.Change{To: to}); err != nil {
			t.Fatal(err)
		}
	}
	return child, c
}
