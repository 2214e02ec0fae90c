package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/store/migration"
	"github.com/citycard/transit/clearing/store/migration/pgmigrate"
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

// schema is the clearing schema of this build.
func schema() (pgmigrate.Schema, error) {
	ms, err := migration.Load(migrationFiles, "migrations")
	if err != nil {
		return pgmigrate.Schema{}, err
	}
	return pgmigrate.Schema{Name: "clearing", Table: "schema_migrations", LockKey: migrateLockKey, Migrations: ms,
		ErrSchema: ErrSchema, Command: "transit clearing migrate"}, nil
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
	sc, err := schema()
	if err != nil {
		return 0, err
	}
	// Migrations that need the zone read it from transit.zone; the
	// database then records the zone, and refuses another.
	sc.Before = func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "SELECT set_config('transit.zone', $1, true)", loc.String())
		return err
	}
	sc.After = func(ctx context.Context, tx pgx.Tx) error { return checkZone(ctx, tx, loc) }
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("migrate: parse the --db URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, pgmigrate.ConnectError(cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if applied, err = sc.Apply(ctx, conn); err != nil {
		return 0, err
	}
	now := time.Now().In(loc)
	for _, m := range []time.Time{now, time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, loc)} {
		if err := createPartition(ctx, conn, m.Format("2006-01"), loc); err != nil {
			return applied, fmt.Errorf("migrate: %w", err)
		}
	}
	return applied, nil
}
