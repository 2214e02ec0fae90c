package hotlist

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
)

const (
	magic         = "CCHOTLST"
	formatVersion = 1
	manifestSize  = 96
	headerSize    = manifestSize + ed25519.SignatureSize

	// MaxEntries bounds the adds and removes of one file. It keeps the
	// in-memory index within uint32 and stops a file from asking for more
	// memory than any city needs (the target is 10 million cards).
	MaxEntries = 1 << 27

	// numberLimit is one more than the largest 16-digit card number. The
	// decoder checks only this bound and leaves the Luhn digit to the
	// publisher: the signature vouches for content, and 10 million Luhn
	// checks would cost a large share of the load budget.
	numberLimit = 1e16
)

// Manifest is the signed summary at the head of a file.
type Manifest struct {
	Kind       Kind
	Version    uint64
	Base       uint64 // the version a delta applies to; 0 in a full file
	Issued     time.Time
	KeyVersion int // N of the signing key sign-hotlist@N
	Adds       int // entries added; in a full file, all entries
	Removes    int // card numbers removed; 0 in a full file
	Sum        [sha256.Size]byte
	sectionLen uint64
}

// put writes m into the first manifestSize bytes of b.
func (m *Manifest) put(b []byte) {
	copy(b, magic)
	binary.BigEndian.PutUint16(b[8:], formatVersion)
	b[10] = byte(m.Kind)
	b[11] = 0
	binary.BigEndian.PutUint32(b[12:], uint32(m.KeyVersion))
	binary.BigEndian.PutUint64(b[16:], m.Version)
	binary.BigEndian.PutUint64(b[24:], m.Base)
	binary.BigEndian.PutUint64(b[32:], uint64(m.Issued.UnixMilli()))
	binary.BigEndian.PutUint64(b[40:], uint64(m.Adds))
	binary.BigEndian.PutUint64(b[48:], uint64(m.Removes))
	binary.BigEndian.PutUint64(b[56:], m.sectionLen)
	copy(b[64:], m.Sum[:])
}

// KeyLookup returns the Ed25519 verify key of sign-hotlist@keyVersion. A
// validator holds two during a key change-over; the file names the one
// that signed it.
type KeyLookup func(keyVersion int) (ed25519.PublicKey, bool)

// KeyMap returns a KeyLookup over verify keys by key version.
func KeyMap(keys map[int]ed25519.PublicKey) KeyLookup {
	return func(v int) (ed25519.PublicKey, bool) {
		k, ok := keys[v]
		return k, ok
	}
}

// HSMKeys reads every version of the hotlist verify key (label
// hsm.LabelSignHotlist) from km once, e.g. from a validator's role
// keystore, which holds them as public keys only.
func HSMKeys(ctx context.Context, km hsm.KeyManager) (KeyLookup, error) {
	infos, err := km.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("hotlist verify keys: %w", err)
	}
	keys := map[int]ed25519.PublicKey{}
	for _, ki := range infos {
		if ki.Ref.Label != hsm.LabelSignHotlist {
			continue
		}
		pub, err := km.PublicKey(ctx, ki.Ref)
		if err != nil {
			return nil, fmt.Errorf("hotlist verify key %s: %w", ki.Ref, err)
		}
		keys[ki.Ref.Version] = pub
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("hotlist verify keys: no %q key in the keystore: %w; export the validator role again",
			hsm.LabelSignHotlist, hsm.ErrNotFound)
	}
	return KeyMap(keys), nil
}

