package hotlist

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

// FuzzDecode feeds hostile bytes to the decoder twice: as given, where the
// signature check should stop them, and re-signed with the trusted key, as
// a buggy or compromised registry might publish them, which drives them
// through the entry decoder and the delta merge. Neither may panic, allocate
// beyond the input's bound or accept anything inconsistent.
func FuzzDecode(f *testing.F) {
	signer := seedKey(7)
	pub := signer.Public().(ed25519.PublicKey)
	keys := KeyLookup(func(int) (ed25519.PublicKey, bool) { return pub, true })
	c := func(serial uint64) uint64 { return mustNumber(f, 2201, serial) }
	baseEntries := []Entry{{c(1), ReasonLost}, {c(2), ReasonStolen}, {c(300), ReasonFraud}, {c(1 << 30), ReasonReplaced}}
	full, err := Build(baseEntries, 3, t0, signer, 1)
	if err != nil {
		f.Fatal(err)
	}
	base, err := Load(full, keys)
	if err != nil {
		f.Fatal(err)
	}
	delta, err := BuildDelta([]Entry{{c(5), ReasonBlockedByDesk}, {c(1), ReasonFraud}}, []uint64{c(2), c(300)}, 3, 4, t0, signer, 1)
	if err != nil {
		f.Fatal(err)
	}
	empty, err := Build(nil, 9, t0, signer, 2)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(full)
	f.Add(delta)
	f.Add(empty)
	f.Add([]byte{})
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecode(t, data, keys, signer, base)
		if len(data) >= headerSize {
			checkDecode(t, resign(data, signer), keys, signer, base)
		}
	})
}

// resign fixes the length, hash and signature of data with the trusted key.
func resign(data []byte, signer ed25519.PrivateKey) []byte {
	b := slices.Clone(data)
	copy(b, magic)
	binary.BigEndian.PutUint16(b[8:], formatVersion)
	binary.BigEndian.PutUint64(b[56:], uint64(len(b)-headerSize))
	sum := sha256.Sum256(b[headerSize:])
	copy(b[64:manifestSize], sum[:])
	copy(b[manifestSize:headerSize], ed25519.Sign(signer, b[:manifestSize]))
	return b
}

func checkDecode(t *testing.T, data []byte, keys KeyLookup, signer ed25519.PrivateKey, base *List) {
	f, err := Decode(data, keys)
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrSignature) {
			t.Fatalf("Decode error is neither ErrMalformed nor ErrSignature: %v", err)
		}
		if l, err := base.Apply(data, keys); err == nil {
			t.Fatalf("Decode refused (%v) what Apply accepted as version %d", err, l.Version())
		}
		return
	}
	// The encoding is canonical: what decodes, encodes to the same bytes.
	m := f.Manifest
	again, err := build(&m, f.Add, f.Remove, signer)
	if err != nil {
		t.Fatalf("re-encoding an accepted file: %v", err)
	}
	if !slices.Equal(again, data) {
		t.Fatalf("accepted file re-encodes to other bytes")
	}
	for i, e := range f.Add {
		if e.Card == 0 || e.Card >= numberLimit || e.Reason == 0 || (i > 0 && f.Add[i-1].Card >= e.Card) {
			t.Fatalf("accepted entry %d: %+v", i, e)
		}
	}

	l, err := base.Apply(data, keys)
	switch {
	case err == nil:
	case errors.Is(err, ErrRollback) && f.Version <= base.Version(),
		errors.Is(err, ErrWrongBase) && f.Kind == KindDelta,
		errors.Is(err, ErrMalformed) && f.Kind == KindDelta:
		return
	default:
		t.Fatalf("Decode accepted what Apply refuses: %v", err)
	}
	if l.Version() != f.Version || l.Manifest().Kind != f.Kind {
		t.Fatalf("list version %d (%s), file %d (%s)", l.Version(), l.Manifest().Kind, f.Version, f.Kind)
	}
	for _, e := range f.Add {
		if r, ok := l.Lookup(e.Card); !ok || r != e.Reason {
			t.Fatalf("added card %d: Lookup = %v, %v; want %v", e.Card, r, ok, e.Reason)
		}
	}
	for _, c := range f.Remove {
		if l.Contains(c) {
			t.Fatalf("removed card %d still listed", c)
		}
	}
	want := len(f.Add)
	if f.Kind == KindDelta {
		want = base.Len() - len(f.Remove)
		for _, e := range f.Add {
			if !base.Contains(e.Card) {
				want++
			}
		}
	}
	if l.Len() != want {
		t.Fatalf("list has %d cards, want %d", l.Len(), want)
	}
	var prev uint64
	for c := range l.All() {
		if c <= prev {
			t.Fatalf("list not ascending at %d", c)
		}
		prev = c
	}
}

