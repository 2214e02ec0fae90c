package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// move applies a status change and fails the test if it is refused.
func (e *env) move(n card.Number, to registry.Status) registry.Card {
	e.t.Helper()
	ch := registry.Change{To: to}
	switch to {
	case registry.StatusBlocked:
		ch.Reason = registry.ReasonBlockedByDesk
	case registry.StatusLost:
		ch.Reason = registry.ReasonLost
	case registry.StatusStolen:
		ch.Reason = registry.ReasonStolen
	}
	c, err := e.s.Transition(e.ctx, desk, n, ch)
	if err != nil {
		e.t.Fatalf("Transition(%s -> %s): %v", n, to, err)
	}
	return c
}

// cardIn returns a new card, of a new resident, in status st.
func (e *env) cardIn(st registry.Status) registry.Card {
	e.t.Helper()
	r := e.register()
	c, err := e.s.OrderCard(e.ctx, desk, r.ID)
	if err != nil {
		e.t.Fatalf("OrderCard: %v", err)
	}
	path := map[registry.Status][]registry.Status{
		registry.StatusOrdered:      nil,
		registry.StatusPersonalised: {registry.StatusPersonalised},
		registry.StatusActive:       {registry.StatusPersonalised, registry.StatusActive},
		registry.StatusBlocked:      {registry.StatusPersonalised, registry.StatusActive, registry.StatusBlocked},
		registry.StatusLost:         {registry.StatusPersonalised, registry.StatusActive, registry.StatusLost},
		registry.StatusStolen:       {registry.StatusPersonalised, registry.StatusActive, registry.StatusStolen},
		registry.StatusReplaced:     {registry.StatusPersonalised, registry.StatusActive, registry.StatusLost},
		registry.StatusExpired:      {registry.StatusPersonalised, registry.StatusActive},
	}[st]
	for _, to := range path {
		c = e.move(c.Number, to)
	}
	switch st {
	case registry.StatusReplaced:
		old, _, err := e.s.Replace(e.ctx, desk, c.Number, registry.Balance{})
		if err != nil {
			e.t.Fatalf("Replace: %v", err)
		}
		c = old
	case registry.StatusExpired:
		e.clock.Set(c.Expires.Time().Add(12 * time.Hour))
		c = e.move(c.Number, registry.StatusExpired)
		e.clock.Set(start)
	}
	if c.Status != st {
		e.t.Fatalf("card driven to %s is %s", st, c.Status)
	}
	return c
}

// testLifecycle tries every status change from every status and checks
// the store allows exactly what the lifecycle table allows.
func testLifecycle(t *testing.T, e *env) {
	for _, from := range registry.Statuses {
		for _, to := range registry.Statuses {
			if to == registry.StatusOrdered {
				continue // not a status change: a card is ordered for a resident
			}
			c := e.cardIn(from)
			evs := len(e.events())
			// After the card's expiry, so that "expired" is due.
			e.clock.Set(c.Expires.Time().Add(12 * time.Hour))
			var err error
			if to == registry.StatusReplaced {
				_, _, err = e.s.Replace(e.ctx, desk, c.Number, registry.Balance{})
			} else {
				ch := registry.Change{To: to}
				if to == registry.StatusBlocked || to == registry.StatusLost || to == registry.StatusStolen {
					ch.Reason = map[registry.Status]registry.Reason{registry.StatusBlocked: registry.ReasonFraud,
						registry.StatusLost: registry.ReasonLost, registry.StatusStolen: registry.ReasonStolen}[to]
				}
				_, err = e.s.Transition(e.ctx, desk, c.Number, ch)
			}
			e.clock.Set(start)
			allowed := registry.CanTransition(from, to)
			switch {
			case allowed && err != nil:
				t.Errorf("%s -> %s: %v; the lifecycle allows it", from, to, err)
			case !allowed && !errors.Is(err, registry.ErrTransition):
				t.Errorf("%s -> %s: %v; want ErrTransition", from, to, err)
			case !allowed:
				if !strings.Contains(err.Error(), string(from)) {
					t.Errorf("%s -> %s: error %q does not say the card is %s", from, to, err, from)
				}
				if n := len(e.events()); n != evs {
					t.Errorf("%s -> %s refused, but %d events were added", from, to, n-evs)
				}
				d, err := e.s.Resident(e.ctx, desk, c.ResidentID)
				if err != nil || d.Cards[len(d.Cards)-1].Status != from && d.Cards[0].Status != from {
					t.Errorf("%s -> %s refused, but the card is now %+v (%v)", from, to, d.Cards, err)
				}
			}
		}
	}
	if _, err := e.s.Transition(e.ctx, desk, 1001_0000_0000_0000+9, registry.Change{To: registry.StatusActive}); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Transition of an unknown card = %v; want ErrNotFound", err)
	}
	c := e.cardIn(registry.StatusActive)
	for _, ch := range []registry.Change{
		{To: "frozen"},
		{To: registry.StatusBlocked},
		{To: registry.StatusLost, Reason: registry.ReasonStolen},
		{To: registry.StatusActive, Reason: registry.ReasonFraud},
		{To: registry.StatusReplaced},
		{To: registry.StatusOrdered},
	} {
		if _, err := e.s.Transition(e.ctx, desk, c.Number, ch); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Transition(%+v) = %v; want ErrInvalid", ch, err)
		}
	}
}

