package console_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/console"
	"github.com/citycard/transit/registry/desk"
	regfixture "github.com/citycard/transit/registry/internal/fixture"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/simulator/vcard"
)

// The console personalises cards on a reader in process: a virtual
// DESFire card (simulator/vcard) behind a desk.Reader, never pcscd.

// issuePurpose is what the desk states when it issues a card.
const issuePurpose = "card issue, ticket 4711"

// testReader is a desk reader a test puts virtual cards on and takes
// them off. WaitCard blocks, as a real reader does, until there is a
// card or its context ends.
type testReader struct {
	mu     sync.Mutex
	tr     apdu.Transport
	uid    []byte
	placed chan struct{} // closed when a card is put on
	waits  int
}

func newTestReader() *testReader { return &testReader{placed: make(chan struct{})} }

// put places a card on the reader; tr may tear it away (vcard.Tear).
func (r *testReader) put(tr apdu.Transport, uid []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr, r.uid = tr, uid
	close(r.placed)
	r.placed = make(chan struct{})
}

// take takes the card off the reader.
func (r *testReader) take() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tr, r.uid = nil, nil
}

// waited is how often the console waited for a card.
func (r *testReader) waited() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waits
}

// WaitCard implements desk.Reader.
func (r *testReader) WaitCard(ctx context.Context) (desk.Card, error) {
	r.mu.Lock()
	r.waits++
	r.mu.Unlock()
	for {
		r.mu.Lock()
		tr, uid, placed := r.tr, r.uid, r.placed
		r.mu.Unlock()
		if tr != nil {
			return testConn{tr: tr, uid: uid}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("test reader: no card: %w", ctx.Err())
		case <-placed:
		}
	}
}

type testConn struct {
	tr  apdu.Transport
	uid []byte
}

func (c testConn) Transmit(cmd []byte) ([]byte, error) { return c.tr.Transmit(cmd) }
func (c testConn) UID() ([]byte, error)                { return c.uid, nil }
func (c testConn) Close() error                        { return nil }

// blankCard is a factory-fresh virtual card with a UID of its own.
func blankCard() *vcard.Card {
	r := rand.Uint32()
	return vcard.New([]byte{0x04, byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24), 0x60, 0x80})
}

// station is a console fixture on a desk machine: a test reader and the
// issuer's card keys.
type station struct {
	*fixture
	reader *testReader
	keys   *cardkey.Source
}

func newStation(t *testing.T, wait time.Duration, keys *cardkey.Source) *station {
	t.Helper()
	st := &station{reader: newTestReader(), keys: keys}
	st.fixture = newFixture(t, fixtureOptions{options: func(o *console.Options) {
		o.Reader, o.CardKeys, o.CardWait = st.reader, st.keys, wait
	}})
	return st
}

// orderedCard registers a resident (the i-th of the test) with a
// pensioner's entitlement and orders their first card.
func (f *fixture) orderedCard(i int, name string) (registry.Resident, registry.Card) {
	f.t.Helper()
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	r, err := f.reg.AddResident(f.ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(100 + i), Name: name,
		BirthDate: registry.Date{Year: 1955, Month: time.May, Day: 9}, Contact: "+380501112233"})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.reg.AddEntitlement(f.ctx, sup, registry.Entitlement{ResidentID: r.ID, Category: registry.CategoryPensioner,
		LegalBasis: "ЗУ «Про пенсійне забезпечення»", Evidence: "пенсійне посвідчення 654321", Funding: registry.FundingCity,
		ValidFrom: registry.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: registry.Date{Year: 2027, Month: 12, Day: 31}}); err != nil {
		f.t.Fatal(err)
	}
	c, err := f.reg.OrderCard(f.ctx, sup, r.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return r, c
}

// status is card n's status in the registry.
func (f *fixture) status(n card.Number) registry.Status {
	f.t.Helper()
	d, err := f.reg.CardState(f.ctx, n)
	if err != nil {
		f.t.Fatal(err)
	}
	return d.Status
}

