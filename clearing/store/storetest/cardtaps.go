package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// Cards of the CardTaps tests: a holder's two cards (one numbered above
// 2^63, which must survive a signed column), another holder's card whose
// taps are interleaved with theirs, and a card that never rode.
const (
	cardMine    uint64 = 1<<63 + 5
	cardMine2   uint64 = 4242
	cardOther   uint64 = 4243
	cardNoRides uint64 = 777
)

// cardTapsData returns taps of the cards above around the October to
// November boundary in Kyiv: regular rides from 29 October to 3
// November, taps of several cards and devices at the very same instant
// (midnight of 1 November, the first instant of the month, and the last
// millisecond of October), and rides just outside the two months.
func cardTapsData(loc *time.Location) []tap.Tap {
	seqs := map[string]uint64{}
	var out []tap.Tap
	add := func(card uint64, device string, at time.Time) {
		seqs[device]++
		t := ride(device, seqs[device], at)
		t.Card = card
		t.Route = "R" + strconv.Itoa(len(out))
		switch len(out) % 3 {
		case 1: // refused: nothing charged, nothing owed
			t.Result, t.Reason, t.Product, t.Category, t.Funding = tap.Denied, "insufficient-funds", "", "", ""
			t.ChargedKop, t.CompensationKop = 0, 0
		case 2: // paid from the purse
			t.Product, t.Category, t.Funding = "purse", "", ""
			t.ChargedKop, t.CompensationKop = t.FareKop, 0
		}
		out = append(out, t)
	}
	start := time.Date(2026, 10, 29, 0, 0, 0, 0, loc)
	for at := start; at.Before(time.Date(2026, 11, 3, 0, 0, 0, 0, loc)); at = at.Add(5 * time.Hour) {
		add(cardMine, "V-1", at)
		add(cardOther, "V-1", at) // same device, same time, another card
	}
	for at := start.Add(time.Hour); at.Before(time.Date(2026, 11, 2, 12, 0, 0, 0, loc)); at = at.Add(7 * time.Hour) {
		add(cardMine2, "T-9", at)
	}
	// Ties at the first instant of November: the order falls back to the
	// device, then the sequence number, both in byte order.
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, loc)
	for _, d := range []string{"V-1", "v-1", "Б-2", "V-10", "T-9", "V-1"} {
		add(cardMine, d, nov)
	}
	add(cardMine2, "V-1", nov)
	add(cardOther, "v-1", nov)
	lastOct := nov.Add(-time.Millisecond)
	add(cardMine, "V-1", lastOct)
	add(cardMine2, "Б-2", lastOct)
	add(cardOther, "Б-2", lastOct)
	// Outside October and November.
	add(cardMine, "V-1", time.Date(2026, 10, 1, 0, 0, 0, 0, loc).Add(-time.Millisecond))
	add(cardMine, "V-1", time.Date(2026, 12, 1, 0, 0, 0, 0, loc))
	add(cardMine2, "T-9", time.Date(2026, 12, 1, 0, 0, 0, 0, loc).Add(time.Millisecond))
	return out
}

// expectCardTaps computes, independently of any store, the taps of cards
// in [from, to), newest first, then by device and sequence number
// descending.
func expectCardTaps(taps []tap.Tap, cards []uint64, from, to time.Time) []tap.Tap {
	var out []tap.Tap
	for _, t := range taps {
		if slices.Contains(cards, t.Card) && !t.Time.Before(from) && t.Time.Before(to) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b tap.Tap) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.Device, a.Device), cmp.Compare(b.Seq, a.Seq))
	})
	return out
}

func cardTaps(t *testing.T, s store.Store, q store.CardTapQuery) []tap.Tap {
	t.Helper()
	got, err := s.CardTaps(ctxFor(t), q)
	if err != nil {
		t.Fatalf("CardTaps(%d cards, %s to %s, limit %d, before %q, after %q): %v",
			len(q.Cards), q.From, q.To, q.Limit, q.Before, q.After, err)
	}
	if len(got) > q.Limit {
		t.Fatalf("CardTaps(limit %d) returned %d taps", q.Limit, len(got))
	}
	return got
}

