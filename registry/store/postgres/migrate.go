package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/store/migration"
)

// The schema is changed only by adding a file NNNN_name.sql here; a file
// already released is never edited, because databases that applied it
// would not see the change.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrSchema is wrapped by Open when the database schema is missing or
// does not match this build.
var ErrSchema = errors.New("registry database schema does not match this build")

// versionTable records applied migrations. It is not clearing's
// schema_migrations, so both schemas may share a database.
const versionTable = "registry_schema_migrations"

// migrations returns the embedded migrations in version order.
func migrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations")
}

// migrateLockKey serialises concurrent migrators of one database. The
// value is arbitrary but fixed, and differs from clearing's.
const migrateLockKey = 0x7265676973747279 // "registry"

// Migrate brings the registry schema at dsn up to date and returns how
// many migrations it applied (0 when it was already current). All pending
// migrations are applied in one transaction, so a failure leaves the
// schema as it was; running it again, or twice at once, is safe. Tables
// are created in the first schema of the connection's search_path.
func Migrate(ctx context.Context, dsn string) (applied int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("migrate: parse the --db URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, connectError(cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockKey)); err != nil {
		return 0, fmt.Errorf("migrate: wait for other migrators: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versionTable+` (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: create %s: %w", versionTable, err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+versionTable).Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("migrate: %w: the database is at version %d, this build knows up to %d; run a newer transit", ErrSchema, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return 0, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+versionTable+" (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			return 0, fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		applied++
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}
