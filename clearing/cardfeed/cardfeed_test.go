package cardfeed_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/clearing/cardfeed"
	cstore "github.com/citycard/transit/clearing/store"
	csqlite "github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	rstore "github.com/citycard/transit/registry/store"
	rsqlite "github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
)

// TestSyncFromRegistry runs the registry's own API and copies its card
// records into a clearing store, as clearing serve does.
func TestSyncFromRegistry(t *testing.T) {
	ctx := context.Background()
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	reg, err := rsqlite.Open(ctx, filepath.Join(t.TempDir(), "registry.db"), rstore.Options{Issuer: 1001, Location: kyiv, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv := httptest.NewServer(api.New(reg, api.Options{Location: kyiv, Now: clock}))
	defer srv.Close()
	token := func(role registry.Role) string {
		secret, tok, err := registry.NewToken(registry.Actor{User: "clearing", Role: role}, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	desk := registry.Access{Actor: registry.Actor{User: "olena.desk", Role: registry.RoleDesk}, Purpose: "card issue, ticket 17"}
	r, err := reg.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Коваленко Оксана",
		BirthDate: registry.Date{Year: 1950, Month: time.March, Day: 1}, Contact: "+380441234567"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddEntitlement(ctx, desk, registry.Entitlement{ResidentID: r.ID, Category: 11, LegalBasis: "Law 1788-XII art. 29",
		Evidence: "pension certificate AA 123456", ValidFrom: registry.Date{Year: 2026, Month: time.January, Day: 1},
		ValidTo: registry.Date{Year: 2027, Month: time.December, Day: 31}, Funding: registry.FundingState, MonthlyLimit: 50}); err != nil {
		t.Fatal(err)
	}
	c, err := reg.OrderCard(ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}

	clr, err := csqlite.Open(ctx, ":memory:", cstore.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	defer clr.Close()
	m, err := cardfeed.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := &cardfeed.Syncer{Store: clr, URL: srv.URL, Token: token(registry.RoleService), Limit: 2, Metrics: m}
	n, err := s.Sync(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sync = %d, %v; want the one card", n, err)
	}
	rec, ok, err := clr.CardRecord(ctx, uint64(c.Number))
	if err != nil || !ok || len(rec.Entitlements) != 1 || rec.Entitlements[0].Category != 11 || rec.Entitlements[0].ValidTo != "2027-12-31" ||
		rec.Entitlements[0].MonthlyLimit != 50 || rec.Entitlements[0].Funding != "state" {
		t.Fatalf("clearing's record = %+v, %v, %v", rec, ok, err)
	}
	feed, err := clr.Feed(ctx)
	if err != nil || !feed.AsOf.Equal(now) || feed.Next == 0 {
		t.Errorf("feed after a sync = %+v, %v; want as of the registry's now", feed, err)
	}
	// Nothing new: nothing changes, and the copy is still complete.
	if n, err := s.Sync(ctx); err != nil || n != 0 {
		t.Errorf("Sync again = %d, %v", n, err)
	}
	// The benefit is revoked: the next sync brings the span.
	for _, to := range []registry.Status{registry.StatusPersonalised, registry.StatusActive} {
		if _, err := reg.Transition(ctx, desk, c.Number, registry.Change{To: to}); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(time.Hour)
	if _, err := reg.Transition(ctx, desk, c.Number, registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonBenefitRevoked, Note: "decision 7"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sync(ctx); err != nil || n != 1 {
		t.Fatalf("Sync after the revocation = %d, %v", n, err)
	}
	rec, _, _ = clr.CardRecord(ctx, uint64(c.Number))
	if len(rec.Revoked) != 1 || !rec.Revoked[0].From.Equal(now) || !rec.Revoked[0].To.IsZero() {
		t.Errorf("revocations %+v; want one open since %s", rec.Revoked, now)
	}

	// Without the right role the registry refuses, and says what to do.
	bad := &cardfeed.Syncer{Store: clr, URL: srv.URL, Token: token(registry.RoleDesk)}
	if _, err := bad.Sync(ctx); !errors.Is(err, cardfeed.ErrRegistry) || !strings.Contains(err.Error(), "service role") {
		t.Errorf("Sync with a desk token: %v", err)
	}
	if _, err := (&cardfeed.Syncer{Store: clr, URL: srv.URL}).Sync(ctx); !errors.Is(err, cardfeed.ErrRegistry) {
		t.Errorf("Sync without a token: %v", err)
	}
}

// FuzzDecodePage: whatever the registry (or whoever answers in its
// place) sends, a page is refused or every record in it is valid.
func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"records":[{"card":"1001000000000007","entitlements":[{"category":11,"valid_from":"2026-01-01","valid_to":"2027-12-31","funding":"state","monthly_limit":50}],"revoked":[{"from":"2026-11-20T09:00:00Z","to":"2026-11-20T10:00:00Z"}]}],"next":7,"as_of":"2026-11-20T10:00:00Z"}`))
	f.Add([]byte(`{"records":[],"next":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := cardfeed.DecodePage(strings.NewReader(string(b)), 0)
		if err != nil {
			return
		}
		for _, r := range p.Records {
			if err := r.Validate(); err != nil {
				t.Fatalf("decoded an invalid record %+v: %v", r, err)
			}
		}
	})
}