// Verify checks the signature of a file, then its manifest and the hash
// of its entry section, and returns the manifest. It reads the entries no
// further, so its cost does not depend on their count beyond one SHA-256.
func Verify(data []byte, keys KeyLookup) (Manifest, error) {
	var m Manifest
	if len(data) < headerSize {
		return m, fmt.Errorf("%w: %d bytes, a file has at least %d", ErrMalformed, len(data), headerSize)
	}
	if string(data[:8]) != magic {
		return m, fmt.Errorf("%w: not a hotlist file (magic %q)", ErrMalformed, data[:8])
	}
	if v := binary.BigEndian.Uint16(data[8:]); v != formatVersion {
		return m, fmt.Errorf("%w: format version %d, this build reads %d", ErrMalformed, v, formatVersion)
	}
	kv := binary.BigEndian.Uint32(data[12:])
	if keys == nil {
		return m, fmt.Errorf("%w: no verify keys given", ErrSignature)
	}
	pub, ok := keys(int(kv))
	if !ok {
		return m, fmt.Errorf("%w: signed with %s@%d, which this validator does not hold",
			ErrSignature, hsm.LabelSignHotlist, kv)
	}
	if !hsm.Verify(pub, data[:manifestSize], data[manifestSize:headerSize]) {
		return m, fmt.Errorf("%w with %s@%d", ErrSignature, hsm.LabelSignHotlist, kv)
	}

	// Signed from here on, but still checked: a signing bug must not crash
	// or mislead validators.
	m = Manifest{
		Kind:       Kind(data[10]),
		KeyVersion: int(kv),
		Version:    binary.BigEndian.Uint64(data[16:]),
		Base:       binary.BigEndian.Uint64(data[24:]),
		sectionLen: binary.BigEndian.Uint64(data[56:]),
	}
	copy(m.Sum[:], data[64:manifestSize])
	issued := int64(binary.BigEndian.Uint64(data[32:]))
	adds, removes := binary.BigEndian.Uint64(data[40:]), binary.BigEndian.Uint64(data[48:])
	switch {
	case data[11] != 0:
		return m, fmt.Errorf("%w: reserved byte is %#x, want 0", ErrMalformed, data[11])
	case kv == 0:
		return m, fmt.Errorf("%w: key version 0", ErrMalformed)
	case m.Version == 0:
		return m, fmt.Errorf("%w: version 0; versions start at 1", ErrMalformed)
	case issued <= 0:
		return m, fmt.Errorf("%w: issue time %d ms is not after 1970", ErrMalformed, issued)
	case adds > MaxEntries || removes > MaxEntries:
		return m, fmt.Errorf("%w: %d adds and %d removes, at most %d each", ErrMalformed, adds, removes, MaxEntries)
	case m.sectionLen != uint64(len(data)-headerSize):
		return m, fmt.Errorf("%w: entry section is %d bytes, the manifest says %d",
			ErrMalformed, len(data)-headerSize, m.sectionLen)
	// Each add takes at least a uvarint byte and a reason byte, each remove
	// a uvarint byte: a bound checked before anything is allocated.
	case 2*adds+removes > m.sectionLen:
		return m, fmt.Errorf("%w: %d adds and %d removes cannot fit in %d bytes",
			ErrMalformed, adds, removes, m.sectionLen)
	}
	switch m.Kind {
	case KindFull:
		if m.Base != 0 || removes != 0 {
			return m, fmt.Errorf("%w: full file with base %d and %d removes, want 0 and 0", ErrMalformed, m.Base, removes)
		}
	case KindDelta:
		if m.Base == 0 || m.Base >= m.Version {
			return m, fmt.Errorf("%w: delta from %d to %d; the base must be between 1 and the version", ErrMalformed, m.Base, m.Version)
		}
	default:
		return m, fmt.Errorf("%w: unknown kind %d", ErrMalformed, data[10])
	}
	m.Issued = time.UnixMilli(issued).UTC()
	m.Adds, m.Removes = int(adds), int(removes)
	if sum := sha256.Sum256(data[headerSize:]); sum != m.Sum {
		return m, fmt.Errorf("%w: entry section hash %x, the signed manifest says %x", ErrSignature, sum[:8], m.Sum[:8])
	}
	return m, nil
}

// section is a decoded entry section. Cards and removes are ascending.
type section struct {
	cards   []uint64
	reasons []Reason
	removes []uint64
}

// decodeSection reads the entry section of a verified manifest.
func decodeSection(m *Manifest, sec []byte) (section, error) {
	var s section
	var off int
	var err error
	s.cards, off, err = decodeNumbers(sec, 0, m.Adds, "added")
	if err != nil {
		return s, err
	}
	if len(sec)-off < m.Adds {
		return s, fmt.Errorf("%w: %d reason bytes, want %d", ErrMalformed, len(sec)-off, m.Adds)
	}
	rs := sec[off : off+m.Adds]
	if i := bytes.IndexByte(rs, 0); i >= 0 {
		return s, fmt.Errorf("%w: card %d has reason 0", ErrMalformed, s.cards[i])
	}
	s.reasons = make([]Reason, m.Adds)
	for i, r := range rs {
		s.reasons[i] = Reason(r)
	}
	off += m.Adds
	s.removes, off, err = decodeNumbers(sec, off, m.Removes, "removed")
	if err != nil {
		return s, err
	}
	if off != len(sec) {
		return s, fmt.Errorf("%w: %d bytes after the last entry", ErrMalformed, len(sec)-off)
	}
	return s, nil
}

