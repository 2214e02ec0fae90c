package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/postgres"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/simulator/testenv"
)

// migrated returns the DSN of a fresh, migrated schema.
func migrated(tb testing.TB) string {
	tb.Helper()
	dsn := testenv.PostgresSchema(tb)
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
	storetest.Run(t, func(t *testing.T, opt store.Options) store.Store {
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = migrated(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
		}
		s, err := postgres.Open(context.Background(), dsn, opt)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}

var desk = registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}

// withCard opens a migrated store with one resident and an ordered card,
// and returns a direct connection to the same schema.
func withCard(t *testing.T) (*pgx.Conn, registry.Card) {
	t.Helper()
	ctx := context.Background()
	dsn := migrated(t)
	s, err := postgres.Open(ctx, dsn, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Test Person",
		BirthDate: registry.Date{Year: 1960, Month: 1, Day: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderCard(ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, c
}

// TestAuditLogAppendOnly goes around the store: the schema itself refuses
// to change or remove audit entries, even for the table's owner.
func TestAuditLogAppendOnly(t *testing.T) {
	ctx := context.Background()
	conn, _ := withCard(t)
	for _, stmt := range []string{
		"UPDATE audit_log SET purpose = 'nothing to see'",
		"DELETE FROM audit_log",
		"TRUNCATE audit_log",
	} {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" || !strings.Contains(pgErr.Message, "append-only") {
			t.Errorf("%s: %v; want the append-only trigger to refuse it", stmt, err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM audit_log").Scan(&n); err != nil || n != 2 {
		t.Errorf("audit entries after the attempts: %d, %v; want 2", n, err)
	}
}

// TestOneLiveCardInSchema inserts a second live card behind the store's
// back: the partial unique index refuses it.
func TestOneLiveCardInSchema(t *testing.T) {
	ctx := context.Background()
	conn, c := withCard(t)
	_, err := conn.Exec(ctx, `INSERT INTO cards (number, resident_id, status, issued, expires, updated_at)
		VALUES ($1, $2, 'active', '2026-01-01', '2031-01-01', now())`, int64(c.Number)+10, c.ResidentID)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.ConstraintName != "cards_one_live_per_resident" {
		t.Errorf("second live card inserted directly: %v; want cards_one_live_per_resident to refuse it", err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO cards (number, resident_id, status, issued, expires, updated_at)
		VALUES ($1, $2, 'expired', '2020-01-01', '2025-01-01', now())`, int64(c.Number)+20, c.ResidentID); err != nil {
		t.Errorf("an expired card beside the live one: %v; want it allowed", err)
	}
}

func TestMigrateTwice(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresSchema(t)
	n, err := postgres.Migrate(ctx, dsn)
	if err != nil || n == 0 {
		t.Fatalf("first Migrate = %d, %v; want some migrations applied", n, err)
	}
	if n, err := postgres.Migrate(ctx, dsn); err != nil || n != 0 {
		t.Fatalf("second Migrate = %d, %v; want 0, nil", n, err)
	}
	s, err := postgres.Open(ctx, dsn, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	s.Close()
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresSchema(t)
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
	want, err := postgres.Migrate(ctx, testenv.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	if total.Load() != int64(want) {
		t.Errorf("three concurrent Migrates applied %d migrations in all, want %d", total.Load(), want)
	}
}

func TestOpenUnmigrated(t *testing.T) {
	_, err := postgres.Open(context.Background(), testenv.PostgresSchema(t), store.Options{Issuer: 1001})
	if !errors.Is(err, postgres.ErrSchema) || !strings.Contains(err.Error(), "transit registry migrate --db") {
		t.Fatalf("Open of an empty schema: %v; want ErrSchema telling to run `transit registry migrate --db`", err)
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
	if _, err := conn.Exec(ctx, "INSERT INTO registry_schema_migrations (version, name) VALUES (9999, '9999_future.sql')"); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(ctx, dsn, store.Options{Issuer: 1001}); !errors.Is(err, postgres.ErrSchema) || !strings.Contains(err.Error(), "newer") {
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
			dsn := "postgres://registry:secret@" + host + ":1/transit?sslmode=disable&connect_timeout=5"
			for name, call := range map[string]func() error{
				"Open":    func() error { _, err := postgres.Open(ctx, dsn, store.Options{Issuer: 1001}); return err },
				"Migrate": func() error { _, err := postgres.Migrate(ctx, dsn); return err },
			} {
				err := call()
				if err == nil {
					t.Fatalf("%s succeeded with nothing listening", name)
				}
				msg := err.Error()
				var ce *pgconn.ConnectError
				switch {
				case strings.Contains(msg, "\n"):
					t.Errorf("%s: error spans lines: %q", name, msg)
				case !strings.Contains(msg, host+":1"):
					t.Errorf("%s: error does not name %s:1: %q", name, host, msg)
				case !strings.Contains(msg, "check that PostgreSQL runs") || !strings.Contains(msg, "--db"):
					t.Errorf("%s: error does not say what to check: %q", name, msg)
				case strings.Contains(msg, "secret"):
					t.Errorf("%s: error shows the password: %q", name, msg)
				case !errors.As(err, &ce):
					t.Errorf("%s: error does not wrap pgx's: %#v", name, err)
				}
			}
		})
	}
}

// TestAuditTamper goes around the store with the triggers set aside, as
// the database's owner could, and the chain shows it.
func TestAuditTamper(t *testing.T) {
	hexBlob := regexp.MustCompile(`X'([0-9A-F]*)'`)
	storetest.RunTamper(t, func(t *testing.T, opt store.Options) (store.Store, storetest.Raw) {
		dsn := migrated(t)
		s, err := postgres.Open(context.Background(), dsn, opt)
		if err != nil {
			t.Fatal(err)
		}
		return s, func(t *testing.T, statements ...string) {
			t.Helper()
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			all := append([]string{"ALTER TABLE audit_log DISABLE TRIGGER USER"}, statements...)
			all = append(all, "ALTER TABLE audit_log ENABLE TRIGGER USER")
			for _, q := range all {
				q = hexBlob.ReplaceAllString(q, `'\x$1'::bytea`)
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
	})
}

// TestMigrationSealsOldAuditLog: a schema written before the audit chain
// existed gets its entries chained, in SQL, by migration 0003, exactly as
// auditchain.Hash computes them.
func TestMigrationSealsOldAuditLog(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.PostgresSchema(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE registry_schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{"0001_initial.sql", "0002_service_role.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO registry_schema_migrations (version, name) VALUES ($1, $2)", i+1, f); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 5, 1, 9, 30, 15, 123456000, time.UTC)
	for i, purpose := range []string{"old visit", "стара заява «Й»", ""} {
		if _, err := conn.Exec(ctx, `INSERT INTO audit_log (at, user_name, role, resident_id, record, action, purpose) VALUES ($1, 'olena', 'desk', NULL, 'resident/7', 'read resident', $2)`,
			at.Add(time.Duration(i)*time.Second), purpose); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := postgres.Migrate(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, dsn, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := auditchain.Verify(ctx, s, nil, nil)
	if err != nil || !rep.OK() || rep.Head != 3 {
		t.Fatalf("old entries after the migration: %+v (first %v), %v; want 3 that verify", rep, rep.First, err)
	}
	if _, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Нова Особа",
		BirthDate: registry.Date{Year: 1970, Month: 1, Day: 1}}); err != nil {
		t.Fatal(err)
	}
	if rep, err := auditchain.Verify(ctx, s, nil, nil); err != nil || !rep.OK() || rep.Head != 4 {
		t.Fatalf("after a new entry: %+v, %v", rep, err)
	}
}
