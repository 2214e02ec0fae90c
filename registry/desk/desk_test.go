package desk_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/desk"
	"github.com/citycard/transit/registry/internal/fixture"
	"github.com/citycard/transit/simulator/vcard"
)

const purpose = "card issue, ticket 4711"

// reader is a desk reader with an in-process virtual card on it (or
// none); it counts how often the desk waited for a card.
type reader struct {
	tr    apdu.Transport
	uid   []byte
	waits int
}

func on(c *vcard.Card) *reader { return &reader{tr: c, uid: c.UID()} }

func (r *reader) WaitCard(ctx context.Context) (desk.Card, error) {
	r.waits++
	if r.tr == nil {
		return nil, errors.New("no card on the test reader")
	}
	return conn{r}, nil
}

type conn struct{ r *reader }

func (c conn) Transmit(cmd []byte) ([]byte, error) { return c.r.tr.Transmit(cmd) }
func (c conn) UID() ([]byte, error)                { return c.r.uid, nil }
func (c conn) Close() error                        { return nil }

// counter counts APDUs.
type counter struct {
	tr apdu.Transport
	n  int
}

func (c *counter) Transmit(cmd []byte) ([]byte, error) { c.n++; return c.tr.Transmit(cmd) }

// newCard is a blank virtual card with a UID of its own.
func newCard(t *testing.T) *vcard.Card {
	t.Helper()
	r := rand.Uint32()
	return vcard.New([]byte{0x04, byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24), 0x60, 0x80})
}

type env struct {
	t    *testing.T
	reg  *fixture.Registry
	keys *cardkey.Source // the issuer's: every role's master
}

func newEnv(t *testing.T, kind fixture.Kind) *env {
	t.Helper()
	return &env{t: t, reg: fixture.Open(t, kind, nil), keys: fixture.CardKeys(t, hsm.Roles...)}
}

