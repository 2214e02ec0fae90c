package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/publish"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
)

// validatorList is a validator's hotlist after it fetched what the
// registry publishes now: a publisher over the fixture's registry, as
// transit registry serve runs it, and a validator's holder that checks
// the signature before it takes the list.
type validatorList struct {
	pub  *publish.Hotlists
	hold *hotlist.Holder
	keys hotlist.KeyLookup
}

func newValidatorList(t *testing.T, f *fixture) *validatorList {
	t.Helper()
	ctx := context.Background()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	must(t, "keystore", err)
	t.Cleanup(func() { ks.Close() })
	info, err := ks.Generate(ctx, hsm.LabelSignHotlist, hsm.KindSigning)
	must(t, "hotlist key", err)
	signer, err := ks.Signer(ctx, info)
	must(t, "signer", err)
	keys, err := hotlist.HSMKeys(ctx, ks)
	must(t, "keys", err)
	pub, err := publish.Open(ctx, f.reg, publish.Options{Dir: t.TempDir(), Signer: signer, KeyVersion: info.Version, Keys: keys,
		CheckEvery: publish.DefaultCheckEvery, Log: slog.New(slog.DiscardHandler)})
	must(t, "publisher", err)
	hold, err := hotlist.Open(ctx, hotlist.Config{Dir: t.TempDir()}, keys)
	must(t, "validator's hotlist", err)
	return &validatorList{pub: pub, hold: hold, keys: keys}
}

// update is a validator's poll: the newest list after the one it holds.
// It refreshes the publisher first, as a poll after DefaultCheckEvery
// does.
func (v *validatorList) update(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	_, err := v.pub.Refresh(ctx)
	must(t, "publish", err)
	file, err := v.pub.Get(ctx, v.hold.Version())
	must(t, "fetch the hotlist", err)
	if file.NotModified {
		return
	}
	_, err = v.hold.Apply(ctx, file.Data, v.keys)
	must(t, "apply the hotlist", err)
}

// refuses reports whether the validator's decision refuses every ride
// of card n: the hotlist lists it.
func (v *validatorList) refuses(n card.Number) bool { return v.hold.Listing(uint64(n)) == fare.Listed }

