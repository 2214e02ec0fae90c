package store

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/validator/tap"
)

// MaxCardTapPage is the most taps one CardTaps call returns.
const MaxCardTapPage = 1000

// MaxCardTapCards bounds the cards one CardTaps call names: one holder's
// cards over the years, not a list of the city's.
const MaxCardTapCards = 100

// ErrInvalidQuery is wrapped by CardTaps when its query fails
// CardTapQuery.Validate, and by ParseTapCursor.
var ErrInvalidQuery = errors.New("invalid card taps query")

// CardTapQuery selects a page of the taps of some cards, for the card
// holder's list of rides.
type CardTapQuery struct {
	// Cards are the card numbers, 1 to MaxCardTapCards of them, each
	// once.
	Cards []uint64
	// From and To bound the taps' times, [From, To); both are required.
	// A month in the city's time zone is Bounds(period, loc).
	From, To time.Time
	// Limit is the page size, 1 to MaxCardTapPage.
	Limit int
	// Before continues a listing towards older taps: only the taps that
	// come after it in CardTaps order, the next page. After goes back
	// towards newer taps: only the taps that come before it, of which the
	// page holds the Limit nearest to After, still newest first. At most
	// one of them is set; the zero TapCursor is none, and the page then
	// starts at the newest tap.
	Before, After TapCursor
}

// Validate reports what is wrong with q. Its messages name no card
// number: card numbers are linked to people, and errors end up in logs.
func (q *CardTapQuery) Validate() error {
	switch {
	case len(q.Cards) == 0:
		return fmt.Errorf("%w: name at least one card", ErrInvalidQuery)
	case len(q.Cards) > MaxCardTapCards:
		return fmt.Errorf("%w: %d cards, at most %d in one query", ErrInvalidQuery, len(q.Cards), MaxCardTapCards)
	case q.From.IsZero() || q.To.IsZero():
		return fmt.Errorf("%w: both ends of the time range are required (from %s, to %s)", ErrInvalidQuery, fmtEnd(q.From), fmtEnd(q.To))
	case !q.From.Before(q.To):
		return fmt.Errorf("%w: time range from %s to %s is empty; from must be before to", ErrInvalidQuery, fmtEnd(q.From), fmtEnd(q.To))
	case q.Limit < 1 || q.Limit > MaxCardTapPage:
		return fmt.Errorf("%w: limit %d, want 1 to %d", ErrInvalidQuery, q.Limit, MaxCardTapPage)
	case !q.Before.IsZero() && !q.After.IsZero():
		return fmt.Errorf("%w: both a before and an after cursor; page one way at a time", ErrInvalidQuery)
	}
	seen := make(map[uint64]int, len(q.Cards))
	for i, c := range q.Cards {
		if j, ok := seen[c]; ok {
			return fmt.Errorf("%w: cards %d and %d of the query are the same card", ErrInvalidQuery, j+1, i+1)
		}
		seen[c] = i
	}
	for _, c := range []struct {
		name string
		cur  TapCursor
	}{{"before", q.Before}, {"after", q.After}} {
		if err := c.cur.check(); err != nil && !c.cur.IsZero() {
			return fmt.Errorf("%w: %s cursor: %v", ErrInvalidQuery, c.name, err)
		}
	}
	return nil
}

func fmtEnd(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.Format(time.RFC3339Nano)
}

// Range returns the part of [q.From, q.To) that q's cursor leaves to
// search, so that a store reads (and PostgreSQL prunes partitions) by the
// narrower range; from is not before to when nothing is left.
func (q *CardTapQuery) Range() (from, to time.Time) {
	from, to = q.From, q.To
	if !q.Before.IsZero() {
		// Taps at the cursor's own time with a lower device or sequence
		// still follow it.
		if end := q.Before.Time.Truncate(time.Microsecond).Add(time.Microsecond); end.Before(to) {
			to = end
		}
	}
	if !q.After.IsZero() {
		if start := q.After.Time.Truncate(time.Microsecond); start.After(from) {
			from = start
		}
	}
	return from, to
}

// TapCursor is a tap's place in the order CardTaps returns taps in:
// newest first, and taps of the same time by device and then sequence
// number, both descending, so that the order is total and a page
// continues exactly where the one before it ended.
type TapCursor struct {
	Time   time.Time
	Device string
	Seq    uint64
}

// CursorOf returns the place of t.
func CursorOf(t *tap.Tap) TapCursor {
	return TapCursor{Time: t.Time.UTC().Truncate(time.Microsecond), Device: t.Device, Seq: t.Seq}
}

// IsZero reports whether c is the zero cursor, which stands for none.
func (c TapCursor) IsZero() bool { return c.Time.IsZero() && c.Device == "" && c.Seq == 0 }

// Compare returns -1 when c comes before d in CardTaps order (c is the
// newer), +1 when it comes after and 0 when they are the same place.
// Times compare to the microsecond, as the stores keep them.
func (c TapCursor) Compare(d TapCursor) int {
	ct, dt := c.Time.Truncate(time.Microsecond), d.Time.Truncate(time.Microsecond)
	switch {
	case ct.After(dt):
		return -1
	case ct.Before(dt):
		return 1
	case c.Device > d.Device:
		return -1
	case c.Device < d.Device:
		return 1
	case c.Seq > d.Seq:
		return -1
	case c.Seq < d.Seq:
		return 1
	}
	return 0
}

// check reports why c cannot be the place of a stored tap.
func (c TapCursor) check() error {
	switch {
	case c.Time.IsZero():
		return errors.New("no time")
	case c.Device == "":
		return errors.New("no device")
	case c.Seq == 0 || c.Seq > math.MaxInt64:
		return fmt.Errorf("sequence %d, want 1 to 2^63-1", c.Seq)
	}
	return nil
}

// String returns c in the form ParseTapCursor reads, for a link to the
// next page: "<Unix microseconds>.<seq>.<device>". It says which
// validator and when, nothing about the card or its holder.
func (c TapCursor) String() string {
	if c.IsZero() {
		return ""
	}
	return strconv.FormatInt(c.Time.UnixMicro(), 10) + "." + strconv.FormatUint(c.Seq, 10) + "." + c.Device
}

// ParseTapCursor reads a cursor written by TapCursor.String; "" is the
// zero cursor.
func ParseTapCursor(s string) (TapCursor, error) {
	if s == "" {
		return TapCursor{}, nil
	}
	us, rest, ok1 := strings.Cut(s, ".")
	seq, device, ok2 := strings.Cut(rest, ".")
	var c TapCursor
	if ok1 && ok2 {
		u, err1 := strconv.ParseInt(us, 10, 64)
		n, err2 := strconv.ParseUint(seq, 10, 64)
		if err1 == nil && err2 == nil {
			c = TapCursor{Time: time.UnixMicro(u).UTC(), Device: device, Seq: n}
		}
	}
	if err := c.check(); err != nil {
		return TapCursor{}, fmt.Errorf("%w: cursor %q: want <Unix microseconds>.<sequence>.<device> (%v)", ErrInvalidQuery, s, err)
	}
	return c, nil
}
