package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/proofplan"
)

// Held implements store.Store.
func (s *Store) Held(ctx context.Context, q store.HeldQuery) ([]store.HeldRide, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	states := []string{string(rerate.Held), string(rerate.Waiting)}
	if q.Decided {
		states = append(states, string(rerate.Released), string(rerate.Rejected))
	}
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("t", tapColumns)+`, `+judgedColumns+`, c.device IS NOT NULL
		FROM judged j
		JOIN taps t ON t.device = j.device AND t.seq = j.seq AND t.tapped_at = j.tapped_at
		LEFT JOIN confirmed c ON c.device = j.device AND c.seq = j.seq
		WHERE j.period = $1 AND j.state = ANY($2) AND ($3 = '' OR j.carrier = $3) AND ($4 = '' OR j.reason = $4)
			AND (j.device, j.seq) > ($5, $6)
		ORDER BY j.device, j.seq LIMIT $7`,
		q.Period, states, q.Carrier, q.Reason, q.After.Device, int64(q.After.Seq), q.Limit)
	if err != nil {
		return nil, fmt.Errorf("held rides of %s: %w", q.Period, err)
	}
	out, err := pgx.CollectRows(rows, scanHeld)
	if err != nil {
		return nil, fmt.Errorf("held rides of %s: %w", q.Period, err)
	}
	return out, nil
}

func scanHeld(r pgx.CollectableRow) (store.HeldRide, error) {
	var (
		ts        tapScan
		js        judgedScan
		confirmed bool
	)
	if err := r.Scan(append(append(ts.targets(), js.targets()...), &confirmed)...); err != nil {
		return store.HeldRide{}, err
	}
	t, err := ts.tap()
	if err != nil {
		return store.HeldRide{}, err
	}
	_, rec, _ := js.record()
	return proofplan.HeldRide(&t, rec, confirmed), nil
}

// Decide implements store.Store.
func (s *Store) Decide(ctx context.Context, d store.HeldDecision) ([]store.HeldRide, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var out []store.HeldRide
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Shared, like ingest: a release books into an open period, which
		// a close must not seal meanwhile.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", int64(closeLockKey)); err != nil {
			return fmt.Errorf("decide: wait for a period close: %w", err)
		}
		devs, seqs := make([]string, len(d.Rides)), make([]int64, len(d.Rides))
		for i, r := range d.Rides {
			devs[i], seqs[i] = r.Device, int64(r.Seq)
		}
		rows, err := tx.Query(ctx, `SELECT j.card FROM unnest($1::text[], $2::bigint[]) AS u(device, seq)
			JOIN judged j ON j.device = u.device AND j.seq = u.seq`, devs, seqs)
		if err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		cards, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		ids := make([]uint64, len(cards))
		for i, c := range cards {
			ids[i] = uint64(c)
		}
		// A card's rides are decided and judged one transaction at a
		// time.
		if err := lockCards(ctx, tx, ids); err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		rows, err = tx.Query(ctx, `SELECT `+prefixed("t", tapColumns)+`, t.booked, `+judgedColumns+`
			FROM unnest($1::text[], $2::bigint[]) AS u(device, seq)
			JOIN judged j ON j.device = u.device AND j.seq = u.seq
			JOIN taps t ON t.device = j.device AND t.seq = j.seq AND t.tapped_at = j.tapped_at
			FOR UPDATE OF j`, devs, seqs)
		if err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		var found []proofplan.Decided
		for rows.Next() {
			var (
				ts     tapScan
				booked string
				js     judgedScan
			)
			if err := rows.Scan(append(append(ts.targets(), &booked), js.targets()...)...); err != nil {
				rows.Close()
				return fmt.Errorf("decide: %w", err)
			}
			t, err := ts.tap()
			if err != nil {
				rows.Close()
				return fmt.Errorf("decide: %w", err)
			}
			_, rec, _ := js.record()
			found = append(found, proofplan.Decided{Ride: rerate.Ride{Tap: &t, Booked: booked}, Record: rec})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		var closed []string
		rows, err = tx.Query(ctx, "SELECT period FROM closed_periods")
		if err == nil {
			closed, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			return fmt.Errorf("decide: %w", err)
		}
		w, err := proofplan.Decide(d, found, closed, s.loc)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		queueJudgedRows(b, w.Rows, s.opt.Clock()().UTC().Truncate(time.Microsecond))
		queueDeltas(b, w.Deltas)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("decide: record the decisions: %w", err)
		}
		out = w.Decided
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Proof implements store.Store.
func (s *Store) Proof(ctx context.Context, period string) ([]store.ProofLine, error) {
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	var out []store.ProofLine
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		lines := proofplan.ProofLines{}
		// Paid: the period's own statement and every adjustment of it.
		rows, err := tx.Query(ctx, `SELECT carrier, sum(rides)::bigint, sum(compensation_kop)::bigint FROM rollup
			WHERE (period = $1 AND adjusts = '') OR adjusts = $1 GROUP BY carrier`, period)
		if err != nil {
			return err
		}
		var (
			carrier, state string
			n, kop         int64
		)
		if _, err := pgx.ForEachRow(rows, []any{&carrier, &n, &kop}, func() error {
			l := lines.Get(carrier)
			l.Paid, l.CompensationKop = n, kop
			return nil
		}); err != nil {
			return err
		}
		// Confirmed among the paid: a judgement may have held or not owed
		// a confirmed ride.
		rows, err = tx.Query(ctx, `SELECT c.carrier, count(*) FROM confirmed c
			LEFT JOIN judged j ON j.device = c.device AND j.seq = c.seq
			WHERE c.period = $1 AND (j.state IS NULL OR j.state IN ('paid', 'released'))
			GROUP BY c.carrier`, period)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&carrier, &n}, func() error {
			lines.Get(carrier).Confirmed = n
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT carrier, state, count(*), sum(claimed_kop)::bigint FROM judged
			WHERE period = $1 AND state IN ('held', 'waiting') GROUP BY carrier, state`, period)
		if err != nil {
			return err
		}
		if _, err := pgx.ForEachRow(rows, []any{&carrier, &state, &n, &kop}, func() error {
			lines.Add(carrier, state, n, kop)
			return nil
		}); err != nil {
			return err
		}
		out = lines.Sorted()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("proof of %s: %w", period, err)
	}
	return out, nil
}
