package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

func TestTapCursorText(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 123456789, time.UTC)
	for _, c := range []store.TapCursor{
		store.CursorOf(&tap.Tap{Device: "V-1", Seq: 1, Time: at}),
		store.CursorOf(&tap.Tap{Device: "Б.2.x", Seq: 1<<63 - 1, Time: at.In(time.FixedZone("X", 7200))}),
		store.CursorOf(&tap.Tap{Device: "v", Seq: 9, Time: time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC)}),
	} {
		got, err := store.ParseTapCursor(c.String())
		if err != nil || got != c {
			t.Errorf("ParseTapCursor(%q) = %+v, %v; want %+v", c.String(), got, err, c)
		}
	}
	if c, err := store.ParseTapCursor(""); err != nil || !c.IsZero() || c.String() != "" {
		t.Errorf(`ParseTapCursor("") = %+v, %v; want the zero cursor`, c, err)
	}
	for _, s := range []string{"x", "1.2", "1..V-1", "1.0.V-1", "1.2.", "a.2.V-1", "1.-2.V-1", "1.9223372036854775808.V-1", "-62135596800000000.1.V-1"} {
		if c, err := store.ParseTapCursor(s); !errors.Is(err, store.ErrInvalidQuery) {
			t.Errorf("ParseTapCursor(%q) = %+v, %v; want ErrInvalidQuery", s, c, err)
		}
	}
}

func TestTapCursorCompare(t *testing.T) {
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	// Newest first, then device and sequence descending, in byte order.
	order := []store.TapCursor{
		{Time: at.Add(time.Microsecond), Device: "A", Seq: 1},
		{Time: at, Device: "Б", Seq: 1},
		{Time: at, Device: "b", Seq: 1},
		{Time: at, Device: "B", Seq: 2},
		{Time: at, Device: "B", Seq: 1},
		{Time: at.Add(-time.Hour), Device: "Z", Seq: 9},
	}
	for i, a := range order {
		for j, b := range order {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%+v.Compare(%+v) = %d, want %d", a, b, got, want)
			}
		}
	}
	// Stores keep microseconds: nanoseconds below them do not count.
	a := store.TapCursor{Time: at.Add(999 * time.Nanosecond), Device: "A", Seq: 1}
	if got := a.Compare(store.TapCursor{Time: at, Device: "A", Seq: 1}); got != 0 {
		t.Errorf("cursors a few nanoseconds apart compare %d, want 0", got)
	}
}

func TestCardTapQueryRange(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 1, 0)
	mid := from.AddDate(0, 0, 10)
	for _, tc := range []struct {
		name           string
		before, after  store.TapCursor
		wantFrom, want time.Time
	}{
		{"no cursor", store.TapCursor{}, store.TapCursor{}, from, to},
		{"before, inside", store.TapCursor{Time: mid, Device: "V", Seq: 1}, store.TapCursor{}, from, mid.Add(time.Microsecond)},
		{"before, after the range", store.TapCursor{Time: to.AddDate(1, 0, 0), Device: "V", Seq: 1}, store.TapCursor{}, from, to},
		{"after, inside", store.TapCursor{}, store.TapCursor{Time: mid, Device: "V", Seq: 1}, mid, to},
		{"after, before the range", store.TapCursor{}, store.TapCursor{Time: from.AddDate(-1, 0, 0), Device: "V", Seq: 1}, from, to},
	} {
		q := store.CardTapQuery{Cards: []uint64{1}, From: from, To: to, Limit: 1, Before: tc.before, After: tc.after}
		if err := q.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", tc.name, err)
		}
		if f, e := q.Range(); !f.Equal(tc.wantFrom) || !e.Equal(tc.want) {
			t.Errorf("%s: Range = %s, %s; want %s, %s", tc.name, f, e, tc.wantFrom, tc.want)
		}
	}
}