func testExpireOnlyWhenDue(t *testing.T, e *env) {
	c := e.cardIn(registry.StatusActive)
	e.clock.Set(c.Expires.Time().Add(-12 * time.Hour))
	_, err := e.s.Transition(e.ctx, desk, c.Number, registry.Change{To: registry.StatusExpired})
	if !errors.Is(err, registry.ErrTransition) || !strings.Contains(err.Error(), c.Expires.String()) {
		t.Errorf("expiring a card the day before its expiry = %v; want ErrTransition naming %s", err, c.Expires)
	}
}

func testOneLiveCard(t *testing.T, e *env) {
	for _, st := range []registry.Status{registry.StatusOrdered, registry.StatusPersonalised, registry.StatusActive,
		registry.StatusBlocked, registry.StatusLost, registry.StatusStolen} {
		c := e.cardIn(st)
		before := e.state()
		_, err := e.s.OrderCard(e.ctx, desk, c.ResidentID)
		if !errors.Is(err, registry.ErrConflict) || strings.Contains(err.Error(), c.Number.String()) || !strings.Contains(err.Error(), string(st)) {
			t.Errorf("second card while the first is %s: %v; want ErrConflict saying its status, not its number %s", st, err, c.Number)
		}
		if after := e.state(); after != before {
			t.Errorf("refused order changed the store: %s -> %s", before, after)
		}
	}
	for _, st := range []registry.Status{registry.StatusReplaced, registry.StatusExpired} {
		c := e.cardIn(st)
		if st == registry.StatusReplaced {
			continue // its replacement is the live card
		}
		if _, err := e.s.OrderCard(e.ctx, desk, c.ResidentID); err != nil {
			t.Errorf("new card after the old one %s: %v", st, err)
		}
	}
	if _, err := e.s.OrderCard(e.ctx, desk, 999999); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("OrderCard for an unknown resident = %v; want ErrNotFound", err)
	}
}

