package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/recon"
)

// CheckClones implements store.Store.
func (s *Store) CheckClones(ctx context.Context, limit int) (checked, found int, err error) {
	if limit < 1 {
		return 0, 0, fmt.Errorf("check cloned cards: take at least one queued run, not %d", limit)
	}
	lim := s.opt.Limits.WithDefaults()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, syncCommit); err != nil {
			return err
		}
		// SKIP LOCKED: checkers running at once take different runs.
		// The rows are deleted here and gone only if the transaction
		// that records the findings commits.
		rows, err := tx.Query(ctx, `DELETE FROM clone_checks WHERE id IN (
				SELECT id FROM clone_checks ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
			RETURNING device, first_seq, last_seq, from_at, to_at`, limit)
		if err != nil {
			return fmt.Errorf("take queued runs: %w", err)
		}
		var (
			devs          []string
			firsts, lasts []int64
			froms, tos    []time.Time
			dev           string
			first, last   int64
			from, to      time.Time
		)
		if _, err := pgx.ForEachRow(rows, []any{&dev, &first, &last, &from, &to}, func() error {
			devs, firsts, lasts = append(devs, dev), append(firsts, first), append(lasts, last)
			froms, tos = append(froms, from), append(tos, to)
			return nil
		}); err != nil {
			return fmt.Errorf("take queued runs: %w", err)
		}
		checked = len(devs)
		if checked == 0 {
			return nil
		}
		// For each checkable ride of the runs, the other checkable
		// rides of its card on other vehicles within the window. Both
		// rides of a pair are stored before either's run can be taken
		// (a run is queued in the transaction that stores its rides),
		// so the run checked second finds the pair whichever order
		// they came in; recon.CloneAnomaly names a pair the same way
		// from either side, so it is recorded once. The time bounds
		// let PostgreSQL skip the months a run is not in; OFFSET 0
		// keeps each subquery a probe per row (see readState).
		rows, err = tx.Query(ctx, `SELECT n.card, n.device, n.seq, n.vehicle, n.tapped_at, n.lat, n.lon,
				o.device, o.seq, o.vehicle, o.tapped_at, o.lat, o.lon
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])
				AS r(device, first_seq, last_seq, from_at, to_at)
			CROSS JOIN LATERAL (
				SELECT card, device, seq, vehicle, tapped_at, lat, lon FROM taps t
				WHERE t.device = r.device AND t.seq BETWEEN r.first_seq AND r.last_seq
					AND t.tapped_at BETWEEN r.from_at AND r.to_at
					AND t.result = 1 AND t.card_committed AND t.compensation_kop > 0 AND (t.lat <> 0 OR t.lon <> 0)
				OFFSET 0) n
			CROSS JOIN LATERAL (
				SELECT device, seq, vehicle, tapped_at, lat, lon FROM taps o
				WHERE o.card = n.card AND o.tapped_at BETWEEN n.tapped_at - $6::interval AND n.tapped_at + $6::interval
					AND o.result = 1 AND o.card_committed AND o.compensation_kop > 0
					AND o.vehicle <> n.vehicle AND (o.lat <> 0 OR o.lon <> 0)
				OFFSET 0) o`,
			devs, firsts, lasts, froms, tos, lim.CloneWindow)
		if err != nil {
			return fmt.Errorf("look for cloned cards: %w", err)
		}
		var (
			card      int64
			me, o     recon.Sighting
			seq, oseq int64
			anomalies []recon.Anomaly
		)
		if _, err := pgx.ForEachRow(rows, []any{&card, &me.Device, &seq, &me.Vehicle, &me.Time, &me.Lat, &me.Lon,
			&o.Device, &oseq, &o.Vehicle, &o.Time, &o.Lat, &o.Lon}, func() error {
			me.Seq, me.Time = uint64(seq), me.Time.UTC()
			o.Seq, o.Time = uint64(oseq), o.Time.UTC()
			if kmh, bad := recon.Clone(me, o, lim); bad {
				anomalies = append(anomalies, recon.CloneAnomaly(uint64(card), me, o, kmh, s.loc))
			}
			return nil
		}); err != nil {
			return fmt.Errorf("look for cloned cards: %w", err)
		}
		found, err = countNewAnomalies(ctx, tx, anomalies)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("check cloned cards: %w", err)
	}
	return checked, found, nil
}

// PendingCloneChecks implements store.Store.
func (s *Store) PendingCloneChecks(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM clone_checks").Scan(&n); err != nil {
		return 0, fmt.Errorf("count queued cloned-card checks: %w", err)
	}
	return n, nil
}
