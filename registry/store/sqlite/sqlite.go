// Package sqlite is the registry's embedded store, on SQLite through the
// pure Go modernc.org/sqlite driver, for the demo and for single-machine
// installations: no server, one file, and the same statements as the
// PostgreSQL store (store/sqlstore), checked by the same contract suite.
//
// Unlike the PostgreSQL store, Open creates and migrates the schema
// itself: the file belongs to the process that opens it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"regexp"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/citycard/transit/clearing/store/migration"
	"github.com/citycard/transit/clearing/store/sqlitefile"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlstore"
)

// The schema is changed only by adding a file NNNN_name.sql here; a file
// already released is never edited, because files that applied it would
// not see the change.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use; SQLite runs one writer at a time, and so does Store.
type Store struct {
	*sqlstore.Store
}

var _ store.Store = (*Store)(nil)

// placeholder matches the $N placeholders of the shared statements;
// SQLite spells them ?N.
var placeholder = regexp.MustCompile(`\$([0-9]+)`)

var dialect = sqlstore.Dialect{
	Name:   "SQLite",
	Rebind: func(q string) string { return placeholder.ReplaceAllString(q, "?$1") },
	Time:   func(t time.Time) any { return t.UnixMicro() },
	Date:   func(d registry.Date) any { return d.String() },
	IsUnique: func(err error) bool {
		var e *sqlite.Error
		return errors.As(err, &e) && (e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
}

// Open opens the store in the file at path, creating it and bringing its
// schema up to date as needed. An empty path is an error; ":memory:"
// gives a store that lives as long as the returned Store. The file and
// its -wal and -shm files are kept 0600 (sqlitefile): they hold personal
// data.
func Open(ctx context.Context, path string, opt store.Options) (*Store, error) {
	return open(ctx, path, opt, true)
}

// OpenExisting opens the store in the file at path like Open, but never
// creates it: a missing file is an error wrapping fs.ErrNotExist.
func OpenExisting(ctx context.Context, path string, opt store.Options) (*Store, error) {
	return open(ctx, path, opt, false)
}

func open(ctx context.Context, path string, opt store.Options, create bool) (*Store, error) {
	if err := sqlitefile.Prepare(path, create); err != nil {
		return nil, fmt.Errorf("open registry store: %w", err)
	}
	// FULL synchronous: a card blocked at the desk must stay blocked
	// after a power cut. _txlock=immediate takes the write lock at BEGIN,
	// so two processes on one file wait for each other (busy_timeout)
	// instead of failing when both try to upgrade a read lock.
	dsn := sqlitefile.DSN(path, create,
		"_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)"+
			"&_pragma=foreign_keys(1)&_txlock=immediate")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open registry store %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, the pragmas above are
	// per connection, and an in-memory database exists only inside the
	// connection that made it.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open registry store %s: %w; check that the path is a writable registry store file", path, err)
	}
	s, err := sqlstore.New(db, dialect, opt)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: s}, nil
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations")
}

// migrate applies the pending migrations in one transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS registry_schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_us INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("migrate: create registry_schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM registry_schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d is newer than this build knows (%d): run a newer transit", current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if m.Version == chainMigration {
			if err := sealAudit(ctx, tx); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO registry_schema_migrations (version, name, applied_us) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// chainMigration is the migration that adds the audit chain.
const chainMigration = 3

// sealAudit gives the audit entries written before the chain existed
// their places and hashes, in id order, as the PostgreSQL migration does
// in SQL. The append-only trigger is set aside for this one update,
// inside the migration's transaction.
func sealAudit(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, at, user_name, role, resident_id, record, action, purpose FROM audit_log ORDER BY id")
	if err != nil {
		return fmt.Errorf("seal the audit log: %w", err)
	}
	var es []registry.AuditEntry
	for rows.Next() {
		var (
			e        registry.AuditEntry
			at       int64
			role     string
			resident sql.NullInt64
		)
		if err := rows.Scan(&e.ID, &at, &e.User, &role, &resident, &e.Record, &e.Action, &e.Purpose); err != nil {
			rows.Close()
			return fmt.Errorf("seal the audit log: %w", err)
		}
		e.At, e.Role, e.Resident = time.UnixMicro(at).UTC(), registry.Role(role), resident.Int64
		es = append(es, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("seal the audit log: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DROP TRIGGER audit_log_no_update"); err != nil {
		return fmt.Errorf("seal the audit log: %w", err)
	}
	prev := auditchain.Genesis
	for i := range es {
		e := &es[i]
		auditchain.Link(e, int64(i), prev)
		if _, err := tx.ExecContext(ctx, "UPDATE audit_log SET seq = ?, prev_hash = ?, hash = ? WHERE id = ?", e.Seq, e.Prev, e.Hash, e.ID); err != nil {
			return fmt.Errorf("seal the audit log: entry %d: %w", e.ID, err)
		}
		prev = e.Hash
	}
	if _, err := tx.ExecContext(ctx, "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", len(es), prev); err != nil {
		return fmt.Errorf("seal the audit log: %w", err)
	}
	_, err = tx.ExecContext(ctx, `CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END`)
	if err != nil {
		return fmt.Errorf("seal the audit log: %w", err)
	}
	return nil
}
