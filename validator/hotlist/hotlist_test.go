package hotlist

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	crand "crypto/rand"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
)

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

// hsmKey makes a software keystore with one hotlist signing key and
// returns its signer, key version and the validator's view of the keys.
func hsmKey(t testing.TB) (crypto.Signer, int, KeyLookup) {
	t.Helper()
	ctx := context.Background()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test pass"),
		hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ks.Generate(ctx, hsm.LabelSignHotlist, hsm.KindSigning)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ks.Signer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := HSMKeys(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	return signer, ref.Version, keys
}

// seedKey is a quick deterministic key for tests that need several.
func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(slices.Repeat([]byte{b}, ed25519.SeedSize))
}

// genEntries returns n distinct valid cards, half under each of two issuers
// far apart, so the index sees a gap; reasons cycle through the known ones.
func genEntries(rng *rand.Rand, n int) []Entry {
	out := make([]Entry, 0, n)
	for i := range n {
		issuer := uint16(2201)
		if i%2 == 1 {
			issuer = 9001
		}
		serial := uint64(i/2)*13 + rng.Uint64N(13)
		num, err := card.NewNumber(issuer, serial)
		if err != nil {
			panic(err)
		}
		out = append(out, Entry{Card: uint64(num), Reason: Reason(1 + i%len(reasonNames[1:]))})
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func mustNumber(t testing.TB, issuer uint16, serial uint64) uint64 {
	t.Helper()
	n, err := card.NewNumber(issuer, serial)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

// entriesOf lists l ascending.
func entriesOf(l *List) []Entry {
	var out []Entry
	for c, r := range l.All() {
		out = append(out, Entry{c, r})
	}
	return out
}

func sorted(es []Entry) []Entry {
	out := slices.Clone(es)
	slices.SortFunc(out, func(a, b Entry) int {
		switch {
		case a.Card < b.Card:
			return -1
		case a.Card > b.Card:
			return 1
		}
		return 0
	})
	return out
}

// checkList compares every lookup of l, members and their neighbours, with
// want.
func checkList(t *testing.T, l *List, want []Entry) {
	t.Helper()
	set := make(map[uint64]Reason, len(want))
	for _, e := range want {
		set[e.Card] = e.Reason
	}
	if l.Len() != len(set) {
		t.Fatalf("Len = %d, want %d", l.Len(), len(set))
	}
	for _, e := range want {
		for _, c := range []uint64{e.Card - 1, e.Card, e.Card + 1} {
			r, ok := l.Lookup(c)
			wr, wok := set[c]
			if ok != wok || r != wr || l.Contains(c) != wok {
				t.Fatalf("Lookup(%d) = %v, %v; want %v, %v", c, r, ok, wr, wok)
			}
		}
	}
	for _, c := range []uint64{0, 1, numberLimit - 1, numberLimit, 1<<64 - 1} {
		if _, wok := set[c]; l.Contains(c) != wok {
			t.Fatalf("Contains(%d) = %v, want %v", c, !wok, wok)
		}
	}
	if got := entriesOf(l); !slices.Equal(got, sorted(want)) {
		t.Fatalf("All() yields %d entries that differ from the %d wanted", len(got), len(want))
	}
}

func TestReason(t *testing.T) {
	for r := Reason(1); r.Known(); r++ {
		got, err := ParseReason(r.String())
		if err != nil || got != r {
			t.Errorf("ParseReason(%q) = %v, %v; want %v", r.String(), got, err, r)
		}
		var u Reason
		b, err := r.MarshalText()
		if err != nil || u.UnmarshalText(b) != nil || u != r {
			t.Errorf("text round trip of %v gave %v (%v)", r, u, err)
		}
	}
	if got := ReasonBenefitRevoked.String(); got != "benefit-revoked" {
		t.Errorf("ReasonBenefitRevoked = %q", got)
	}
	if got := Reason(200).String(); got != "reason(200)" {
		t.Errorf("Reason(200) = %q", got)
	}
	for _, s := range []string{"", "Lost", "reason(1)", "lost "} {
		if r, err := ParseReason(s); err == nil {
			t.Errorf("ParseReason(%q) = %v, want an error", s, r)
		}
	}
	if _, err := Reason(0).MarshalText(); err == nil {
		t.Error("Reason(0).MarshalText succeeded")
	}
}

func TestRoundTripFull(t *testing.T) {
	signer, kv, keys := hsmKey(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 17, 100_000} {
		entries := genEntries(rng, n)
		data, err := Build(entries, 42, t0, signer, kv)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Load(data, keys)
		if err != nil {
			t.Fatalf("%d entries: %v", n, err)
		}
		checkList(t, l, entries)
		m := l.Manifest()
		if m.Version != 42 || m.Kind != KindFull || !m.Issued.Equal(t0) || m.KeyVersion != kv || m.Adds != n {
			t.Errorf("manifest %+v", m)
		}
		if l.Version() != 42 || !l.IssuedAt().Equal(t0) {
			t.Errorf("Version %d, IssuedAt %v", l.Version(), l.IssuedAt())
		}
		f, err := Decode(data, keys)
		if err != nil || !slices.Equal(f.Add, sorted(entries)) || len(f.Remove) != 0 {
			t.Fatalf("Decode: %v, %d entries", err, len(f.Add))
		}
		if n == 100_000 {
			t.Logf("%d entries: %d bytes in the file, %d in memory", n, len(data), l.SizeBytes())
			if per := float64(l.SizeBytes()) / float64(n); per > 12 {
				t.Errorf("%.1f bytes a card in memory, want < 12", per)
			}
		}
	}
}

func TestRoundTripDelta(t *testing.T) {
	signer, kv, keys := hsmKey(t)
	rng := rand.New(rand.NewPCG(3, 4))
	old := genEntries(rng, 100_000)
	next := slices.Clone(old[1000:]) // 1000 unblocked
	for i := range 500 {             // 500 change reason
		next[i].Reason = next[i].Reason%ReasonReplaced + 1
	}
	for i := range 2000 { // 2000 new, in a serial range genEntries does not reach
		next = append(next, Entry{Card: mustNumber(t, 2201, 10_000_000+uint64(i)*3), Reason: ReasonFraud})
	}
	add, remove, err := Diff(old, next)
	if err != nil {
		t.Fatal(err)
	}
	if len(add) != 2500 || len(remove) != 1000 {
		t.Fatalf("Diff: %d adds, %d removes; want 2500 and 1000", len(add), len(remove))
	}
	full, err := Build(old, 7, t0, signer, kv)
	if err != nil {
		t.Fatal(err)
	}
	delta, err := BuildDelta(add, remove, 7, 8, t0.Add(time.Hour), signer, kv)
	if err != nil {
		t.Fatal(err)
	}
	base, err := Load(full, keys)
	if err != nil {
		t.Fatal(err)
	}
	l, err := base.Apply(delta, keys)
	if err != nil {
		t.Fatal(err)
	}
	checkList(t, l, next)
	checkList(t, base, old) // the base is untouched
	m := l.Manifest()
	if l.Version() != 8 || m.Kind != KindDelta || m.Base != 7 || !l.IssuedAt().Equal(t0.Add(time.Hour)) ||
		m.Adds != 2500 || m.Removes != 1000 {
		t.Errorf("manifest after delta: %+v", m)
	}
	f, err := Decode(delta, keys)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.Add, sorted(add)) || !slices.Equal(f.Remove, slices.Sorted(slices.Values(remove))) {
		t.Error("Decode of the delta differs from what was built")
	}

	// A delta chained on a delta.
	d2, err := BuildDelta(nil, []uint64{next[0].Card}, 8, 10, t0.Add(2*time.Hour), signer, kv)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := l.Apply(d2, keys)
	if err != nil {
		t.Fatal(err)
	}
	checkList(t, l2, next[1:])
}

func TestBuildRejects(t *testing.T) {
	signer := seedKey(1)
	good := Entry{Card: mustNumber(t, 2201, 5), Reason: ReasonLost}
	other := Entry{Card: mustNumber(t, 2201, 6), Reason: ReasonStolen}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		build func() ([]byte, error)
	}{
		{"version 0", func() ([]byte, error) { return Build([]Entry{good}, 0, t0, signer, 1) }},
		{"card 0", func() ([]byte, error) { return Build([]Entry{{0, ReasonLost}}, 1, t0, signer, 1) }},
		{"bad check digit", func() ([]byte, error) {
			return Build([]Entry{{good.Card + 1, ReasonLost}}, 1, t0, signer, 1)
		}},
		{"17 digits", func() ([]byte, error) { return Build([]Entry{{1e16 + 8, ReasonLost}}, 1, t0, signer, 1) }},
		{"duplicate", func() ([]byte, error) {
			return Build([]Entry{good, other, {good.Card, ReasonFraud}}, 1, t0, signer, 1)
		}},
		{"reason 0", func() ([]byte, error) { return Build([]Entry{{good.Card, 0}}, 1, t0, signer, 1) }},
		{"unknown reason", func() ([]byte, error) { return Build([]Entry{{good.Card, 99}}, 1, t0, signer, 1) }},
		{"key version 0", func() ([]byte, error) { return Build([]Entry{good}, 1, t0, signer, 0) }},
		{"issued 1970", func() ([]byte, error) { return Build([]Entry{good}, 1, time.Unix(0, 0), signer, 1) }},
		{"no signer", func() ([]byte, error) { return Build([]Entry{good}, 1, t0, nil, 1) }},
		{"ecdsa signer", func() ([]byte, error) { return Build([]Entry{good}, 1, t0, ecKey, 1) }},
		{"delta base 0", func() ([]byte, error) { return BuildDelta([]Entry{good}, nil, 0, 1, t0, signer, 1) }},
		{"delta not newer", func() ([]byte, error) { return BuildDelta([]Entry{good}, nil, 5, 5, t0, signer, 1) }},
		{"delta add and remove", func() ([]byte, error) {
			return BuildDelta([]Entry{good}, []uint64{good.Card}, 1, 2, t0, signer, 1)
		}},
		{"delta remove twice", func() ([]byte, error) {
			return BuildDelta(nil, []uint64{good.Card, other.Card, good.Card}, 1, 2, t0, signer, 1)
		}},
		{"delta remove 0", func() ([]byte, error) { return BuildDelta(nil, []uint64{0}, 1, 2, t0, signer, 1) }},
		{"delta duplicate add", func() ([]byte, error) {
			return BuildDelta([]Entry{good, good}, nil, 1, 2, t0, signer, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := tt.build()
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %d bytes, err %v; want ErrInvalid", len(data), err)
			}
		})
	}
	if _, err := Build([]Entry{good, other}, 1, t0, signer, 1); err != nil {
		t.Fatalf("the valid control case fails: %v", err)
	}
}

// TestTamper flips, cuts and extends every byte of small files: each
// change must be refused as a bad signature or malformed, never accepted.
func TestTamper(t *testing.T) {
	signer, kv, keys := hsmKey(t)
	rng := rand.New(rand.NewPCG(5, 6))
	entries := genEntries(rng, 40)
	full, err := Build(entries, 3, t0, signer, kv)
	if err != nil {
		t.Fatal(err)
	}
	base, err := Load(full, keys)
	if err != nil {
		t.Fatal(err)
	}
	delta, err := BuildDelta(genEntries(rng, 5)[:3], []uint64{entries[0].Card, entries[1].Card}, 3, 4, t0, signer, kv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.Apply(delta, keys); err != nil {
		t.Fatalf("untampered delta: %v", err)
	}
	check := func(what string, data []byte, onto *List) {
		t.Helper()
		l, err := onto.Apply(data, keys)
		if l != nil || !(errors.Is(err, ErrSignature) || errors.Is(err, ErrMalformed)) {
			t.Fatalf("%s: got list %v, err %v; want ErrSignature or ErrMalformed", what, l != nil, err)
		}
	}
	for _, f := range []struct {
		name string
		data []byte
		onto *List
	}{{"full", full, nil}, {"delta", delta, base}} {
		for i := range f.data {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := slices.Clone(f.data)
				b[i] ^= mask
				check(f.name+" flipped byte", b, f.onto)
			}
		}
		for n := range len(f.data) {
			check(f.name+" truncated", f.data[:n], f.onto)
		}
		check(f.name+" extended", append(slices.Clone(f.data), 0), f.onto)
	}
}

func TestWrongKey(t *testing.T) {
	a, b := seedKey(1), seedKey(2)
	pubA, pubB := a.Public().(ed25519.PublicKey), b.Public().(ed25519.PublicKey)
	entries := []Entry{{mustNumber(t, 2201, 1), ReasonLost}}
	byA1, err := Build(entries, 1, t0, a, 1)
	if err != nil {
		t.Fatal(err)
	}
	byB2, err := Build(entries, 1, t0, b, 2)
	if err != nil {
		t.Fatal(err)
	}
	byBClaims1, err := Build(entries, 1, t0, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	changeOver := KeyMap(map[int]ed25519.PublicKey{1: pubA, 2: pubB})
	tests := []struct {
		name string
		data []byte
		keys KeyLookup
		ok   bool
	}{
		{"right key", byA1, KeyMap(map[int]ed25519.PublicKey{1: pubA}), true},
		{"other key under the same version", byA1, KeyMap(map[int]ed25519.PublicKey{1: pubB}), false},
		{"key version not held", byA1, KeyMap(map[int]ed25519.PublicKey{2: pubA}), false},
		{"no keys", byA1, KeyMap(nil), false},
		{"nil lookup", byA1, nil, false},
		{"short key", byA1, KeyMap(map[int]ed25519.PublicKey{1: pubA[:31]}), false},
		{"change-over, old key", byA1, changeOver, true},
		{"change-over, new key", byB2, changeOver, true},
		{"signed by the new key, naming the old", byBClaims1, changeOver, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.data, tt.keys)
			if tt.ok && err != nil {
				t.Fatal(err)
			}
			if !tt.ok && !errors.Is(err, ErrSignature) {
				t.Fatalf("err %v, want ErrSignature", err)
			}
		})
	}
}

