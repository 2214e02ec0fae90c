// Package sqlite is clearing's embedded store, on SQLite through the pure
// Go modernc.org/sqlite driver, for the demo and for single-machine
// installations: no server, one file, and the same semantics as the
// PostgreSQL store (the same contract suite runs against both).
//
// Unlike the PostgreSQL store, Open creates and migrates the schema
// itself: the file belongs to the process that opens it.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"math"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/migration"
	"github.com/citycard/transit/clearing/store/sqlitefile"
	"github.com/citycard/transit/validator/tap"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
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
	db  *sql.DB
	loc *time.Location
	opt store.Options
}

var _ store.Store = (*Store)(nil)

// Open opens the store in the file at path, creating it and bringing its
// schema up to date as needed. An empty path is an error; ":memory:"
// gives a store that lives as long as the returned Store. The file and
// its -wal and -shm files are kept 0600 (sqlitefile).
func Open(ctx context.Context, path string, opt store.Options) (*Store, error) {
	return open(ctx, path, opt, true)
}

// OpenExisting opens the store in the file at path like Open, but never
// creates it: a missing file is an error wrapping fs.ErrNotExist, so that
// a mistyped path in a report is not an empty store that reports zero.
func OpenExisting(ctx context.Context, path string, opt store.Options) (*Store, error) {
	return open(ctx, path, opt, false)
}

func open(ctx context.Context, path string, opt store.Options, create bool) (*Store, error) {
	if err := sqlitefile.Prepare(path, create); err != nil {
		return nil, fmt.Errorf("open clearing store: %w", err)
	}
	// FULL synchronous because ingest commits the bus offset once AddTaps
	// returns: a batch acknowledged and then lost to a power cut would be
	// gone for good. _txlock=immediate takes the write lock at BEGIN, so
	// two processes on one file wait for each other (busy_timeout) instead
	// of failing when both try to upgrade a read lock.
	dsn := sqlitefile.DSN(path, create,
		"_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open clearing store %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, the pragmas above are
	// per connection, and an in-memory database exists only inside the
	// connection that made it, so that connection must never be closed
	// while the Store is open.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db, loc: opt.Zone(), opt: opt}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open clearing store %s: %w; check that the path is a writable clearing store file", path, err)
	}
	if err := s.checkZone(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open clearing store %s: %w", path, err)
	}
	return s, nil
}

// checkZone records the city's time zone on first use and refuses another
// one later: the month and day of every stored tap were fixed with it.
func (s *Store) checkZone(ctx context.Context) error {
	zone := s.loc.String()
	if _, err := s.db.ExecContext(ctx, "INSERT INTO settings (name, value) VALUES ('zone', ?) ON CONFLICT DO NOTHING", zone); err != nil {
		return fmt.Errorf("record the time zone: %w", err)
	}
	var have string
	if err := s.db.QueryRowContext(ctx, "SELECT value FROM settings WHERE name = 'zone'").Scan(&have); err != nil {
		return fmt.Errorf("read the time zone: %w", err)
	}
	if have != zone {
		return fmt.Errorf("the store was set up for time zone %s, not %s: open it with --tz %s", have, zone, have)
	}
	return nil
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations")
}

// migrate applies the pending migrations in one transaction.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_us INTEGER NOT NULL) STRICT`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d is newer than this build knows (%d): run a newer transit", current, len(ms))
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if step := goSteps[m.Version]; step != nil {
			if err := step(ctx, s, tx); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, ?)",
			m.Version, m.Name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// Quarantine implements store.Store.