// testCardTaps checks a card holder's list of rides: the cards and range
// asked for and nothing else, newest first, page by page in both
// directions across a month boundary and through taps of the same
// instant, and the refusal of queries that make no sense.
func testCardTaps(t *testing.T, open Open) {
	loc := Options(t).Location
	data := cardTapsData(loc)
	s, _ := openStore(t, open)
	addTaps(t, s, data, len(data), 0)

	octFrom, octTo, err := store.Bounds("2026-10", loc)
	if err != nil {
		t.Fatal(err)
	}
	_, novTo, err := store.Bounds("2026-11", loc)
	if err != nil {
		t.Fatal(err)
	}
	mine := []uint64{cardMine, cardMine2}

	t.Run("Months", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			cards    []uint64
			from, to time.Time
		}{
			{"October", mine, octFrom, octTo},
			{"November", mine, octTo, novTo},
			{"both months", mine, octFrom, novTo},
			{"one card", []uint64{cardMine2}, octFrom, novTo},
			{"another holder", []uint64{cardOther}, octFrom, novTo},
			{"with a card that never rode", []uint64{cardNoRides, cardMine}, octFrom, novTo},
			{"the boundary instant alone", mine, octTo, octTo.Add(time.Microsecond)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				want := expectCardTaps(data, tc.cards, tc.from, tc.to)
				if len(want) == 0 {
					t.Fatal("the test expects no taps; it checks nothing")
				}
				got := cardTaps(t, s, store.CardTapQuery{Cards: tc.cards, From: tc.from, To: tc.to, Limit: store.MaxCardTapPage})
				checkTaps(t, got, want)
			})
		}
		// The month is cut in the city's time zone: the last millisecond
		// of October belongs to October, midnight to November.
		oct := cardTaps(t, s, store.CardTapQuery{Cards: mine, From: octFrom, To: octTo, Limit: store.MaxCardTapPage})
		if len(oct) == 0 {
			t.Fatal("no October taps")
		}
		if last := oct[0].Time.In(loc); last.Month() != time.October || last.Day() != 31 || last.Hour() != 23 {
			t.Errorf("October's newest tap is at %s in %s; want the last millisecond of October", last, loc)
		}
	})

	t.Run("NoTaps", func(t *testing.T) {
		for _, q := range []store.CardTapQuery{
			{Cards: []uint64{cardNoRides}, From: octFrom, To: novTo, Limit: 10},
			{Cards: mine, From: octFrom.AddDate(-1, 0, 0), To: octTo.AddDate(-1, 0, 0), Limit: 10},
			{Cards: []uint64{cardNoRides, 1, 2, 3}, From: octFrom, To: novTo, Limit: 10},
		} {
			if got := cardTaps(t, s, q); len(got) != 0 {
				t.Errorf("CardTaps(%v, %s to %s) = %d taps, want none", q.Cards, q.From, q.To, len(got))
			}
		}
	})

	t.Run("PagesOlder", func(t *testing.T) {
		want := expectCardTaps(data, mine, octFrom, novTo)
		spans := false // a page held taps of both months
		for _, limit := range []int{1, 2, 3, 7, len(want), len(want) + 1} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				var all []tap.Tap
				q := store.CardTapQuery{Cards: mine, From: octFrom, To: novTo, Limit: limit}
				for range len(want) + 2 {
					page := cardTaps(t, s, q)
					if len(page) == 0 {
						break
					}
					if len(page) < limit && len(all)+len(page) < len(want) {
						t.Fatalf("a short page (%d of %d) before the end", len(page), limit)
					}
					spans = spans || page[0].Time.In(loc).Month() != page[len(page)-1].Time.In(loc).Month()
					all = append(all, page...)
					q.Before = store.CursorOf(&page[len(page)-1])
				}
				checkTaps(t, all, want)
			})
		}
		if !spans {
			t.Error("no page held taps of both months; the boundary was not tested")
		}
	})

	t.Run("PagesNewer", func(t *testing.T) {
		want := expectCardTaps(data, mine, octFrom, novTo)
		for _, limit := range []int{1, 3, 7, len(want)} {
			t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
				// From the oldest tap back up: each page holds the limit
				// taps right above the cursor, newest first.
				end := len(want) - 1
				q := store.CardTapQuery{Cards: mine, From: octFrom, To: novTo, Limit: limit, After: store.CursorOf(&want[end])}
				for end > 0 {
					page := cardTaps(t, s, q)
					checkTaps(t, page, want[max(0, end-limit):end])
					end -= len(page)
					q.After = store.CursorOf(&page[0])
				}
				if page := cardTaps(t, s, q); len(page) != 0 {
					t.Errorf("after the newest tap: %d taps, want none", len(page))
				}
			})
		}
	})

	t.Run("Cursors", func(t *testing.T) {
		want := expectCardTaps(data, mine, octFrom, novTo)
		q := store.CardTapQuery{Cards: mine, From: octFrom, To: novTo, Limit: store.MaxCardTapPage}
		// Before the oldest and after the newest there is nothing.
		q.Before = store.CursorOf(&want[len(want)-1])
		if got := cardTaps(t, s, q); len(got) != 0 {
			t.Errorf("before the oldest tap: %d taps, want none", len(got))
		}
		// A cursor outside the range bounds nothing; one in the middle of
		// the instant shared by several taps splits it exactly.
		q.Before = store.TapCursor{Time: novTo.AddDate(1, 0, 0), Device: "V-1", Seq: 1}
		checkTaps(t, cardTaps(t, s, q), want)
		for i := range want {
			if !want[i].Time.Equal(octTo) || i+1 >= len(want) || !want[i+1].Time.Equal(octTo) {
				continue
			}
			q.Before = store.CursorOf(&want[i])
			checkTaps(t, cardTaps(t, s, q), want[i+1:])
			q.Before, q.After = store.TapCursor{}, store.CursorOf(&want[i+1])
			checkTaps(t, cardTaps(t, s, q), want[:i+1])
			q.After = store.TapCursor{}
		}
		// A cursor survives its text form, as it travels in a link.
		c := store.CursorOf(&want[len(want)/2])
		back, err := store.ParseTapCursor(c.String())
		if err != nil || back.Compare(c) != 0 {
			t.Errorf("ParseTapCursor(%q) = %+v, %v; want %+v", c.String(), back, err, c)
		}
		q.Before = back
		checkTaps(t, cardTaps(t, s, q), want[len(want)/2+1:])
	})

	t.Run("Invalid", func(t *testing.T) {
		ok := store.CardTapQuery{Cards: mine, From: octFrom, To: novTo, Limit: 10}
		cursor := store.CursorOf(&data[0])
		tooMany := make([]uint64, store.MaxCardTapCards+1)
		for i := range tooMany {
			tooMany[i] = uint64(i + 1)
		}
		for name, change := range map[string]func(q *store.CardTapQuery){
			"no cards":          func(q *store.CardTapQuery) { q.Cards = nil },
			"too many cards":    func(q *store.CardTapQuery) { q.Cards = tooMany },
			"a card twice":      func(q *store.CardTapQuery) { q.Cards = []uint64{cardMine, cardMine2, cardMine} },
			"no from":           func(q *store.CardTapQuery) { q.From = time.Time{} },
			"no to":             func(q *store.CardTapQuery) { q.To = time.Time{} },
			"from equals to":    func(q *store.CardTapQuery) { q.To = q.From },
			"from after to":     func(q *store.CardTapQuery) { q.From, q.To = q.To, q.From },
			"limit 0":           func(q *store.CardTapQuery) { q.Limit = 0 },
			"negative limit":    func(q *store.CardTapQuery) { q.Limit = -1 },
			"limit above max":   func(q *store.CardTapQuery) { q.Limit = store.MaxCardTapPage + 1 },
			"both cursors":      func(q *store.CardTapQuery) { q.Before, q.After = cursor, cursor },
			"cursor, no device": func(q *store.CardTapQuery) { q.Before = store.TapCursor{Time: octTo, Seq: 1} },
			"cursor, seq 0":     func(q *store.CardTapQuery) { q.After = store.TapCursor{Time: octTo, Device: "V-1"} },
			"cursor, no time":   func(q *store.CardTapQuery) { q.Before = store.TapCursor{Device: "V-1", Seq: 1} },
		} {
			q := ok
			q.Cards = slices.Clone(ok.Cards)
			change(&q)
			got, err := s.CardTaps(ctxFor(t), q)
			if !errors.Is(err, store.ErrInvalidQuery) {
				t.Errorf("%s: CardTaps = %d taps, %v; want ErrInvalidQuery", name, len(got), err)
				continue
			}
			// Card numbers are linked to people: errors, which are
			// logged, never name one.
			for _, c := range mine {
				if strings.Contains(err.Error(), strconv.FormatUint(c, 10)) {
					t.Errorf("%s: the error names a card: %v", name, err)
				}
			}
		}
		if _, err := s.CardTaps(ctxFor(t), ok); err != nil {
			t.Errorf("the valid query the cases start from: %v", err)
		}
	})
}