func testOneLiveCardConcurrently(t *testing.T, e *env) {
	r := e.register()
	const n = 8
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		ok, clash int
	)
	for range n {
		wg.Go(func() {
			_, err := e.s.OrderCard(e.ctx, desk, r.ID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, registry.ErrConflict):
				clash++
			default:
				t.Errorf("concurrent OrderCard: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || clash != n-1 {
		t.Errorf("%d concurrent orders for one person: %d succeeded, %d conflicted; want 1 and %d", n, ok, clash, n-1)
	}
}

func testReplace(t *testing.T, e *env) {
	lost := e.cardIn(registry.StatusLost)
	if _, err := e.s.AddEntitlement(e.ctx, desk, pensioner(lost.ResidentID)); err != nil {
		t.Fatal(err)
	}
	before := e.state()
	cardKop := int64(12_345)
	for _, b := range []registry.Balance{
		{ClearingKop: -1},
		{ClearingKop: int64(card.PurseUpper) + 1},
		{ClearingKop: 100, CardKop: new(int64(-5))},
		{ClearingKop: 100, CardKop: new(int64(card.PurseUpper) + 1)},
	} {
		if _, _, err := e.s.Replace(e.ctx, desk, lost.Number, b); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Replace with balance %+v = %v; want ErrInvalid", b, err)
		}
	}
	active := e.cardIn(registry.StatusActive)
	before = e.state()
	if _, _, err := e.s.Replace(e.ctx, desk, active.Number, registry.Balance{ClearingKop: 500}); !errors.Is(err, registry.ErrTransition) ||
		!strings.Contains(err.Error(), "block it first") {
		t.Errorf("Replace of an active card = %v; want ErrTransition telling to block it first", err)
	}
	if after := e.state(); after != before {
		t.Errorf("refused replacements changed the store: %s -> %s", before, after)
	}

	old, repl, err := e.s.Replace(e.ctx, desk, lost.Number, registry.Balance{ClearingKop: 10_000, CardKop: &cardKop})
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if old.Status != registry.StatusReplaced || old.Reason != registry.ReasonReplaced || old.ReplacedBy != repl.Number {
		t.Errorf("old card after Replace = %+v; want replaced, by %s", old, repl.Number)
	}
	if repl.Status != registry.StatusOrdered || repl.ResidentID != lost.ResidentID || repl.Replaces != lost.Number ||
		repl.CarriedKop != cardKop || repl.BalanceSource != registry.BalanceFromCard || repl.Number == lost.Number ||
		!repl.Number.Valid() || repl.Number.Issuer() != Issuer {
		t.Errorf("replacement = %+v; want an ordered card of the same resident carrying the card's %d kop", repl, cardKop)
	}
	data, err := e.s.CardData(e.ctx, desk, repl.Number)
	if err != nil || data.PurseKop != cardKop || len(data.Entitlements) != 1 || data.Entitlements[0].Category != registry.CategoryPensioner {
		t.Errorf("replacement's card data = %+v, %v; want the carried balance and the resident's entitlement", data, err)
	}
	evs := e.events()
	if a, b := evs[len(evs)-2], evs[len(evs)-1]; a.Card != lost.Number || a.Status != registry.StatusReplaced || a.ReplacedBy != repl.Number ||
		b.Card != repl.Number || b.Status != registry.StatusOrdered || b.Replaces != lost.Number {
		t.Errorf("events of a replacement = %+v, %+v", a, b)
	}
	if _, _, err := e.s.Replace(e.ctx, desk, lost.Number, registry.Balance{}); !errors.Is(err, registry.ErrTransition) {
		t.Errorf("second Replace of the same card = %v; want ErrTransition", err)
	}

	// Without the card, clearing's figure is carried.
	stolen := e.cardIn(registry.StatusStolen)
	_, repl, err = e.s.Replace(e.ctx, desk, stolen.Number, registry.Balance{ClearingKop: 4_200})
	if err != nil || repl.CarriedKop != 4_200 || repl.BalanceSource != registry.BalanceFromClearing {
		t.Errorf("Replace without the card = %+v, %v; want clearing's 4200 kop", repl, err)
	}
}

func testPersonalisation(t *testing.T, e *env) {
	c := e.cardIn(registry.StatusOrdered)
	x, err := e.s.AddEntitlement(e.ctx, desk, pensioner(c.ResidentID))
	if err != nil {
		t.Fatal(err)
	}
	old := pensioner(c.ResidentID)
	old.ValidFrom, old.ValidTo, old.Category = registry.Date{Year: 2020, Month: 1, Day: 1}, registry.Date{Year: 2025, Month: 12, Day: 31}, registry.CategoryStudent
	if _, err := e.s.AddEntitlement(e.ctx, desk, old); err != nil {
		t.Fatal(err)
	}
	audits := e.auditCount()
	if _, err := e.s.CardData(e.ctx, as(deskActor, ""), c.Number); !errors.Is(err, registry.ErrNoPurpose) {
		t.Errorf("CardData without a purpose = %v; want ErrNoPurpose (it names the holder and their benefits)", err)
	}
	if _, err := e.s.CardData(e.ctx, as(financeActor, "curious"), c.Number); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("CardData as finance = %v; want ErrForbidden", err)
	}
	if e.auditCount() != audits {
		t.Errorf("a refused CardData wrote to the audit log")
	}
	data, err := e.s.CardData(e.ctx, desk, c.Number)
	if err != nil {
		t.Fatalf("CardData: %v", err)
	}
	if e.auditCount() != audits+1 {
		t.Errorf("CardData left %d audit entries; want one (it names the holder and their benefits)", e.auditCount()-audits)
	}
	st, err := e.s.CardState(e.ctx, c.Number)
	if err != nil || st != (registry.CardState{Number: c.Number, Status: c.Status, Issued: c.Issued, Expires: c.Expires}) {
		t.Errorf("CardState = %+v, %v", st, err)
	}
	if e.auditCount() != audits+1 {
		t.Errorf("CardState wrote to the audit log; it holds no personal data")
	}
	if data.Number != c.Number || data.HolderRef != c.ResidentID || data.Issued != c.Issued || data.Expires != c.Expires ||
		len(data.Entitlements) != 1 || data.Entitlements[0] != x.ForCard() {
		t.Errorf("CardData = %+v; want the card's validity and only the entitlement that has not ended", data)
	}
	p, err := e.s.Personalisation(e.ctx, desk, c.Number)
	if err != nil {
		t.Fatalf("Personalisation: %v", err)
	}
	d, err := e.s.Resident(e.ctx, desk, c.ResidentID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Holder.Name != d.Resident.Name || p.Holder.BirthDate != d.Resident.BirthDate || p.Card.Number != data.Number {
		t.Errorf("Personalisation = %+v; want the card data and the holder's name and birth date", p)
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: c.ResidentID})
	if err != nil || countAction(es, "read personalisation data") != 1 {
		t.Errorf("audit after a personalisation read = %+v, %v", es, err)
	}
	// The card files build from it.
	if _, err := p.Card.Identity(); err != nil {
		t.Errorf("Identity: %v", err)
	}
	contract, err := p.Card.Contract()
	if err != nil || contract.Entitlements[0].Category != registry.CategoryPensioner || contract.Entitlements[0].Limit != 50 ||
		contract.Entitlements[0].Funding != card.FundingState {
		t.Errorf("Contract = %+v, %v", contract, err)
	}
	if h, err := p.CardHolder(); err != nil || h.RegistryRef != uint64(c.ResidentID) {
		t.Errorf("CardHolder = %v, %v", h, err)
	}

	// A third current entitlement does not fit on a card.
	for _, cat := range []uint16{registry.CategoryVeteran, registry.CategoryDisability} {
		y := pensioner(c.ResidentID)
		y.Category = cat
		if _, err := e.s.AddEntitlement(e.ctx, desk, y); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.s.Personalisation(e.ctx, desk, c.Number); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("Personalisation with 3 current entitlements = %v; want ErrConflict", err)
	}
	active := e.cardIn(registry.StatusActive)
	if _, err := e.s.Personalisation(e.ctx, desk, active.Number); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("Personalisation of an active card = %v; want ErrConflict", err)
	}
	if _, err := e.s.Personalisation(e.ctx, as(financeActor, "x"), c.Number); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("Personalisation for finance = %v; want ErrForbidden", err)
	}
}

