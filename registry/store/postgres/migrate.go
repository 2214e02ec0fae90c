package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

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
var ErrSchema = errors.New("registry database schema does not match this build")

// versionTable records applied migrations. It is not clearing's
// schema_migrations, so both schemas may share a database.
const versionTable = "registry_schema_migrations"

// schema is the registry schema of this build.
func schema() (pgmigrate.Schema, error) {
	ms, err := migration.Load(migrationFiles, "migrations")
	if err != nil {
		return pgmigrate.Schema{}, err
	}
	return pgmigrate.Schema{Name: "registry", Table: versionTable, LockKey: migrateLockKey, Migrations: ms,
		ErrSchema: ErrSchema, Command: "transit registry migrate"}, nil
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
	sc, err := schema()
	if err != nil {
		return 0, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("migrate: parse the --db URL: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, pgmigrate.ConnectError(cfg.Host, cfg.Port, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return sc.Apply(ctx, conn)
}
