package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/tap"
)

// withSchema returns dsn with its search_path set to schema. pgx sends
// unknown URL parameters as run-time settings at connect time.
func withSchema(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	if !strings.Contains(dsn, "://") { // key=value form
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("parse %s: %v", testenv.PostgresVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// freshSchema creates an empty schema of the test's own in the test
// database, drops it when the test ends, and returns a DSN that uses it.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	dsn := testenv.Postgres(tb)
	schema := fmt.Sprintf("t_%016x", rand.Uint64())
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to the test database: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			tb.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return withSchema(tb, dsn, schema)
}

// migrated returns the DSN of a fresh, migrated schema.
func migrated(tb testing.TB) string {
	tb.Helper()
	dsn := freshSchema(tb)
	if _, err := postgres.Migrate(context.Background(), dsn); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return dsn
}

func TestContract(t *testing.T) {
	// A schema per test; a second open in the same test reopens it.
	var (
		mu   sync.Mutex
		dsns = make(map[*testing.T]string)
	)
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = migrated(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
		}
		s, err := postgres.Open(context.Background(), dsn, storetest.Options(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

func TestMigrateTwice(t *testing.T) {
	ctx := context.Background()
	dsn := freshSchema(t)
	n, err := postgres.Migrate(ctx, dsn)
	if err != nil || n == 0 {
		t.Fatalf("first Migrate = %d, %v; want some migrations applied", n, err)
	}
	if n, err := postgres.Migrate(ctx, dsn); err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
	s, err := postgres.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	s.Close()
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := freshSchema(t)
	var (
		wg    sync.WaitGroup
		total atomic.Int64
	)
	for range 3 {
		wg.Go(func() {
			n, err := postgres.Migrate(ctx, dsn)
			if err != nil {
				t.Errorf("Migrate: %v", err)
			}
			total.Add(int64(n))
		})
	}
	wg.Wait()
	want, err := postgres.Migrate(ctx, freshSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if total.Load() != int64(want) {
		t.Errorf("three concurrent Migrates applied %d migrations in all, want %d", total.Load(), want)
	}
}

func TestOpenUnmigrated(t *testing.T) {
	_, err := postgres.Open(context.Background(), freshSchema(t), store.Options{})
	if !errors.Is(err, postgres.ErrSchema) || !strings.Contains(err.Error(), "transit clearing migrate --db") {
		t.Fatalf("Open of an empty schema: %v; want ErrSchema telling to run `transit clearing migrate --db`", err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	ctx := context.Background()
	dsn := migrated(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, dsn, store.Options{}); !errors.Is(err, postgres.ErrSchema) || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open of a newer schema: %v; want ErrSchema saying it is newer", err)
	}
	if _, err := postgres.Migrate(ctx, dsn); !errors.Is(err, postgres.ErrSchema) {
		t.Fatalf("Migrate of a newer schema: %v; want ErrSchema", err)
	}
}

// TestOpenUnreachable needs no server: nothing listens on port 1.
func TestOpenUnreachable(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			dsn := "postgres://clearing:secret@" + host + ":1/transit?sslmode=disable&connect_timeout=5"
			_, err := postgres.Open(ctx, dsn, store.Options{})
			if err == nil {
				t.Fatal("Open succeeded with nothing listening")
			}
			msg := err.Error()
			t.Log(msg)
			var ce *pgconn.ConnectError
			switch {
			case strings.Contains(msg, "\n"):
				t.Errorf("error spans lines: %q", msg)
			case !strings.Contains(msg, host+":1"):
				t.Errorf("error does not name %s:1: %q", host, msg)
			case !strings.Contains(msg, "check that PostgreSQL runs") || !strings.Contains(msg, "--db"):
				t.Errorf("error does not say what to check: %q", msg)
			case strings.Contains(msg, "secret"):
				t.Errorf("error shows the password: %q", msg)
			case !errors.As(err, &ce):
				t.Errorf("error does not wrap pgx's: %#v", err)
			}
		})
	}
}

// benchBatch makes a batch of n taps of one device, about a third of them
// compensable, over a few carriers and categories.
func benchBatch(device string, n int) []tap.Tap {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)
	carriers := []string{"ATP-1", "ATP-2", "Elektrotrans", "Metro"}
	categories := []string{"pensioner", "veteran", "disability", "student"}
	taps := make([]tap.Tap, n)
	for i := range taps {
		t := tap.Tap{
			Device: device, Seq: uint64(i + 1), Time: base.Add(time.Duration(i) * 7 * time.Second),
			Card: r.Uint64N(1 << 40), Carrier: carriers[r.IntN(len(carriers))], Route: "12", Vehicle: "AA1234",
			Lat: 50450100, Lon: 30523400, Result: tap.Accepted, Reason: "ok", Product: "purse",
			FareKop: 1500, ChargedKop: 1500, TariffVersion: 3, HotlistVersion: 17, CardCommitted: true,
		}
		if r.IntN(3) == 0 {
			t.Product, t.Category, t.Funding = "benefit", categories[r.IntN(len(categories))], "city"
			t.ChargedKop, t.CompensationKop = 0, 1500
		}
		taps[i] = t
	}
	return taps
}

// BenchmarkAddTaps measures ingest throughput (DESIGN.md target: more than
// 100,000 taps/s on 2 cores): every batch is new, as in steady state.
func BenchmarkAddTaps(b *testing.B) {
	for _, size := range []int{500, 2000, 5000} {
		for _, parallel := range []bool{false, true} {
			name := fmt.Sprintf("batch=%d", size)
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				s, err := postgres.Open(ctx, migrated(b), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				template := benchBatch("", size)
				var next atomic.Int64
				add := func(batch []tap.Tap) {
					dev := fmt.Sprintf("B-%06d", next.Add(1))
					for i := range batch {
						batch[i].Device = dev
					}
					added, _, err := s.AddTaps(ctx, batch)
					if err != nil || added != size {
						b.Errorf("AddTaps = %d, %v; want %d added", added, err, size)
					}
				}
				b.ResetTimer()
				if parallel {
					b.RunParallel(func(pb *testing.PB) {
						batch := append([]tap.Tap(nil), template...)
						for pb.Next() {
							add(batch)
						}
					})
				} else {
					batch := append([]tap.Tap(nil), template...)
					for range b.N {
						add(batch)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "taps/s")
			})
		}
	}
}