// TestDecodeRejects signs hand-made files that break one rule each, so the
// checks behind the signature are exercised without the fuzzer.
func TestDecodeRejects(t *testing.T) {
	signer := seedKey(7)
	pub := signer.Public().(ed25519.PublicKey)
	keys := KeyLookup(func(int) (ed25519.PublicKey, bool) { return pub, true })
	c1 := mustNumber(t, 2201, 1)
	// file lays out a manifest and a raw section, then signs them.
	file := func(kind Kind, version, base uint64, adds, removes uint64, section ...byte) []byte {
		b := make([]byte, headerSize, headerSize+len(section))
		m := Manifest{Kind: kind, Version: version, Base: base, Issued: t0, KeyVersion: 1}
		m.put(b)
		binary.BigEndian.PutUint64(b[40:], adds)
		binary.BigEndian.PutUint64(b[48:], removes)
		return resign(append(b, section...), signer)
	}
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	cat := func(parts ...[]byte) []byte { return slices.Concat(parts...) }
	with := func(b []byte, off int, v byte) []byte { b = slices.Clone(b); b[off] = v; return resign(b, signer) }
	good := file(KindFull, 1, 0, 1, 0, cat(uv(c1), []byte{1})...)
	if _, err := Decode(good, keys); err != nil {
		t.Fatalf("control file: %v", err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"non-minimal uvarint", file(KindFull, 1, 0, 2, 0, cat(uv(c1), []byte{0x81, 0x00}, []byte{1, 1})...)},
		{"card 0", file(KindFull, 1, 0, 1, 0, 0, 1)},
		{"card twice", file(KindFull, 1, 0, 2, 0, cat(uv(c1), uv(0), []byte{1, 1})...)},
		{"17 digits", file(KindFull, 1, 0, 1, 0, cat(uv(numberLimit), []byte{1})...)},
		{"sum overflows", file(KindFull, 1, 0, 2, 0, cat(uv(c1), uv(math.MaxUint64-c1+1), []byte{1, 1})...)},
		{"truncated uvarint", file(KindFull, 1, 0, 1, 0, 0x81, 0x81)},
		{"reason 0", file(KindFull, 1, 0, 1, 0, cat(uv(c1), []byte{0})...)},
		{"trailing byte", file(KindFull, 1, 0, 1, 0, cat(uv(c1), []byte{1, 7})...)},
		{"count beyond section", file(KindFull, 1, 0, 2, 0, cat(uv(c1), []byte{1})...)},
		{"count beyond MaxEntries", file(KindFull, 1, 0, MaxEntries+1, 0)},
		{"kind 3", file(3, 1, 0, 1, 0, cat(uv(c1), []byte{1})...)},
		{"full with a base", file(KindFull, 2, 1, 1, 0, cat(uv(c1), []byte{1})...)},
		{"full with removes", file(KindFull, 2, 0, 0, 1, uv(c1)...)},
		{"delta from 0", file(KindDelta, 2, 0, 0, 1, uv(c1)...)},
		{"delta not forward", file(KindDelta, 2, 2, 0, 1, uv(c1)...)},
		{"version 0", file(KindFull, 0, 0, 1, 0, cat(uv(c1), []byte{1})...)},
		{"reserved byte", with(good, 11, 1)},
		{"key version 0", func() []byte {
			b := slices.Clone(good)
			binary.BigEndian.PutUint32(b[12:], 0)
			return resign(b, signer)
		}()},
		{"issued 1970", func() []byte {
			b := slices.Clone(good)
			binary.BigEndian.PutUint64(b[32:], 0)
			return resign(b, signer)
		}()},
		{"length field", func() []byte {
			b := slices.Clone(good)
			binary.BigEndian.PutUint64(b[56:], 1)
			copy(b[manifestSize:headerSize], ed25519.Sign(signer, b[:manifestSize]))
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if f, err := Decode(tt.data, keys); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode = %+v, %v; want ErrMalformed", f, err)
			}
			if _, err := Load(tt.data, keys); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Load: %v; want ErrMalformed", err)
			}
		})
	}
}