// personaliseForm is the form the resident page's button sends.
func personaliseForm(csrf, purpose string, handOver bool) url.Values {
	v := url.Values{"csrf": {csrf}, "purpose": {purpose}}
	if handOver {
		v.Set("hand_over", "1")
	}
	return v
}

func personalisePath(n card.Number) string { return "/desk/cards/" + n.String() + "/personalise" }

func residentPath(id int64, purpose string) string {
	return fmt.Sprintf("/desk/residents/%d?purpose=%s", id, url.QueryEscape(purpose))
}

// audited returns the audit entries about a resident by user with
// action.
func (f *fixture) audited(resident int64, user, action string) []registry.AuditEntry {
	f.t.Helper()
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: resident})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []registry.AuditEntry
	for _, e := range es {
		if e.User == user && e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func TestPersonaliseOnReader(t *testing.T) {
	st := newStation(t, 5*time.Second, regfixture.CardKeys(t, hsm.Roles...))
	res, c := st.orderedCard(1, "Шевченко Марія")
	deskU, secret := st.login(deskUser)

	page := deskU.get(residentPath(res.ID, issuePurpose)).want(t, http.StatusOK, "resident page")
	button := `id="personalise-` + c.Number.String() + `"`
	if !strings.Contains(page.body, button) || !strings.Contains(page.body, "Personalise on this desk&#39;s reader") {
		t.Fatalf("the page offers no personalisation of the ordered card:\n%s", page.body)
	}
	// Active cards are not offered.
	if bob := deskU.get(residentPath(st.bob.ID, issuePurpose)); strings.Contains(bob.body, "/personalise") {
		t.Error("the page offers to personalise an active card")
	}

	vc := blankCard()
	st.reader.put(vc, vc.UID())
	r := deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusSeeOther, "personalise")
	loc := mustURL(t, r.header.Get("Location"))
	if q := loc.Query(); loc.Path != fmt.Sprintf("/desk/residents/%d", res.ID) || q.Get("purpose") != issuePurpose ||
		q.Get("done") != "activated" || q.Get("card") != c.Number.String() {
		t.Fatalf("redirect to %s; want the resident's page with the outcome and the purpose", loc)
	}
	if got := st.status(c.Number); got != registry.StatusActive {
		t.Fatalf("card is %s in the registry, want active (handed over)", got)
	}
	held := regfixture.ReadCard(t, vc, st.keys)
	if held.Number != c.Number || held.Holder != res.Name || held.Category != registry.CategoryPensioner || held.Purse != 0 {
		t.Fatalf("the card holds %+v", held)
	}
	// The read of the holder's data and the status changes are the
	// operator's, with the purpose the page carried.
	if es := st.audited(res.ID, deskUser, "read personalisation data"); len(es) != 1 || es[0].Purpose != issuePurpose || es[0].Role != registry.RoleDesk {
		t.Fatalf("audit of the read: %+v", es)
	}
	for _, action := range []string{"card ordered -> personalised", "card personalised -> active"} {
		if es := st.audited(res.ID, deskUser, action); len(es) != 1 || es[0].Purpose != issuePurpose {
			t.Errorf("audit of %q: %+v", action, es)
		}
	}

	after := deskU.get(r.header.Get("Location")).want(t, http.StatusOK, "page after")
	for _, want := range []string{
		"Card " + c.Number.String() + " is personalised and handed over",
		// The receipt of the hand-over, with the purpose carried.
		"/desk/cards/" + c.Number.String() + "/receipt?op=activated&amp;purpose=card&#43;issue%2C&#43;ticket&#43;4711",
	} {
		if !strings.Contains(after.body, want) {
			t.Errorf("the page after lacks %q:\n%s", want, after.body)
		}
	}
	if strings.Contains(after.body, button) {
		t.Error("the active card is still offered for personalisation")
	}
	// A link that claims a personalisation the record does not show
	// puts nothing on the page.
	forged := deskU.get(fmt.Sprintf("/desk/residents/%d?purpose=x&done=personalised&card=%s", res.ID, c.Number))
	if strings.Contains(forged.body, "personalise-notice") {
		t.Error("a crafted link shows a personalisation notice for an active card")
	}

	t.Run("kept for later hand-over", func(t *testing.T) {
		res, c := st.orderedCard(2, "Іваненко Петро")
		vc := blankCard()
		st.reader.put(vc, vc.UID())
		r := deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, false)).want(t, http.StatusSeeOther, "personalise")
		if got := st.status(c.Number); got != registry.StatusPersonalised {
			t.Fatalf("card is %s, want personalised", got)
		}
		page := deskU.get(r.header.Get("Location")).want(t, http.StatusOK, "page after")
		if !strings.Contains(page.body, "Card "+c.Number.String()+" is personalised; it stays personalised") ||
			!strings.Contains(page.body, `id="personalise-`+c.Number.String()+`"`) || !strings.Contains(page.body, "The card is already written") {
			t.Fatalf("want the notice and the button again for the hand-over:\n%s", page.body)
		}
		// The holder comes: the same card on the reader is found done.
		deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusSeeOther, "hand over")
		if got := st.status(c.Number); got != registry.StatusActive {
			t.Fatalf("card is %s, want active", got)
		}
		if held := regfixture.ReadCard(t, vc, st.keys); held.Number != c.Number || held.Holder != res.Name {
			t.Fatalf("the card holds %+v", held)
		}
	})
}