func client(t *testing.T, reg *fixture.Registry, role registry.Role) *desk.Client {
	t.Helper()
	c, err := desk.NewClient(reg.Server.URL, reg.Tokens[role], nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withKeys is a desk with a desk staff member's token and the issuer's
// keys.
func (e *env) withKeys() *desk.Desk {
	return &desk.Desk{Registry: client(e.t, e.reg, registry.RoleDesk), Keys: e.keys, Log: slog.New(slog.DiscardHandler)}
}

// holderName is the name the registry holds for card c's holder.
func (e *env) holderName(c registry.Card) string {
	e.t.Helper()
	d, err := e.reg.Store.Resident(context.Background(), fixture.Desk, c.ResidentID)
	if err != nil {
		e.t.Fatal(err)
	}
	return d.Resident.Name
}

func (e *env) status(n card.Number, want registry.Status) {
	e.t.Helper()
	if got := e.reg.Status(n); got != want {
		e.t.Fatalf("card %s is %s in the registry, want %s", n, got, want)
	}
}

// TestIssueBlockReplace is a desk's day: personalise a card and hand it
// over; the holder loses it; block it, read its balance, replace it, and
// personalise the replacement with the balance carried.
func TestIssueBlockReplace(t *testing.T) {
	for _, kind := range fixture.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, kind)
			d := e.withKeys()
			a := e.reg.Card(registry.StatusOrdered)
			vc := newCard(t)
			got, err := d.Personalise(ctx, on(vc), desk.Request{Number: a.Number, Purpose: purpose, HandOver: true})
			if err != nil {
				t.Fatal(err)
			}
			if got.Number != a.Number || got.Status != registry.StatusActive || !slices.Equal(got.UID, vc.UID()) {
				t.Fatalf("Personalise = %+v", got)
			}
			e.status(a.Number, registry.StatusActive)
			held := fixture.ReadCard(t, vc, e.keys)
			if held.Number != a.Number || held.Holder != e.holderName(a) || held.Category != registry.CategoryPensioner || held.Purse != 0 {
				t.Fatalf("card holds %+v", held)
			}
			// The read of the holder's data is audited, with the purpose.
			audited := false
			for _, en := range e.reg.Audit(a.Number) {
				audited = audited || (en.User == "desk-user" && en.Action == "read personalisation data" && en.Purpose == purpose)
			}
			if !audited {
				t.Fatalf("no audit entry of the desk's read: %+v", e.reg.Audit(a.Number))
			}

			// The holder tops it up, then loses it.
			topUp(t, vc, e.keys, 1250)
			usable(t, vc, e.keys, 1250)
			if _, err := d.Block(ctx, a.Number, registry.ReasonLost, "holder called"); err != nil {
				t.Fatal(err)
			}
			e.status(a.Number, registry.StatusLost)
			if _, err := d.Block(ctx, a.Number, "misplaced", ""); !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("block with an unknown reason: %v", err)
			}
			// Found again at the desk: wiping it is refused, its balance is read.
			if _, err := d.Wipe(ctx, on(vc)); !errors.Is(err, desk.ErrInUse) {
				t.Fatalf("wipe of a lost card: %v, want ErrInUse", err)
			}
			if _, err := d.ReadBalance(ctx, on(vc), e.reg.Card(registry.StatusOrdered).Number); !errors.Is(err, desk.ErrWrongCard) {
				t.Fatalf("balance of the wrong card: %v, want ErrWrongCard", err)
			}
			bal, err := d.ReadBalance(ctx, on(vc), a.Number)
			if err != nil || bal != 1250 {
				t.Fatalf("balance %d, %v; want 1250", bal, err)
			}
			// Clearing has not seen the top-up yet; the card's figure wins.
			old, repl, err := d.Replace(ctx, a.Number, registry.Balance{ClearingKop: 0, CardKop: &bal})
			if err != nil {
				t.Fatal(err)
			}
			if old.Status != registry.StatusReplaced || repl.Status != registry.StatusOrdered || repl.CarriedKop != 1250 || repl.Replaces != a.Number {
				t.Fatalf("replace: old %+v, new %+v", old, repl)
			}
			// The replaced card may now be wiped for re-use.
			if w, err := d.Wipe(ctx, on(vc)); err != nil || w.Number != a.Number || w.Status != registry.StatusReplaced {
				t.Fatalf("wipe of the replaced card: %+v, %v", w, err)
			}
			if _, err := desfire.New(vc).GetApplicationIDs(); err != nil {
				t.Fatal(err)
			}
			// The replacement carries the balance onto the new card.
			nc := newCard(t)
			if got, err := d.Personalise(ctx, on(nc), desk.Request{Number: repl.Number, Purpose: purpose}); err != nil || got.Status != registry.StatusPersonalised {
				t.Fatalf("personalise the replacement: %+v, %v", got, err)
			}
			if held := fixture.ReadCard(t, nc, e.keys); held.Purse != 1250 || held.Number != repl.Number {
				t.Fatalf("replacement holds %+v, want the carried 1250 kop", held)
			}
			if bal, err := d.ReadBalance(ctx, on(nc), repl.Number); err != nil || bal != 1250 {
				t.Fatalf("replacement balance %d, %v", bal, err)
			}
			// Handed over later.
			if c, err := d.Activate(ctx, repl.Number); err != nil || c.Status != registry.StatusActive {
				t.Fatalf("activate: %+v, %v", c, err)
			}
		})
	}
}

