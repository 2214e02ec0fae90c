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
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

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
		return nil, connectError(cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := checkSchema(ctx, pool); err != nil {
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

func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	want := len(ms)
	var have int
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", versionTable).Scan(&exists); err != nil {
		return fmt.Errorf("open registry store: look for the schema: %w", err)
	}
	if exists {
		if err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+versionTable).Scan(&have); err != nil {
			return fmt.Errorf("open registry store: read schema version: %w", err)
		}
	}
	switch {
	case have == 0:
		return fmt.Errorf("open registry store: %w: no registry schema found; run `transit registry migrate --db <the same URL>` first", ErrSchema)
	case have < want:
		return fmt.Errorf("open registry store: %w: schema version %d, this build needs %d; run `transit registry migrate --db <the same URL>`", ErrSchema, have, want)
	case have > want:
		return fmt.Errorf("open registry store: %w: schema version %d is newer than this build knows (%d); run a newer transit", ErrSchema, have, want)
	}
	return nil
}

// connectError explains a failed connection on one line. pgx reports
// every address it tried on a line of its own; the operator needs the
// address and what to check.
func connectError(host string, port uint16, err error) error {
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
