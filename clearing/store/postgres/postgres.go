// Package postgres is clearing's production store on PostgreSQL, through
// pgx. Taps are loaded with COPY into a transaction-local table and moved
// into the taps table with one INSERT ... ON CONFLICT DO NOTHING whose
// returned rows feed the monthly compensation roll-up in the same
// statement, so a repeat never counts twice and a batch costs a handful of
// round trips whatever its size.
//
// The schema is created by Migrate (`transit clearing migrate`), never by
// Open: production databases are changed deliberately, not as a side
// effect of starting a service.
package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	loc  *time.Location
}

var _ store.Store = (*Store)(nil)

// Open connects to the clearing database at dsn (a PostgreSQL URL or
// key=value string; its search_path selects the schema), checks that it
// answers and that its schema is the one this build needs.
func Open(ctx context.Context, dsn string, opt store.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open clearing store: parse the --db URL: %w", err)
	}
	// Every connection gets its staging table once, instead of creating
	// and dropping one per batch: that catalog work cost more than copying
	// a 500-tap batch.
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, createStaging); err != nil {
			return fmt.Errorf("create staging table: %w", err)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open clearing store: %w", err)
	}
	// The pool connects lazily; ping so that a wrong URL fails here, at
	// start-up, and not on the first batch.
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, connectError(cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := checkSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	loc := opt.Location
	if loc == nil {
		loc = time.UTC
	}
	return &Store{pool: pool, loc: loc}, nil
}

