package sqlstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// CardRecords implements store.Store.
func (s *Store) CardRecords(ctx context.Context, since uint64, limit int) (registry.CardRecords, error) {
	if limit <= 0 || limit > registry.MaxRecordPage {
		return registry.CardRecords{}, &registry.FieldError{Field: "limit", Problem: fmt.Sprintf("%d; want 1 to %d", limit, registry.MaxRecordPage)}
	}
	out := registry.CardRecords{Records: []registry.CardRecord{}, Next: since}
	if since > 1<<62 {
		return out, nil
	}
	err := s.read(ctx, fmt.Sprintf("read card records after event %d", since), func(t *tx) error {
		rows, err := t.query(`SELECT seq, card FROM card_events WHERE seq > $1 ORDER BY seq LIMIT $2`, int64(since), limit)
		if err != nil {
			return err
		}
		var (
			cards []card.Number
			n     int
		)
		for rows.Next() {
			var seq, num int64
			if err := rows.Scan(&seq, &num); err != nil {
				rows.Close()
				return err
			}
			n++
			out.Next = uint64(seq)
			if !slices.Contains(cards, card.Number(num)) {
				cards = append(cards, card.Number(num))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, num := range cards {
			c, err := t.card(num)
			if err != nil {
				return err
			}
			ents, err := t.entitlements(c.ResidentID)
			if err != nil {
				return err
			}
			rec := registry.CardRecord{Card: num, Entitlements: []registry.CardEntitlement{}}
			for _, e := range ents {
				rec.Entitlements = append(rec.Entitlements, e.ForCard())
			}
			evs, err := t.statusEvents(num)
			if err != nil {
				return err
			}
			rec.Revoked = registry.RevokedSpans(evs)
			out.Records = append(out.Records, rec)
		}
		if n < limit {
			// Nothing after the last event read, in this snapshot.
			at := t.now.UTC()
			out.AsOf = &at
		}
		return nil
	})
	if err != nil {
		return registry.CardRecords{}, err
	}
	return out, nil
}

// statusEvents returns a card's status events, oldest first.
func (t *tx) statusEvents(num card.Number) ([]registry.CardEvent, error) {
	rows, err := t.query(`SELECT at, status, reason FROM card_events WHERE card = $1 AND kind = $2 ORDER BY seq`,
		int64(num), registry.EventStatus)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []registry.CardEvent
	for rows.Next() {
		e := registry.CardEvent{Kind: registry.EventStatus, Card: num}
		var status, reason string
		if err := rows.Scan(timeCol{&e.At}, &status, &reason); err != nil {
			return nil, err
		}
		e.Status, e.Reason = registry.Status(status), registry.Reason(reason)
		out = append(out, e)
	}
	return out, rows.Err()
}
