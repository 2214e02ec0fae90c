package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// CardTaps implements store.Store.
func (s *Store) CardTaps(ctx context.Context, q store.CardTapQuery) ([]tap.Tap, error) {
	if err := q.Validate(); err != nil {
		return nil, fmt.Errorf("card taps: %w", err)
	}
	sql, args, ok := cardTapsQuery(&q)
	if !ok {
		return nil, nil // the cursor is at an end of the range
	}
	rows, err := s.db.QueryContext(ctx, sql, args...)
	// Errors name no card: card numbers are linked to people, and errors
	// end up in logs.
	if err != nil {
		return nil, fmt.Errorf("card taps of %d cards: %w", len(q.Cards), err)
	}
	out, err := scanTaps(rows)
	if err != nil {
		return nil, fmt.Errorf("card taps of %d cards: %w", len(q.Cards), err)
	}
	if !q.After.IsZero() {
		slices.Reverse(out) // read oldest first, from the cursor up
	}
	return out, nil
}

// cardTapsQuery returns the statement and arguments of a valid q; ok is
// false when q's cursor leaves nothing of its range. SQLite looks each
// card up in taps_card (card, tapped_us) within the range and sorts what
// it found: the rides of a few cards in a month or so.
func cardTapsQuery(q *store.CardTapQuery) (sql string, args []any, ok bool) {
	from, to := q.Range()
	if !from.Before(to) {
		return "", nil, false
	}
	args = make([]any, 0, len(q.Cards)+6)
	for _, c := range q.Cards {
		args = append(args, int64(c)) // the bit pattern, as stored
	}
	args = append(args, from.UnixMicro(), to.UnixMicro())
	dir, op, cur := "DESC", "<", q.Before
	if !q.After.IsZero() {
		dir, op, cur = "ASC", ">", q.After
	}
	cursor := ""
	if !cur.IsZero() {
		// device compares in BINARY collation: byte order, as
		// TapCursor.Compare and the PostgreSQL store have it.
		cursor = " AND (tapped_us, device, seq) " + op + " (?, ?, ?)"
		args = append(args, cur.Time.UnixMicro(), cur.Device, int64(cur.Seq))
	}
	args = append(args, q.Limit)
	sql = `SELECT ` + tapColumns + ` FROM taps
		WHERE card IN (?` + strings.Repeat(", ?", len(q.Cards)-1) + `) AND tapped_us >= ? AND tapped_us < ?` + cursor + `
		ORDER BY tapped_us ` + dir + `, device ` + dir + `, seq ` + dir + `
		LIMIT ?`
	return sql, args, true
}
