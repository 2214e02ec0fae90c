package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/proofplan"
)

// prefixedJudged is judgedColumns of the table aliased j.
var prefixedJudged = func() string {
	parts := strings.Split(judgedColumns, ",")
	for i, p := range parts {
		parts[i] = "j." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}()

// prefixedTaps is tapColumns of the table aliased t.
var prefixedTaps = func() string {
	parts := strings.Split(tapColumns, ",")
	for i, p := range parts {
		parts[i] = "t." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}()

// Held implements store.Store.
func (s *Store) Held(ctx context.Context, q store.HeldQuery) ([]store.HeldRide, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	decided := 0
	if q.Decided {
		decided = 1
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+prefixedTaps+`, t.booked, `+prefixedJudged+`, c.device IS NOT NULL
		FROM judged j
		JOIN taps t ON t.device = j.device AND t.seq = j.seq
		LEFT JOIN confirmed c ON c.device = j.device AND c.seq = j.seq
		WHERE j.period = ?1 AND (j.state IN ('held', 'waiting') OR ?2 AND j.state IN ('released', 'rejected'))
			AND (?3 = '' OR j.carrier = ?3) AND (?4 = '' OR j.reason = ?4)
			AND (j.device > ?5 OR j.device = ?5 AND j.seq > ?6)
		ORDER BY j.device, j.seq LIMIT ?7`,
		q.Period, decided, q.Carrier, q.Reason, q.After.Device, int64(q.After.Seq), q.Limit)
	if err != nil {
		return nil, fmt.Errorf("held rides of %s: %w", q.Period, err)
	}
	found, err := scanDecided(rows)
	if err != nil {
		return nil, fmt.Errorf("held rides of %s: %w", q.Period, err)
	}
	out := make([]store.HeldRide, len(found))
	for i, f := range found {
		out[i] = proofplan.HeldRide(f.Ride.Tap, f.Record, f.confirmed)
	}
	return out, nil
}

type decidedRow struct {
	proofplan.Decided
	confirmed bool
}

// scanDecided reads and closes rows of rideColumns, judgedColumns and
// whether the ride is confirmed.
func scanDecided(rows *sql.Rows) ([]decidedRow, error) {
	defer rows.Close()
	var out []decidedRow
	for rows.Next() {
		var d decidedRow
		ride, rec, err := scanSplit(rows, &d.confirmed)
		if err != nil {
			return nil, err
		}
		d.Ride, d.Record = ride, rec
		out = append(out, d)
	}
	return out, rows.Err()
}

// scanSplit reads one row whose columns are rideColumns, judgedColumns
// and optionally a flag.
func scanSplit(rows *sql.Rows, confirmed *bool) (rerate.Ride, rerate.Record, error) {
	var rr rideRow
	var jr judgedRow
	dst := append(rr.targets(), jr.targets()...)
	if confirmed != nil {
		dst = append(dst, confirmed)
	}
	if err := rows.Scan(dst...); err != nil {
		return rerate.Ride{}, rerate.Record{}, err
	}
	ride, err := rr.ride()
	if err != nil {
		return rerate.Ride{}, rerate.Record{}, err
	}
	return ride, jr.record(), nil
}

// Decide implements store.Store.
func (s *Store) Decide(ctx context.Context, d store.HeldDecision) ([]store.HeldRide, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var out []store.HeldRide
	err := s.write(ctx, "decide", func(tx *sql.Tx) error {
		var found []proofplan.Decided
		for _, r := range d.Rides {
			rows, err := tx.QueryContext(ctx, `SELECT `+prefixedTaps+`, t.booked, `+prefixedJudged+`
				FROM judged j JOIN taps t ON t.device = j.device AND t.seq = j.seq
				WHERE j.device = ? AND j.seq = ?`, r.Device, int64(r.Seq))
			if err != nil {
				return fmt.Errorf("decide: %w", err)
			}
			for rows.Next() {
				ride, rec, err := scanSplit(rows, nil)
				if err != nil {
					rows.Close()
					return fmt.Errorf("decide: %w", err)
				}
				found = append(found, proofplan.Decided{Ride: ride, Record: rec})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("decide: %w", err)
			}
		}
		closed, err := closedPeriods(ctx, tx)
		if err != nil {
			return err
		}
		w, err := proofplan.Decide(d, found, closed, s.loc)
		if err != nil {
			return err
		}
		if err := s.writeRows(ctx, tx, w.Rows, w.Deltas); err != nil {
			return fmt.Errorf("decide: %w", err)
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
	lines := proofplan.ProofLines{}
	q := func(query string, scan func(rows *sql.Rows) error) error {
		rows, err := s.db.QueryContext(ctx, query, period)
		if err != nil {
			return fmt.Errorf("proof of %s: %w", period, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("proof of %s: %w", period, err)
			}
		}
		return rows.Err()
	}
	var (
		carrier, state string
		n, kop         int64
	)
	err := q(`SELECT carrier, sum(rides), sum(compensation_kop) FROM rollup
		WHERE (period = ?1 AND adjusts = '') OR adjusts = ?1 GROUP BY carrier`, func(rows *sql.Rows) error {
		if err := rows.Scan(&carrier, &n, &kop); err != nil {
			return err
		}
		l := lines.Get(carrier)
		l.Paid, l.CompensationKop = n, kop
		return nil
	})
	if err == nil {
		err = q(`SELECT c.carrier, count(*) FROM confirmed c LEFT JOIN judged j ON j.device = c.device AND j.seq = c.seq
			WHERE c.period = ?1 AND (j.state IS NULL OR j.state IN ('paid', 'released')) GROUP BY c.carrier`, func(rows *sql.Rows) error {
			if err := rows.Scan(&carrier, &n); err != nil {
				return err
			}
			lines.Get(carrier).Confirmed = n
			return nil
		})
	}
	if err == nil {
		err = q(`SELECT carrier, state, count(*), sum(claimed_kop) FROM judged
			WHERE period = ?1 AND state IN ('held', 'waiting') GROUP BY carrier, state`, func(rows *sql.Rows) error {
			if err := rows.Scan(&carrier, &state, &n, &kop); err != nil {
				return err
			}
			lines.Add(carrier, state, n, kop)
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	return lines.Sorted(), nil
}
