package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/store"
)

// hotlistCache is the hotlist as of one version: for each card, the
// earliest time from which it is blocked. A tap at t is of a hotlisted
// card when that time is at or before t (the earliest entry at or before
// t exists exactly when the earliest of all is). It is never changed
// after it is made; a newer version is a new cache.
type hotlistCache struct {
	version int64
	cards   map[uint64]time.Time
}

// from returns when card is blocked from, if it is hotlisted.
func (h *hotlistCache) from(card uint64) (time.Time, bool) {
	if h == nil {
		return time.Time{}, false
	}
	t, ok := h.cards[card]
	return t, ok
}

// hotlistAt returns the hotlist of version, loading it in tx when the
// store's copy is older. The caller holds the close lock shared, which
// AddHotlist takes exclusive to add entries and bump the version in one
// transaction, so what tx reads is that version.
func (s *Store) hotlistAt(ctx context.Context, tx pgx.Tx, version int64) (*hotlistCache, error) {
	s.mu.Lock()
	h := s.hotlist
	s.mu.Unlock()
	if h != nil && h.version == version {
		return h, nil
	}
	// A benefit-revoked entry does not deny rides: re-rating judges its
	// card's benefit rides instead.
	rows, err := tx.Query(ctx, "SELECT card, min(from_at) FROM hotlist WHERE reason <> $1 GROUP BY card", store.ReasonBenefitRevoked)
	if err != nil {
		return nil, fmt.Errorf("load the hotlist: %w", err)
	}
	h = &hotlistCache{version: version, cards: make(map[uint64]time.Time)}
	var (
		card int64
		from time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&card, &from}, func() error {
		h.cards[uint64(card)] = from.UTC()
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load the hotlist: %w", err)
	}
	s.mu.Lock()
	// Two batches may load the same version at once; a newer one
	// loaded meanwhile is kept.
	if s.hotlist == nil || s.hotlist.version < version {
		s.hotlist = h
	}
	s.mu.Unlock()
	return h, nil
}