func TestPersonaliseWithoutReader(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	res, c := f.orderedCard(1, "Шевченко Марія")
	deskU, secret := f.login(deskUser)
	page := deskU.get(residentPath(res.ID, issuePurpose)).want(t, http.StatusOK, "resident page")
	if strings.Contains(page.body, "/personalise") {
		t.Error("a console without a reader offers personalisation")
	}
	for _, lang := range []string{"en", "uk"} {
		deskU.lang = lang
		r := deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusServiceUnavailable, "no reader")
		want := map[string]string{"en": "This console has no card reader configured", "uk": "Ця консоль не має налаштованого зчитувача"}[lang]
		if !strings.Contains(r.body, want) || !strings.Contains(r.body, "--reader") || !strings.Contains(r.body, "--keystore") {
			t.Errorf("%s: the page does not say how to start the console with a reader:\n%s", lang, r.body)
		}
	}
	if got := f.status(c.Number); got != registry.StatusOrdered {
		t.Errorf("card is %s, want still ordered", got)
	}
	if es := f.audited(res.ID, deskUser, "read personalisation data"); len(es) != 0 {
		t.Errorf("the holder's data was read: %+v", es)
	}
}

func TestPersonaliseRefusedRoles(t *testing.T) {
	st := newStation(t, time.Second, regfixture.CardKeys(t, hsm.Roles...))
	res, c := st.orderedCard(1, "Шевченко Марія")
	vc := blankCard()
	st.reader.put(vc, vc.UID())
	for _, name := range []string{financeUser, auditorUser, aliceUser} {
		u, secret := st.login(name)
		u.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusForbidden, name)
	}
	deskU, secret := st.login(deskUser)
	deskU.post(personalisePath(c.Number), personaliseForm("", issuePurpose, true)).want(t, http.StatusForbidden, "no csrf")
	deskU.post(personalisePath(c.Number), personaliseForm(secret, "", true)).want(t, http.StatusBadRequest, "no purpose")
	st.anonymous().post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusSeeOther, "signed out")
	if got := st.status(c.Number); got != registry.StatusOrdered {
		t.Errorf("card is %s, want still ordered", got)
	}
	if n := st.reader.waited(); n != 0 {
		t.Errorf("the console waited for a card %d times", n)
	}
	if es := st.audited(res.ID, deskUser, "read personalisation data"); len(es) != 0 {
		t.Errorf("the holder's data was read: %+v", es)
	}
	if _, err := desfire.New(vc).GetApplicationIDs(); err != nil {
		t.Fatal(err)
	}
}

