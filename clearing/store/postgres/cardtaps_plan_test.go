package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Kyiv without the system's tzdata

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/tap"
)

// TestCardTapsPlan checks how PostgreSQL runs CardTaps over three months
// of a city's taps: through the (card, tapped_at) index of the one
// month's partition the range falls in, never scanning a table, with the
// other months pruned both when the plan is made for the values (a custom
// plan) and when a prepared statement runs a generic plan.
func TestCardTapsPlan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	dsn := testenv.PostgresSchema(t)
	if _, err := Migrate(ctx, dsn, kyiv); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	s, err := Open(ctx, dsn, store.Options{Location: kyiv})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	// 2,000 cards, three rides each in each of October, November and
	// December 2026: enough rows that reading a card from an index beats
	// reading a table.
	const cards = 2000
	var seq uint64
	for m := time.October; m <= time.December; m++ {
		var batch []tap.Tap
		for c := range uint64(cards) {
			for r := range 3 {
				seq++
				at := time.Date(2026, m, 1+r*9, 7, 0, 0, 0, kyiv).Add(time.Duration(c) * time.Second)
				batch = append(batch, tap.Tap{Device: "V-1", Seq: seq, Time: at.UTC(), Card: 5000 + c,
					Carrier: "ATP-1", Route: "12", Result: tap.Accepted, Reason: "ok", Product: "purse",
					FareKop: 1500, ChargedKop: 1500, CardCommitted: true})
			}
		}
		if _, _, err := s.AddTaps(ctx, batch); err != nil {
			t.Fatalf("AddTaps: %v", err)
		}
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE taps"); err != nil {
		t.Fatal(err)
	}

	from, to, err := store.Bounds("2026-11", kyiv)
	if err != nil {
		t.Fatal(err)
	}
	// The partition that holds November, and the name of its card index,
	// as the database has them.
	var part, index string
	if err := s.pool.QueryRow(ctx, "SELECT tableoid::regclass::text FROM taps WHERE tapped_at >= $1 AND tapped_at < $2 LIMIT 1", from, to).Scan(&part); err != nil {
		t.Fatalf("find November's partition: %v", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(card, tapped_at)'", part).Scan(&index); err != nil {
		t.Fatalf("find the card index of %s: %v", part, err)
	}
	rows, err := s.pool.Query(ctx, "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'taps'::regclass")
	if err != nil {
		t.Fatal(err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(parts) < 3 {
		t.Fatalf("partitions of taps: %v, %v; want at least October to December", parts, err)
	}

	queries := map[string]store.CardTapQuery{
		"first page": {Cards: []uint64{5001, 5002, 5003}, From: from, To: to, Limit: 20},
		"next page":  {Cards: []uint64{5001}, From: from, To: to, Limit: 2, Before: store.TapCursor{Time: to.Add(-time.Hour), Device: "V-1", Seq: 9000}},
		"newer page": {Cards: []uint64{5001}, From: from, To: to, Limit: 2, After: store.TapCursor{Time: from.Add(time.Hour), Device: "V-1", Seq: 1}},
	}
	check := func(t *testing.T, how, plan string) {
		t.Helper()
		if !strings.Contains(plan, index) {
			t.Errorf("%s: the plan does not use %s:\n%s", how, index, plan)
		}
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s: the plan scans a table:\n%s", how, plan)
		}
		for _, p := range parts {
			if p != part && regexp.MustCompile(`\b`+p+`\b`).MatchString(plan) {
				t.Errorf("%s: the plan reads partition %s, outside the range:\n%s", how, p, plan)
			}
		}
	}
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			sql, args, ok := cardTapsQuery(&q)
			if !ok {
				t.Fatal("the query leaves nothing to read")
			}
			check(t, "custom plan", explain(t, ctx, s.pool, "EXPLAIN "+sql, args...))

			// A generic plan, as a prepared statement may get after a
			// few runs, prunes when it starts.
			conn, err := s.pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			if _, err := conn.Exec(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
				t.Fatal(err)
			}
			defer conn.Exec(context.WithoutCancel(ctx), "RESET plan_cache_mode") //nolint:errcheck // the pool's connection goes back either way
			if _, err := conn.Conn().Prepare(ctx, "card_taps_generic", sql); err != nil {
				t.Fatal(err)
			}
			defer conn.Conn().Deallocate(context.WithoutCancel(ctx), "card_taps_generic") //nolint:errcheck // as above
			literals := make([]string, len(args))
			for i, a := range args {
				literals[i] = literal(t, a)
			}
			plan := explain(t, ctx, conn, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE card_taps_generic("+strings.Join(literals, ", ")+")")
			check(t, "generic plan", plan)
			if !strings.Contains(plan, "Subplans Removed") {
				t.Errorf("generic plan: no partitions pruned at start:\n%s", plan)
			}
		})
	}
}

// explain returns the plan of an EXPLAIN statement as text.
func explain(t *testing.T, ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, args ...any) string {
	t.Helper()
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.Join(lines, "\n")
}

// literal writes a query argument as SQL for EXECUTE.
func literal(t *testing.T, a any) string {
	t.Helper()
	switch v := a.(type) {
	case []int64:
		parts := make([]string, len(v))
		for i, n := range v {
			parts[i] = fmt.Sprint(n)
		}
		return "'{" + strings.Join(parts, ",") + "}'::bigint[]"
	case time.Time:
		return "'" + v.UTC().Format("2006-01-02 15:04:05.999999") + "+00'::timestamptz"
	case int, int64:
		return fmt.Sprint(v)
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	}
	t.Fatalf("no literal for %T", a)
	return ""
}