func (s *Store) Quarantine(ctx context.Context, q ingest.Rejected) error {
	q = q.Bounded()
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO quarantine (received_us, device, reason, detail, raw, raw_size, raw_sha256, bus_partition, bus_offset)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (raw_sha256, bus_partition, bus_offset) DO NOTHING`,
		q.Received.UnixMicro(), q.Device, q.Reason, q.Detail, q.Raw, q.Size, q.SHA256, q.Partition, q.Offset)
	if err != nil {
		return fmt.Errorf("quarantine batch from %q (%s): %w", q.Device, q.Reason, err)
	}
	return nil
}

// Quarantined implements store.Store. Batches quarantined before the
// store kept bus positions come with Partition and Offset -1.
func (s *Store) Quarantined(ctx context.Context, from, to time.Time) ([]ingest.Rejected, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, reason, detail, raw, raw_size, raw_sha256,
			coalesce(bus_partition, -1), coalesce(bus_offset, -1), received_us FROM quarantine
		WHERE (?1 IS NULL OR received_us >= ?1) AND (?2 IS NULL OR received_us < ?2)
		ORDER BY received_us, id`, nullMicros(from), nullMicros(to))
	if err != nil {
		return nil, fmt.Errorf("list quarantined batches: %w", err)
	}
	defer rows.Close()
	var out []ingest.Rejected
	for rows.Next() {
		var (
			q  ingest.Rejected
			us int64
		)
		if err := rows.Scan(&q.Device, &q.Reason, &q.Detail, &q.Raw, &q.Size, &q.SHA256, &q.Partition, &q.Offset, &us); err != nil {
			return nil, fmt.Errorf("list quarantined batches: %w", err)
		}
		q.Received = time.UnixMicro(us).UTC()
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list quarantined batches: %w", err)
	}
	return out, nil
}

// nullMicros maps the zero time, "unbounded", to NULL.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// TapCount implements store.Store.
func (s *Store) TapCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM taps").Scan(&n); err != nil {
		return 0, fmt.Errorf("count taps: %w", err)
	}
	return n, nil
}

// Taps implements store.Store.
func (s *Store) Taps(ctx context.Context, device string, after uint64, limit int) ([]tap.Tap, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("taps of %s: limit %d, want at least 1", device, limit)
	}
	if after >= math.MaxInt64 {
		return nil, nil // no stored sequence is above 2^63-1
	}
	return s.taps(ctx, s.db, device, after, limit)
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// tapColumnsV1 are the columns of a tap before migration 4, which the
// rebuild of migration 2 reads; tapColumns are all of them.
const (
	tapColumnsV1 = `device, seq, tapped_us, card, carrier, route, vehicle, lat, lon,
	result, reason, product, category, funding, fare_kop, charged_kop, compensation_kop,
	tariff_version, hotlist_version, card_committed`
	tapColumns = tapColumnsV1 + `, marks, evidence`
)

func (s *Store) taps(ctx context.Context, q querier, device string, after uint64, limit int) ([]tap.Tap, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+tapColumns+` FROM taps WHERE device = ? AND seq > ? ORDER BY seq LIMIT ?`,
		device, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("taps of %s after %d: %w", device, after, err)
	}
	out, err := scanTaps(rows)
	if err != nil {
		return nil, fmt.Errorf("taps of %s after %d: %w", device, after, err)
	}
	return out, nil
}

// scanTaps reads and closes rows of tapColumns.
func scanTaps(rows *sql.Rows) ([]tap.Tap, error) { return scanTapsOf(rows, true) }

// scanTapsOf reads and closes rows of tapColumns, or of tapColumnsV1
// when all is false.
func scanTapsOf(rows *sql.Rows, all bool) ([]tap.Tap, error) {
	defer rows.Close()
	var out []tap.Tap
	for rows.Next() {
		var (
			t                                 tap.Tap
			seq, us, card, res, tv, hv, marks int64
			evidence                          []byte
		)
		dst := []any{&t.Device, &seq, &us, &card, &t.Carrier, &t.Route, &t.Vehicle, &t.Lat, &t.Lon,
			&res, &t.Reason, &t.Product, &t.Category, &t.Funding, &t.FareKop, &t.ChargedKop, &t.CompensationKop,
			&tv, &hv, &t.CardCommitted}
		if all {
			dst = append(dst, &marks, &evidence)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		t.Seq, t.Time, t.Card, t.Result = uint64(seq), time.UnixMicro(us).UTC(), uint64(card), tap.Result(res)
		t.TariffVersion, t.HotlistVersion = uint32(tv), uint64(hv)
		if err := t.SetMarks(uint8(marks)); err != nil {
			return nil, fmt.Errorf("tap %s/%d: %w", t.Device, t.Seq, err)
		}
		if err := t.SetEvidence(evidence); err != nil {
			return nil, fmt.Errorf("tap %s/%d: %w", t.Device, t.Seq, err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Close implements store.Store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close clearing store: %w", err)
	}
	return nil
}