// decodeNumbers reads n delta-coded ascending card numbers from sec at off.
func decodeNumbers(sec []byte, off, n int, what string) ([]uint64, int, error) {
	out := make([]uint64, n)
	var prev uint64
	for i := range out {
		if off >= len(sec) {
			return nil, off, fmt.Errorf("%w: section ends after %d of %d %s cards", ErrMalformed, i, n, what)
		}
		d := uint64(sec[off])
		if d < 0x80 { // most differences in a dense list fit one byte
			off++
		} else {
			v, k := binary.Uvarint(sec[off:])
			if k <= 0 {
				return nil, off, fmt.Errorf("%w: %s entry %d: bad uvarint at offset %d", ErrMalformed, what, i, off)
			}
			if sec[off+k-1] == 0 {
				return nil, off, fmt.Errorf("%w: %s entry %d: non-minimal uvarint at offset %d", ErrMalformed, what, i, off)
			}
			d, off = v, off+k
		}
		next := prev + d
		switch {
		case d == 0 && i == 0:
			return nil, off, fmt.Errorf("%w: %s card number 0", ErrMalformed, what)
		case d == 0:
			return nil, off, fmt.Errorf("%w: %s card %d listed twice", ErrMalformed, what, prev)
		case next < prev || next >= numberLimit:
			return nil, off, fmt.Errorf("%w: %s card number after %d has more than 16 digits", ErrMalformed, what, prev)
		}
		out[i], prev = next, next
	}
	return out, off, nil
}

// File is a decoded file, for tools that show or compare files. A validator
// uses [Load] and [List.Apply], which skip this form.
type File struct {
	Manifest
	Add    []Entry  // ascending by card
	Remove []uint64 // ascending
}

// Decode verifies a file (see [Verify]) and decodes its entries.
func Decode(data []byte, keys KeyLookup) (*File, error) {
	m, err := Verify(data, keys)
	if err != nil {
		return nil, err
	}
	s, err := decodeSection(&m, data[headerSize:])
	if err != nil {
		return nil, err
	}
	f := &File{Manifest: m, Add: make([]Entry, len(s.cards)), Remove: s.removes}
	for i, c := range s.cards {
		f.Add[i] = Entry{Card: c, Reason: s.reasons[i]}
	}
	return f, nil
}

// Build makes a signed full file of entries (in any order) as version,
// signed by signer, the Ed25519 key sign-hotlist@keyVersion, e.g. from
// km.Signer(ctx, ref) with ref.Version as keyVersion. Issued is stored to
// the millisecond.
func Build(entries []Entry, version uint64, issued time.Time, signer crypto.Signer, keyVersion int) ([]byte, error) {
	if version == 0 {
		return nil, fmt.Errorf("build hotlist: %w: version 0; versions start at 1", ErrInvalid)
	}
	add, err := sortedEntries(entries)
	if err != nil {
		return nil, fmt.Errorf("build hotlist %d: %w", version, err)
	}
	m := Manifest{Kind: KindFull, Version: version, Issued: issued, KeyVersion: keyVersion}
	b, err := build(&m, add, nil, signer)
	if err != nil {
		return nil, fmt.Errorf("build hotlist %d: %w", version, err)
	}
	return b, nil
}

// BuildDelta makes a signed delta from version base to version: add lists
// new cards and cards whose reason changes, remove the card numbers to
// unblock (each must be in base). See [Build] for the signer.
func BuildDelta(add []Entry, remove []uint64, base, version uint64, issued time.Time, signer crypto.Signer, keyVersion int) ([]byte, error) {
	if base == 0 || version <= base {
		return nil, fmt.Errorf("build hotlist delta %d→%d: %w: the base must be at least 1 and older than the version",
			base, version, ErrInvalid)
	}
	a, err := sortedEntries(add)
	if err != nil {
		return nil, fmt.Errorf("build hotlist delta %d→%d: %w", base, version, err)
	}
	rm := slices.Clone(remove)
	slices.Sort(rm)
	for i, c := range rm {
		if !card.Number(c).Valid() {
			return nil, fmt.Errorf("build hotlist delta %d→%d: %w: removed card %d is not a valid card number",
				base, version, ErrInvalid, c)
		}
		if i > 0 && rm[i-1] == c {
			return nil, fmt.Errorf("build hotlist delta %d→%d: %w: card %s removed twice", base, version, ErrInvalid, card.Number(c))
		}
		if _, found := slices.BinarySearchFunc(a, c, func(e Entry, c uint64) int { return cmp.Compare(e.Card, c) }); found {
			return nil, fmt.Errorf("build hotlist delta %d→%d: %w: card %s both added and removed",
				base, version, ErrInvalid, card.Number(c))
		}
	}
	m := Manifest{Kind: KindDelta, Version: version, Base: base, Issued: issued, KeyVersion: keyVersion}
	b, err := build(&m, a, rm, signer)
	if err != nil {
		return nil, fmt.Errorf("build hotlist delta %d→%d: %w", base, version, err)
	}
	return b, nil
}

