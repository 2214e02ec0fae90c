// Package pgmigrate applies a store's embedded migrations to PostgreSQL,
// checks at start-up that a database's schema is the one the build needs,
// and words a failed connection for an operator. The clearing and the
// registry stores share it; it is apart from package migration so that
// the SQLite stores do not take pgx along.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/citycard/transit/clearing/store/migration"
)

// Schema is one store's schema.
type Schema struct {
	// Name names the store in messages: "clearing", "registry".
	Name string
	// Table records the applied migrations. Stores that may share a
	// database have tables of their own.
	Table string
	// LockKey is the advisory lock that serialises migrators of this
	// schema (two instances deployed at once).
	LockKey int64
	// Migrations are the store's migrations in version order.
	Migrations []migration.Migration
	// ErrSchema is what a missing or mismatched schema wraps.
	ErrSchema error
	// Command is what an operator runs to migrate, e.g. "transit clearing migrate".
	Command string
	// Before runs in the migrating transaction before the pending
	// migrations, After after them; either may be nil.
	Before, After func(ctx context.Context, tx pgx.Tx) error
}

// Apply applies the pending migrations on conn in one transaction, so a
// failure leaves the schema as it was, and returns how many it applied.
// Running it again, or twice at once, is safe.
func (s Schema) Apply(ctx context.Context, conn *pgx.Conn) (applied int, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", s.LockKey); err != nil {
		return 0, fmt.Errorf("migrate: wait for other migrators: %w", err)
	}
	table := pgx.Identifier{s.Table}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: create %s: %w", s.Table, err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+table).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	if current > len(s.Migrations) {
		return 0, fmt.Errorf("migrate: %w: the database is at version %d, this build knows up to %d; run a newer transit",
			s.ErrSchema, current, len(s.Migrations))
	}
	if s.Before != nil {
		if err := s.Before(ctx, tx); err != nil {
			return 0, fmt.Errorf("migrate: %w", err)
		}
	}
	for _, m := range s.Migrations[current:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return 0, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			return 0, fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		applied++
	}
	if s.After != nil {
		if err := s.After(ctx, tx); err != nil {
			return 0, fmt.Errorf("migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}

// Querier is what Check reads through: a pool, a connection or a
// transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Check fails, wrapping ErrSchema, unless the database's schema is at
// exactly the version of the last migration; the message says what to
// run.
func (s Schema) Check(ctx context.Context, q Querier) error {
	want := len(s.Migrations)
	var (
		have   int
		exists bool
	)
	if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", s.Table).Scan(&exists); err != nil {
		return fmt.Errorf("open %s store: look for the schema: %w", s.Name, err)
	}
	if exists {
		if err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+pgx.Identifier{s.Table}.Sanitize()).Scan(&have); err != nil {
			return fmt.Errorf("open %s store: read schema version: %w", s.Name, err)
		}
	}
	switch {
	case have == 0:
		return fmt.Errorf("open %s store: %w: no %s schema found; run `%s --db <the same URL>` first", s.Name, s.ErrSchema, s.Name, s.Command)
	case have < want:
		return fmt.Errorf("open %s store: %w: schema version %d, this build needs %d; run `%s --db <the same URL>`", s.Name, s.ErrSchema, have, want, s.Command)
	case have > want:
		return fmt.Errorf("open %s store: %w: schema version %d is newer than this build knows (%d); run a newer transit", s.Name, s.ErrSchema, have, want)
	}
	return nil
}

// ConnectError explains a failed connection to host:port on one line.
// pgx reports every address it tried on a line of its own; the operator
// needs the address and what to check. The error still unwraps to
// pgx's.
func ConnectError(host string, port uint16, err error) error {
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if strings.HasPrefix(host, "/") {
		addr = fmt.Sprintf("%s/.s.PGSQL.%d", host, port)
	}
	detail := strings.Join(strings.Fields(err.Error()), " ")
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &connError{err: err, msg: fmt.Sprintf(
			"PostgreSQL at %s refused the connection (%s); check the user, password and database in the --db URL", addr, detail)}
	}
	return &connError{err: err, msg: fmt.Sprintf(
		"cannot reach PostgreSQL at %s (%s); check that PostgreSQL runs there and the --db URL", addr, detail)}
}

// connError is a one-line message that still unwraps to pgx's error.
type connError struct {
	msg string
	err error
}

func (e *connError) Error() string { return e.msg }
func (e *connError) Unwrap() error { return e.err }
