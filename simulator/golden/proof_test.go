package golden

import (
	"context"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/tariffs"
)

// proveToClearing gives clearing what its re-rating proves the month's
// rides with (clearing/rerate), as the registry does in the field: the
// signed tariff the validators run, verified with the city's key, and the
// registry's records of the cards' entitlements, complete for the month.
func (s *system) proveToClearing(t *testing.T, ctx context.Context, tariffDir string) {
	t.Helper()
	if _, _, err := tariffs.AddDir(ctx, s.store, s.keys, tariffDir, s.now()); err != nil {
		t.Fatalf("give clearing the tariff: %v", err)
	}
	var recs []store.CardRecord
	for _, c := range s.m.cards {
		r := store.CardRecord{Card: uint64(c.number)}
		for _, e := range c.ents {
			if !e.Empty() {
				r.Entitlements = append(r.Entitlements, store.RecordEntitlement{Category: e.Category, ValidFrom: e.ValidFrom.String(),
					ValidTo: e.ValidTo.String(), MonthlyLimit: int(e.Limit), Funding: e.Funding.String()})
			}
		}
		if len(r.Entitlements) > 0 {
			recs = append(recs, r)
		}
	}
	if _, err := s.store.SetCardRecords(ctx, recs, store.Feed{Next: 1, AsOf: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatalf("give clearing the registry's card records: %v", err)
	}
}
