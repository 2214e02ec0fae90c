package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// hashQuarantine fills in the size and hash of the batches quarantined
// before migration 5, which SQLite cannot compute in SQL.
func hashQuarantine(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, raw FROM quarantine WHERE raw_sha256 IS NULL")
	if err != nil {
		return fmt.Errorf("hash quarantined batches: %w", err)
	}
	type row struct {
		id  int64
		raw []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.raw); err != nil {
			rows.Close()
			return fmt.Errorf("hash quarantined batches: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("hash quarantined batches: %w", err)
	}
	for _, r := range all {
		sum := sha256.Sum256(r.raw)
		if _, err := tx.ExecContext(ctx, "UPDATE quarantine SET raw_size = ?, raw_sha256 = ? WHERE id = ?", len(r.raw), sum[:], r.id); err != nil {
			return fmt.Errorf("hash quarantined batch %d: %w", r.id, err)
		}
	}
	return nil
}

// updateState applies u with the rules of store.UpdateState. In ON
// CONFLICT DO UPDATE every right-hand side reads the row as it was.
func updateState(ctx context.Context, tx *sql.Tx, u store.StateUpdate) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO device_state AS d (device, last_batch_us, batch_created_us, clock_offset_ms,
			version_seq, tariff_version, hotlist_version)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (device) DO UPDATE SET
			last_batch_us = CASE WHEN excluded.batch_created_us > d.batch_created_us THEN excluded.last_batch_us ELSE d.last_batch_us END,
			clock_offset_ms = CASE WHEN excluded.batch_created_us > d.batch_created_us THEN excluded.clock_offset_ms ELSE d.clock_offset_ms END,
			batch_created_us = max(d.batch_created_us, excluded.batch_created_us),
			tariff_version = CASE WHEN excluded.version_seq > d.version_seq THEN excluded.tariff_version ELSE d.tariff_version END,
			hotlist_version = CASE WHEN excluded.version_seq > d.version_seq THEN excluded.hotlist_version ELSE d.hotlist_version END,
			version_seq = max(d.version_seq, excluded.version_seq)`,
		u.Device, u.Received.UnixMicro(), u.Created.UnixMicro(), u.ClockOffset.Milliseconds(),
		int64(u.VersionSeq), int64(u.TariffVersion), int64(u.HotlistVersion))
	if err != nil {
		return fmt.Errorf("update the state of device %s: %w", u.Device, err)
	}
	return nil
}

// Fleet implements store.Store.
func (s *Store) Fleet(ctx context.Context) ([]store.DeviceState, error) {
	// SQLite has no FULL JOIN before 3.39; the union of both sides does.
	rows, err := s.db.QueryContext(ctx, `SELECT n.device, d.max_seq, d.max_us, st.last_batch_us, st.batch_created_us,
			st.clock_offset_ms, st.version_seq, st.tariff_version, st.hotlist_version
		FROM (SELECT device FROM devices UNION SELECT device FROM device_state) n
		LEFT JOIN devices d ON d.device = n.device
		LEFT JOIN device_state st ON st.device = n.device
		ORDER BY n.device`)
	if err != nil {
		return nil, fmt.Errorf("read the fleet: %w", err)
	}
	defer rows.Close()
	var out []store.DeviceState
	for rows.Next() {
		var (
			d                         store.DeviceState
			seq, maxUS, last, created sql.NullInt64
			offset, vseq, tv, hv      sql.NullInt64
		)
		if err := rows.Scan(&d.Device, &seq, &maxUS, &last, &created, &offset, &vseq, &tv, &hv); err != nil {
			return nil, fmt.Errorf("read the fleet: %w", err)
		}
		d.LastSeq = uint64(seq.Int64)
		if maxUS.Valid && seq.Int64 > 0 {
			d.LastTap = time.UnixMicro(maxUS.Int64).UTC()
		}
		if last.Valid {
			d.LastBatch, d.BatchCreated = time.UnixMicro(last.Int64).UTC(), time.UnixMicro(created.Int64).UTC()
		}
		d.ClockOffset = time.Duration(offset.Int64) * time.Millisecond
		d.VersionSeq, d.TariffVersion, d.HotlistVersion = uint64(vseq.Int64), uint32(tv.Int64), uint64(hv.Int64)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the fleet: %w", err)
	}
	return out, nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("clearing store: %w", err)
	}
	return nil
}
