// Package journal is the validator's crash-safe record of taps. A tap is
// appended (and fsynced) before the rider sees green, with a per-device
// sequence number that survives restarts and never repeats; it is marked
// settled once the card transaction ended, and sent once clearing's bus
// acknowledged it.
//
// The journal is a SQLite database (pure Go, no cgo) in WAL mode with
// synchronous=FULL: every committed transaction is on disk before the call
// returns, so a power cut loses nothing that was acknowledged. The file
// and its -wal and -shm are kept 0600 whatever the umask.
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/validator/tap"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Tap states in the journal.
const (
	statePending = 0 // journalled, card transaction still running
	stateSettled = 1 // card transaction over (committed or not), ready to send
	stateSent    = 2 // acknowledged by the bus
)

// Journal is one device's tap journal. It is safe for concurrent use.
type Journal struct {
	db     *sql.DB
	device string
}

const schema = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS taps (
	seq   INTEGER PRIMARY KEY,
	state INTEGER NOT NULL,
	body  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS taps_state ON taps(state, seq);
`

// Open opens (creating if needed) the journal at path for device. A
// journal belongs to one device: opening it for another is an error, since
// mixing sequences of two devices would corrupt reconciliation.
//
// Taps left pending by a crash are settled at open: an accepted tap, which
// writes the card, as commit unknown (the validator cannot know whether
// the card saw the commit; the card's later taps tell clearing, through
// their tap.Tap.Prev), any other as committed, since it wrote nothing.
func Open(ctx context.Context, path, device string) (*Journal, error) {
	if device == "" {
		return nil, errors.New("journal: empty device id")
	}
	if err := keepPrivate(path); err != nil {
		return nil, err
	}
	dsn := "file:" + url.PathEscape(path) +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(5000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	// One writer; SQLite serialises anyway and one connection keeps the
	// pragmas in force.
	db.SetMaxOpenConns(1)
	j := &Journal{db: db, device: device}
	if err := j.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	// The write-ahead log and its index exist now; SQLite gives them the
	// file's own mode, and this makes sure of it.
	if err := keepPrivate(path); err != nil {
		db.Close()
		return nil, err
	}
	return j, nil
}

// keepPrivate makes the journal file, and its -wal and -shm beside it,
// readable by its owner only (0600) whatever the umask: taps name cards
// and where and when they rode. A missing journal is created so.
func keepPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("journal %s: %w", path, err)
	}
	err = f.Chmod(0o600)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal %s: make it private (0600): %w", path, err)
	}
	for _, side := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Chmod(path+side, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal %s: make it private (0600): %w", path+side, err)
		}
	}
	return nil
}

func (j *Journal) init(ctx context.Context) error {
	if _, err := j.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var dev string
	switch err := tx.QueryRowContext(ctx, `SELECT v FROM meta WHERE k='device'`).Scan(&dev); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta(k,v) VALUES('device',?),('last_seq','0')`, j.device); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read device id: %w", err)
	case dev != j.device:
		return fmt.Errorf("belongs to device %q, not %q: use that device's id or a new journal file", dev, j.device)
	}
	if err := settleCrashed(ctx, tx, j.device); err != nil {
		return err
	}
	return tx.Commit()
}

// settleCrashed settles the taps a crash left pending (see Open). The
// journal appends one tap at a time, so there is at most a handful.
func settleCrashed(ctx context.Context, tx *sql.Tx, device string) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, body FROM taps WHERE state=?`, statePending)
	if err != nil {
		return fmt.Errorf("read taps left pending: %w", err)
	}
	type row struct {
		seq  int64
		body []byte
	}
	var pending []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.body); err != nil {
			rows.Close()
			return fmt.Errorf("read taps left pending: %w", err)
		}
		pending = append(pending, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read taps left pending: %w", err)
	}
	for _, r := range pending {
		t, err := tap.UnmarshalTap(device, r.body)
		if err != nil {
			return fmt.Errorf("tap %d left pending: %w", r.seq, err)
		}
		t.CardCommitted = t.Result != tap.Accepted
		t.CommitUnknown = t.Result == tap.Accepted
		body, _ := t.AppendBinary(nil)
		if _, err := tx.ExecContext(ctx, `UPDATE taps SET state=?, body=? WHERE seq=?`, stateSettled, body, r.seq); err != nil {
			return fmt.Errorf("settle tap %d left pending: %w", r.seq, err)
		}
	}
	return nil
}

// Close closes the journal.
func (j *Journal) Close() error { return j.db.Close() }

// Device returns the device id the journal belongs to.
func (j *Journal) Device() string { return j.device }

// Append assigns t the next sequence number and this device, and writes it
// durably as pending (CardCommitted false) before returning.
func (j *Journal) Append(ctx context.Context, t *tap.Tap) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal append: %w", err)
	}
	defer tx.Rollback()
	var last uint64
	if err := tx.QueryRowContext(ctx, `SELECT CAST(v AS INTEGER) FROM meta WHERE k='last_seq'`).Scan(&last); err != nil {
		return fmt.Errorf("journal append: read sequence: %w", err)
	}
	t.Device = j.device
	t.Seq = last + 1
	t.CardCommitted = false
	body, _ := t.AppendBinary(nil)
	if _, err := tx.ExecContext(ctx, `UPDATE meta SET v=? WHERE k='last_seq'`, fmt.Sprint(t.Seq)); err != nil {
		return fmt.Errorf("journal append: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO taps(seq,state,body) VALUES(?,?,?)`, int64(t.Seq), statePending, body); err != nil {
		return fmt.Errorf("journal append: %w", err)
	}
	if err := tx.Commit(); err != nil {
		t.Seq = 0
		return fmt.Errorf("journal append: %w", err)
	}
	return nil
}