func TestRollbackAndBase(t *testing.T) {
	signer := seedKey(1)
	keys := KeyMap(map[int]ed25519.PublicKey{1: signer.Public().(ed25519.PublicKey)})
	c1, c2, c3 := mustNumber(t, 2201, 1), mustNumber(t, 2201, 2), mustNumber(t, 2201, 3)
	mk := func(data []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	full5 := mk(Build([]Entry{{c1, ReasonLost}, {c2, ReasonLost}}, 5, t0, signer, 1))
	l5, err := Load(full5, keys)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want error
	}{
		{"same version", full5, ErrRollback},
		{"older full", mk(Build([]Entry{{c1, ReasonLost}}, 4, t0, signer, 1)), ErrRollback},
		{"older delta", mk(BuildDelta(nil, []uint64{c1}, 3, 5, t0, signer, 1)), ErrRollback},
		{"delta from an older base", mk(BuildDelta(nil, []uint64{c1}, 4, 6, t0, signer, 1)), ErrWrongBase},
		{"delta from a newer base", mk(BuildDelta(nil, []uint64{c1}, 6, 7, t0, signer, 1)), ErrWrongBase},
		{"delta removing an absent card", mk(BuildDelta(nil, []uint64{c1, c3}, 5, 6, t0, signer, 1)), ErrWrongBase},
		{"newer full", mk(Build(nil, 6, t0, signer, 1)), nil},
		{"fitting delta", mk(BuildDelta([]Entry{{c1, ReasonFraud}, {c3, ReasonStolen}}, []uint64{c2}, 5, 9, t0, signer, 1)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := l5.Apply(tt.data, keys)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (l != nil) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	var none *List
	if _, err := none.Apply(tests[3].data, keys); !errors.Is(err, ErrWrongBase) {
		t.Errorf("delta onto no list: %v, want ErrWrongBase", err)
	}
	l9, err := l5.Apply(tests[len(tests)-1].data, keys)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := l9.Lookup(c1); r != ReasonFraud || l9.Contains(c2) || !l9.Contains(c3) {
		t.Errorf("after the delta: c1 %v, c2 %v, c3 %v", r, l9.Contains(c2), l9.Contains(c3))
	}
}

// TestDeltaAddAndRemove crafts what BuildDelta refuses: a signed delta that
// adds and removes the same card. Validators must refuse it too.
func TestDeltaAddAndRemove(t *testing.T) {
	signer := seedKey(1)
	keys := KeyMap(map[int]ed25519.PublicKey{1: signer.Public().(ed25519.PublicKey)})
	c := mustNumber(t, 2201, 1)
	full, err := Build([]Entry{{c, ReasonLost}}, 1, t0, signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	base, err := Load(full, keys)
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Kind: KindDelta, Version: 2, Base: 1, Issued: t0, KeyVersion: 1}
	data, err := build(&m, []Entry{{c, ReasonFraud}}, []uint64{c}, signer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.Apply(data, keys); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err %v, want ErrMalformed", err)
	}
}

func TestDiffRejects(t *testing.T) {
	e := Entry{Card: mustNumber(t, 2201, 1), Reason: ReasonLost}
	if _, _, err := Diff([]Entry{e, e}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("old list with a duplicate: %v", err)
	}
	if _, _, err := Diff(nil, []Entry{{1, ReasonLost}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("new list with an invalid card: %v", err)
	}
}

func TestHSMKeysWithoutKey(t *testing.T) {
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("p"),
		hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HSMKeys(context.Background(), ks); !errors.Is(err, hsm.ErrNotFound) {
		t.Fatalf("err %v, want hsm.ErrNotFound", err)
	}
}
