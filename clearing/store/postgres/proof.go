package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/proofplan"
)

// AddTariff implements store.Store.
func (s *Store) AddTariff(ctx context.Context, t store.TariffFile) (added bool, err error) {
	if err := proofplan.CheckTariff(&t); err != nil {
		return false, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var have []byte
		err := tx.QueryRow(ctx, "SELECT digest FROM tariffs WHERE version = $1", int64(t.Version)).Scan(&have)
		switch {
		case err == nil:
			if !slices.Equal(have, t.Digest[:]) {
				return fmt.Errorf("add tariff version %d: %w (kept digest %x, this one %x); a version number is signed once", t.Version, store.ErrTariffConflict, have[:6], t.Digest[:6])
			}
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("add tariff version %d: %w", t.Version, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tariffs (version, digest, key_ref, source, added, zip) VALUES ($1, $2, $3, $4, $5, $6)`,
			int64(t.Version), t.Digest[:], t.KeyRef, t.Source, t.Added.Truncate(time.Microsecond), t.Zip); err != nil {
			return fmt.Errorf("add tariff version %d: %w", t.Version, err)
		}
		// The rides that waited for this version are judged again.
		if _, err := tx.Exec(ctx, `INSERT INTO rerate_cards (card, period)
			SELECT DISTINCT j.card, j.period FROM judged j JOIN taps t ON t.device = j.device AND t.seq = j.seq AND t.tapped_at = j.tapped_at
			WHERE j.state = 'waiting' AND j.reason = $1 AND t.tariff_version = $2
			ON CONFLICT DO NOTHING`, rerate.ReasonTariffUnknown, int64(t.Version)); err != nil {
			return fmt.Errorf("add tariff version %d: queue its waiting rides: %w", t.Version, err)
		}
		added = true
		return nil
	})
	return added, err
}

// Tariffs implements store.Store.
func (s *Store) Tariffs(ctx context.Context, withFiles bool) ([]store.TariffFile, error) {
	zip := "''::bytea"
	if withFiles {
		zip = "zip"
	}
	rows, err := s.pool.Query(ctx, "SELECT version, digest, key_ref, source, added, "+zip+" FROM tariffs ORDER BY version")
	if err != nil {
		return nil, fmt.Errorf("list tariffs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.TariffFile, error) {
		var (
			t      store.TariffFile
			v      int64
			digest []byte
		)
		err := r.Scan(&v, &digest, &t.KeyRef, &t.Source, &t.Added, &t.Zip)
		t.Version, t.Added = uint32(v), t.Added.UTC()
		copy(t.Digest[:], digest)
		if len(t.Zip) == 0 {
			t.Zip = nil
		}
		return t, err
	})
	if err != nil {
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
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			prevAsOf *time.Time
			prevNext int64
		)
		if err := tx.QueryRow(ctx, "SELECT next_seq, as_of FROM registry_feed FOR UPDATE").Scan(&prevNext, &prevAsOf); err != nil {
			return fmt.Errorf("set card records: read the feed's state: %w", err)
		}
		if feed.Next < uint64(prevNext) {
			return fmt.Errorf("set card records: the feed is at %d, this update at %d: a feed never goes back", prevNext, feed.Next)
		}
		cards := make([]int64, len(docs))
		texts := make([]string, len(docs))
		for i, d := range docs {
			cards[i], texts[i] = int64(d.Card), d.Doc
		}
		now := s.opt.Clock()().UTC().Truncate(time.Microsecond)
		rows, err := tx.Query(ctx, `INSERT INTO card_records AS c (card, record, updated)
			SELECT card, record, $3 FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS u(card, record, o) ORDER BY o
			ON CONFLICT (card) DO UPDATE SET record = excluded.record, updated = excluded.updated
				WHERE c.record <> excluded.record
			RETURNING card`, cards, texts, now)
		if err != nil {
			return fmt.Errorf("set card records: %w", err)
		}
		moved, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("set card records: %w", err)
		}
		changed = len(moved)
		if len(moved) > 0 {
			// Their claims of open periods are judged again.
			if _, err := tx.Exec(ctx, `INSERT INTO rerate_cards (card, period)
				SELECT DISTINCT t.card, t.period FROM unnest($1::bigint[]) AS c(card)
				CROSS JOIN LATERAL (SELECT card, period FROM taps t WHERE t.card = c.card AND t.result = 1
					AND (t.product = 'benefit' OR t.compensation_kop <> 0) OFFSET 0) t
				WHERE t.period NOT IN (SELECT period FROM closed_periods)
				ON CONFLICT DO NOTHING`, moved); err != nil {
				return fmt.Errorf("set card records: queue re-rating: %w", err)
			}
		}
		var asOf *time.Time
		if !feed.AsOf.IsZero() {
			a := feed.AsOf.UTC().Truncate(time.Microsecond)
			asOf = &a
			if prevAsOf == nil || a.After(*prevAsOf) {
				// Rides that waited for the registry to catch up.
				if _, err := tx.Exec(ctx, `INSERT INTO rerate_cards (card, period)
					SELECT DISTINCT card, period FROM judged WHERE state = 'waiting' AND reason = $1 AND tapped_at <= $2
					ON CONFLICT DO NOTHING`, rerate.ReasonRegistryBehind, a); err != nil {
					return fmt.Errorf("set card records: queue waiting rides: %w", err)
				}
			}
		} else {
			asOf = prevAsOf
		}
		if _, err := tx.Exec(ctx, "UPDATE registry_feed SET next_seq = $1, as_of = $2", int64(feed.Next), asOf); err != nil {
			return fmt.Errorf("set card records: %w", err)
		}
		return nil
	})
	return changed, err
}

// Feed implements store.Store.
func (s *Store) Feed(ctx context.Context) (store.Feed, error) {
	var (
		next int64
		asOf *time.Time
	)
	if err := s.pool.QueryRow(ctx, "SELECT next_seq, as_of FROM registry_feed").Scan(&next, &asOf); err != nil {
		return store.Feed{}, fmt.Errorf("read the registry feed's state: %w", err)
	}
	f := store.Feed{Next: uint64(next)}
	if asOf != nil {
		f.AsOf = asOf.UTC()
	}
	return f, nil
}

// CardRecord implements store.Store.
func (s *Store) CardRecord(ctx context.Context, card uint64) (store.CardRecord, bool, error) {
	var doc string
	err := s.pool.QueryRow(ctx, "SELECT record FROM card_records WHERE card = $1", int64(card)).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM carrier_routes WHERE carrier = $1", carrier); err != nil {
			return fmt.Errorf("set the routes of %s: %w", carrier, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO carrier_routes (carrier, route) SELECT $1, unnest($2::text[])", carrier, routes); err != nil {
			return fmt.Errorf("set the routes of %s: %w", carrier, err)
		}
		// The carrier's claims of open periods are judged again; the scan
		// starts at the oldest open month with taps.
		var oldest *string
		if err := tx.QueryRow(ctx, `SELECT min(period) FROM device_periods
			WHERE period NOT IN (SELECT period FROM closed_periods)`).Scan(&oldest); err != nil {
			return fmt.Errorf("set the routes of %s: %w", carrier, err)
		}
		if oldest == nil {
			return nil
		}
		from, _, err := store.Bounds(*oldest, s.loc)
		if err != nil {
			return fmt.Errorf("set the routes of %s: %w", carrier, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rerate_cards (card, period)
			SELECT DISTINCT card, period FROM taps WHERE tapped_at >= $2 AND carrier = $1 AND result = 1
				AND (product = 'benefit' OR compensation_kop <> 0) AND period NOT IN (SELECT period FROM closed_periods)
			ON CONFLICT DO NOTHING`, carrier, from); err != nil {
			return fmt.Errorf("set the routes of %s: queue re-rating: %w", carrier, err)
		}
		return nil
	})
}

// Routes implements store.Store.
func (s *Store) Routes(ctx context.Context) (map[string][]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT carrier, route FROM carrier_routes ORDER BY carrier, route")
	if err != nil {
		return nil, fmt.Errorf("read carriers' routes: %w", err)
	}
	out := make(map[string][]string)
	var c, r string
	if _, err := pgx.ForEachRow(rows, []any{&c, &r}, func() error {
		out[c] = append(out[c], r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read carriers' routes: %w", err)
	}
	return out, nil
}