func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	want, err := latestVersion()
	if err != nil {
		return err
	}
	var have int
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('schema_migrations') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("open clearing store: look for the schema: %w", err)
	}
	if exists {
		if err := pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
			return fmt.Errorf("open clearing store: read schema version: %w", err)
		}
	}
	switch {
	case have == 0:
		return fmt.Errorf("open clearing store: %w: no clearing schema found; run `transit clearing migrate --db <the same URL>` first", ErrSchema)
	case have < want:
		return fmt.Errorf("open clearing store: %w: schema version %d, this build needs %d; run `transit clearing migrate --db <the same URL>`", ErrSchema, have, want)
	case have > want:
		return fmt.Errorf("open clearing store: %w: schema version %d is newer than this build knows (%d); run a newer transit", ErrSchema, have, want)
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

// tapColumns are the columns of taps and of the staging table, in the
// order columnList names them.
var tapColumns = strings.Split(columnList, ", ")

const columnList = "device, seq, tapped_at, period, card, carrier, route, vehicle, lat, lon, " +
	"result, reason, product, category, funding, fare_kop, charged_kop, compensation_kop, " +
	"tariff_version, hotlist_version, card_committed"

// createStaging makes the connection's staging table: temporary, so only
// its connection sees it, and emptied at every commit, so each batch
// starts from nothing. It has the columns of taps (migrations/0001) and no
// constraints; a migration that changes taps must change it too.
const createStaging = `CREATE TEMP TABLE tap_in (
	device text COLLATE "C", seq bigint, tapped_at timestamptz, period text COLLATE "C",
	card bigint, carrier text COLLATE "C", route text, vehicle text, lat integer, lon integer,
	result smallint, reason text, product text, category text COLLATE "C", funding text COLLATE "C",
	fare_kop bigint, charged_kop bigint, compensation_kop bigint,
	tariff_version bigint, hotlist_version bigint, card_committed boolean
) ON COMMIT DELETE ROWS`

// insertTaps moves the staged taps in, skipping any (device, seq) already
// stored or repeated in the batch, and adds the new compensable ones to the
// roll-up. RETURNING yields only rows actually inserted, so a repeat never
// reaches the roll-up. The roll-up rows are upserted in key order so that
// two batches touching the same rows lock them in the same order and
// cannot deadlock. sum() of bigint is numeric; the assignment back to
// bigint fails loudly on overflow instead of wrapping.
const insertTaps = `
WITH ins AS (
	INSERT INTO taps (` + columnList + `) SELECT ` + columnList + ` FROM tap_in
	ON CONFLICT (device, seq) DO NOTHING
	RETURNING period, carrier, category, funding, result, card_committed, fare_kop, charged_kop, compensation_kop
), roll AS (
	INSERT INTO compensation_rollup AS r
		(period, carrier, category, funding, rides, fare_kop, charged_kop, compensation_kop)
	SELECT period, carrier, category, funding, count(*), sum(fare_kop), sum(charged_kop), sum(compensation_kop)
	FROM ins
	WHERE result = $1 AND card_committed AND compensation_kop > 0
	GROUP BY period, carrier, category, funding
	ORDER BY period, carrier, category, funding
	ON CONFLICT (period, carrier, category, funding) DO UPDATE SET
		rides = r.rides + excluded.rides,
		fare_kop = r.fare_kop + excluded.fare_kop,
		charged_kop = r.charged_kop + excluded.charged_kop,
		compensation_kop = r.compensation_kop + excluded.compensation_kop
)
SELECT count(*) FROM ins`

// AddTaps implements store.Store.
func (s *Store) AddTaps(ctx context.Context, taps []tap.Tap) (added, duplicates int, err error) {
	if len(taps) == 0 {
		return 0, 0, nil
	}
	if err := checkTaps(taps); err != nil {
		return 0, 0, err
	}
	// Staging in (device, seq) order makes the inserts take their index
	// locks in the same order in every transaction; overlapping batches
	// stored concurrently then wait for each other instead of deadlocking.
	// The sort is stable so that of two copies in one batch the first is
	// kept, as a plain loop would.
	order := make([]int, len(taps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(strings.Compare(taps[a].Device, taps[b].Device), cmp.Compare(taps[a].Seq, taps[b].Seq))
	})

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit this is a no-op
	row := make([]any, len(tapColumns))
	months := periods{loc: s.loc}
	src := pgx.CopyFromSlice(len(order), func(i int) ([]any, error) {
		t := &taps[order[i]]
		row[0], row[1], row[2], row[3] = t.Device, int64(t.Seq), t.Time, months.of(t.Time)
		row[4], row[5], row[6], row[7] = int64(t.Card), t.Carrier, t.Route, t.Vehicle
		row[8], row[9], row[10], row[11] = t.Lat, t.Lon, int16(t.Result), t.Reason
		row[12], row[13], row[14] = t.Product, t.Category, t.Funding
		row[15], row[16], row[17] = t.FareKop, t.ChargedKop, t.CompensationKop
		row[18], row[19], row[20] = int64(t.TariffVersion), int64(t.HotlistVersion), t.CardCommitted
		return row, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tap_in"}, tapColumns, src); err != nil {
		return 0, 0, fmt.Errorf("add taps: copy %d taps: %w", len(taps), err)
	}
	var n int64
	if err := tx.QueryRow(ctx, insertTaps, int16(tap.Accepted)).Scan(&n); err != nil {
		return 0, 0, fmt.Errorf("add taps: insert %d taps: %w", len(taps), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("add taps: commit %d taps: %w", len(taps), err)
	}
	return int(n), len(taps) - int(n), nil
}

// periods gives the accounting month of a time as tap.Period does. A
// batch is one device's taps in time order, so nearly every tap is in the
// month of the one before, and formatting each one's month cost more than
// encoding the rest of its row.
type periods struct {
	loc  *time.Location
	year int
	mon  time.Month
	name string
}

func (p *periods) of(t time.Time) string {
	y, m, _ := t.In(p.loc).Date()
	if p.name == "" || y != p.year || m != p.mon {
		p.year, p.mon = y, m
		p.name = t.In(p.loc).Format("2006-01")
	}
	return p.name
}

// checkTaps refuses a batch with a tap that cannot be stored, before
// anything is written. Ingest validates batches first, so this fails only
// on a programming error.
func checkTaps(taps []tap.Tap) error {
	for i := range taps {
		t := &taps[i]
		if err := t.Validate(); err != nil {
			return fmt.Errorf("add taps: tap %d of %d: %w", i+1, len(taps), err)
		}
		if t.Seq > math.MaxInt64 {
			// Sequences count up from 1; this one cannot come from a
			// validator, and it would not sort in a bigint.
			return fmt.Errorf("add taps: tap %s/%d: sequence above 2^63-1", t.Device, t.Seq)
		}
	}
	return nil
}

// Quarantine implements store.Store.
func (s *Store) Quarantine(ctx context.Context, q ingest.Rejected) error {
	raw := q.Raw
	if raw == nil {
		raw = []byte{} // the column is NOT NULL; an empty batch is still evidence
	}
	_, err := s.pool.Exec(ctx,
		"INSERT INTO quarantine (received, device, reason, detail, raw) VALUES ($1, $2, $3, $4, $5)",
		q.Received.Truncate(time.Microsecond), q.Device, q.Reason, q.Detail, raw)
	if err != nil {
		return fmt.Errorf("quarantine batch from %q (%s): %w", q.Device, q.Reason, err)
	}
	return nil
}

// Quarantined implements store.Store.
func (s *Store) Quarantined(ctx context.Context, from, to time.Time) ([]ingest.Rejected, error) {
	rows, err := s.pool.Query(ctx, `SELECT device, reason, detail, raw, received FROM quarantine
		WHERE ($1::timestamptz IS NULL OR received >= $1) AND ($2::timestamptz IS NULL OR received < $2)
		ORDER BY received, id`, nullTime(from), nullTime(to))
	if err != nil {
		return nil, fmt.Errorf("list quarantined batches: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ingest.Rejected, error) {
		var q ingest.Rejected
		err := r.Scan(&q.Device, &q.Reason, &q.Detail, &q.Raw, &q.Received)
		q.Received = q.Received.UTC()
		return q, err
	})
	if err != nil {
		return nil, fmt.Errorf("list quarantined batches: %w", err)
	}
	return out, nil
}

// nullTime maps the zero time, "unbounded", to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Compensation implements store.Store.
func (s *Store) Compensation(ctx context.Context, q store.Query) ([]store.Line, error) {
	if _, err := store.ParsePeriod(q.Period); err != nil {
		return nil, fmt.Errorf("compensation: %w", err)
	}
	// The key columns collate as "C", so ORDER BY gives byte order.
	rows, err := s.pool.Query(ctx, `SELECT carrier, category, funding, rides, fare_kop, charged_kop, compensation_kop
		FROM compensation_rollup
		WHERE period = $1 AND ($2 = '' OR carrier = $2)
		ORDER BY carrier, category, funding`, q.Period, q.Carrier)
	if err != nil {
		return nil, fmt.Errorf("compensation for %s: %w", q.Period, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Line])
	if err != nil {
		return nil, fmt.Errorf("compensation for %s: %w", q.Period, err)
	}
	return lines, nil
}

// TapCount implements store.Store. It counts the taps table, which takes
// a while on a large one; use it for reconciliation, not per request.
func (s *Store) TapCount(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM taps").Scan(&n); err != nil {
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
	rows, err := s.pool.Query(ctx, `SELECT device, seq, tapped_at, card, carrier, route, vehicle, lat, lon,
			result, reason, product, category, funding, fare_kop, charged_kop, compensation_kop,
			tariff_version, hotlist_version, card_committed
		FROM taps WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT $3`, device, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("taps of %s after %d: %w", device, after, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (tap.Tap, error) {
		var (
			t                 tap.Tap
			seq, card, tv, hv int64
			result            int16
		)
		err := r.Scan(&t.Device, &seq, &t.Time, &card, &t.Carrier, &t.Route, &t.Vehicle, &t.Lat, &t.Lon,
			&result, &t.Reason, &t.Product, &t.Category, &t.Funding, &t.FareKop, &t.ChargedKop, &t.CompensationKop,
			&tv, &hv, &t.CardCommitted)
		t.Seq, t.Card, t.Result = uint64(seq), uint64(card), tap.Result(result)
		t.TariffVersion, t.HotlistVersion = uint32(tv), uint64(hv)
		t.Time = t.Time.UTC()
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("taps of %s after %d: %w", device, after, err)
	}
	return out, nil
}

// Close implements store.Store. It waits for connections in use to be
// returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
