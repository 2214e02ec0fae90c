package storetest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

// testCardRecords: the export clearing keeps its copy from carries every
// entitlement of a card's holder with the dates the registry holds now,
// ended ones too, and the spans in which its benefits were revoked; no
// personal data.
func testCardRecords(t *testing.T, e *env) {
	r := e.register()
	pe, err := e.s.AddEntitlement(e.ctx, desk, pensioner(r.ID))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.s.OrderCard(e.ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.move(c.Number, registry.StatusPersonalised)
	e.move(c.Number, registry.StatusActive)
	// The benefit is revoked for an hour, and the entitlement ended
	// before today, back-dated.
	e.clock.Set(start.Add(time.Hour))
	if _, err := e.s.Transition(e.ctx, desk, c.Number, registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonBenefitRevoked, Note: "decision 7"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(start.Add(2 * time.Hour))
	e.move(c.Number, registry.StatusActive)
	ended := registry.Date{Year: 2026, Month: time.October, Day: 31}
	if _, err := e.s.EndEntitlement(e.ctx, desk, r.ID, pe.ID, ended); err != nil {
		t.Fatal(err)
	}
	all, err := e.s.CardRecords(e.ctx, 0, registry.MaxRecordPage)
	if err != nil {
		t.Fatal(err)
	}
	evs := e.events()
	if all.AsOf == nil || !all.AsOf.Equal(start.Add(2*time.Hour)) || all.Next != evs[len(evs)-1].Seq {
		t.Errorf("CardRecords(0) next %d, as of %v; want %d, as of now", all.Next, all.AsOf, evs[len(evs)-1].Seq)
	}
	var rec *registry.CardRecord
	for i := range all.Records {
		if all.Records[i].Card == c.Number {
			rec = &all.Records[i]
		}
	}
	if rec == nil {
		t.Fatalf("no record of card %s in %+v", c.Number, all.Records)
	}
	if len(rec.Entitlements) != 1 || rec.Entitlements[0].ValidTo != ended || rec.Entitlements[0].Category != registry.CategoryPensioner {
		t.Errorf("entitlements %+v; want the pensioner's, ended %s", rec.Entitlements, ended)
	}
	if len(rec.Revoked) != 1 || !rec.Revoked[0].From.Equal(start.Add(time.Hour)) || rec.Revoked[0].To == nil || !rec.Revoked[0].To.Equal(start.Add(2*time.Hour)) {
		t.Errorf("revoked %+v; want the hour it was blocked for benefit-revoked", rec.Revoked)
	}
	// Paging: one event at a time reaches the same end, and only the
	// last page is complete.
	page, err := e.s.CardRecords(e.ctx, 0, 1)
	if err != nil || len(page.Records) != 1 || page.Next != 1 || page.AsOf != nil {
		t.Errorf("CardRecords(0, 1) = %+v, %v", page, err)
	}
	if p, err := e.s.CardRecords(e.ctx, all.Next, 10); err != nil || len(p.Records) != 0 || p.Next != all.Next || p.AsOf == nil {
		t.Errorf("CardRecords past the end = %+v, %v", p, err)
	}
	if _, err := e.s.CardRecords(e.ctx, 0, registry.MaxRecordPage+1); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("a page too large: %v, want ErrInvalid", err)
	}
	js, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{r.Name, r.RegistryNumber, r.Contact, pe.LegalBasis, pe.Evidence, "resident"} {
		if strings.Contains(string(js), secret) {
			t.Errorf("card records carry %q: %s", secret, js)
		}
	}
}
