package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/proofplan"
)

// write runs f in a write transaction (the only writer from BEGIN).
func (s *Store) write(ctx context.Context, what string, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// AddTariff implements store.Store.
func (s *Store) AddTariff(ctx context.Context, t store.TariffFile) (added bool, err error) {
	if err := proofplan.CheckTariff(&t); err != nil {
		return false, err
	}
	err = s.write(ctx, "add tariff", func(tx *sql.Tx) error {
		var have []byte
		err := tx.QueryRowContext(ctx, "SELECT digest FROM tariffs WHERE version = ?", int64(t.Version)).Scan(&have)
		switch {
		case err == nil:
			if !bytes.Equal(have, t.Digest[:]) {
				return fmt.Errorf("add tariff version %d: %w (kept digest %x, this one %x); a version number is signed once", t.Version, store.ErrTariffConflict, have[:6], t.Digest[:6])
			}
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("add tariff version %d: %w", t.Version, err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO tariffs (version, digest, key_ref, source, added_us, zip) VALUES (?, ?, ?, ?, ?, ?)",
			int64(t.Version), t.Digest[:], t.KeyRef, t.Source, t.Added.UnixMicro(), t.Zip); err != nil {
			return fmt.Errorf("add tariff version %d: %w", t.Version, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rerate_cards (card, period, queued_us)
			SELECT DISTINCT j.card, j.period, ? FROM judged j JOIN taps t ON t.device = j.device AND t.seq = j.seq
			WHERE j.state = 'waiting' AND j.reason = ? AND t.tariff_version = ?
			ON CONFLICT DO NOTHING`, s.now(), rerate.ReasonTariffUnknown, int64(t.Version)); err != nil {
			return fmt.Errorf("add tariff version %d: queue its waiting rides: %w", t.Version, err)
		}
		added = true
		return nil
	})
	return added, err
}

func (s *Store) now() int64 { return s.opt.Clock()().UnixMicro() }

// Tariffs implements store.Store.
func (s *Store) Tariffs(ctx context.Context, withFiles bool) ([]store.TariffFile, error) {
	zip := "x''"
	if withFiles {
		zip = "zip"
	}
	rows, err := s.db.QueryContext(ctx, "SELECT version, digest, key_ref, source, added_us, "+zip+" FROM tariffs ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("list tariffs: %w", err)
	}
	defer rows.Close()
	var out []store.TariffFile
	for rows.Next() {
		var (
			t      store.TariffFile
			v, us  int64
			digest []byte
		)
		if err := rows.Scan(&v, &digest, &t.KeyRef, &t.Source, &us, &t.Zip); err != nil {
			return nil, fmt.Errorf("list tariffs: %w", err)
		}
		t.Version, t.Added = uint32(v), time.UnixMicro(us).UTC()
		copy(t.Digest[:], digest)
		if len(t.Zip) == 0 {
			t.Zip = nil
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tariffs: %w", err)
	}
	return out, nil
}

// SetCardRecords implements store.Store.
func (s *Store) SetCardRecords(ctx context.Context, recs []store.CardRecord, feed store.Feed) (changed int, err error) {
	docs, err := proofplan.Encode(recs)
	if err != nil {
		return 0, err
	}
	err = s.write(ctx, "set card records", func(tx *sql.Tx) error {
		var (
			prevNext int64
			prevAsOf sql.NullInt64
		)
		if err := tx.QueryRowContext(ctx, "SELECT next_seq, as_of_us FROM registry_feed").Scan(&prevNext, &prevAsOf); err != nil {
			return fmt.Errorf("set card records: read the feed's state: %w", err)
		}
		if feed.Next < uint64(prevNext) {
			return fmt.Errorf("set card records: the feed is at %d, this update at %d: a feed never goes back", prevNext, feed.Next)
		}
		for _, d := range docs {
			res, err := tx.ExecContext(ctx, `INSERT INTO card_records (card, record, updated_us) VALUES (?, ?, ?)
				ON CONFLICT (card) DO UPDATE SET record = excluded.record, updated_us = excluded.updated_us
					WHERE record <> excluded.record`, int64(d.Card), d.Doc, s.now())
			if err != nil {
				return fmt.Errorf("set card records: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			changed++
			if _, err := tx.ExecContext(ctx, `INSERT INTO rerate_cards (card, period, queued_us)
				SELECT DISTINCT card, period, ? FROM taps WHERE card = ? AND result = 1 AND (product = 'benefit' OR compensation_kop <> 0)
					AND period NOT IN (SELECT period FROM closed_periods)
				ON CONFLICT DO NOTHING`, s.now(), int64(d.Card)); err != nil {
				return fmt.Errorf("set card records: queue re-rating: %w", err)
			}
		}
		asOf := prevAsOf
		if !feed.AsOf.IsZero() {
			a := feed.AsOf.UTC().UnixMicro()
			if !prevAsOf.Valid || a > prevAsOf.Int64 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO rerate_cards (card, period, queued_us)
					SELECT DISTINCT card, period, ? FROM judged WHERE state = 'waiting' AND reason = ? AND tapped_us <= ?
					ON CONFLICT DO NOTHING`, s.now(), rerate.ReasonRegistryBehind, a); err != nil {
					return fmt.Errorf("set card records: queue waiting rides: %w", err)
				}
			}
			asOf = sql.NullInt64{Int64: a, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, "UPDATE registry_feed SET next_seq = ?, as_of_us = ?", int64(feed.Next), asOf); err != nil {
			return fmt.Errorf("set card records: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return changed, nil
}

// Feed implements store.Store.
func (s *Store) Feed(ctx context.Context) (store.Feed, error) {
	var (
		next int64
		asOf sql.NullInt64
	)
	if err := s.db.QueryRowContext(ctx, "SELECT next_seq, as_of_us FROM registry_feed").Scan(&next, &asOf); err != nil {
		return store.Feed{}, fmt.Errorf("read the registry feed's state: %w", err)
	}
	f := store.Feed{Next: uint64(next)}
	if asOf.Valid {
		f.AsOf = time.UnixMicro(asOf.Int64).UTC()
	}
	return f, nil
}

// CardRecord implements store.Store.
func (s *Store) CardRecord(ctx context.Context, card uint64) (store.CardRecord, bool, error) {
	var doc string
	err := s.db.QueryRowContext(ctx, "SELECT record FROM card_records WHERE card = ?", int64(card)).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return store.CardRecord{}, false, nil
	}
	if err != nil {
		return store.CardRecord{}, false, fmt.Errorf("card record: %w", err)
	}
	rec, err := proofplan.Decode(card, doc)
	return rec, err == nil, err
}

// SetRoutes implements store.Store.
func (s *Store) SetRoutes(ctx context.Context, carrier string, routes []string) error {
	routes, err := proofplan.CheckRoutes(carrier, routes)
	if err != nil {
		return err
	}
	return s.write(ctx, "set routes", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM carrier_routes WHERE carrier = ?", carrier); err != nil {
			return fmt.Errorf("set the routes of %s: %w", carrier, err)
		}
		for _, r := range routes {
			if _, err := tx.ExecContext(ctx, "INSERT INTO carrier_routes (carrier, route) VALUES (?, ?)", carrier, r); err != nil {
				return fmt.Errorf("set the routes of %s: %w", carrier, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO rerate_cards (card, period, queued_us)
			SELECT DISTINCT card, period, ? FROM taps WHERE carrier = ? AND result = 1 AND (product = 'benefit' OR compensation_kop <> 0)
				AND period NOT IN (SELECT period FROM closed_periods)
			ON CONFLICT DO NOTHING`, s.now(), carrier); err != nil {
			return fmt.Errorf("set the routes of %s: queue re-rating: %w", carrier, err)
		}
		return nil
	})
}

// Routes implements store.Store.
func (s *Store) Routes(ctx context.Context) (map[string][]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT carrier, route FROM carrier_routes ORDER BY carrier, route")
	if err != nil {
		return nil, fmt.Errorf("read carriers' routes: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]string)
	for rows.Next() {
		var c, r string
		if err := rows.Scan(&c, &r); err != nil {
			return nil, fmt.Errorf("read carriers' routes: %w", err)
		}
		out[c] = append(out[c], r)
	}
	return out, rows.Err()
}
