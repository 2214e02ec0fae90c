package publish_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/internal/fixture"
	"github.com/citycard/transit/registry/publish"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/update"
)

func keystore(t *testing.T, labels ...string) *hsm.Keystore {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	for _, l := range labels {
		if _, err := ks.Generate(context.Background(), l, hsm.KindSigning); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

// logBuffer collects a component's log for the test to look at.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// publisher opens a hotlist publisher over src, signing with ks's newest
// sign-hotlist key.
func publisher(t *testing.T, ks hsm.KeyManager, dir string, src publish.Source, now func() time.Time, tune func(*publish.Options)) *publish.Hotlists {
	t.Helper()
	ctx := context.Background()
	info, err := hsm.Resolve(ctx, ks, hsm.Ref{Label: hsm.LabelSignHotlist})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ks.Signer(ctx, info.Ref)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := hotlist.HSMKeys(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	opt := publish.Options{Dir: dir, Signer: signer, KeyVersion: info.Ref.Version, Keys: keys, Now: now,
		Log: slog.New(slog.DiscardHandler)}
	if tune != nil {
		tune(&opt)
	}
	p, err := publish.Open(ctx, src, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func verifyKeys(t *testing.T, ks hsm.KeyManager) hotlist.KeyLookup {
	t.Helper()
	keys, err := hotlist.HSMKeys(context.Background(), ks)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// fetcher is a validator's hotlist updater against the registry, with
// an empty hotlist of its own, signing its requests as a device.
func fetcher(t *testing.T, reg *fixture.Registry, keys hotlist.KeyLookup) *update.Fetcher {
	t.Helper()
	h, err := hotlist.Open(context.Background(), hotlist.Config{Dir: t.TempDir()}, keys)
	if err != nil {
		t.Fatal(err)
	}
	return &update.Fetcher{Base: reg.Server.URL + "/v1/validator", Hotlist: h, Keys: keys, Auth: reg.Device("bus-1")}
}

func block(t *testing.T, reg *fixture.Registry, n card.Number, reason registry.Reason) {
	t.Helper()
	if code, body := reg.Call(registry.RoleDesk, "POST", "/v1/cards/"+n.String()+"/block", `{"reason": "`+string(reason)+`"}`); code != http.StatusOK {
		t.Fatalf("block %s as %s: %d %s", n, reason, code, body)
	}
}

// once runs one validator poll and checks whether it applied a list.
func once(t *testing.T, f *update.Fetcher, wantNew bool) hotlist.Manifest {
	t.Helper()
	got, err := f.Once(context.Background())
	if err != nil {
		t.Fatalf("validator poll: %v", err)
	}
	if got != wantNew {
		t.Fatalf("validator poll applied a new list: %v, want %v (holding version %d)", got, wantNew, f.Hotlist.Version())
	}
	return f.Hotlist.Current().Manifest()
}

// sameAsRegistry checks that the validator's list is the registry's
// blocked cards, with their reasons.
func sameAsRegistry(t *testing.T, reg *fixture.Registry, h *hotlist.Holder) {
	t.Helper()
	bl, err := reg.Store.Blocked(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{}
	for _, b := range bl.Cards {
		want[uint64(b.Card)] = string(b.Reason)
	}
	got := map[uint64]string{}
	for c, r := range h.Current().All() {
		got[c] = r.String()
	}
	if !maps.Equal(got, want) {
		t.Fatalf("validator holds %v, the registry blocks %v", got, want)
	}
}

// TestBlockReachesValidator is the validator URL contract end to end: a
// card blocked through the API reaches a validator's hotlist through
// validator/update, first as a full list, then as deltas, and an
// unchanged list is answered with 304.
func TestBlockReachesValidator(t *testing.T) {
	for _, kind := range fixture.Kinds {
		t.Run(string(kind), func(t *testing.T) { testBlockReachesValidator(t, kind) })
	}
}

func testBlockReachesValidator(t *testing.T, kind fixture.Kind) {
	ctx := context.Background()
	ks := keystore(t, hsm.LabelSignHotlist)
	keys := verifyKeys(t, ks)
	var pub *publish.Hotlists
	reg := fixture.Open(t, kind, func(r *fixture.Registry) http.Handler {
		pub = publisher(t, ks, t.TempDir(), r.Store, r.Clock.Now, nil)
		return &publish.Handler{Hotlists: pub}
	})
	base := reg.Server.URL + "/v1/validator"
	a, b, c := reg.Card(registry.StatusActive), reg.Card(registry.StatusActive), reg.Card(registry.StatusActive)

	block(t, reg, a.Number, registry.ReasonLost)
	f := fetcher(t, reg, keys)
	m := once(t, f, true)
	if m.Kind != hotlist.KindFull {
		t.Fatalf("a validator without a list got a %s file", m.Kind)
	}
	if r, ok := f.Hotlist.Lookup(uint64(a.Number)); !ok || r != hotlist.ReasonLost {
		t.Fatalf("lost card %s: on the list %v, reason %v", a.Number, ok, r)
	}
	if f.Hotlist.Contains(uint64(b.Number)) {
		t.Fatalf("active card %s is on the list", b.Number)
	}
	sameAsRegistry(t, reg, f.Hotlist)
	// The version is the registry's card event sequence number.
	if bl, _ := reg.Store.Blocked(ctx); m.Version != bl.Version {
		t.Fatalf("hotlist version %d, registry's card events end at %d", m.Version, bl.Version)
	}

	v1 := m.Version
	block(t, reg, b.Number, registry.ReasonStolen)
	m = once(t, f, true)
	if m.Kind != hotlist.KindDelta || m.Base != v1 || m.Adds != 1 || m.Removes != 0 {
		t.Fatalf("second block: %s file %d→%d with %d adds and %d removes; want a delta from %d adding 1",
			m.Kind, m.Base, m.Version, m.Adds, m.Removes, v1)
	}
	if r, _ := f.Hotlist.Lookup(uint64(b.Number)); r != hotlist.ReasonStolen {
		t.Fatalf("stolen card %s has reason %v", b.Number, r)
	}
	sameAsRegistry(t, reg, f.Hotlist)

	// Nothing new: 304, and the validator keeps its list.
	v2 := m.Version
	once(t, f, false)
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/hotlist?since=%d", base, v2), nil)
	if err := f.Auth.Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("since the newest version: %s, want 304", resp.Status)
	}
	// Without the device's signature, nothing.
	if resp, err := http.Get(fmt.Sprintf("%s/hotlist?since=%d", base, v2)); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an unsigned request: %v, %v; want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	// A card event that changes no entry (a new card) publishes nothing.
	reg.Card(registry.StatusOrdered)
	once(t, f, false)

	// Blocked, then unblocked: the delta removes it.
	block(t, reg, c.Number, registry.ReasonFraud)
	once(t, f, true)
	if r, _ := f.Hotlist.Lookup(uint64(c.Number)); r != hotlist.ReasonFraud {
		t.Fatalf("fraud card %s has reason %v", c.Number, r)
	}
	if code, body := reg.Call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number.String()+"/status", `{"status": "active"}`); code != http.StatusOK {
		t.Fatalf("unblock: %d %s", code, body)
	}
	m = once(t, f, true)
	if m.Kind != hotlist.KindDelta || m.Removes != 1 || f.Hotlist.Contains(uint64(c.Number)) {
		t.Fatalf("unblocked card: %s file with %d removes; on the list: %v", m.Kind, m.Removes, f.Hotlist.Contains(uint64(c.Number)))
	}
	// A lost card replaced: same card, new reason.
	if code, body := reg.Call(registry.RoleDesk, "POST", "/v1/cards/"+a.Number.String()+"/replace", `{"clearing_balance_kop": 1500}`); code != http.StatusCreated {
		t.Fatalf("replace: %d %s", code, body)
	}
	once(t, f, true)
	if r, _ := f.Hotlist.Lookup(uint64(a.Number)); r != hotlist.ReasonReplaced {
		t.Fatalf("replaced card %s has reason %v", a.Number, r)
	}
	sameAsRegistry(t, reg, f.Hotlist)

	// A quiet day: after the refresh interval any card event brings a
	// new version, so validators can tell a quiet registry from a lost
	// link.
	before := f.Hotlist.Version()
	reg.Clock.Set(fixture.Start.Add(publish.DefaultRefresh + time.Minute))
	reg.Card(registry.StatusOrdered)
	m = once(t, f, true)
	if m.Kind != hotlist.KindDelta || m.Adds+m.Removes != 0 || m.Base != before || !m.Issued.Equal(reg.Clock.Now()) {
		t.Fatalf("refresh: %s %d→%d, %d changes, issued %v; want an empty delta from %d issued %v",
			m.Kind, m.Base, m.Version, m.Adds+m.Removes, m.Issued, before, reg.Clock.Now())
	}

	// A second validator starting now gets the same list in one file.
	g := fetcher(t, reg, keys)
	if m := once(t, g, true); m.Kind != hotlist.KindFull || g.Hotlist.Version() != f.Hotlist.Version() {
		t.Fatalf("new validator: %s version %d, want full %d", m.Kind, g.Hotlist.Version(), f.Hotlist.Version())
	}
	sameAsRegistry(t, reg, g.Hotlist)
	// Files signed with a key the validator does not hold are refused.
	other := fetcher(t, reg, verifyKeys(t, keystore(t, hsm.LabelSignHotlist)))
	if _, err := other.Once(ctx); !errors.Is(err, hotlist.ErrSignature) || other.Hotlist.Version() != 0 {
		t.Fatalf("validator with other keys: %v, version %d; want ErrSignature", err, other.Hotlist.Version())
	}
	// No token is needed, and the staff API still wants one.
	if code, _ := reg.Call("nobody", "GET", "/v1/cards/blocked", ""); code != http.StatusUnauthorized {
		t.Fatalf("staff API without a token: %d", code)
	}
}

// fakeSource is a registry whose blocked list the test scripts.
type fakeSource struct {
	mu sync.Mutex
	bl registry.Blocklist
}

func (s *fakeSource) set(version uint64, cards map[card.Number]registry.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bl = registry.Blocklist{Version: version}
	for _, n := range slices.Sorted(maps.Keys(cards)) {
		s.bl.Cards = append(s.bl.Cards, registry.BlockedCard{Card: n, Status: cards[n].Status(), Reason: cards[n]})
	}
}

func (s *fakeSource) Blocked(context.Context) (registry.Blocklist, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bl, nil
}

func (s *fakeSource) CardEvents(_ context.Context, since uint64, _ int) ([]registry.CardEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bl.Version > since {
		return []registry.CardEvent{{Seq: since + 1}}, nil
	}
	return nil, nil
}

func numbers(t *testing.T, n int) []card.Number {
	t.Helper()
	out := make([]card.Number, n)
	for i := range out {
		var err error
		if out[i], err = card.NewNumber(fixture.Issuer, uint64(1000+i*37)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

var reasons = append(slices.Clone(registry.BlockReasons), registry.ReasonReplaced)

// TestDeltasCompose publishes a random history and checks, the way a
// validator applies files, that the answer to every version published
// turns that version's list into the newest one.
func TestDeltasCompose(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t, hsm.LabelSignHotlist)
	keys := verifyKeys(t, ks)
	src := &fakeSource{}
	now := fixture.Start
	const keep = 25
	p := publisher(t, ks, t.TempDir(), src, func() time.Time { return now }, func(o *publish.Options) { o.MaxSteps = keep })
	rng := rand.New(rand.NewPCG(1, 2))
	universe := numbers(t, 60)
	cards := map[card.Number]registry.Reason{}
	fulls := map[uint64][]byte{} // every version published, as its full file
	var published []uint64
	version := uint64(0)
	deltas := 0
	for round := range 70 {
		version += 1 + uint64(rng.IntN(3))
		for range rng.IntN(6) {
			n := universe[rng.IntN(len(universe))]
			if _, ok := cards[n]; ok && rng.IntN(2) == 0 {
				delete(cards, n)
			} else {
				cards[n] = reasons[rng.IntN(len(reasons))]
			}
		}
		src.set(version, cards)
		now = now.Add(time.Minute)
		before := p.Version()
		did, err := p.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if did != (p.Version() == version) || (!did && p.Version() != before) {
			t.Fatalf("round %d: Refresh says %v, version %d→%d of %d", round, did, before, p.Version(), version)
		}
		if !did {
			continue // the list did not change: nothing published
		}
		full, err := p.Get(ctx, 0)
		if err != nil || full.Kind != hotlist.KindFull || full.Version != version {
			t.Fatalf("round %d: full list: %+v, %v", round, full.Version, err)
		}
		want, err := hotlist.Load(full.Data, keys)
		if err != nil {
			t.Fatal(err)
		}
		if got := listOf(want); !maps.Equal(got, hotlistOf(cards)) {
			t.Fatalf("round %d: full list %v, want %v", round, got, hotlistOf(cards))
		}
		fulls[version] = full.Data
		published = append(published, version)
		for i, old := range published[:len(published)-1] {
			f, err := p.Get(ctx, old)
			if err != nil {
				t.Fatalf("round %d: since %d: %v", round, old, err)
			}
			base, err := hotlist.Load(fulls[old], keys)
			if err != nil {
				t.Fatal(err)
			}
			next, err := base.Apply(f.Data, keys)
			if err != nil {
				t.Fatalf("round %d: %s file for a validator at %d: %v", round, f.Kind, old, err)
			}
			if !maps.Equal(listOf(next), listOf(want)) || next.Version() != version {
				t.Fatalf("round %d: validator at %d got %v at %d, want %v", round, old, listOf(next), next.Version(), listOf(want))
			}
			stepsBack := len(published) - 1 - i
			if f.Kind == hotlist.KindDelta {
				deltas++
				if stepsBack > keep {
					t.Fatalf("round %d: delta from %d, %d versions back, but only %d steps are kept", round, old, stepsBack, keep)
				}
			}
		}
	}
	if deltas < 100 {
		t.Fatalf("only %d deltas served; the test does not exercise them", deltas)
	}
	// Unchanged list, new events: nothing until the refresh interval.
	version++
	src.set(version, cards)
	if did, err := p.Refresh(ctx); did || err != nil {
		t.Fatalf("unchanged list republished early: %v, %v", did, err)
	}
	now = now.Add(publish.DefaultRefresh)
	if did, err := p.Refresh(ctx); !did || err != nil || p.Version() != version {
		t.Fatalf("unchanged list not republished after the refresh interval: %v, %v, version %d", did, err, p.Version())
	}
}

func listOf(l *hotlist.List) map[uint64]hotlist.Reason {
	out := map[uint64]hotlist.Reason{}
	for c, r := range l.All() {
		out[c] = r
	}
	return out
}

func hotlistOf(cards map[card.Number]registry.Reason) map[uint64]hotlist.Reason {
	out := map[uint64]hotlist.Reason{}
	for n, r := range cards {
		hr, err := hotlist.ParseReason(string(r))
		if err != nil {
			panic(err)
		}
		out[uint64(n)] = hr
	}
	return out
}

// TestRestart checks that a restarted publisher continues the chain of
// deltas from its directory, and recovers from damaged files.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t, hsm.LabelSignHotlist)
	keys := verifyKeys(t, ks)
	dir := t.TempDir()
	src := &fakeSource{}
	now := fixture.Start
	clock := func() time.Time { return now }
	ns := numbers(t, 24)
	// Enough cards that a delta of a few is smaller than the full list.
	cards := map[card.Number]registry.Reason{ns[0]: registry.ReasonLost}
	for _, n := range ns[4:] {
		cards[n] = registry.ReasonReplaced
	}
	p := publisher(t, ks, dir, src, clock, nil)
	src.set(3, cards)
	mustRefresh(t, p)
	v3, err := p.Get(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cards[ns[1]] = registry.ReasonStolen
	src.set(5, cards)
	mustRefresh(t, p)

	p = publisher(t, ks, dir, src, clock, nil) // a restart
	if p.Version() != 5 {
		t.Fatalf("restarted publisher holds version %d, want 5", p.Version())
	}
	checkDelta := func(p *publish.Hotlists, wantKind hotlist.Kind) {
		t.Helper()
		f, err := p.Get(ctx, 3)
		if err != nil || f.Kind != wantKind {
			t.Fatalf("since 3: %s file, %v; want %s", f.Kind, err, wantKind)
		}
		base, err := hotlist.Load(v3.Data, keys)
		if err != nil {
			t.Fatal(err)
		}
		next, err := base.Apply(f.Data, keys)
		if err != nil || !maps.Equal(listOf(next), hotlistOf(cards)) {
			t.Fatalf("validator at 3 after the restart: %v, %v; want %v", err, listOf(next), hotlistOf(cards))
		}
	}
	checkDelta(p, hotlist.KindDelta)
	delete(cards, ns[0])
	cards[ns[2]] = registry.ReasonFraud
	src.set(9, cards)
	mustRefresh(t, p)
	checkDelta(p, hotlist.KindDelta)

	// A damaged step file: deltas across it are gone, full lists remain
	// right, and publishing goes on.
	steps, _ := filepath.Glob(filepath.Join(dir, "*.step"))
	if len(steps) != 2 {
		t.Fatalf("directory holds steps %v, want 2", steps)
	}
	if err := os.WriteFile(steps[0], []byte(`{"version": 5, "base": 3, "changes": [{"card": 1, "was": 0, "now": 9}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	p = publisher(t, ks, dir, src, clock, func(o *publish.Options) { o.Log = logs.logger() })
	if p.Version() != 9 || !strings.Contains(logs.String(), "hotlist step skipped") {
		t.Fatalf("after a damaged step: version %d, log %s", p.Version(), logs.String())
	}
	checkDelta(p, hotlist.KindFull)
	// A full file that does not verify is skipped, not trusted: the
	// publisher starts again from the registry.
	fulls, _ := filepath.Glob(filepath.Join(dir, "*.full"))
	if len(fulls) != 1 {
		t.Fatalf("directory holds full lists %v, want 1", fulls)
	}
	data, _ := os.ReadFile(fulls[0])
	data[len(data)-1] ^= 1
	if err := os.WriteFile(fulls[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	p = publisher(t, ks, dir, src, clock, nil)
	if p.Version() != 0 {
		t.Fatalf("publisher trusted a damaged file: version %d", p.Version())
	}
	f, err := p.Get(ctx, 0)
	if err != nil || f.Version != 9 {
		t.Fatalf("after a damaged full list: version %d, %v", f.Version, err)
	}
}

func mustRefresh(t *testing.T, p *publish.Hotlists) {
	t.Helper()
	if did, err := p.Refresh(context.Background()); !did || err != nil {
		t.Fatalf("Refresh: %v, %v; want a new version", did, err)
	}
}

// TestNewRegistryAndAhead: a registry without any card event publishes
// an empty, signed version 1 at once; a validator ahead of the registry
// is told so.
func TestNewRegistryAndAhead(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t, hsm.LabelSignHotlist)
	src := &fakeSource{}
	dir := t.TempDir()
	p := publisher(t, ks, dir, src, time.Now, nil)
	mustRefresh(t, p)
	f, err := p.Get(ctx, 0)
	if err != nil || f.Version != publish.FirstVersion || f.Kind != hotlist.KindFull {
		t.Fatalf("new registry: version %d kind %v, %v; want the full version 1", f.Version, f.Kind, err)
	}
	if l, err := hotlist.Load(f.Data, verifyKeys(t, ks)); err != nil || l.Len() != 0 || l.Version() != 1 {
		t.Fatalf("new registry's list: %v", err)
	}
	if f, err := p.Get(ctx, 1); err != nil || !f.NotModified {
		t.Fatalf("validator holding version 1: %+v, %v; want not modified", f, err)
	}
	// Still no event: no newer version, even after a restart.
	if did, err := p.Refresh(ctx); did || err != nil {
		t.Fatalf("no card event: published again (%v, %v)", did, err)
	}
	if p = publisher(t, ks, dir, src, time.Now, nil); p.Version() != 1 {
		t.Fatalf("after a restart: version %d, want 1", p.Version())
	}
	// The first event orders a card: version 1 is still the truth.
	src.set(1, nil)
	if did, err := p.Refresh(ctx); did || err != nil {
		t.Fatalf("first card event: published again (%v, %v)", did, err)
	}
	// A card blocked later reaches a validator holding version 1.
	lost := numbers(t, 1)[0]
	src.set(3, map[card.Number]registry.Reason{lost: registry.ReasonLost})
	if f, err = p.Get(ctx, 1); err != nil || f.Version != 3 || f.NotModified {
		t.Fatalf("card blocked: version %d, %v; want version 3", f.Version, err)
	}
	src.set(4, nil)
	if _, err := p.Get(ctx, 9); !errors.Is(err, publish.ErrAhead) {
		t.Fatalf("validator ahead: %v, want ErrAhead", err)
	}
	f, err = p.Get(ctx, 0)
	if err != nil || f.Version != 4 {
		t.Fatalf("empty list: version %d, %v", f.Version, err)
	}
	if l, err := hotlist.Load(f.Data, verifyKeys(t, ks)); err != nil || l.Len() != 0 {
		t.Fatalf("empty list: %v", err)
	}
}

func TestReasonNames(t *testing.T) {
	for _, r := range reasons {
		hr, err := publish.Reason(registry.BlockedCard{Status: r.Status(), Reason: r})
		if err != nil || hr.String() != string(r) {
			t.Errorf("registry reason %s: hotlist %v, %v", r, hr, err)
		}
	}
	for st, want := range map[registry.Status]hotlist.Reason{
		registry.StatusLost: hotlist.ReasonLost, registry.StatusStolen: hotlist.ReasonStolen,
		registry.StatusReplaced: hotlist.ReasonReplaced, registry.StatusBlocked: hotlist.ReasonBlockedByDesk,
	} {
		if hr, err := publish.Reason(registry.BlockedCard{Status: st, Reason: "confiscated"}); err == nil || hr != want {
			t.Errorf("unknown reason, status %s: %v, %v; want %v and an error", st, hr, err, want)
		}
	}
}

func TestOpenRefusesBadOptions(t *testing.T) {
	ks := keystore(t, hsm.LabelSignHotlist)
	signer, err := ks.Signer(context.Background(), hsm.Ref{Label: hsm.LabelSignHotlist, Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, rsaLike, _ := ed25519.GenerateKey(nil)
	for name, opt := range map[string]publish.Options{
		"no dir":      {Signer: signer, KeyVersion: 1},
		"no signer":   {Dir: t.TempDir(), KeyVersion: 1},
		"no version":  {Dir: t.TempDir(), Signer: signer},
		"not ed25519": {Dir: t.TempDir(), Signer: wrongSigner{rsaLike}, KeyVersion: 1},
	} {
		if _, err := publish.Open(context.Background(), &fakeSource{}, opt); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

// wrongSigner claims a public key of the wrong type.
type wrongSigner struct{ ed25519.PrivateKey }

func (w wrongSigner) Public() crypto.PublicKey {
	return []byte(w.PrivateKey.Public().(ed25519.PublicKey))
}

// TestHandlerAnswers checks the answers validators and their operators
// see besides the files themselves.
func TestHandlerAnswers(t *testing.T) {
	ks := keystore(t, hsm.LabelSignHotlist)
	src := &fakeSource{}
	p := publisher(t, ks, t.TempDir(), src, time.Now, nil)
	srv := httptest.NewServer(http.StripPrefix("/v1/validator", &publish.Handler{Hotlists: p, Log: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	get := func(method, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/v1/validator"+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("GET", "/hotlist"); r.StatusCode != http.StatusOK || r.Header.Get("X-Hotlist-Version") != "1" {
		t.Errorf("new registry: %s, version %q; want the empty version 1", r.Status, r.Header.Get("X-Hotlist-Version"))
	}
	src.set(6, map[card.Number]registry.Reason{numbers(t, 1)[0]: registry.ReasonFraud})
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/hotlist", http.StatusOK},
		{"HEAD", "/hotlist", http.StatusOK},
		{"GET", "/hotlist?since=6", http.StatusNotModified},
		{"GET", "/hotlist?since=2", http.StatusOK},
		{"GET", "/hotlist?since=7", http.StatusConflict},
		{"GET", "/hotlist?since=-1", http.StatusBadRequest},
		{"GET", "/hotlist?since=x", http.StatusBadRequest},
		{"POST", "/hotlist", http.StatusMethodNotAllowed},
		{"GET", "/tariff", http.StatusNotFound},
		{"GET", "/keys", http.StatusNotFound},
	} {
		if r := get(tc.method, tc.path); r.StatusCode != tc.want {
			t.Errorf("%s %s: %s, want %d", tc.method, tc.path, r.Status, tc.want)
		} else if tc.want == http.StatusOK && (r.Header.Get("X-Hotlist-Version") != "6" || r.Header.Get("Content-Type") != "application/octet-stream") {
			t.Errorf("%s %s: headers %v", tc.method, tc.path, r.Header)
		}
	}
}
