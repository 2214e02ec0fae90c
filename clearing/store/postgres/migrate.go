package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

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
var ErrSchema = errors.New("clearing database schema does not match this build")

// migrations returns the embedded migrations in version order.
func migrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations")
}

// latestVersion is the schema version this build needs.
func latestVersion() (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}

// migrateLockKey serialises concurrent migrators of one database (two
// clearing instances deployed at once). The value is arbitrary but fixed.
const migrateLockKey = 0x7472616e736974 // "transit"

// Migrate brings the clearing schema at dsn up to date and returns how
// many migrations it applied (0 when it was already current). All pending
// migrations are applied in one transaction, so a failure leaves the
// schema as it was; running it again, or twice at once, is safe. Tables
// are created in the first schema of the connection's search_path.
//
// loc is the city's time zone (nil means UTC): the database is set up
// for it, and refuses another later. Migrate also creates the partitions
// of taps for the current and the next month, so that ingest never waits
// for one at a month's start.
func Migrate(ctx context.Context, dsn string, loc *time.Location) (applied int, err error) {
	if loc == nil {
		loc = time.UTC
	}
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
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return 0, fmt.Errorf("migrate: read schema version: %w", err)
	}
	// Migrations that need the zone read it from here.
	if _, err := tx.Exec(ctx, "SELECT set_config('transit.zone', $1, true)", loc.String()); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if current > len(ms) {
		return 0, fmt.Errorf("migrate: %w: the database is at version %d, this build knows up to %d; run a newer transit", ErrSchema, current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return 0, fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.Version, m.Name); err != nil {
			return 0, fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		applied++
	}
	if err := checkZone(ctx, tx, loc); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("migrate: commit: %w", err)
	}
	now := time.Now().In(loc)
	for _, m := range []time.Time{now, time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, loc)} {
		if err := createPartition(ctx, conn, m.Format("2006-01"), loc); err != nil {
			return applied, fmt.Errorf("migrate: %w", err)
		}
	}
	return applied, nil
}