// TestPersonaliseProblems: what goes wrong at the reader comes back as a
// page that says what to do, the registry unchanged.
func TestPersonaliseProblems(t *testing.T) {
	st := newStation(t, 300*time.Millisecond, regfixture.CardKeys(t, hsm.Roles...))
	deskU, secret := st.login(deskUser)
	i := 0
	press := func(c registry.Card, status int, what string) response {
		t.Helper()
		return deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, status, what)
	}
	problem := func(r response, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(r.body, w) {
				t.Errorf("the page lacks %q:\n%s", w, r.body)
			}
		}
		if strings.Contains(r.body, "Go error") || strings.Contains(r.body, "desfire") || strings.Contains(r.body, "vcard") {
			t.Errorf("the page shows internals:\n%s", r.body)
		}
	}
	next := func() (registry.Resident, registry.Card) {
		i++
		return st.orderedCard(i, fmt.Sprintf("Тест Особа %c", 'А'+rune(i)))
	}

	t.Run("no card in time", func(t *testing.T) {
		res, c := next()
		st.reader.take()
		before := st.reader.waited()
		r := press(c, http.StatusGatewayTimeout, "no card")
		problem(r, "No card was put on the reader within 1 s", `id="personalise-again"`,
			fmt.Sprintf(`href="/desk/residents/%d?purpose=card&#43;issue%%2C&#43;ticket&#43;4711"`, res.ID))
		if st.reader.waited() != before+1 {
			t.Error("the console did not wait for a card")
		}
		if got := st.status(c.Number); got != registry.StatusOrdered {
			t.Errorf("card is %s, want ordered", got)
		}
	})
	t.Run("card of another system", func(t *testing.T) {
		_, c := next()
		vc := blankCard()
		theirs := []byte("their PICC key!!")
		dc := desfire.New(vc)
		if err := dc.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()); err != nil {
			t.Fatal(err)
		}
		if err := dc.ChangeKey(0, theirs, 3, nil); err != nil {
			t.Fatal(err)
		}
		vc.Reset()
		st.reader.put(vc, vc.UID())
		problem(press(c, http.StatusConflict, "foreign card"), "belongs to another system; nothing was written", `id="personalise-again"`)
		if got := st.status(c.Number); got != registry.StatusOrdered {
			t.Errorf("card is %s, want ordered", got)
		}
		vc.Reset()
		if err := desfire.New(vc).AuthenticateAES(0, theirs); err != nil {
			t.Errorf("the foreign card's key changed: %v", err)
		}
	})
	t.Run("card personalised as another", func(t *testing.T) {
		_, first := next()
		vc := blankCard()
		st.reader.put(vc, vc.UID())
		press(first, http.StatusSeeOther, "personalise the first")
		_, c := next()
		problem(press(c, http.StatusConflict, "wrong card"), "already personalised with other data", "transit desk wipe")
		if got := st.status(c.Number); got != registry.StatusOrdered {
			t.Errorf("card is %s, want ordered", got)
		}
		if held := regfixture.ReadCard(t, vc, st.keys); held.Number != first.Number {
			t.Errorf("the first card now holds %s", held.Number)
		}
	})
	t.Run("torn card", func(t *testing.T) {
		_, c := next()
		vc := blankCard()
		st.reader.put(&vcard.Tear{Card: vc, After: 40}, vc.UID())
		problem(press(c, http.StatusConflict, "torn"), "left the reader before it was finished", "registry still has card "+c.Number.String()+" as ordered")
		if got := st.status(c.Number); got != registry.StatusOrdered {
			t.Errorf("card is %s, want ordered", got)
		}
		// Put back, pressed again: it carries on.
		st.reader.put(vc, vc.UID())
		press(c, http.StatusSeeOther, "again")
		if held := regfixture.ReadCard(t, vc, st.keys); held.Number != c.Number || st.status(c.Number) != registry.StatusActive {
			t.Errorf("after the retry the card holds %+v, the registry has %s", held, st.status(c.Number))
		}
	})
	t.Run("Ukrainian", func(t *testing.T) {
		_, c := next()
		st.reader.take()
		deskU.lang = "uk"
		defer func() { deskU.lang = "en" }()
		problem(press(c, http.StatusGatewayTimeout, "no card"), "За 1 с на зчитувач не поклали жодної картки", "Картку не персоналізовано")
	})
	t.Run("card not ordered", func(t *testing.T) {
		// The registry refuses before the reader is used: the error page.
		before := st.reader.waited()
		r := press(st.aliceCard, http.StatusConflict, "active card")
		problem(r, "only an ordered card")
		if st.reader.waited() != before {
			t.Error("the console waited for a card")
		}
	})
}

