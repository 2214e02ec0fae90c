// Package postgres is clearing's production store on PostgreSQL, through
// pgx. A batch of taps costs a handful of round trips whatever its size:
// one pipelined read of the devices' sequence state (locked), from which
// recon.Advance tells new taps from repeats; one COPY of the new taps into
// the month's partition of taps; and one pipelined write of the roll-up,
// gaps, counts and anomalies. A repeat never reaches the taps or the
// roll-up, so it never counts twice.
//
// Taps are partitioned by month (in the city's time zone) of their time.
// Migrate creates the partitions of the current and the next month, and
// AddTaps creates any other it needs before it stores a tap there, so no
// tap ever waits for an operator; creating a partition briefly locks the
// taps table, which is why the next month's is made ahead.
//
// The schema is created by Migrate (`transit clearing migrate`), never by
// Open: production databases are changed deliberately, not as a side
// effect of starting a service.
package postgres

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/migration/pgmigrate"
	"github.com/citycard/transit/validator/tap"
)

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	loc  *time.Location
	opt  store.Options

	mu         sync.Mutex
	partitions map[string]bool // periods whose taps partition exists
	hotlist    *hotlistCache   // the latest hotlist ingest has loaded
	// tariffs are the kept tariffs re-rating has parsed, by version;
	// a kept tariff never changes.
	tariffs map[uint32]*rerate.Tariff
}

var _ store.Store = (*Store)(nil)

// Open connects to the clearing database at dsn (a PostgreSQL URL or
// key=value string; its search_path selects the schema), checks that it
// answers, that its schema is the one this build needs and that it was
// set up for opt's time zone.
func Open(ctx context.Context, dsn string, opt store.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open clearing store: parse the --db URL: %w", err)
	}
	// Every transaction of clearing's sessions waits for its commit to
	// reach disk, whatever the server's default or the URL say (see
	// syncCommit, which the writing transactions set again).
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open clearing store: %w", err)
	}
	// The pool connects lazily; ping so that a wrong URL fails here, at
	// start-up, and not on the first batch.
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
	s := &Store{pool: pool, loc: opt.Zone(), opt: opt, partitions: map[string]bool{}}
	if err := checkZone(ctx, pool, s.loc); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open clearing store: %w", err)
	}
	if err := s.loadPartitions(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open clearing store: %w", err)
	}
	return s, nil
}

// checkZone refuses a time zone other than the one the database was set
// up with: the month and day of every stored tap were fixed with it.
func checkZone(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, loc *time.Location) error {
	var have string
	if err := q.QueryRow(ctx, "SELECT value FROM settings WHERE name = 'zone'").Scan(&have); err != nil {
		return fmt.Errorf("read the time zone the database was set up with: %w", err)
	}
	if have != loc.String() {
		return fmt.Errorf("the database was set up for time zone %s, not %s: use --tz %s", have, loc, have)
	}
	return nil
}

// Quarantine implements store.Store.
func (s *Store) Quarantine(ctx context.Context, q ingest.Rejected) error {
	q = q.Bounded()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(syncCommit)
		b.Queue(`INSERT INTO quarantine (received, device, reason, detail, raw, raw_size, raw_sha256, bus_partition, bus_offset)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (raw_sha256, bus_partition, bus_offset) DO NOTHING`,
			q.Received.Truncate(time.Microsecond), q.Device, q.Reason, q.Detail, q.Raw, q.Size, q.SHA256, q.Partition, q.Offset)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("quarantine batch from %q (%s): %w", q.Device, q.Reason, err)
	}
	return nil
}

// Quarantined implements store.Store. Batches quarantined before the
// store kept bus positions come with Partition and Offset -1.
func (s *Store) Quarantined(ctx context.Context, from, to time.Time) ([]ingest.Rejected, error) {
	rows, err := s.pool.Query(ctx, `SELECT device, reason, detail, raw, raw_size, raw_sha256,
			coalesce(bus_partition, -1), coalesce(bus_offset, -1), received FROM quarantine
		WHERE ($1::timestamptz IS NULL OR received >= $1) AND ($2::timestamptz IS NULL OR received < $2)
		ORDER BY received, id`, nullTime(from), nullTime(to))
	if err != nil {
		return nil, fmt.Errorf("list quarantined batches: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ingest.Rejected, error) {
		var q ingest.Rejected
		var part int32
		err := r.Scan(&q.Device, &q.Reason, &q.Detail, &q.Raw, &q.Size, &q.SHA256, &part, &q.Offset, &q.Received)
		q.Partition = int(part)
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
	rows, err := s.pool.Query(ctx, `SELECT `+tapColumns+` FROM taps WHERE device = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
		device, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("taps of %s after %d: %w", device, after, err)
	}
	out, err := pgx.CollectRows(rows, scanTap)
	if err != nil {
		return nil, fmt.Errorf("taps of %s after %d: %w", device, after, err)
	}
	return out, nil
}

// tapColumns are what scanTap reads.
const tapColumns = `device, seq, tapped_at, card, carrier, route, vehicle, lat, lon,
	result, reason, product, category, funding, fare_kop, charged_kop, compensation_kop,
	tariff_version, hotlist_version, card_committed, marks, evidence`

func scanTap(r pgx.CollectableRow) (tap.Tap, error) {
	var ts tapScan
	if err := r.Scan(ts.targets()...); err != nil {
		return tap.Tap{}, err
	}
	return ts.tap()
}

// tapScan receives tapColumns; the unsigned fields of a tap are stored as
// their bit pattern in signed columns.
type tapScan struct {
	t                 tap.Tap
	seq, card, tv, hv int64
	result, marks     int16
	evidence          []byte
}

func (s *tapScan) targets() []any {
	t := &s.t
	return []any{&t.Device, &s.seq, &t.Time, &s.card, &t.Carrier, &t.Route, &t.Vehicle, &t.Lat, &t.Lon,
		&s.result, &t.Reason, &t.Product, &t.Category, &t.Funding, &t.FareKop, &t.ChargedKop, &t.CompensationKop,
		&s.tv, &s.hv, &t.CardCommitted, &s.marks, &s.evidence}
}

func (s *tapScan) tap() (tap.Tap, error) {
	t := s.t
	t.Seq, t.Card, t.Result = uint64(s.seq), uint64(s.card), tap.Result(s.result)
	t.TariffVersion, t.HotlistVersion = uint32(s.tv), uint64(s.hv)
	t.Time = t.Time.UTC()
	if err := t.SetMarks(uint8(s.marks)); err != nil {
		return t, fmt.Errorf("tap %s/%d: %w", t.Device, t.Seq, err)
	}
	if err := t.SetEvidence(s.evidence); err != nil {
		return t, fmt.Errorf("tap %s/%d: %w", t.Device, t.Seq, err)
	}
	return t, nil
}

// Close implements store.Store. It waits for connections in use to be
// returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