func testCardEvents(t *testing.T, e *env) {
	bl, err := e.s.Blocked(e.ctx)
	if err != nil || bl.Version != 0 || len(bl.Cards) != 0 {
		t.Fatalf("Blocked on an empty store = %+v, %v; want version 0 and no card", bl, err)
	}
	r := e.register()
	c, err := e.s.OrderCard(e.ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.move(c.Number, registry.StatusPersonalised)
	e.move(c.Number, registry.StatusActive)
	if _, err := e.s.Transition(e.ctx, desk, c.Number, registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonFraud, Note: "inspector report 12"}); err != nil {
		t.Fatal(err)
	}
	stolen := e.cardIn(registry.StatusStolen)

	evs := e.events()
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d; want 1, 2, 3... without gaps", i, ev.Seq)
		}
	}
	want := []registry.Status{registry.StatusOrdered, registry.StatusPersonalised, registry.StatusActive, registry.StatusBlocked}
	for i, st := range want {
		if evs[i].Card != c.Number || evs[i].Status != st || evs[i].Kind != registry.EventStatus || !evs[i].At.Equal(start) {
			t.Errorf("event %d = %+v; want card %s %s at %v", i+1, evs[i], c.Number, st, start)
		}
	}
	if evs[3].Reason != registry.ReasonFraud || evs[3].Expires != c.Expires || evs[3].Issued != c.Issued {
		t.Errorf("block event = %+v; want reason fraud and the card's validity", evs[3])
	}
	page, err := e.s.CardEvents(e.ctx, 2, 1)
	if err != nil || len(page) != 1 || page[0].Seq != 3 {
		t.Errorf("CardEvents(since 2, limit 1) = %+v, %v; want event 3", page, err)
	}
	if _, err := e.s.CardEvents(e.ctx, 0, 0); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("CardEvents with limit 0 = %v; want ErrInvalid", err)
	}
	// No personal data leaves in events.
	js, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{r.Name, r.RegistryNumber, r.Contact, "resident"} {
		if strings.Contains(string(js), secret) {
			t.Errorf("card events carry %q: %s", secret, js)
		}
	}
	if !strings.Contains(string(js), `"card":"`+c.Number.String()+`"`) {
		t.Errorf("card events do not carry card numbers as 16-digit strings: %s", js)
	}

	bl, err = e.s.Blocked(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bl.Version != evs[len(evs)-1].Seq || len(bl.Cards) != 2 {
		t.Fatalf("Blocked = %+v; want version %d and 2 cards", bl, evs[len(evs)-1].Seq)
	}
	byNum := map[card.Number]registry.BlockedCard{}
	for _, b := range bl.Cards {
		byNum[b.Card] = b
	}
	if b := byNum[c.Number]; b.Reason != registry.ReasonFraud || b.Status != registry.StatusBlocked {
		t.Errorf("blocked card %s listed as %+v; want fraud", c.Number, b)
	}
	if b := byNum[stolen.Number]; b.Reason != registry.ReasonStolen || b.Status != registry.StatusStolen {
		t.Errorf("stolen card %s listed as %+v", stolen.Number, b)
	}
	if bl.Cards[0].Card > bl.Cards[1].Card {
		t.Errorf("blocked cards not in ascending order: %+v", bl.Cards)
	}
	// Unblocking takes the card off the list and the version grows.
	e.move(c.Number, registry.StatusActive)
	bl2, err := e.s.Blocked(e.ctx)
	if err != nil || bl2.Version <= bl.Version || len(bl2.Cards) != 1 || bl2.Cards[0].Card != stolen.Number {
		t.Errorf("after unblocking, Blocked = %+v, %v; want only the stolen card and a higher version", bl2, err)
	}
	if _, err := e.s.CardState(e.ctx, 1234); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("CardState of an unknown card = %v; want ErrNotFound", err)
	}
}