func TestPersonaliseMissingKeys(t *testing.T) {
	// A validator's keystore, not the issuer's.
	st := newStation(t, time.Second, regfixture.CardKeys(t, hsm.RoleValidator))
	res, c := st.orderedCard(1, "Шевченко Марія")
	vc := blankCard()
	st.reader.put(vc, vc.UID())
	deskU, secret := st.login(deskUser)
	r := deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusServiceUnavailable, "keys")
	if !strings.Contains(r.body, "keys cannot personalise cards") || !strings.Contains(r.body, "transit hsm export-role issuer") ||
		strings.Contains(r.body, "personalise-again") {
		t.Errorf("the page does not say which keys the console needs:\n%s", r.body)
	}
	if got := st.status(c.Number); got != registry.StatusOrdered {
		t.Errorf("card is %s, want ordered", got)
	}
	if es := st.audited(res.ID, deskUser, "read personalisation data"); len(es) != 0 {
		t.Errorf("the holder's data was read without keys to write it: %+v", es)
	}
	if st.reader.waited() != 0 {
		t.Error("the console waited for a card")
	}
}

// TestPersonaliseOneAtATime: the reader serves one personalisation; a
// second press meanwhile is told to wait, and the first one finishes.
func TestPersonaliseOneAtATime(t *testing.T) {
	st := newStation(t, 20*time.Second, regfixture.CardKeys(t, hsm.Roles...))
	_, c := st.orderedCard(1, "Шевченко Марія")
	_, other := st.orderedCard(2, "Іваненко Петро")
	deskU, secret := st.login(deskUser)
	sup, supSecret := st.login(supervisorUser)
	st.reader.take()
	first := make(chan response, 1)
	go func() {
		first <- deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true))
	}()
	for deadline := time.Now().Add(10 * time.Second); st.reader.waited() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first press never waited for a card")
		}
	}
	r := sup.post(personalisePath(other.Number), personaliseForm(supSecret, issuePurpose, true)).want(t, http.StatusConflict, "second press")
	if !strings.Contains(r.body, "The reader is busy") {
		t.Errorf("second press:\n%s", r.body)
	}
	vc := blankCard()
	st.reader.put(vc, vc.UID())
	select {
	case r := <-first:
		r.want(t, http.StatusSeeOther, "first press")
	case <-time.After(20 * time.Second):
		t.Fatal("the first press did not finish")
	}
	if st.status(c.Number) != registry.StatusActive || st.status(other.Number) != registry.StatusOrdered {
		t.Errorf("cards are %s and %s; want active and ordered", st.status(c.Number), st.status(other.Number))
	}
}

