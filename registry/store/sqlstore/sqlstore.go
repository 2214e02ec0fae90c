// Package sqlstore is the registry store written once in SQL over
// database/sql, shared by store/postgres and store/sqlite: both run the
// same statements, so they cannot drift apart in what they check, audit or
// emit. A Dialect carries the few differences (placeholders, how times
// and dates are stored, how a unique violation looks).
//
// Every write runs in one transaction that first locks the card_event
// counter row. Registry writes are desk-paced (a few a second at most), so
// serialising them costs nothing, and it makes every check-then-write
// exact and card event numbers gap-free in commit order. The unique
// indexes (one registry number, one live card per person) stay as the
// database's own guarantee.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/store"
)

// Dialect is what differs between databases.
type Dialect struct {
	// Name is the database's name for messages, e.g. "PostgreSQL".
	Name string
	// Rebind rewrites the $1, $2... placeholders the statements use;
	// nil leaves them.
	Rebind func(query string) string
	// Time and Date encode a value for a statement parameter.
	Time func(time.Time) any
	Date func(registry.Date) any
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(err error) bool
}

// Store implements store.Store on a *sql.DB whose schema the caller has
// made current.
type Store struct {
	db      *sql.DB
	d       Dialect
	issuer  uint16
	years   int
	loc     *time.Location
	now     func() time.Time
	queries sync.Map // query -> rebound query
}

var _ store.Store = (*Store)(nil)

// New returns a Store on db. It does not close db; Close does.
func New(db *sql.DB, d Dialect, opt store.Options) (*Store, error) {
	if opt.Issuer > 9999 {
		return nil, fmt.Errorf("registry store: issuer code %d has more than 4 digits; give the city's card issuer code, 1 to 9999", opt.Issuer)
	}
	s := &Store{db: db, d: d, issuer: opt.Issuer, years: opt.CardYears, loc: opt.Location, now: opt.Now}
	if s.years <= 0 {
		s.years = store.DefaultCardYears
	}
	if s.loc == nil {
		s.loc = time.UTC
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Close closes the database handle.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close registry store: %w", err)
	}
	return nil
}

// q returns query in the dialect's placeholder syntax.
func (s *Store) q(query string) string {
	if s.d.Rebind == nil {
		return query
	}
	if v, ok := s.queries.Load(query); ok {
		return v.(string)
	}
	r := s.d.Rebind(query)
	s.queries.Store(query, r)
	return r
}