// topUp credits the purse with the top-up key, as a top-up point does.
func topUp(t *testing.T, vc *vcard.Card, src *cardkey.Source, kop int32) {
	t.Helper()
	k, err := src.Key(context.Background(), card.RoleTopUp, vc.UID(), card.AIDTransport, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := desfire.New(vc)
	if err := c.SelectApplication(card.AIDTransport.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthenticateAES(card.KeyTopUp, k.Value[:]); err != nil {
		t.Fatal(err)
	}
	if err := c.Credit(card.FilePurse, kop, desfire.CommMAC); err != nil {
		t.Fatal(err)
	}
	if err := c.CommitTransaction(); err != nil {
		t.Fatal(err)
	}
}

// usable checks that the card works for a validator: it authenticates
// with the validator key and reads the purse.
func usable(t *testing.T, vc *vcard.Card, src *cardkey.Source, want int64) {
	t.Helper()
	k, err := src.Key(context.Background(), card.RoleValidator, vc.UID(), card.AIDTransport, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := desfire.New(vc)
	if err := c.SelectApplication(card.AIDTransport.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := c.AuthenticateAES(card.KeyValidator, k.Value[:]); err != nil {
		t.Fatal(err)
	}
	if v, err := c.GetValue(card.FilePurse, desfire.CommMAC); err != nil || int64(v) != want {
		t.Fatalf("purse %d, %v; want %d", v, err, want)
	}
}

// TestTornCardResumes tears the card away at points all through the
// personalisation: the registry stays ordered, and presenting the card
// again finishes it.
func TestTornCardResumes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fixture.SQLite)
	d := e.withKeys()
	// How many APDUs a whole personalisation takes.
	probe := newCard(t)
	n0 := e.reg.Card(registry.StatusOrdered).Number
	ct := &counter{tr: probe}
	if _, err := d.Personalise(ctx, &reader{tr: ct, uid: probe.UID()}, desk.Request{Number: n0, Purpose: purpose}); err != nil {
		t.Fatal(err)
	}
	total := ct.n
	for _, tc := range []struct {
		after int
		lose  bool
	}{{1, false}, {total / 3, false}, {total / 2, true}, {total - 2, false}, {total - 1, true}} {
		t.Run(fmt.Sprintf("after %d of %d, answer lost %v", tc.after, total, tc.lose), func(t *testing.T) {
			n := e.reg.Card(registry.StatusOrdered).Number
			vc := newCard(t)
			torn := &vcard.Tear{Card: vc, After: tc.after, LoseResponse: tc.lose}
			_, err := d.Personalise(ctx, &reader{tr: torn, uid: vc.UID()}, desk.Request{Number: n, Purpose: purpose, HandOver: true})
			if !errors.Is(err, apdu.ErrCardRemoved) || !strings.Contains(err.Error(), "Put the same card back") {
				t.Fatalf("torn card: %v", err)
			}
			e.status(n, registry.StatusOrdered)
			if got, err := d.Personalise(ctx, on(vc), desk.Request{Number: n, Purpose: purpose, HandOver: true}); err != nil || got.Status != registry.StatusActive {
				t.Fatalf("presented again: %+v, %v", got, err)
			}
			if held := fixture.ReadCard(t, vc, e.keys); held.Number != n {
				t.Fatalf("card holds %+v", held)
			}
		})
	}
}

// failingRegistry fails the first status change, as a network error
// after the card was written would.
type failingRegistry struct {
	desk.Registry
	failed bool
}

func (f *failingRegistry) SetStatus(ctx context.Context, n card.Number, to registry.Status, note string) (registry.Card, error) {
	if !f.failed {
		f.failed = true
		return registry.Card{}, errors.New("connection reset")
	}
	return f.Registry.SetStatus(ctx, n, to, note)
}

func TestRegistryUpdateFailsAfterWrite(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fixture.SQLite)
	d := e.withKeys()
	d.Registry = &failingRegistry{Registry: d.Registry}
	n := e.reg.Card(registry.StatusOrdered).Number
	vc := newCard(t)
	if _, err := d.Personalise(ctx, on(vc), desk.Request{Number: n, Purpose: purpose}); err == nil || !strings.Contains(err.Error(), "written and verified") {
		t.Fatalf("registry update failed: %v", err)
	}
	e.status(n, registry.StatusOrdered)
	got, err := d.Personalise(ctx, on(vc), desk.Request{Number: n, Purpose: purpose})
	if err != nil || got.Status != registry.StatusPersonalised {
		t.Fatalf("run again: %+v, %v", got, err)
	}
	e.status(n, registry.StatusPersonalised)
	// And once more, now as a hand-over: the card is found done.
	if got, err := d.Personalise(ctx, on(vc), desk.Request{Number: n, Purpose: purpose, HandOver: true}); err != nil || got.Status != registry.StatusActive {
		t.Fatalf("hand over a personalised card: %+v, %v", got, err)
	}
}

// TestRefusedBeforeAnythingIsWritten: bad input leaves the registry and
// the card as they were, and where the registry can refuse, the reader is
// never used.
func TestRefusedBeforeAnythingIsWritten(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, fixture.SQLite)
	d := e.withKeys()
	ordered := e.reg.Card(registry.StatusOrdered).Number
	active := e.reg.Card(registry.StatusActive).Number
	unknown, _ := card.NewNumber(fixture.Issuer, 999_999)
	auditBefore := len(e.reg.Audit(ordered))

	for _, tc := range []struct {
		name string
		desk *desk.Desk
		n    card.Number
		req  func(*desk.Request)
		want error
	}{
		{"unknown card", d, unknown, nil, registry.ErrNotFound},
		{"card in use", d, active, nil, registry.ErrConflict},
		{"no purpose", d, ordered, func(r *desk.Request) { r.Purpose = "" }, registry.ErrNoPurpose},
		{"unknown token", &desk.Desk{Registry: badToken(t, e.reg), Keys: e.keys}, ordered, nil, registry.ErrUnauthenticated},
		{"finance token", &desk.Desk{Registry: client(t, e.reg, registry.RoleFinance), Keys: e.keys}, ordered, nil, registry.ErrForbidden},
		{"keys of a validator", &desk.Desk{Registry: d.Registry, Keys: fixture.CardKeys(t, hsm.RoleValidator)}, ordered, nil, hsm.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := on(newCard(t))
			req := desk.Request{Number: tc.n, Purpose: purpose}
			if tc.req != nil {
				tc.req(&req)
			}
			if _, err := tc.desk.Personalise(ctx, r, req); !errors.Is(err, tc.want) {
				t.Fatalf("Personalise: %v; want %v", err, tc.want)
			}
			if r.waits != 0 {
				t.Fatal("the desk waited for a card")
			}
		})
	}
	e.status(ordered, registry.StatusOrdered)
	e.status(active, registry.StatusActive)
	if n := len(e.reg.Audit(ordered)); n != auditBefore {
		t.Fatalf("refused requests read the holder's data: %d audit entries, had %d", n, auditBefore)
	}

	t.Run("card of another system", func(t *testing.T) {
		vc := newCard(t)
		theirs := []byte("their PICC key!!")
		c := desfire.New(vc)
		if err := c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()); err != nil {
			t.Fatal(err)
		}
		if err := c.ChangeKey(0, theirs, 3, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Personalise(ctx, on(vc), desk.Request{Number: ordered, Purpose: purpose}); !errors.Is(err, issue.ErrForeignCard) {
			t.Fatalf("foreign card: %v", err)
		}
		e.status(ordered, registry.StatusOrdered)
		vc.Reset()
		c = desfire.New(vc)
		if err := c.AuthenticateAES(0, theirs); err != nil {
			t.Fatalf("the foreign card's key changed: %v", err)
		}
		if aids, err := c.GetApplicationIDs(); err != nil || len(aids) != 0 {
			t.Fatalf("the foreign card holds applications %v, %v", aids, err)
		}
		if _, err := d.Wipe(ctx, on(vc)); !errors.Is(err, issue.ErrForeignCard) {
			t.Fatalf("wipe of a foreign card: %v", err)
		}
	})
	t.Run("blank card with another system's application", func(t *testing.T) {
		vc := newCard(t)
		c := desfire.New(vc)
		if err := c.CreateApplication(desfire.AID{0x01, 0x02, 0x03}, 0x0F, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Personalise(ctx, on(vc), desk.Request{Number: ordered, Purpose: purpose}); !errors.Is(err, issue.ErrForeignCard) {
			t.Fatalf("card with a foreign application: %v", err)
		}
		vc.Reset() // out of the field: the desk's session ends
		if aids, err := desfire.New(vc).GetApplicationIDs(); err != nil || len(aids) != 1 {
			t.Fatalf("the foreign application is gone: %v, %v", aids, err)
		}
		e.status(ordered, registry.StatusOrdered)
	})
	t.Run("card personalised with other data", func(t *testing.T) {
		vc := newCard(t)
		first := e.reg.Card(registry.StatusOrdered).Number
		if _, err := d.Personalise(ctx, on(vc), desk.Request{Number: first, Purpose: purpose}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Personalise(ctx, on(vc), desk.Request{Number: ordered, Purpose: purpose}); !errors.Is(err, issue.ErrAlreadyPersonalised) ||
			!strings.Contains(err.Error(), "transit desk wipe") {
			t.Fatalf("card personalised as another: %v", err)
		}
		e.status(ordered, registry.StatusOrdered)
		if held := fixture.ReadCard(t, vc, e.keys); held.Number != first {
			t.Fatalf("the card changed: it holds %s", held.Number)
		}
		// Not yet handed over: the desk may wipe and re-issue it.
		if w, err := d.Wipe(ctx, on(vc)); err != nil || w.Number != first || w.Status != registry.StatusPersonalised {
			t.Fatalf("wipe: %+v, %v", w, err)
		}
		if _, err := d.Personalise(ctx, on(vc), desk.Request{Number: ordered, Purpose: purpose}); err != nil {
			t.Fatalf("personalise the wiped card: %v", err)
		}
		e.status(ordered, registry.StatusPersonalised)
	})
}

func badToken(t *testing.T, reg *fixture.Registry) *desk.Client {
	t.Helper()
	c, err := desk.NewClient(reg.Server.URL+"/v1/", "rgt_not-a-token", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct{ base, token string }{
		{"", "t"}, {"ftp://registry", "t"}, {"http://", "t"}, {"http://registry:8081", " "},
	} {
		if _, err := desk.NewClient(tc.base, tc.token, nil); err == nil {
			t.Errorf("NewClient(%q, %q) accepted", tc.base, tc.token)
		}
	}
}
