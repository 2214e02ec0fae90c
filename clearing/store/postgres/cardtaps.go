package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

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
	rows, err := s.pool.Query(ctx, sql, args...)
	// Errors name no card: card numbers are linked to people, and errors
	// end up in logs.
	if err != nil {
		return nil, fmt.Errorf("card taps of %d cards: %w", len(q.Cards), err)
	}
	out, err := pgx.CollectRows(rows, scanTap)
	if err != nil {
		return nil, fmt.Errorf("card taps of %d cards: %w", len(q.Cards), err)
	}
	if !q.After.IsZero() {
		slices.Reverse(out) // read oldest first, from the cursor up
	}
	return out, nil
}

// cardTapsQuery returns the statement and arguments of a valid q; ok is
// false when q's cursor leaves nothing of its range.
//
// Each card is read on its own, in a LATERAL subquery: card = c.card and
// the time range are the taps_card index's (card, tapped_at), which the
// planner walks in time order partition by partition and stops after
// Limit rows, and the range on tapped_at, the partition key, prunes the
// months outside it (at planning with a custom plan, at executor start
// with a generic one). A plain card = ANY($1) would read every tap of
// every card in the range before sorting. The order's tie-breakers,
// device and seq, are not in the index; the few taps of one card with
// the same time are sorted after the index scan.
func cardTapsQuery(q *store.CardTapQuery) (sql string, args []any, ok bool) {
	from, to := q.Range()
	if !from.Before(to) {
		return "", nil, false
	}
	cards := make([]int64, len(q.Cards))
	for i, c := range q.Cards {
		cards[i] = int64(c) // the bit pattern, as stored
	}
	args = []any{cards, from, to, q.Limit}
	dir, op, cur := "DESC", "<", q.Before
	if !q.After.IsZero() {
		dir, op, cur = "ASC", ">", q.After
	}
	cursor := ""
	if !cur.IsZero() {
		// device compares in its column's "C" collation: byte order, as
		// TapCursor.Compare and the SQLite store have it.
		cursor = " AND (t.tapped_at, t.device, t.seq) " + op + " ($5::timestamptz, $6::text, $7::bigint)"
		c := store.CursorOf(&tap.Tap{Time: cur.Time, Device: cur.Device, Seq: cur.Seq})
		args = append(args, c.Time, c.Device, int64(c.Seq))
	}
	order := "tapped_at " + dir + ", device " + dir + ", seq " + dir
	sql = `SELECT x.* FROM unnest($1::bigint[]) AS c(card)
		CROSS JOIN LATERAL (
			SELECT ` + tapColumns + ` FROM taps t
			WHERE t.card = c.card AND t.tapped_at >= $2 AND t.tapped_at < $3` + cursor + `
			ORDER BY ` + order + `
			LIMIT $4) x
		ORDER BY ` + order + `
		LIMIT $4`
	return sql, args, true
}
