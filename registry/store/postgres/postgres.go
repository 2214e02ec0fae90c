// Package postgres is the registry's production store on PostgreSQL,
// through pgx. It runs the shared statements of store/sqlstore over pgx's
// database/sql adapter on a pgx pool.
//
// The schema is created by Migrate (`transit registry migrate`), never by
// Open: production databases are changed deliberately, not as a side
// effect of starting a service. The schema makes the audit log
// append-only with triggers, and enforces one live card per person with a
// partial unique index.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/citycard/transit/clearing/store/migration/pgmigrate"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlstore"
)

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// dialect: PostgreSQL takes $N placeholders, timestamptz and date as
// time.Time.
var dialect = sqlstore.Dialect{
	Name: "PostgreSQL",
	Time: func(t time.Time) any { return t },
	Date: func(d registry.Date) any { return d.Time() },
	IsUnique: func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "23505"
	},
}

// Open connects to the registry database at dsn (a PostgreSQL URL or
// key=value string; its search_path selects the schema), checks that it
// answers and that its schema is the one this build needs.
func Open(ctx context.Context, dsn string, opt store.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open registry store: parse the --db URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open registry store: %w", err)
	}
	// The pool connects lazily; ping so that a wrong URL fails here, at
	// start-up, and not on the first request.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, pgmigrate.ConnectError(cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	sc, err := schema()
	if err == nil {
		err = sc.Check(ctx, pool)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	s, err := sqlstore.New(stdlib.OpenDBFromPool(pool), dialect, opt)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Store: s, pool: pool}, nil
}

// Close implements store.Store. It waits for connections in use to be
// returned.
func (s *Store) Close() error {
	err := s.Store.Close()
	s.pool.Close()
	return err
}
