package hotlist

import (
	"fmt"
	"iter"
	"math/bits"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/fare"
)

// List is one version of the hotlist in memory. It is immutable, so any
// number of goroutines may read it; a new version is a new List.
//
// Cards are a sorted []uint64 with the reasons alongside in a []Reason (9
// bytes a card). A bucket index on the number's offset from the smallest
// card narrows each binary search to about a dozen entries for well under
// a byte a card: card numbers share their issuer prefix, so the raw high
// bits would put every card in one bucket.
//
// The nil *List is the empty list of version 0: it contains no card.
type List struct {
	m       Manifest // of the last file applied
	full    uint64   // version of the full file this list grew from
	cards   []uint64
	reasons []Reason

	lo, hi uint64   // smallest and largest card
	shift  uint     // bucket of c is (c-lo)>>shift
	index  []uint32 // index[b] is the first position in bucket b or later
}

// Load verifies a full file and returns its list.
func Load(data []byte, keys KeyLookup) (*List, error) {
	var empty *List
	return empty.Apply(data, keys)
}

// Apply verifies a file and returns the list that results from it: a full
// file replaces l, a delta changes a copy of l. The signature is checked
// before anything else; a file not newer than l gives ErrRollback, a delta
// whose base is not l's version gives ErrWrongBase. l itself never
// changes.
func (l *List) Apply(data []byte, keys KeyLookup) (*List, error) {
	m, err := Verify(data, keys)
	if err != nil {
		return nil, err
	}
	if cur := l.Version(); m.Version <= cur {
		return nil, fmt.Errorf("%w: %s file has version %d, the loaded list %d", ErrRollback, m.Kind, m.Version, cur)
	}
	if m.Kind == KindDelta && m.Base != l.Version() {
		if l == nil {
			return nil, fmt.Errorf("%w: delta %d→%d but no list is loaded; fetch a full file", ErrWrongBase, m.Base, m.Version)
		}
		return nil, fmt.Errorf("%w: delta %d→%d but the loaded list is version %d; fetch a full file",
			ErrWrongBase, m.Base, m.Version, l.Version())
	}
	s, err := decodeSection(&m, data[headerSize:])
	if err != nil {
		return nil, fmt.Errorf("hotlist version %d: %w", m.Version, err)
	}
	next := &List{m: m, full: m.Version, cards: s.cards, reasons: s.reasons}
	if m.Kind == KindDelta {
		next.full = l.full
		if next.cards, next.reasons, err = merge(l, s); err != nil {
			return nil, fmt.Errorf("hotlist delta %d→%d: %w", m.Base, m.Version, err)
		}
	}
	next.buildIndex()
	return next, nil
}

// merge applies a delta's section to base in one pass over both.
func merge(base *List, s section) ([]uint64, []Reason, error) {
	add, addR, rm := s.cards, s.reasons, s.removes
	// A card both added and removed has no defined result.
	for i, j := 0, 0; i < len(add) && j < len(rm); {
		switch {
		case add[i] < rm[j]:
			i++
		case add[i] > rm[j]:
			j++
		default:
			return nil, nil, fmt.Errorf("%w: card %d both added and removed", ErrMalformed, add[i])
		}
	}
	bc, br := base.cards, base.reasons
	n := len(bc) + len(add)
	if n > MaxEntries {
		return nil, nil, fmt.Errorf("%w: the result would hold %d cards, at most %d", ErrMalformed, n, MaxEntries)
	}
	cards, reasons := make([]uint64, 0, n), make([]Reason, 0, n)
	i, j, k := 0, 0, 0
	for i < len(bc) || j < len(add) {
		if j == len(add) || (i < len(bc) && bc[i] < add[j]) {
			c := bc[i]
			if k < len(rm) && rm[k] < c {
				break // rm[k] is not in the base; reported below
			}
			if k < len(rm) && rm[k] == c {
				i, k = i+1, k+1
				continue
			}
			cards, reasons = append(cards, c), append(reasons, br[i])
			i++
			continue
		}
		if i < len(bc) && bc[i] == add[j] {
			i++ // a new reason for a listed card
		}
		cards, reasons = append(cards, add[j]), append(reasons, addR[j])
		j++
	}
	if k < len(rm) {
		return nil, nil, fmt.Errorf("%w: it removes card %s, which version %d does not hold",
			ErrWrongBase, card.Number(rm[k]), base.Version())
	}
	return cards, reasons, nil
}

// buildIndex makes about n/16 buckets over [lo, hi].
func (l *List) buildIndex() {
	n := len(l.cards)
	if n == 0 {
		return
	}
	l.lo, l.hi = l.cards[0], l.cards[n-1]
	kbits := bits.Len(uint(n >> 4))
	if span := bits.Len64(l.hi - l.lo); span > kbits {
		l.shift = uint(span - kbits)
	}
	buckets := int((l.hi-l.lo)>>l.shift) + 1
	l.index = make([]uint32, buckets+1)
	b := 0
	for i, c := range l.cards {
		for cb := int((c - l.lo) >> l.shift); b <= cb; b++ {
			l.index[b] = uint32(i)
		}
	}
	for ; b <= buckets; b++ {
		l.index[b] = uint32(n)
	}
}

// find returns the position of c in l.cards.
func (l *List) find(c uint64) (int, bool) {
	if l == nil || len(l.cards) == 0 || c < l.lo || c > l.hi {
		return 0, false
	}
	b := (c - l.lo) >> l.shift
	lo, hi := int(l.index[b]), int(l.index[b+1])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.cards[mid] < c {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(l.cards) && l.cards[lo] == c
}

// Listing says how the list treats card's rides: a benefit-revoked entry
// withdraws only the benefits, any other entry denies. It implements
// fare.Hotlist.
func (l *List) Listing(card uint64) fare.Listing {
	i, ok := l.find(card)
	switch {
	case !ok:
		return fare.NotListed
	case l.reasons[i] == ReasonBenefitRevoked:
		return fare.BenefitRevoked
	}
	return fare.Listed
}

// Contains reports whether card is on the list, for any reason.
func (l *List) Contains(card uint64) bool {
	_, ok := l.find(card)
	return ok
}

// Lookup returns why card is blocked, and false if it is not.
func (l *List) Lookup(card uint64) (Reason, bool) {
	i, ok := l.find(card)
	if !ok {
		return 0, false
	}
	return l.reasons[i], true
}

// Len returns how many cards the list blocks.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.cards)
}

// Version returns the list's version, 0 for the nil list.
func (l *List) Version() uint64 {
	if l == nil {
		return 0
	}
	return l.m.Version
}

// IssuedAt returns when the registry issued this version (UTC), the zero
// time for the nil list.
func (l *List) IssuedAt() time.Time {
	if l == nil {
		return time.Time{}
	}
	return l.m.Issued
}

// Manifest returns the manifest of the file that made this version: a full
// file, or the last delta applied.
func (l *List) Manifest() Manifest {
	if l == nil {
		return Manifest{}
	}
	return l.m
}

// All yields every blocked card and its reason, ascending by card.
func (l *List) All() iter.Seq2[uint64, Reason] {
	return func(yield func(uint64, Reason) bool) {
		if l == nil {
			return
		}
		for i, c := range l.cards {
			if !yield(c, l.reasons[i]) {
				return
			}
		}
	}
}

// SizeBytes returns the memory the list's tables take.
func (l *List) SizeBytes() int {
	if l == nil {
		return 0
	}
	return 8*cap(l.cards) + cap(l.reasons) + 4*cap(l.index)
}
