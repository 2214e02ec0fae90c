package notices_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notices"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
)

// BenchmarkFirstPass is a city's first pass: 1,000 benefits ending in
// the next 30 days, each queued, claimed, sent (to a sender that keeps
// nothing) and recorded, on the SQLite store with its durable writes.
func BenchmarkFirstPass(b *testing.B) {
	const n = 1000
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	desk := registry.Access{Actor: registry.Actor{User: "olena.desk", Role: registry.RoleDesk}, Purpose: "benchmark"}
	today := registry.Today(start, loc)
	for b.Loop() {
		b.StopTimer()
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "registry.db"), store.Options{Issuer: storetest.Issuer, Location: loc,
			Now: func() time.Time { return start }})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			r, err := st.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(i + 1), Name: fmt.Sprintf("Особа %d", i),
				BirthDate: registry.Date{Year: 1950, Month: 1, Day: 1}, Contact: fmt.Sprintf("r%d@example.org", i)})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.AddEntitlement(ctx, desk, registry.Entitlement{ResidentID: r.ID, Category: registry.CategoryPensioner,
				LegalBasis: "Law", Evidence: "AA", ValidFrom: registry.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: today.AddDays(i % 31),
				Funding: registry.FundingState}); err != nil {
				b.Fatal(err)
			}
		}
		r := &notices.Runner{Store: st, Sender: senderFunc(func(context.Context, notify.Message) error { return nil }),
			Rule: notices.Rule{Location: loc}, Now: func() time.Time { return start }, Log: slog.New(slog.DiscardHandler)}
		b.StartTimer()
		rep, err := r.Once(ctx)
		b.StopTimer()
		if err != nil || rep.Sent != n {
			b.Fatalf("first pass: %+v, %v", rep, err)
		}
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/notice")
}
