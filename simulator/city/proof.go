package city

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/tariffs"
	"github.com/citycard/transit/hsm"
)

// proveToClearing gives clearing what its re-rating proves the city's
// rides with (clearing/rerate), as the registry gives it in the field:
// the city's tariff, once, and the registry's records of every benefit
// card issued so far, complete as of now. ClosePeriod calls it before
// each close, which judges whatever is queued; records of cards issued
// since are added then.
func (s *Sim) proveToClearing(ctx context.Context) error {
	st := s.opt.Store
	if !s.tariffGiven {
		zb, err := tariffs.PackFS(s.opt.Tariff)
		if err != nil {
			return fmt.Errorf("city: pack the tariff for clearing: %w", err)
		}
		tf := store.TariffFile{Version: s.w.tariff.Version, Digest: sha256.Sum256(zb), KeyRef: hsm.LabelSignTariff + "@1",
			Source: "simulator", Added: s.now().UTC(), Zip: zb}
		if _, err := st.AddTariff(ctx, tf); err != nil {
			return fmt.Errorf("city: give clearing the tariff: %w", err)
		}
		s.tariffGiven = true
	}
	recs := make([]store.CardRecord, 0, len(s.w.issued))
	for _, c := range s.w.issued {
		var r store.CardRecord
		for _, e := range c.contract.Entitlements {
			if e.Empty() {
				continue
			}
			r.Entitlements = append(r.Entitlements, store.RecordEntitlement{Category: e.Category, ValidFrom: e.ValidFrom.String(),
				ValidTo: e.ValidTo.String(), MonthlyLimit: int(e.Limit), Funding: e.Funding.String()})
		}
		if len(r.Entitlements) > 0 {
			r.Card = c.number
			recs = append(recs, r)
		}
	}
	feed, err := st.Feed(ctx)
	if err != nil {
		return err
	}
	feed.Next++
	feed.AsOf = s.now().UTC()
	if _, err := st.SetCardRecords(ctx, recs, feed); err != nil {
		return fmt.Errorf("city: give clearing the registry's card records: %w", err)
	}
	return nil
}
