package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/store"
)

// queueState queues the upsert of a device's fleet state with the rules
// of store.UpdateState. In ON CONFLICT DO UPDATE every right-hand side
// reads the row as it was, so the CASEs see the old batch_created.
func queueState(b *pgx.Batch, u store.StateUpdate) {
	b.Queue(`INSERT INTO device_state AS d (device, last_batch, batch_created, clock_offset_ms, version_seq, tariff_version, hotlist_version)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (device) DO UPDATE SET
			last_batch = CASE WHEN excluded.batch_created > d.batch_created THEN excluded.last_batch ELSE d.last_batch END,
			clock_offset_ms = CASE WHEN excluded.batch_created > d.batch_created THEN excluded.clock_offset_ms ELSE d.clock_offset_ms END,
			batch_created = greatest(d.batch_created, excluded.batch_created),
			tariff_version = CASE WHEN excluded.version_seq > d.version_seq THEN excluded.tariff_version ELSE d.tariff_version END,
			hotlist_version = CASE WHEN excluded.version_seq > d.version_seq THEN excluded.hotlist_version ELSE d.hotlist_version END,
			version_seq = greatest(d.version_seq, excluded.version_seq)`,
		u.Device, u.Received, u.Created, u.ClockOffset.Milliseconds(), int64(u.VersionSeq), int64(u.TariffVersion), int64(u.HotlistVersion))
}

// Fleet implements store.Store.
func (s *Store) Fleet(ctx context.Context) ([]store.DeviceState, error) {
	rows, err := s.pool.Query(ctx, `SELECT device, coalesce(d.max_seq, 0), d.max_at,
			st.last_batch, st.batch_created, coalesce(st.clock_offset_ms, 0),
			coalesce(st.version_seq, 0), coalesce(st.tariff_version, 0), coalesce(st.hotlist_version, 0)
		FROM devices d FULL JOIN device_state st USING (device)
		ORDER BY device`)
	if err != nil {
		return nil, fmt.Errorf("read the fleet: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DeviceState, error) {
		var (
			d                    store.DeviceState
			seq, vseq, tv, hv    int64
			offset               int64
			maxAt, last, created *time.Time
		)
		if err := r.Scan(&d.Device, &seq, &maxAt, &last, &created, &offset, &vseq, &tv, &hv); err != nil {
			return d, err
		}
		d.LastSeq, d.VersionSeq, d.TariffVersion, d.HotlistVersion = uint64(seq), uint64(vseq), uint32(tv), uint64(hv)
		d.ClockOffset = time.Duration(offset) * time.Millisecond
		if maxAt != nil {
			d.LastTap = maxAt.UTC()
		}
		if last != nil {
			d.LastBatch, d.BatchCreated = last.UTC(), created.UTC()
		}
		return d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the fleet: %w", err)
	}
	return out, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("clearing database: %w", err)
	}
	return nil
}

// ErrNotDurable is wrapped by CheckDurable when the server may lose
// commits it acknowledged.
var ErrNotDurable = errors.New("the clearing database is not crash-safe")

// CheckDurable fails, wrapping ErrNotDurable, when the server runs with
// fsync off: clearing commits a batch's bus offset once PostgreSQL has
// committed the batch, and with fsync off a crash of the server's machine
// can lose such commits, and the taps with them, for good.
func (s *Store) CheckDurable(ctx context.Context) error {
	var fsync string
	if err := s.pool.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		return fmt.Errorf("check the clearing database's durability (SHOW fsync): %w", err)
	}
	if fsync != "on" {
		return fmt.Errorf("%w: PostgreSQL runs with fsync=%s, so a crash of its machine can lose taps whose bus offsets clearing "+
			"committed; set fsync = on in postgresql.conf (a throwaway test server may be used with --test-allow-fsync-off)", ErrNotDurable, fsync)
	}
	return nil
}