// sortedEntries returns a sorted copy of entries after checking each.
func sortedEntries(entries []Entry) ([]Entry, error) {
	if len(entries) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, at most %d", ErrInvalid, len(entries), MaxEntries)
	}
	out := slices.Clone(entries)
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Card, b.Card) })
	for i, e := range out {
		if !card.Number(e.Card).Valid() {
			return nil, fmt.Errorf("%w: card %d is not a valid card number (zero, over 16 digits or wrong check digit)",
				ErrInvalid, e.Card)
		}
		if !e.Reason.Known() {
			return nil, fmt.Errorf("%w: card %s has unknown reason %d", ErrInvalid, card.Number(e.Card), e.Reason)
		}
		if i > 0 && out[i-1].Card == e.Card {
			return nil, fmt.Errorf("%w: card %s listed twice", ErrInvalid, card.Number(e.Card))
		}
	}
	return out, nil
}

// build encodes and signs; add and remove are sorted and checked.
func build(m *Manifest, add []Entry, remove []uint64, signer crypto.Signer) ([]byte, error) {
	if len(remove) > MaxEntries {
		return nil, fmt.Errorf("%w: %d removes, at most %d", ErrInvalid, len(remove), MaxEntries)
	}
	if m.KeyVersion < 1 || int64(m.KeyVersion) > math.MaxUint32 {
		return nil, fmt.Errorf("%w: key version %d; name the version of %s that signs", ErrInvalid, m.KeyVersion, hsm.LabelSignHotlist)
	}
	if m.Issued.UnixMilli() <= 0 {
		return nil, fmt.Errorf("%w: issue time %v is not after 1970", ErrInvalid, m.Issued)
	}
	if signer == nil {
		return nil, fmt.Errorf("%w: no signer", ErrInvalid)
	}
	pub, ok := signer.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: signer holds a %T key, want Ed25519 (%s)", ErrInvalid, signer.Public(), hsm.LabelSignHotlist)
	}
	cards := make([]uint64, len(add))
	reasons := make([]byte, len(add))
	for i, e := range add {
		cards[i], reasons[i] = e.Card, byte(e.Reason)
	}
	out := make([]byte, headerSize, headerSize+10+3*len(add)+3*len(remove))
	out = appendNumbers(out, cards)
	out = append(out, reasons...)
	out = appendNumbers(out, remove)
	m.Adds, m.Removes = len(add), len(remove)
	m.sectionLen = uint64(len(out) - headerSize)
	m.Sum = sha256.Sum256(out[headerSize:])
	return sign(out, m, signer, pub)
}

// sign writes m into out's header and signs it.
func sign(out []byte, m *Manifest, signer crypto.Signer, pub ed25519.PublicKey) ([]byte, error) {
	m.put(out[:manifestSize])
	sig, err := signer.Sign(rand.Reader, out[:manifestSize], crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("sign with %s@%d: %w", hsm.LabelSignHotlist, m.KeyVersion, err)
	}
	// Checked here so that a faulty token is caught at the registry, not by
	// every validator of the city.
	if !hsm.Verify(pub, out[:manifestSize], sig) {
		return nil, fmt.Errorf("sign with %s@%d: the signature does not verify with the signer's own public key",
			hsm.LabelSignHotlist, m.KeyVersion)
	}
	copy(out[manifestSize:headerSize], sig)
	return out, nil
}

func appendNumbers(b []byte, sorted []uint64) []byte {
	var prev uint64
	for _, c := range sorted {
		b = binary.AppendUvarint(b, c-prev)
		prev = c
	}
	return b
}

// Diff returns what a delta from the list old to the list next must add
// and remove. Each list must hold a card at most once.
func Diff(old, next []Entry) (add []Entry, remove []uint64, err error) {
	o, err := sortedEntries(old)
	if err != nil {
		return nil, nil, fmt.Errorf("hotlist diff, old list: %w", err)
	}
	n, err := sortedEntries(next)
	if err != nil {
		return nil, nil, fmt.Errorf("hotlist diff, new list: %w", err)
	}
	i, j := 0, 0
	for i < len(o) || j < len(n) {
		switch {
		case j == len(n) || (i < len(o) && o[i].Card < n[j].Card):
			remove = append(remove, o[i].Card)
			i++
		case i == len(o) || n[j].Card < o[i].Card:
			add = append(add, n[j])
			j++
		default:
			if o[i].Reason != n[j].Reason {
				add = append(add, n[j])
			}
			i, j = i+1, j+1
		}
	}
	return add, remove, nil
}