// Settle records how the card transaction of tap seq ended and makes the
// tap ready to send.
func (j *Journal) Settle(ctx context.Context, seq uint64, cardCommitted bool) error {
	return j.settle(ctx, seq, func(t *tap.Tap) error {
		t.CardCommitted = cardCommitted
		return nil
	})
}

// SettleAs records how tap t's card transaction ended, replacing the
// pending record of t.Seq with t, and makes it ready to send. The card can
// overrule the decision (it refuses a debit below zero), so the result
// recorded may differ from the one journalled; the device and sequence
// cannot.
func (j *Journal) SettleAs(ctx context.Context, t *tap.Tap) error {
	return j.settle(ctx, t.Seq, func(old *tap.Tap) error {
		if t.Device != j.device {
			return fmt.Errorf("tap of device %q in the journal of %q", t.Device, j.device)
		}
		*old = *t
		return nil
	})
}

func (j *Journal) settle(ctx context.Context, seq uint64, update func(*tap.Tap) error) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal settle %d: %w", seq, err)
	}
	defer tx.Rollback()
	var body []byte
	var state int
	err = tx.QueryRowContext(ctx, `SELECT state, body FROM taps WHERE seq=?`, int64(seq)).Scan(&state, &body)
	if err != nil {
		return fmt.Errorf("journal settle %d: %w", seq, err)
	}
	if state != statePending {
		return fmt.Errorf("journal settle %d: tap already settled", seq)
	}
	t, err := tap.UnmarshalTap(j.device, body)
	if err != nil {
		return fmt.Errorf("journal settle %d: %w", seq, err)
	}
	if err := update(&t); err != nil {
		return fmt.Errorf("journal settle %d: %w", seq, err)
	}
	body, _ = t.AppendBinary(nil)
	if _, err := tx.ExecContext(ctx, `UPDATE taps SET state=?, body=? WHERE seq=?`, stateSettled, body, int64(seq)); err != nil {
		return fmt.Errorf("journal settle %d: %w", seq, err)
	}
	return tx.Commit()
}

// Unsent returns up to limit settled taps not yet acknowledged, oldest
// first.
func (j *Journal) Unsent(ctx context.Context, limit int) ([]tap.Tap, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT body FROM taps WHERE state=? ORDER BY seq LIMIT ?`, stateSettled, limit)
	if err != nil {
		return nil, fmt.Errorf("journal unsent: %w", err)
	}
	defer rows.Close()
	var out []tap.Tap
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("journal unsent: %w", err)
		}
		t, err := tap.UnmarshalTap(j.device, body)
		if err != nil {
			return nil, fmt.Errorf("journal unsent: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// MarkSent records that the taps with these sequence numbers were
// acknowledged by the bus.
func (j *Journal) MarkSent(ctx context.Context, seqs []uint64) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal mark sent: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `UPDATE taps SET state=? WHERE seq=? AND state=?`)
	if err != nil {
		return fmt.Errorf("journal mark sent: %w", err)
	}
	defer st.Close()
	for _, s := range seqs {
		if _, err := st.ExecContext(ctx, stateSent, int64(s), stateSettled); err != nil {
			return fmt.Errorf("journal mark sent %d: %w", s, err)
		}
	}
	return tx.Commit()
}

// Stats is a snapshot of the journal's contents.
type Stats struct {
	LastSeq uint64
	Pending int // card transaction in progress
	Backlog int // settled, not yet acknowledged by the bus
	Sent    int
}

// Stats returns counts by state and the last sequence number issued.
func (j *Journal) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := j.db.QueryRowContext(ctx, `SELECT CAST(v AS INTEGER) FROM meta WHERE k='last_seq'`).Scan(&s.LastSeq)
	if err != nil {
		return s, fmt.Errorf("journal stats: %w", err)
	}
	rows, err := j.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM taps GROUP BY state`)
	if err != nil {
		return s, fmt.Errorf("journal stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var state, n int
		if err := rows.Scan(&state, &n); err != nil {
			return s, err
		}
		switch state {
		case statePending:
			s.Pending = n
		case stateSettled:
			s.Backlog = n
		case stateSent:
			s.Sent = n
		}
	}
	return s, rows.Err()
}

// PruneSent deletes acknowledged taps, keeping the newest keep of them for
// inspection. Sequence numbers are never reused: the last one lives in
// meta, not in the table.
func (j *Journal) PruneSent(ctx context.Context, keep int) (int64, error) {
	res, err := j.db.ExecContext(ctx, `DELETE FROM taps WHERE state=? AND seq NOT IN
		(SELECT seq FROM taps WHERE state=? ORDER BY seq DESC LIMIT ?)`, stateSent, stateSent, keep)
	if err != nil {
		return 0, fmt.Errorf("journal prune: %w", err)
	}
	return res.RowsAffected()
}

// NewCollector exposes the journal's backlog to Prometheus:
// transit_validator_journal_backlog_taps (settled, not yet acknowledged)
// and transit_validator_journal_last_seq. It reads the journal at each
// scrape.
func NewCollector(j *Journal) prometheus.Collector { return collector{j} }

type collector struct{ j *Journal }

var (
	backlogDesc = prometheus.NewDesc("transit_validator_journal_backlog_taps",
		"Journalled taps not yet acknowledged by the bus.", nil, nil)
	lastSeqDesc = prometheus.NewDesc("transit_validator_journal_last_seq",
		"The last sequence number the journal issued.", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- lastSeqDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.j.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(st.Backlog+st.Pending))
	ch <- prometheus.MustNewConstMetric(lastSeqDesc, prometheus.CounterValue, float64(st.LastSeq))
}
