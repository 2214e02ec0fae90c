package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
)

func TestContract(t *testing.T) {
	// A file per test; a second open in the same test reopens that file.
	var (
		mu    sync.Mutex
		paths = make(map[*testing.T]string)
	)
	storetest.Run(t, func(t *testing.T, opt store.Options) store.Store {
		mu.Lock()
		path, ok := paths[t]
		if !ok {
			path = filepath.Join(t.TempDir(), "registry.db")
			paths[t] = path
		}
		mu.Unlock()
		s, err := sqlite.Open(context.Background(), path, opt)
		if err != nil {
			t.Fatalf("Open(%s): %v", path, err)
		}
		return s
	})
}

// open returns a store in a new file and the file's path.
func open(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := sqlite.Open(context.Background(), path, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// TestAuditLogAppendOnly goes around the store, straight to the file: the
// schema itself refuses to change or remove audit entries.
func TestAuditLogAppendOnly(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}
	r, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Test Person",
		BirthDate: registry.Date{Year: 1960, Month: 1, Day: 1}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"UPDATE audit_log SET purpose = 'nothing to see'",
		"DELETE FROM audit_log",
		"DELETE FROM audit_log WHERE resident_id = " + strconv.FormatInt(r.ID, 10),
	} {
		if _, err := db.ExecContext(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v; want the append-only trigger to refuse it", stmt, err)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM audit_log").Scan(&n); err != nil || n != 1 {
		t.Errorf("audit entries after the attempts: %d, %v; want 1", n, err)
	}
}

// TestOneLiveCardInSchema inserts a second live card behind the store's
// back: the partial unique index refuses it.
func TestOneLiveCardInSchema(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}
	r, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Test Person",
		BirthDate: registry.Date{Year: 1960, Month: 1, Day: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderCard(ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `INSERT INTO cards (number, resident_id, status, issued, expires, updated_at)
		VALUES (?, ?, 'active', '2026-01-01', '2031-01-01', 0)`, int64(c.Number)+10, r.ID)
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Errorf("second live card inserted directly: %v; want a unique violation", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO cards (number, resident_id, status, issued, expires, updated_at)
		VALUES (?, ?, 'expired', '2020-01-01', '2025-01-01', 0)`, int64(c.Number)+20, r.ID); err != nil {
		t.Errorf("an expired card beside the live one: %v; want it allowed", err)
	}
}

func TestMemory(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, ":memory:", store.Options{Issuer: 1001})
	if err != nil {
		t.Fatalf("Open(:memory:): %v", err)
	}
	defer s.Close()
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}
	r, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Test Person",
		BirthDate: registry.Date{Year: 1960, Month: 1, Day: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resident(ctx, desk, r.ID); err != nil {
		t.Fatalf("Resident after AddResident in memory: %v", err)
	}
}

func TestCardsNeedIssuer(t *testing.T) {
	ctx := context.Background()
	if _, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"), store.Options{Issuer: 10000}); err == nil || !strings.Contains(err.Error(), "issuer") {
		t.Fatalf("Open with a 5-digit issuer code: %v; want an error naming it", err)
	}
	s, err := sqlite.Open(ctx, ":memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}
	r, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Test Person",
		BirthDate: registry.Date{Year: 1960, Month: 1, Day: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OrderCard(ctx, desk, r.ID); err == nil || !strings.Contains(err.Error(), "--issuer") {
		t.Fatalf("OrderCard without an issuer code: %v; want an error telling to set --issuer", err)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), t.TempDir(), store.Options{Issuer: 1001}); err == nil {
		t.Fatalf("Open(a directory) succeeded")
	} else {
		t.Log(err)
	}
}

// TestAuditTamper goes around the store with the triggers dropped, as
// someone with the file would, and the chain shows it.
func TestAuditTamper(t *testing.T) {
	storetest.RunTamper(t, func(t *testing.T, opt store.Options) (store.Store, storetest.Raw) {
		path := filepath.Join(t.TempDir(), "registry.db")
		s, err := sqlite.Open(context.Background(), path, opt)
		if err != nil {
			t.Fatal(err)
		}
		return s, func(t *testing.T, statements ...string) {
			t.Helper()
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			all := append([]string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"}, statements...)
			all = append(all,
				"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
				"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END")
			for _, q := range all {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
		}
	})
}

// TestMigrationSealsOldAuditLog: a file written before the audit chain
// existed gets its entries chained, in order, by migration 0003, and
// they verify.
func TestMigrationSealsOldAuditLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE registry_schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{"0001_initial.sql", "0002_service_role.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := db.Exec("INSERT INTO registry_schema_migrations VALUES (?, ?, 0)", i+1, f); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO audit_log (at, user_name, role, resident_id, record, action, purpose) VALUES (?, 'olena', 'desk', NULL, 'resident/1', 'read resident', ?)`,
			1_780_000_000_000_000+int64(i), "old visit "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO api_tokens (hash, user_name, role, resident_id, created_at) VALUES (zeroblob(32), 'old', 'desk', NULL, 1780000000000000)`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := sqlite.Open(ctx, path, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := auditchain.Verify(ctx, s, nil, nil)
	if err != nil || !rep.OK() || rep.Head != 3 {
		t.Fatalf("old entries after the migration: %+v, %v; want 3 that verify", rep, err)
	}
	es, err := s.Audit(ctx, registry.Access{Actor: registry.Actor{User: "a", Role: registry.RoleAuditor}}, registry.AuditQuery{})
	if err != nil || len(es) != 3 || es[2].Purpose != "old visit 2" || es[2].Seq != 3 {
		t.Fatalf("old entries: %+v, %v", es, err)
	}
	// Old tokens end 90 days after they were made.
	tokens, err := s.Tokens(ctx, registry.Access{Actor: registry.Actor{User: "s", Role: registry.RoleSupervisor}}, registry.TokenQuery{All: true})
	if err != nil || len(tokens) != 1 || tokens[0].Expires.Sub(tokens[0].Created) != 90*24*time.Hour || tokens[0].ID != "0000000000000000" {
		t.Fatalf("old token: %+v, %v", tokens, err)
	}
	// New entries follow the old ones.
	if _, err := s.AddResident(ctx, registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}}, registry.Resident{
		RegistryNumber: storetest.RegistryNumber(1), Name: "Нова Особа", BirthDate: registry.Date{Year: 1970, Month: 1, Day: 1}}); err != nil {
		t.Fatal(err)
	}
	if rep, err := auditchain.Verify(ctx, s, nil, nil); err != nil || !rep.OK() || rep.Head != 4 {
		t.Fatalf("after a new entry: %+v, %v", rep, err)
	}
}

// BenchmarkAuditVerify verifies a chain of 50,000 entries in the
// embedded store: reading and hashing, as `registry serve` does at start.
func BenchmarkAuditVerify(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "registry.db"), store.Options{Issuer: 1001})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "bench"}
	for i := range 50 {
		if _, err := s.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(i + 1),
			Name: "Коваленко " + strconv.Itoa(i), BirthDate: registry.Date{Year: 1950, Month: 1, Day: 1}}); err != nil {
			b.Fatal(err)
		}
	}
	for range 999 {
		if _, err := s.FindResidents(ctx, desk, registry.Search{NamePrefix: "Коваленко"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var n int64
	for range b.N {
		rep, err := auditchain.Verify(ctx, s, nil, nil)
		if err != nil || !rep.OK() {
			b.Fatal(rep, err)
		}
		n = rep.Entries
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
