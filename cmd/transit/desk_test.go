package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/simulator/vpcd"
	"github.com/citycard/transit/validator/devauth"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/update"
)

// deskCLI runs the command line in process.
func deskCLI(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// deskRegistry is a registry API in process on an embedded store, with a
// desk staff member's token.
type deskRegistry struct {
	t     *testing.T
	st    store.Store
	url   string
	token string
	next  int
}

func newDeskRegistry(t *testing.T) *deskRegistry {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "registry.db"), store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(api.New(st, api.Options{Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(srv.Close)
	secret, tok, err := registry.NewToken(registry.Actor{User: "olena.desk", Role: registry.RoleDesk}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return &deskRegistry{t: t, st: st, url: srv.URL, token: secret}
}

var deskAccess = registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleDesk}, Purpose: "test setup"}

// order registers a person and orders a card for them.
func (r *deskRegistry) order() card.Number {
	r.t.Helper()
	ctx := context.Background()
	r.next++
	res, err := r.st.AddResident(ctx, deskAccess, registry.Resident{RegistryNumber: storetest.RegistryNumber(r.next),
		Name: fmt.Sprintf("Бондаренко Іван %d", r.next), BirthDate: registry.Date{Year: 1948, Month: 5, Day: 9}})
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := r.st.OrderCard(ctx, deskAccess, res.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return c.Number
}

func (r *deskRegistry) status(n card.Number) registry.Status {
	r.t.Helper()
	d, err := r.st.CardState(context.Background(), n)
	if err != nil {
		r.t.Fatal(err)
	}
	return d.Status
}

// reads counts the audited reads of card n's data.
func (r *deskRegistry) reads(n card.Number) int {
	r.t.Helper()
	es, err := r.st.Audit(context.Background(), registry.Access{Actor: registry.Actor{User: "a", Role: registry.RoleAuditor}}, registry.AuditQuery{})
	if err != nil {
		r.t.Fatal(err)
	}
	k := 0
	for _, e := range es {
		if e.Record == "card/"+n.String() && e.Action == "read personalisation data" {
			k++
		}
	}
	return k
}

// issuerKeystore is a keystore with every role's card master, as
// `transit hsm export-role issuer` writes it, opened with passphrase.
func issuerKeystore(t *testing.T, passphrase string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "issuer.keys")
	ks, err := hsm.CreateKeystore(path, []byte(passphrase), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	for _, r := range hsm.Roles {
		if _, err := ks.Generate(context.Background(), hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	// EV2 and EV3 cards get a Transaction MAC key from this master.
	if _, err := ks.Generate(context.Background(), hsm.LabelTMACMaster, hsm.KindTMACMaster); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDeskWrongPassphrase: a wrong keystore passphrase stops the desk
// before it asks the registry for anything.
func TestDeskWrongPassphrase(t *testing.T) {
	reg := newDeskRegistry(t)
	keys := issuerKeystore(t, "right")
	n := reg.order()
	t.Setenv(tokenEnv, reg.token)
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "wrong")
	code, _, stderr := deskCLI(context.Background(), "desk", "personalise", "--card", n.String(), "--purpose", "card issue",
		"--reader", "no such reader", "--keystore", keys, "--registry", reg.url)
	if code != 1 || !strings.Contains(stderr, "passphrase") || !strings.Contains(stderr, "nothing was read from the registry") {
		t.Fatalf("wrong passphrase: exit %d, %s", code, stderr)
	}
	if reg.reads(n) != 0 || reg.status(n) != registry.StatusOrdered {
		t.Fatalf("after a wrong passphrase: %d reads of the holder's data, card %s", reg.reads(n), reg.status(n))
	}
	// Bad command lines say what to give.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"desk", "personalise", "--card", n.String(), "--reader", "r", "--keystore", keys}, "--purpose"},
		{[]string{"desk", "personalise", "--card", "1234", "--purpose", "p", "--reader", "r", "--keystore", keys}, "16"},
		{[]string{"desk", "personalise", "--card", n.String(), "--purpose", "p", "--keystore", keys}, "--reader"},
		{[]string{"desk", "personalise", "--card", n.String(), "--purpose", "p", "--reader", "r"}, "--keystore"},
		{[]string{"desk", "block", "--card", n.String(), "--reason", "misplaced"}, "--reason"},
		{[]string{"desk", "replace", "--card", n.String()}, "--clearing-balance-kop"},
	} {
		if code, _, stderr := deskCLI(context.Background(), tc.args...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, %s; want 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
	t.Setenv(tokenEnv, "")
	if code, _, stderr := deskCLI(context.Background(), "desk", "block", "--card", n.String(), "--reason", "lost", "--registry", reg.url); code != 2 || !strings.Contains(stderr, tokenEnv) {
		t.Errorf("no token: exit %d, %s", code, stderr)
	}
}

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRegistryServePublishes runs `transit registry serve` with its HSM,
// a hotlist directory and a signed tariff, blocks a card with `transit
// desk block`, and has a validator's updaters fetch the hotlist and the
// tariff from /v1/validator.
func TestRegistryServePublishes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "city pass")
	keys := filepath.Join(dir, "city.keys")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)
	tariffDir := filepath.Join(dir, "tariff")
	if err := os.CopyFS(tariffDir, os.DirFS(filepath.Join("..", "..", "testdata", "tariff"))); err != nil {
		t.Fatal(err)
	}
	transit(t, ctx, 0, "tariff", "sign", tariffDir, "--keystore", keys)
	db := "sqlite:" + filepath.Join(dir, "registry.db")
	token := strings.TrimSpace(transit(t, ctx, 0, "registry", "token", "create", "--db", db, "--user", "olena", "--role", "desk"))
	service := strings.TrimSpace(transit(t, ctx, 0, "registry", "token", "create", "--db", db, "--user", "clearing", "--role", "service"))
	addr := freePort(t)
	base := "http://" + addr
	background(t, ctx, "registry serve", "registry", "serve", "--db", db, "--issuer", "1001", "--listen", addr,
		"--keystore", keys, "--hotlist-dir", filepath.Join(dir, "hotlists"), "--tariff", tariffDir)
	// Opening the keystore takes a moment (its KDF is meant to be slow).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry serve does not listen on %s after 30 s", addr)
		}
	}

	call := func(method, path, tok string, body any, out any) {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(string(js)))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %s %s", method, path, resp.Status, b)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var res registry.Resident
	call("POST", "/v1/residents", token, map[string]string{"registry_number": storetest.RegistryNumber(1), "name": "Шевченко Марія",
		"birth_date": "1951-02-03", "contact": ""}, &res)
	var c registry.Card
	call("POST", fmt.Sprintf("/v1/residents/%d/cards", res.ID), token, nil, &c)
	call("POST", "/v1/cards/"+c.Number.String()+"/status", token, map[string]string{"status": "personalised"}, nil)
	call("POST", "/v1/cards/"+c.Number.String()+"/status", token, map[string]string{"status": "active"}, nil)

	t.Setenv(tokenEnv, token)
	code, out, stderr := deskCLI(ctx, "desk", "block", "--card", c.Number.Grouped(), "--reason", "stolen", "--registry", base)
	if code != 0 || !strings.Contains(out, "stolen") {
		t.Fatalf("desk block: exit %d, %s %s", code, out, stderr)
	}
	// Clearing's service token reads what happened, without personal data.
	var evs struct{ Events []registry.CardEvent }
	call("GET", "/v1/cards/events?since=0", service, nil, &evs)
	if len(evs.Events) == 0 || evs.Events[len(evs.Events)-1].Status != registry.StatusStolen {
		t.Fatalf("service token reads events %+v", evs)
	}

	ks, err := hsm.OpenKeystore(keys, []byte("city pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	lookup, err := hotlist.HSMKeys(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: filepath.Join(dir, "validator-hotlist")}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	// The validator signs its requests with its own batch key, from its
	// role export.
	t.Setenv("TRANSIT_ROLE_PASSPHRASE", "bus pass")
	transit(t, ctx, 0, "hsm", "export-role", "validator", "--device", "bus-0417", "--out", filepath.Join(dir, "bus.keys"), "--keystore", keys)
	bus, err := hsm.OpenKeystore(filepath.Join(dir, "bus.keys"), []byte("bus pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	device := &devauth.Signer{Device: "bus-0417", Keys: bus}
	f := &update.Fetcher{Base: base + "/v1/validator", Hotlist: h, Keys: lookup, Auth: device}
	if _, err := (&update.Fetcher{Base: base + "/v1/validator", Hotlist: h, Keys: lookup}).Once(ctx); !errors.Is(err, update.ErrStatus) {
		t.Fatalf("an unsigned validator request: %v; want it refused", err)
	}
	// The publisher looks for new card events every few seconds.
	deadline := time.Now().Add(30 * time.Second)
	for !h.Contains(uint64(c.Number)) {
		if _, err := f.Once(ctx); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stolen card is not on the validator's hotlist after 30 s (version %d)", h.Version())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r, _ := h.Lookup(uint64(c.Number)); r != hotlist.ReasonStolen {
		t.Fatalf("stolen card listed as %v", r)
	}
	v := &tariffUser{}
	tf := &update.TariffFetcher{Base: base + "/v1/validator", Dir: filepath.Join(dir, "validator-tariff"), Keys: ks, User: v, Auth: device}
	if ok, err := tf.Once(ctx); err != nil || !ok || v.CurrentTariff() == nil {
		t.Fatalf("tariff from the registry: %v, %v", ok, err)
	}
	if ok, err := tf.Once(ctx); err != nil || ok {
		t.Fatalf("same tariff again: %v, %v; want nothing new", ok, err)
	}
}

type tariffUser struct{ t *fare.Tariff }

func (u *tariffUser) CurrentTariff() *fare.Tariff { return u.t }
func (u *tariffUser) SetTariff(t *fare.Tariff)    { u.t = t }

// tearing is a virtual card that leaves the reader when it has answered
// after APDUs: its vpcd slot is closed, as when the card is pulled away.
type tearing struct {
	*vcard.Card
	after int
	n     int
	slot  atomic.Pointer[vpcd.Slot]
}

func (c *tearing) Respond(cmd []byte) []byte {
	c.n++
	if c.n <= c.after {
		return c.Card.Respond(cmd)
	}
	if c.n == c.after+1 {
		c.Card.Reset()
		go c.slot.Load().Remove() // not here: Remove waits for the loop this answer is in
	}
	return nil
}

// insert puts a card into the vpcd reader and returns a function that
// takes it away, waiting until pcscd has seen it go.
func insert(t *testing.T, ctx context.Context, addr string, c vpcd.Card) (*vpcd.Slot, func()) {
	t.Helper()
	slot, err := vpcd.Insert(ctx, addr, c)
	if err != nil {
		t.Fatal(err)
	}
	return slot, func() {
		slot.Remove()
		// pcscd notices a removal at its ~400 ms poll; the next card
		// must not arrive before that.
		time.Sleep(900 * time.Millisecond)
	}
}

// TestDeskOverPCSC personalises virtual cards through the real PC/SC
// stack (pcscd with vpcd) with `transit desk`: a card handed over, a card
// pulled away half-way and presented again, a card of another system, and
// a wipe the registry refuses. It needs the test harness.
func TestDeskOverPCSC(t *testing.T) {
	addr, reader := testenv.PCSC(t, 0)
	// Runs after the deferred cancel has taken any card still inserted
	// away (a failed step): the next test's card must not arrive before
	// pcscd has seen this one go.
	t.Cleanup(func() { time.Sleep(time.Second) })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	reg := newDeskRegistry(t)
	keys := issuerKeystore(t, "desk pass")
	t.Setenv(tokenEnv, reg.token)
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "desk pass")
	deskCmd := func(args ...string) (int, string, string) {
		return deskCLI(ctx, append(append([]string{"desk"}, args...), "--registry", reg.url)...)
	}
	personalise := func(n card.Number) (int, string, string) {
		return deskCmd("personalise", "--card", n.Grouped(), "--purpose", "card issue, ticket 4711", "--reader", reader,
			"--keystore", keys, "--wait", "30s")
	}

	// Handed over.
	n1 := reg.order()
	vc := vcard.New([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x80})
	_, remove := insert(t, ctx, addr, vc)
	code, out, stderr := personalise(n1)
	if code != 0 || !strings.Contains(out, "handed over") {
		t.Fatalf("personalise: exit %d, %s %s", code, out, stderr)
	}
	if reg.status(n1) != registry.StatusActive || reg.reads(n1) != 1 {
		t.Fatalf("card %s is %s after %d reads", n1, reg.status(n1), reg.reads(n1))
	}
	if got := identity(t, vc); got != n1 {
		t.Fatalf("the card holds number %s, want %s", got, n1)
	}
	// The registry refuses to wipe a card in use.
	code, _, stderr = deskCmd("wipe", "--reader", reader, "--keystore", keys, "--wait", "30s")
	if code != 1 || !strings.Contains(stderr, "in use") {
		t.Fatalf("wipe of an active card: exit %d, %s", code, stderr)
	}
	remove()

	// Pulled away half-way, then presented again.
	n2 := reg.order()
	vc2 := vcard.New([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x66, 0x80})
	torn := &tearing{Card: vc2, after: 30}
	slot, _ := insert(t, ctx, addr, torn)
	torn.slot.Store(slot)
	code, _, stderr = personalise(n2)
	if code != 1 || !strings.Contains(stderr, "Put the same card back") {
		t.Fatalf("card pulled away: exit %d, %s", code, stderr)
	}
	if reg.status(n2) != registry.StatusOrdered {
		t.Fatalf("card pulled away: the registry has it %s", reg.status(n2))
	}
	<-slot.Done()
	time.Sleep(900 * time.Millisecond)
	_, remove = insert(t, ctx, addr, vc2)
	if code, out, stderr := personalise(n2); code != 0 || reg.status(n2) != registry.StatusActive {
		t.Fatalf("presented again: exit %d, %s %s; card %s", code, out, stderr, reg.status(n2))
	}
	if got := identity(t, vc2); got != n2 {
		t.Fatalf("the card holds number %s, want %s", got, n2)
	}
	remove()

	// Another system's card: refused, unchanged.
	n3 := reg.order()
	vc3 := vcard.New([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x77, 0x80})
	theirs := []byte("another system!!")
	dc := desfire.New(vc3)
	if err := dc.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()); err != nil {
		t.Fatal(err)
	}
	if err := dc.ChangeKey(0, theirs, 7, nil); err != nil {
		t.Fatal(err)
	}
	vc3.Reset()
	_, remove = insert(t, ctx, addr, vc3)
	code, _, stderr = personalise(n3)
	if code != 1 || !strings.Contains(stderr, "another system") || reg.status(n3) != registry.StatusOrdered {
		t.Fatalf("foreign card: exit %d, %s; card %s", code, stderr, reg.status(n3))
	}
	remove()
	vc3.Reset()
	if err := desfire.New(vc3).AuthenticateAES(0, theirs); err != nil {
		t.Fatalf("the foreign card's key changed: %v", err)
	}
}

// identity reads the card number a virtual card holds.
func identity(t *testing.T, vc *vcard.Card) card.Number {
	t.Helper()
	vc.Reset()
	c := desfire.New(vc)
	if err := c.SelectApplication(card.AIDIdentification.Bytes()); err != nil {
		t.Fatal(err)
	}
	raw, err := c.ReadData(card.FileIdentity, 0, card.IdentitySize, desfire.CommPlain)
	if err != nil {
		t.Fatal(err)
	}
	var id card.Identity
	if err := id.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	return id.Number
}