func testConcurrentWrites(t *testing.T, e *env) {
	const n = 6
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = e.register().ID
	}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			c, err := e.s.OrderCard(e.ctx, desk, id)
			if err != nil {
				t.Errorf("OrderCard(%d): %v", id, err)
				return
			}
			for _, to := range []registry.Status{registry.StatusPersonalised, registry.StatusActive} {
				if _, err := e.s.Transition(e.ctx, desk, c.Number, registry.Change{To: to}); err != nil {
					t.Errorf("Transition: %v", err)
				}
			}
			if _, err := e.s.AddEntitlement(e.ctx, desk, pensioner(id)); err != nil {
				t.Errorf("AddEntitlement: %v", err)
			}
			if _, err := e.s.Resident(e.ctx, desk, id); err != nil {
				t.Errorf("Resident: %v", err)
			}
		})
	}
	wg.Wait()
	evs := e.events()
	if len(evs) != 4*n {
		t.Fatalf("%d events, want %d", len(evs), 4*n)
	}
	numbers := map[card.Number]bool{}
	for i, ev := range evs {
		if ev.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d; want gap-free", i, ev.Seq)
		}
		numbers[ev.Card] = true
	}
	if len(numbers) != n {
		t.Errorf("%d distinct card numbers for %d cards", len(numbers), n)
	}
}

func testTokens(t *testing.T, e *env) {
	r := e.register()
	for _, actor := range []registry.Actor{deskActor, {User: "ivan", Role: registry.RoleResident, Resident: r.ID},
		{User: "clearing", Role: registry.RoleService}} {
		secret, tok, err := registry.NewToken(actor, start)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.s.AddToken(e.ctx, tok); err != nil {
			t.Fatalf("AddToken(%+v): %v", actor, err)
		}
		got, err := e.s.Authenticate(e.ctx, registry.HashToken(secret))
		if err != nil || got.Actor != actor || got.ID != registry.TokenID(tok.Hash) || !got.Expires.Equal(tok.Expires) {
			t.Errorf("Authenticate = %+v, %v; want %+v", got, err, actor)
		}
		if err := e.s.AddToken(e.ctx, tok); !errors.Is(err, registry.ErrDuplicate) {
			t.Errorf("AddToken twice = %v; want ErrDuplicate", err)
		}
	}
	if _, err := e.s.Authenticate(e.ctx, registry.HashToken("rgt_unknown")); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("Authenticate(unknown) = %v; want ErrUnauthenticated", err)
	}
	_, tok, err := registry.NewToken(registry.Actor{User: "ghost", Role: registry.RoleResident, Resident: r.ID + 100}, start)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.AddToken(e.ctx, tok); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("AddToken for an unknown resident = %v; want ErrNotFound", err)
	}
	if _, _, err := registry.NewToken(registry.Actor{User: "x", Role: registry.RoleDesk, Resident: 4}, start); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("NewToken for staff with a resident id = %v; want ErrInvalid", err)
	}
}