func TestPersonaliseOptions(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	keys := regfixture.CardKeys(t, hsm.Roles...)
	for name, o := range map[string]console.Options{
		"reader without keys": {Reader: newTestReader()},
		"keys without reader": {CardKeys: keys},
		"wait too long":       {Reader: newTestReader(), CardKeys: keys, CardWait: console.MaxCardWait + time.Second},
		"negative wait":       {Reader: newTestReader(), CardKeys: keys, CardWait: -time.Second},
	} {
		o.Registry, o.Clearing = f.reg, f.clr
		if _, err := console.New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := console.New(console.Options{Registry: f.reg, Clearing: f.clr, Reader: newTestReader(), CardKeys: keys}); err != nil {
		t.Errorf("reader and keys: %v", err)
	}
}

// TestPersonaliseAccessible: the button's form and the problem page
// keep the console's rules: one h1, every field labelled.
func TestPersonaliseAccessible(t *testing.T) {
	st := newStation(t, 100*time.Millisecond, regfixture.CardKeys(t, hsm.Roles...))
	res, c := st.orderedCard(1, "Шевченко Марія")
	deskU, secret := st.login(deskUser)
	for name, r := range map[string]response{
		"record": deskU.get(residentPath(res.ID, issuePurpose)).want(t, http.StatusOK, "record"),
		"problem": deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, false)).
			want(t, http.StatusGatewayTimeout, "no card"),
	} {
		if strings.Count(r.body, "<h1>") != 1 || !strings.Contains(r.body, `<main id="main"`) {
			t.Errorf("%s: want one main landmark and one h1", name)
		}
		fields := 0
		for _, tag := range inputTag.FindAllString(r.body, -1) {
			if attr(tag, "type") == "hidden" {
				continue
			}
			fields++
			if id := attr(tag, "id"); id == "" || !strings.Contains(r.body, `<label for="`+id+`">`) {
				t.Errorf("%s: field without a label: %s", name, tag)
			}
		}
		if !strings.Contains(r.body, `name="hand_over"`) || fields == 0 {
			t.Errorf("%s: no hand-over box; the check is not looking", name)
		}
	}
}

// namedReader is a PC/SC reader by a name pcscd may not know: it fails
// every wait as pcsc does for an unknown name, and lists the readers
// present (desk.Lister).
type namedReader struct {
	name    string
	present []string
}

func (r namedReader) WaitCard(context.Context) (desk.Card, error) {
	return nil, fmt.Errorf("pcsc: unknown reader %q; readers present: %q", r.name, r.present)
}
func (r namedReader) Name() string               { return r.name }
func (r namedReader) Readers() ([]string, error) { return r.present, nil }

// TestPersonaliseUnknownReader: a console started with a reader name
// that is not a reader says so on the page, with the readers that are
// connected and how to restart it, rather than an error number.
func TestPersonaliseUnknownReader(t *testing.T) {
	keys := regfixture.CardKeys(t, hsm.Roles...)
	for _, tc := range []struct {
		name    string
		present []string
		want    []string
	}{
		{"other readers", []string{"Virtual PCD 00 00", "ACS ACR1252 1S CL Reader 00 00"},
			[]string{"«ACS ACR122U 00 00»", "which this computer does not have", "«Virtual PCD 00 00», «ACS ACR1252 1S CL Reader 00 00»", "--reader"}},
		{"no reader", nil, []string{"«ACS ACR122U 00 00»", "no card reader is connected", "pcscd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{options: func(o *console.Options) {
				o.Reader, o.CardKeys, o.CardWait = namedReader{name: "ACS ACR122U 00 00", present: tc.present}, keys, time.Second
			}})
			_, c := f.orderedCard(1, "Шевченко Марія")
			deskU, secret := f.login(deskUser)
			r := deskU.post(personalisePath(c.Number), personaliseForm(secret, issuePurpose, true)).want(t, http.StatusServiceUnavailable, "unknown reader")
			for _, w := range tc.want {
				if !strings.Contains(r.body, w) {
					t.Errorf("the page lacks %q:\n%s", w, r.body)
				}
			}
			if strings.Contains(r.body, "logged") || strings.Contains(r.body, "error ") {
				t.Errorf("the page shows an error number instead of the cause:\n%s", r.body)
			}
			if got := f.status(c.Number); got != registry.StatusOrdered {
				t.Errorf("card is %s, want ordered", got)
			}
		})
	}
}
