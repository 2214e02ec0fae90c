package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/validator/tap"
)

// CheckClones implements store.Store.
func (s *Store) CheckClones(ctx context.Context, limit int) (checked, found int, err error) {
	if limit < 1 {
		return 0, 0, fmt.Errorf("check cloned cards: take at least one queued run, not %d", limit)
	}
	// BEGIN IMMEDIATE (_txlock): the only writer, so no other checker
	// takes the same runs.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("check cloned cards: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	checked, found, err = s.checkClones(ctx, tx, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("check cloned cards: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("check cloned cards: commit: %w", err)
	}
	return checked, found, nil
}

type cloneRun struct {
	id, first, last, from, to int64
	device                    string
}

func (s *Store) checkClones(ctx context.Context, tx *sql.Tx, limit int) (checked, found int, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, device, first_seq, last_seq, from_us, to_us FROM clone_checks
		ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return 0, 0, fmt.Errorf("take queued runs: %w", err)
	}
	var runs []cloneRun
	for rows.Next() {
		var r cloneRun
		if err := rows.Scan(&r.id, &r.device, &r.first, &r.last, &r.from, &r.to); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("take queued runs: %w", err)
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, fmt.Errorf("take queued runs: %w", err)
	}
	lim := s.opt.Limits.WithDefaults()
	// As in the PostgreSQL store: the checkable rides of each run, each
	// against its card's checkable rides on other vehicles.
	mine, err := tx.PrepareContext(ctx, `SELECT card, device, seq, vehicle, tapped_us, lat, lon FROM taps
		WHERE device = ? AND seq BETWEEN ? AND ? AND tapped_us BETWEEN ? AND ?
			AND result = ? AND card_committed AND compensation_kop > 0 AND (lat <> 0 OR lon <> 0)`)
	if err != nil {
		return 0, 0, err
	}
	defer mine.Close()
	near, err := tx.PrepareContext(ctx, `SELECT card, device, seq, vehicle, tapped_us, lat, lon FROM taps
		WHERE card = ? AND tapped_us BETWEEN ? AND ? AND result = ? AND card_committed AND compensation_kop > 0
			AND vehicle <> ? AND (lat <> 0 OR lon <> 0)`)
	if err != nil {
		return 0, 0, err
	}
	defer near.Close()
	var anomalies []recon.Anomaly
	for _, r := range runs {
		rides, err := sightings(ctx, mine, r.device, r.first, r.last, r.from, r.to, int64(tap.Accepted))
		if err != nil {
			return 0, 0, fmt.Errorf("read the rides of %s/%d-%d: %w", r.device, r.first, r.last, err)
		}
		for _, me := range rides {
			w := lim.CloneWindow
			others, err := sightings(ctx, near, me.card, me.Time.Add(-w).UnixMicro(), me.Time.Add(w).UnixMicro(),
				int64(tap.Accepted), me.Vehicle)
			if err != nil {
				return 0, 0, fmt.Errorf("look for card %d on other vehicles: %w", me.card, err)
			}
			for _, o := range others {
				if kmh, bad := recon.Clone(me.Sighting, o.Sighting, lim); bad {
					anomalies = append(anomalies, recon.CloneAnomaly(uint64(me.card), me.Sighting, o.Sighting, kmh, s.loc))
				}
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM clone_checks WHERE id = ?", r.id); err != nil {
			return 0, 0, fmt.Errorf("dequeue run %s/%d-%d: %w", r.device, r.first, r.last, err)
		}
	}
	found, err = insertAnomalies(ctx, tx, anomalies)
	if err != nil {
		return 0, 0, err
	}
	return len(runs), found, nil
}

// sighting is a ride as the cloned-card check sees it.
type sighting struct {
	recon.Sighting
	card int64
}

// sightings runs q, whose rows are (card, device, seq, vehicle,
// tapped_us, lat, lon), and reads them.
func sightings(ctx context.Context, q *sql.Stmt, args ...any) ([]sighting, error) {
	rows, err := q.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sighting
	for rows.Next() {
		var (
			sg      sighting
			seq, us int64
		)
		if err := rows.Scan(&sg.card, &sg.Device, &seq, &sg.Vehicle, &us, &sg.Lat, &sg.Lon); err != nil {
			return nil, err
		}
		sg.Seq, sg.Time = uint64(seq), time.UnixMicro(us).UTC()
		out = append(out, sg)
	}
	return out, rows.Err()
}

// PendingCloneChecks implements store.Store.
func (s *Store) PendingCloneChecks(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM clone_checks").Scan(&n); err != nil {
		return 0, fmt.Errorf("count queued cloned-card checks: %w", err)
	}
	return n, nil
}