// tx is a transaction with the store's dialect at hand.
type tx struct {
	s   *Store
	tx  *sql.Tx
	ctx context.Context
	now time.Time
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(t.ctx, t.s.q(query), args...)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(t.ctx, t.s.q(query), args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(t.ctx, t.s.q(query), args...)
}

func (t *tx) today() registry.Date     { return registry.Today(t.now, t.s.loc) }
func (t *tx) time(v time.Time) any     { return t.s.d.Time(v) }
func (t *tx) date(v registry.Date) any { return t.s.d.Date(v) }

// write runs fn in a transaction that holds the registry's write lock
// and commits if fn succeeds.
func (s *Store) write(ctx context.Context, what string, fn func(t *tx) error) error {
	return s.run(ctx, what, true, fn)
}

// read runs fn in a transaction without the write lock: for audited reads,
// whose audit entry commits with the read.
func (s *Store) read(ctx context.Context, what string, fn func(t *tx) error) error {
	return s.run(ctx, what, false, fn)
}

func (s *Store) run(ctx context.Context, what string, lock bool, fn func(t *tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", what, err)
	}
	defer sqlTx.Rollback() //nolint:errcheck // after Commit this is a no-op
	t := &tx{s: s, tx: sqlTx, ctx: ctx, now: s.now().UTC().Truncate(time.Microsecond)}
	if lock {
		if _, err := t.exec("UPDATE registry_counters SET value = value WHERE name = 'card_event'"); err != nil {
			return fmt.Errorf("%s: take the registry write lock: %w", what, err)
		}
	}
	if err := fn(t); err != nil {
		if isDomain(err) {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// isDomain reports whether err already says, in the registry's terms,
// what went wrong; other errors get the operation's name prefixed.
func isDomain(err error) bool {
	for _, e := range []error{registry.ErrInvalid, registry.ErrNotFound, registry.ErrDuplicate, registry.ErrConflict,
		registry.ErrTransition, registry.ErrForbidden, registry.ErrNoPurpose, registry.ErrUnauthenticated} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// audit appends an entry to the audit log.
func (t *tx) audit(a registry.Access, resident int64, record, action string) error {
	return t.appendAudit([]registry.AuditEntry{{At: t.now, User: a.Actor.User, Role: a.Actor.Role, Resident: resident,
		Record: record, Action: action, Purpose: strings.TrimSpace(a.Purpose)}})
}

// appendAudit appends entries to the audit log's hash chain
// (registry/auditchain). Taking the head row first orders every append:
// two transactions that audit wait for each other here, so the chain
// has one order, the order of commits.
func (t *tx) appendAudit(es []registry.AuditEntry) error {
	if len(es) == 0 {
		return nil
	}
	var (
		seq  int64
		prev []byte
	)
	if err := t.queryRow("UPDATE audit_head SET seq = seq + $1 WHERE id = 1 RETURNING seq, hash", int64(len(es))).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("write the audit log: take its head: %w", err)
	}
	seq -= int64(len(es))
	for i := range es {
		auditchain.Link(&es[i], seq, prev)
		seq, prev = es[i].Seq, es[i].Hash
	}
	const cols = 10
	for part := range slices.Chunk(es, chunk) {
		args := make([]any, 0, cols*len(part))
		for _, e := range part {
			var who any
			if e.Resident != 0 {
				who = e.Resident
			}
			args = append(args, t.time(e.At), e.User, string(e.Role), who, e.Record, e.Action, e.Purpose, e.Seq, e.Prev, e.Hash)
		}
		if _, err := t.exec(`INSERT INTO audit_log (at, user_name, role, resident_id, record, action, purpose, seq, prev_hash, hash)
			VALUES `+rowParams(len(part), cols), args...); err != nil {
			return fmt.Errorf("write the audit log: %w", err)
		}
	}
	if _, err := t.exec("UPDATE audit_head SET hash = $1 WHERE id = 1", prev); err != nil {
		return fmt.Errorf("write the audit log: move its head: %w", err)
	}
	return nil
}

// next increments a counter and returns its new value.
func (t *tx) next(counter string) (int64, error) {
	var v int64
	if err := t.queryRow("UPDATE registry_counters SET value = value + 1 WHERE name = $1 RETURNING value", counter).Scan(&v); err != nil {
		return 0, fmt.Errorf("next %s: %w", counter, err)
	}
	return v, nil
}

// timeCol scans a time stored as timestamptz or as Unix microseconds.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*c.t = x.UTC()
	case int64:
		*c.t = time.UnixMicro(x).UTC()
	case nil:
		*c.t = time.Time{}
	default:
		return fmt.Errorf("scan time: unexpected %T", v)
	}
	return nil
}

// dateCol scans a date stored as date or as TEXT YYYY-MM-DD.
type dateCol struct{ d *registry.Date }

func (c dateCol) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*c.d = registry.DateOf(x.UTC())
	case string:
		return c.parse(x)
	case []byte:
		return c.parse(string(x))
	case nil:
		*c.d = registry.Date{}
	default:
		return fmt.Errorf("scan date: unexpected %T", v)
	}
	return nil
}

func (c dateCol) parse(s string) error {
	d, err := registry.ParseDate(s)
	if err != nil {
		return fmt.Errorf("scan date: %w", err)
	}
	*c.d = d
	return nil
}

// notFound says what was not found and what to do.
func notFound(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{registry.ErrNotFound}, args...)...)
}