// TestResidentBlocksOwnCard: signed in, a resident blocks their lost
// card after a confirmation; the block is theirs in the audit log and
// the next hotlist lists the card. Another's card, a card that does not
// exist and a reason only a desk gives are refused with nothing written.
func TestResidentBlocksOwnCard(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	vl := newValidatorList(t, f)
	vl.update(t)
	if vl.refuses(f.aliceCard.Number) {
		t.Fatal("the first hotlist lists Alice's card")
	}
	alice, secret := f.login(aliceUser)
	own := "/me/cards/" + f.aliceCard.Number.String() + "/block"
	me := alice.get("/me").want(t, http.StatusOK, "own page")
	for _, want := range []string{`action="` + own + `"`, `id="block-` + f.aliceCard.Number.String() + `"`} {
		if !strings.Contains(me.body, want) {
			t.Errorf("the own page lacks %q", want)
		}
	}
	if strings.Contains(me.body, f.bobCard.Number.String()) {
		t.Error("Alice's page shows Bob's card")
	}

	events := func() int {
		t.Helper()
		evs, err := f.reg.CardEvents(f.ctx, 0, 1000)
		must(t, "card events", err)
		return len(evs)
	}
	changes := func() []string {
		t.Helper()
		es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{})
		must(t, "audit", err)
		var out []string
		for _, e := range es {
			if strings.HasPrefix(e.Action, "card ") {
				out = append(out, fmt.Sprintf("%s %s %s", e.User, e.Record, e.Action))
			}
		}
		return out
	}
	beforeEvents, beforeChanges := events(), len(changes())
	bob := "/me/cards/" + f.bobCard.Number.String() + "/block"
	for _, try := range []struct {
		what, path string
		form       url.Values
		status     int
		says       string
	}{
		{"Bob's card", bob, url.Values{"reason": {"lost"}}, http.StatusNotFound, "You have no such card"},
		{"Bob's card, confirmed", bob, url.Values{"reason": {"lost"}, "confirm": {"block " + f.bobCard.Number.String()}}, http.StatusNotFound, "You have no such card"},
		{"no such card", "/me/cards/9999999999999995/block", url.Values{"reason": {"stolen"}, "confirm": {"block 9999999999999995"}}, http.StatusNotFound, "You have no such card"},
		{"not a card number", "/me/cards/12ab/block", url.Values{"reason": {"lost"}}, http.StatusNotFound, ""},
		{"a desk's reason", own, url.Values{"reason": {"fraud"}, "confirm": {"block " + f.aliceCard.Number.String()}}, http.StatusBadRequest, "lost or stolen"},
		{"no reason", own, url.Values{"confirm": {"block " + f.aliceCard.Number.String()}}, http.StatusBadRequest, "lost or stolen"},
	} {
		try.form.Set("csrf", secret)
		r := alice.post(try.path+"?lang=en", try.form).want(t, try.status, try.what)
		if !strings.Contains(r.body, try.says) {
			t.Errorf("%s: the refusal does not say %q:\n%s", try.what, try.says, r.body)
		}
		if strings.Contains(r.body, f.bob.Name) {
			t.Errorf("%s: the refusal names Bob", try.what)
		}
	}
	if n := events(); n != beforeEvents {
		t.Errorf("refused blocks wrote %d card events", n-beforeEvents)
	}
	if c := changes(); len(c) != beforeChanges {
		t.Errorf("refused blocks are in the audit log: %q", c[beforeChanges:])
	}
	for _, c := range []registry.Card{f.aliceCard, f.bobCard} {
		if s, err := f.reg.CardState(f.ctx, c.Number); err != nil || s.Status != registry.StatusActive {
			t.Fatalf("card %s after refused blocks: %v, %v", c.Number, s.Status, err)
		}
	}

	// The block asks first, and names the card and its holder.
	ask := alice.post(own+"?lang=en", url.Values{"csrf": {secret}, "reason": {"lost"}}).want(t, http.StatusOK, "own block, unconfirmed")
	grouped := strings.ReplaceAll(f.aliceCard.Number.Grouped(), " ", "\u00a0")
	for _, want := range []string{"Your card " + grouped + " will be blocked: lost.", f.alice.Name, "cannot be unblocked",
		`name="confirm" value="block ` + f.aliceCard.Number.String() + `"`} {
		if !strings.Contains(ask.body, want) {
			t.Errorf("the confirmation lacks %q:\n%s", want, ask.body)
		}
	}
	if n := events(); n != beforeEvents {
		t.Fatal("an unconfirmed block wrote a card event")
	}
	r := alice.post(own, url.Values{"csrf": {secret}, "reason": {"lost"}, "confirm": {"block " + f.aliceCard.Number.String()}}).
		want(t, http.StatusSeeOther, "own block")
	page := alice.get(r.header.Get("Location")+"&lang=en").want(t, http.StatusOK, "own page after the block")
	if !strings.Contains(page.body, "Card "+grouped+" is blocked") {
		t.Errorf("no notice of the block:\n%s", page.body)
	}
	if s, err := f.reg.CardState(f.ctx, f.aliceCard.Number); err != nil || s.Status != registry.StatusLost {
		t.Fatalf("Alice's card after her block: %v, %v; want lost", s.Status, err)
	}
	c := changes()
	if want := fmt.Sprintf("%s card/%s card active -> lost", registry.ResidentUser(f.alice.ID), f.aliceCard.Number); len(c) != beforeChanges+1 || c[len(c)-1] != want {
		t.Errorf("audit of the own block: %q, want %q last", c, want)
	}
	// Blocking it again says it is blocked already.
	alice.post(own+"?lang=en", url.Values{"csrf": {secret}, "reason": {"stolen"}, "confirm": {"block " + f.aliceCard.Number.String()}}).
		want(t, http.StatusConflict, "block a lost card again")

	vl.update(t)
	if !vl.refuses(f.aliceCard.Number) {
		t.Error("the next hotlist does not list the card Alice blocked")
	}
	if vl.refuses(f.bobCard.Number) {
		t.Error("the next hotlist lists Bob's card")
	}
	// Staff cannot use the resident's form.
	desk, deskSecret := f.login(deskUser)
	desk.post(bob, url.Values{"csrf": {deskSecret}, "reason": {"lost"}, "confirm": {"block " + f.bobCard.Number.String()}}).
		want(t, http.StatusForbidden, "the desk on a resident's form")
}
