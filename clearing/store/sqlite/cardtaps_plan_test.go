package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// TestCardTapsPlan checks that SQLite finds a card's taps through the
// taps_card index by card and time, not by reading the table.
func TestCardTapsPlan(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for name, q := range map[string]store.CardTapQuery{
		"first page": {Cards: []uint64{1, 2, 3}, From: from, To: from.AddDate(0, 1, 0), Limit: 20},
		"next page":  {Cards: []uint64{1}, From: from, To: from.AddDate(0, 1, 0), Limit: 20, Before: store.TapCursor{Time: from.AddDate(0, 0, 9), Device: "V-1", Seq: 7}},
	} {
		sql, args, ok := cardTapsQuery(&q)
		if !ok {
			t.Fatalf("%s: the query leaves nothing to read", name)
		}
		rows, err := s.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "USING INDEX taps_card (card=? AND tapped_us>? AND tapped_us<?)") || strings.Contains(text, "SCAN taps") {
			t.Errorf("%s: the plan does not look cards up by card and time in taps_card:\n%s", name, text)
		}
	}
}