func testReopen(t *testing.T, e *env) {
	c := e.cardIn(registry.StatusLost)
	evs := e.events()
	audits := e.auditCount()
	e.reopen()
	if got := e.events(); fmt.Sprint(got) != fmt.Sprint(evs) {
		t.Errorf("events after reopen = %v; want %v", got, evs)
	}
	if got := e.auditCount(); got != audits {
		t.Errorf("%d audit entries after reopen, want %d", got, audits)
	}
	// Serials continue: a replacement after the restart gets a new number.
	_, repl, err := e.s.Replace(e.ctx, desk, c.Number, registry.Balance{})
	if err != nil || repl.Number == c.Number {
		t.Fatalf("Replace after reopen = %+v, %v", repl, err)
	}
}

// testResidentBlocksOwnCard: a resident blocks their own lost card, the
// block is theirs in the audit log and in the blocklist; another's card,
// or a block for any other reason, is refused with nothing written.
func testResidentBlocksOwnCard(t *testing.T, e *env) {
	mine, theirs := e.cardIn(registry.StatusActive), e.cardIn(registry.StatusActive)
	me := residentOf(mine.ResidentID)
	me.Purpose = "lost card, blocked by its holder"

	before := e.state()
	for name, try := range map[string]struct {
		n    card.Number
		ch   registry.Change
		want error
	}{
		"another's card":  {theirs.Number, registry.Change{To: registry.StatusLost, Reason: registry.ReasonLost}, registry.ErrNotFound},
		"an unknown card": {card.Number(9999999999999995), registry.Change{To: registry.StatusLost, Reason: registry.ReasonLost}, registry.ErrNotFound},
		"fraud":           {mine.Number, registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonFraud}, registry.ErrForbidden},
		"a plain block":   {mine.Number, registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonBlockedByDesk}, registry.ErrForbidden},
		"an unblock":      {mine.Number, registry.Change{To: registry.StatusActive}, registry.ErrForbidden},
		"lost as stolen":  {mine.Number, registry.Change{To: registry.StatusStolen, Reason: registry.ReasonLost}, registry.ErrForbidden},
	} {
		_, err := e.s.Transition(e.ctx, me, try.n, try.ch)
		if !errors.Is(err, try.want) {
			t.Errorf("%s: %v, want %v", name, err, try.want)
		}
		if errors.Is(err, registry.ErrNotFound) && strings.Contains(err.Error(), "resident") {
			t.Errorf("%s: the refusal names the card's holder: %v", name, err)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("refused own blocks changed the registry:\n%s\n%s", before, after)
	}

	c, err := e.s.Transition(e.ctx, me, mine.Number, registry.Change{To: registry.StatusLost, Reason: registry.ReasonLost, Note: "lost on the tram"})
	if err != nil || c.Status != registry.StatusLost {
		t.Fatalf("own block: %+v, %v", c, err)
	}
	bl, err := e.s.Blocked(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, b := range bl.Cards {
		found = found || b.Card == mine.Number
	}
	if !found {
		t.Errorf("the blocklist %+v lacks the card the resident blocked", bl)
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: mine.ResidentID})
	if err != nil {
		t.Fatal(err)
	}
	last := es[len(es)-1]
	if last.User != me.Actor.User || last.Role != registry.RoleResident || last.Purpose != me.Purpose || last.Action != "card active -> lost" {
		t.Errorf("audit of the own block: %+v", last)
	}
	// Once lost, the card is the desk's to replace.
	if _, err := e.s.Transition(e.ctx, me, mine.Number, registry.Change{To: registry.StatusStolen, Reason: registry.ReasonStolen}); !errors.Is(err, registry.ErrTransition) {
		t.Errorf("stolen after lost: %v, want ErrTransition", err)
	}
}
