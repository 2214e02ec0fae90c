package postgres

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/plan"
	"github.com/citycard/transit/validator/tap"
)

// closeLockKey is the advisory lock that keeps a period's close (and a
// hotlist update) apart from ingest: every AddTaps holds it shared,
// CloseStatements and AddHotlist exclusive. An ingest transaction
// therefore either commits before a close reads the roll-up, or sees the
// period closed and books into the next one.
const closeLockKey = 0x7472616e73636c // "transcl"

// loadPartitions reads which months have a partition of taps.
func (s *Store) loadPartitions(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'taps'::regclass`)
	if err != nil {
		return fmt.Errorf("list the partitions of taps: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list the partitions of taps: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		if p, ok := partitionPeriod(n); ok {
			s.partitions[p] = true
		}
	}
	return nil
}

// partitionName is the name of the partition of taps holding period
// ("2026-11" -> "taps_p202611"); migration 0002 names them so too.
func partitionName(period string) string { return "taps_p" + period[:4] + period[5:7] }

func partitionPeriod(name string) (string, bool) {
	d, ok := strings.CutPrefix(name, "taps_p")
	if !ok || len(d) != 6 {
		return "", false
	}
	p := d[:4] + "-" + d[4:]
	if _, err := store.ParsePeriod(p); err != nil {
		return "", false
	}
	return p, true
}

// ensurePartitions creates the partitions of taps that periods need and
// the one after the latest, so that the next month's exists before its
// first tap.
func (s *Store) ensurePartitions(ctx context.Context, periods map[string]bool) error {
	want := make(map[string]bool, len(periods)+1)
	for p := range periods {
		want[p] = true
		from, _, err := store.Bounds(p, time.UTC)
		if err != nil {
			return fmt.Errorf("tap month %q: %w", p, err)
		}
		want[from.AddDate(0, 1, 0).Format("2006-01")] = true
	}
	s.mu.Lock()
	var missing []string
	for p := range want {
		if !s.partitions[p] {
			missing = append(missing, p)
		}
	}
	s.mu.Unlock()
	for _, p := range missing {
		if err := createPartition(ctx, s.pool, p, s.loc); err != nil {
			return err
		}
		s.mu.Lock()
		s.partitions[p] = true
		s.mu.Unlock()
	}
	return nil
}

type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// createPartition creates the partition of taps for period, bounded by
// the period's first instants in loc. Another process creating it at the
// same time is fine.
func createPartition(ctx context.Context, db beginner, period string, loc *time.Location) error {
	from, to, err := store.Bounds(period, loc)
	if err != nil {
		return fmt.Errorf("partition of taps: %w", err)
	}
	if from.Year() < 1 || from.Year() > 9998 {
		return fmt.Errorf("partition of taps for %s: year out of range", period)
	}
	ddl := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF taps FOR VALUES FROM ('%s') TO ('%s')",
		pgx.Identifier{partitionName(period)}.Sanitize(), from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		// Creating a partition locks the parent table; wait a bounded
		// time for transactions using it, instead of queueing every
		// ingest behind a long report.
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '30s'; "+syncCommit); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, ddl)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505") {
		return nil // made by another process meanwhile
	}
	if err != nil {
		return fmt.Errorf("create the partition of taps for %s: %w", period, err)
	}
	return nil
}

// AddTaps implements store.Store.
func (s *Store) AddTaps(ctx context.Context, taps []tap.Tap) (added, duplicates int, err error) {
	if len(taps) == 0 {
		return 0, 0, nil
	}
	return s.store(ctx, taps, nil)
}

// AddBatch implements store.Store.
func (s *Store) AddBatch(ctx context.Context, b ingest.Batch) (added, duplicates int, err error) {
	u := store.NewStateUpdate(b)
	return s.store(ctx, b.Taps, &u)
}

// store stores taps and, when u is not nil, the device state update, in
// one transaction.
func (s *Store) store(ctx context.Context, taps []tap.Tap, u *store.StateUpdate) (added, duplicates int, err error) {
	months := make(map[string]bool)
	var (
		lastY int
		lastM time.Month
	)
	for i := range taps {
		t := &taps[i]
		// Ingest validates batches first, so this fails only on a
		// programming error; nothing is written then.
		if err := t.Validate(); err != nil {
			return 0, 0, fmt.Errorf("add taps: tap %d of %d: %w", i+1, len(taps), err)
		}
		if t.Seq > math.MaxInt64 {
			// Sequences count up from 1; this one cannot come from a
			// validator, and it would not sort in a bigint.
			return 0, 0, fmt.Errorf("add taps: tap %s/%d: sequence above 2^63-1: %w", t.Device, t.Seq, ingest.ErrUnstorable)
		}
		// A batch is one device's taps in time order: nearly all in the
		// month of the one before, and comparing is cheaper than
		// formatting each.
		if y, m, _ := t.Time.In(s.loc).Date(); i == 0 || y != lastY || m != lastM {
			months[t.Period(s.loc)] = true
			lastY, lastM = y, m
		}
	}
	if len(months) > 0 {
		if err := s.ensurePartitions(ctx, months); err != nil {
			return 0, 0, fmt.Errorf("add taps: %w", err)
		}
	}
	// Two transactions that lock rows in different orders deadlock, and
	// PostgreSQL aborts one. Rows are locked in key order everywhere, so
	// this is rare; trying again is then the right thing.
	for attempt := 1; ; attempt++ {
		added, duplicates, err = s.addTaps(ctx, taps, u)
		var pgErr *pgconn.PgError
		if attempt < 4 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			continue
		}
		return added, duplicates, unstorable(err)
	}
}

// unstorable marks err with ingest.ErrUnstorable when PostgreSQL refused
// the data itself (SQLSTATE class 22, data exception: a value out of a
// column's range, text it cannot take; or a check or not-null
// constraint), so that ingest quarantines the batch instead of retrying
// it for ever. A unique violation is not among them: it would mean the
// sequence state and the taps disagree, which retrying with an operator
// watching is the safe answer to.
func unstorable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || pgErr.Code == "23502" || pgErr.Code == "23514") {
		return fmt.Errorf("%w: %w", ingest.ErrUnstorable, err)
	}
	return err
}

// syncCommit makes a transaction's commit wait for its WAL to reach disk,
// whatever the server's default: ingest commits the bus offset once the
// store returns, and a commit PostgreSQL had not yet flushed is lost in a
// crash (synchronous_commit=off lost taps for good). The pool sets it for
// the session too (Open); a transaction-pooling proxy keeps only this.
const syncCommit = "SET LOCAL synchronous_commit = on"

func (s *Store) addTaps(ctx context.Context, taps []tap.Tap, u *store.StateUpdate) (added, duplicates int, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit this is a no-op
	spans := plan.Spans(taps)
	var hotVersion int64
	st, err := readState(ctx, tx, spans, &hotVersion)
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: %w", err)
	}
	hot, err := s.hotlistAt(ctx, tx, hotVersion)
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: %w", err)
	}
	p := plan.Make(taps, st, s.opt.Clock()(), s.opt.Limits, s.loc)
	if len(p.New) > 0 {
		// Rows go in card order. The index on (card, tapped_at) is the
		// dearest part of storing a tap, each card landing on a random
		// leaf; in card order, one descent serves the next and the
		// pages touched stay in cache. Two stores at once measured
		// about 15 % faster so; the primary key, (device, seq), sees a
		// batch's few devices either way.
		ord := make([]int, len(p.New))
		for i := range ord {
			ord[i] = i
		}
		slices.SortFunc(ord, func(a, b int) int { return cmp.Compare(p.New[a].Card, p.New[b].Card) })
		// About 200 bytes a tap; one buffer, sent at once.
		buf := appendCopyHeader(make([]byte, 0, 19+len(p.New)*256))
		for _, i := range ord {
			buf = appendTapRow(buf, &p.New[i])
		}
		buf = appendCopyTrailer(buf)
		// A tap the state calls missing but the table holds fails the
		// COPY on the primary key: the whole call fails rather than
		// count a ride twice.
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(buf), copyTapsSQL); err != nil {
			return 0, 0, fmt.Errorf("add taps: copy %d new taps: %w", len(p.New), err)
		}
	}
	found, err := writePlan(ctx, tx, p, hot, s.loc, u)
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: %w", err)
	}
	if err := insertAnomalies(ctx, tx, found); err != nil {
		return 0, 0, fmt.Errorf("add taps: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("add taps: commit %d taps: %w", len(taps), err)
	}
	return len(p.New), p.Duplicates, nil
}

var copyColumns = []string{"device", "seq", "tapped_at", "period", "card", "carrier", "route", "vehicle", "lat", "lon",
	"result", "reason", "product", "category", "funding", "fare_kop", "charged_kop", "compensation_kop",
	"tariff_version", "hotlist_version", "card_committed", "booked", "marks", "evidence"}

// readState takes the close lock shared, locks the devices' rows (making
// them for new devices) and reads what plan.Make needs and the hotlist's
// version, in one round trip. Each statement of the batch runs after the one before, so the
// closed periods are read after the lock is held.
func readState(ctx context.Context, tx pgx.Tx, spans []plan.Span, hotVersion *int64) (plan.State, error) {
	st := plan.State{Devices: map[string]recon.Device{}, Open: map[string][]recon.Gap{}, Closed: map[string]bool{}}
	devs := make([]string, len(spans))
	lo := make([]int64, len(spans))
	hi := make([]int64, len(spans))
	for i, sp := range spans {
		devs[i], lo[i], hi[i] = sp.Device, int64(sp.Min), int64(sp.Max)
	}
	b := &pgx.Batch{}
	b.Queue(syncCommit)
	b.Queue("SELECT pg_advisory_xact_lock_shared($1)", int64(closeLockKey))
	// Spans are sorted by device, so concurrent calls lock in one order.
	b.Queue(`INSERT INTO devices (device, max_seq, max_at) SELECT d, 0, NULL FROM unnest($1::text[]) WITH ORDINALITY AS u(d, o)
		ORDER BY o ON CONFLICT DO NOTHING`, devs)
	b.Queue(`SELECT device, max_seq, max_at FROM devices WHERE device = ANY($1) ORDER BY device FOR UPDATE`, devs)
	// Probes through LATERAL ... OFFSET 0 here and below: the cached
	// generic plan of a join with unnest (estimated at 10 rows) would
	// hash the arguments and scan the whole table.
	b.Queue(`SELECT g.device, g.first_seq, g.last_seq, g.period, g.opened
		FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS s(device, lo, hi)
		CROSS JOIN LATERAL (SELECT * FROM gaps g
			WHERE g.device = s.device AND g.closed IS NULL AND g.last_seq >= s.lo AND g.first_seq <= s.hi OFFSET 0) g`, devs, lo, hi)
	b.Queue(`SELECT period FROM closed_periods`)
	b.Queue(`SELECT version FROM hotlist_version`)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return st, fmt.Errorf("make the commit durable: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return st, fmt.Errorf("wait for a period close: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return st, fmt.Errorf("register devices: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return st, fmt.Errorf("lock devices: %w", err)
	}
	var (
		name   string
		maxSeq int64
		maxAt  *time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&name, &maxSeq, &maxAt}, func() error {
		d := recon.Device{Name: name, MaxSeq: uint64(maxSeq)}
		if maxAt != nil {
			d.MaxTime = maxAt.UTC()
		}
		st.Devices[name] = d
		return nil
	}); err != nil {
		return st, fmt.Errorf("lock devices: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return st, fmt.Errorf("read gaps: %w", err)
	}
	var (
		g           recon.Gap
		first, last int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&g.Device, &first, &last, &g.Period, &g.Opened}, func() error {
		g.First, g.Last, g.Opened = uint64(first), uint64(last), g.Opened.UTC()
		st.Open[g.Device] = append(st.Open[g.Device], g)
		return nil
	}); err != nil {
		return st, fmt.Errorf("read gaps: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return st, fmt.Errorf("read closed periods: %w", err)
	}
	var period string
	if _, err := pgx.ForEachRow(rows, []any{&period}, func() error {
		st.Closed[period] = true
		return nil
	}); err != nil {
		return st, fmt.Errorf("read closed periods: %w", err)
	}
	if err := br.QueryRow().Scan(hotVersion); err != nil {
		return st, fmt.Errorf("read the hotlist's version (run 'transit clearing migrate' if the table is missing): %w", err)
	}
	return st, br.Close()
}

// writePlan writes everything of p but the taps in one round trip, the
// queue of cloned-card checks included, and returns the anomalies of the
// hotlist: the new accepted taps of cards hotlisted at their time.
func writePlan(ctx context.Context, tx pgx.Tx, p plan.Plan, hot *hotlistCache, loc *time.Location, u *store.StateUpdate) ([]recon.Anomaly, error) {
	b := &pgx.Batch{}
	if u != nil {
		queueState(b, *u)
	}
	if n := len(p.Rollup); n > 0 {
		cols := struct {
			period, carrier, adjusts, category, funding, route, day []string
			rides, fare, charged, comp                              []int64
		}{}
		for _, r := range p.Rollup {
			cols.period = append(cols.period, r.Period)
			cols.carrier = append(cols.carrier, r.Carrier)
			cols.adjusts = append(cols.adjusts, r.Adjusts)
			cols.category = append(cols.category, r.Category)
			cols.funding = append(cols.funding, r.Funding)
			cols.route = append(cols.route, r.Route)
			cols.day = append(cols.day, r.Day)
			cols.rides = append(cols.rides, r.Rides)
			cols.fare = append(cols.fare, r.FareKop)
			cols.charged = append(cols.charged, r.ChargedKop)
			cols.comp = append(cols.comp, r.CompensationKop)
		}
		// Rows come in key order (plan.Make sorts them), so concurrent
		// batches lock shared rows in one order. sum() is not needed:
		// each key is once in the plan.
		b.Queue(`INSERT INTO rollup AS r (period, carrier, adjusts, category, funding, route, day,
				rides, fare_kop, charged_kop, compensation_kop)
			SELECT period, carrier, adjusts, category, funding, route, day::date, rides, fare, charged, comp
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[])
				WITH ORDINALITY AS u(period, carrier, adjusts, category, funding, route, day, rides, fare, charged, comp, o)
			ORDER BY o
			ON CONFLICT (period, carrier, adjusts, category, funding, route, day, kind) DO UPDATE SET
				rides = r.rides + excluded.rides,
				fare_kop = r.fare_kop + excluded.fare_kop,
				charged_kop = r.charged_kop + excluded.charged_kop,
				compensation_kop = r.compensation_kop + excluded.compensation_kop`,
			cols.period, cols.carrier, cols.adjusts, cols.category, cols.funding, cols.route, cols.day,
			cols.rides, cols.fare, cols.charged, cols.comp)
	}
	if len(p.Devices) > 0 {
		var names []string
		var seqs []int64
		var ats []time.Time
		for _, d := range p.Devices {
			names, seqs, ats = append(names, d.Name), append(seqs, int64(d.MaxSeq)), append(ats, d.MaxTime)
		}
		b.Queue(`UPDATE devices d SET max_seq = u.max_seq, max_at = u.max_at
			FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(device, max_seq, max_at)
			WHERE d.device = u.device`, names, seqs, ats)
	}
	// Few gaps close in a batch; one statement each finds them by key.
	for _, g := range p.Removed {
		b.Queue(`DELETE FROM gaps WHERE device = $1 AND first_seq = $2 AND closed IS NULL`, g.Device, int64(g.First))
	}
	if len(p.Added) > 0 {
		var (
			devs, periods  []string
			firsts, lasts  []int64
			opened, closed []*time.Time
		)
		for _, g := range p.Added {
			devs, periods = append(devs, g.Device), append(periods, g.Period)
			firsts, lasts = append(firsts, int64(g.First)), append(lasts, int64(g.Last))
			o := g.Opened
			opened = append(opened, &o)
			if g.IsOpen() {
				closed = append(closed, nil)
			} else {
				c := g.Closed
				closed = append(closed, &c)
			}
		}
		b.Queue(`INSERT INTO gaps (device, first_seq, last_seq, period, opened, closed)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[], $6::timestamptz[])`,
			devs, firsts, lasts, periods, opened, closed)
	}
	if len(p.DevicePeriods) > 0 {
		var (
			periods, devs             []string
			taps, dups, firsts, lasts []int64
		)
		for _, c := range p.DevicePeriods {
			periods, devs = append(periods, c.Period), append(devs, c.Device)
			taps, dups = append(taps, c.Taps), append(dups, c.Duplicates)
			firsts, lasts = append(firsts, int64(c.FirstSeq)), append(lasts, int64(c.LastSeq))
		}
		b.Queue(`INSERT INTO device_periods AS d (period, device, taps, duplicates, first_seq, last_seq)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
			ON CONFLICT (period, device) DO UPDATE SET
				taps = d.taps + excluded.taps,
				duplicates = d.duplicates + excluded.duplicates,
				first_seq = CASE WHEN d.first_seq = 0 OR (excluded.first_seq <> 0 AND excluded.first_seq < d.first_seq)
					THEN excluded.first_seq ELSE d.first_seq END,
				last_seq = greatest(d.last_seq, excluded.last_seq)`,
			periods, devs, taps, dups, firsts, lasts)
	}
	queueAnomalies(b, p.Anomalies)

	queueCloneChecks(b, p.CloneChecks)
	queueReratings(b, p.Rerate, p.DeviceNumbers)

	var found []recon.Anomaly
	for i := range p.New {
		// The cloned-card check runs later, in CheckClones, on the runs
		// queued above.
		n := &p.New[i]
		if n.Result != tap.Accepted {
			continue
		}
		if from, ok := hot.from(n.Card); ok && !from.After(n.Time) {
			found = append(found, recon.Hotlisted(n.Tap, from, loc))
		}
	}
	if b.Len() == 0 {
		return found, nil
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("update roll-up, gaps and counts: %w", err)
		}
	}
	return found, br.Close()
}

// queueCloneChecks queues the insertion of the runs the cloned-card check
// will look at.
func queueCloneChecks(b *pgx.Batch, cs []plan.CloneCheck) {
	if len(cs) == 0 {
		return
	}
	devs := make([]string, len(cs))
	firsts, lasts := make([]int64, len(cs)), make([]int64, len(cs))
	froms, tos := make([]time.Time, len(cs)), make([]time.Time, len(cs))
	for i, c := range cs {
		devs[i], firsts[i], lasts[i], froms[i], tos[i] = c.Device, int64(c.FirstSeq), int64(c.LastSeq), c.From, c.To
	}
	b.Queue(`INSERT INTO clone_checks (device, first_seq, last_seq, from_at, to_at)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::timestamptz[], $5::timestamptz[])`,
		devs, firsts, lasts, froms, tos)
}

// queueReratings queues what re-rating will look at, one row, and
// records the device numbers the taps carry (the first device to report
// a number keeps it).
func queueReratings(b *pgx.Batch, needs []plan.Need, nums []plan.DeviceNumber) {
	if len(needs) > 0 {
		b.Queue(`INSERT INTO rerate_runs (needs) VALUES ($1)`, plan.AppendNeeds(nil, needs))
	}
	if len(nums) > 0 {
		ns := make([]int64, len(nums))
		devs := make([]string, len(nums))
		ats := make([]time.Time, len(nums))
		for i, n := range nums {
			ns[i], devs[i], ats[i] = int64(n.Number), n.Device, n.At
		}
		b.Queue(`INSERT INTO device_numbers (number, device, since)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) ON CONFLICT DO NOTHING`, ns, devs, ats)
	}
}

// queueAnomalies queues the insertion of as, keeping one of each.
func queueAnomalies(b *pgx.Batch, as []recon.Anomaly) {
	if len(as) == 0 {
		return
	}
	var (
		kinds, devs, odevs, periods, details []string
		seqs, oseqs, cards                   []int64
		ats                                  []time.Time
	)
	for _, a := range as {
		kinds, devs, odevs = append(kinds, string(a.Kind)), append(devs, a.Device), append(odevs, a.OtherDevice)
		periods, details = append(periods, a.Period), append(details, a.Detail)
		seqs, oseqs, cards = append(seqs, int64(a.Seq)), append(oseqs, int64(a.OtherSeq)), append(cards, int64(a.Card))
		ats = append(ats, a.At)
	}
	b.Queue(`INSERT INTO anomalies (kind, device, seq, other_device, other_seq, period, at, card, detail)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
			$7::timestamptz[], $8::bigint[], $9::text[])
		ON CONFLICT DO NOTHING`, kinds, devs, seqs, odevs, oseqs, periods, ats, cards, details)
}

// insertAnomalies records as and returns how many were new.
func insertAnomalies(ctx context.Context, tx pgx.Tx, as []recon.Anomaly) error {
	_, err := countNewAnomalies(ctx, tx, as)
	return err
}

func countNewAnomalies(ctx context.Context, tx pgx.Tx, as []recon.Anomaly) (int, error) {
	if len(as) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	queueAnomalies(b, as)
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("record %d anomalies: %w", len(as), err)
	}
	return int(tag.RowsAffected()), nil
}

// AddAnomalies implements store.Store.
func (s *Store) AddAnomalies(ctx context.Context, as []recon.Anomaly) error {
	if len(as) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, syncCommit); err != nil {
			return err
		}
		return insertAnomalies(ctx, tx, as)
	})
}

// AddHotlist implements store.Store.
func (s *Store) AddHotlist(ctx context.Context, entries []store.HotlistEntry) (flagged int, err error) {
	if len(entries) == 0 {
		return 0, nil
	}
	cards := make([]int64, len(entries))
	froms := make([]time.Time, len(entries))
	reasons := make([]string, len(entries))
	for i, e := range entries {
		if e.From.IsZero() {
			return 0, fmt.Errorf("add hotlist: card %d has no time from which it is blocked", e.Card)
		}
		cards[i], froms[i], reasons[i] = int64(e.Card), e.From.Truncate(time.Microsecond), e.Reason
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Exclusive, like a close: ingest transactions under way finish
		// first, so their taps are in the scan below, and later ones see
		// the new entries. Otherwise a tap stored meanwhile would escape
		// both checks.
		if _, err := tx.Exec(ctx, syncCommit); err != nil {
			return fmt.Errorf("add hotlist: %w", err)
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(closeLockKey)); err != nil {
			return fmt.Errorf("add hotlist: wait for ingest: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO hotlist (card, from_at, reason) SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[])
			ON CONFLICT DO NOTHING`, cards, froms, reasons); err != nil {
			return fmt.Errorf("add hotlist: %w", err)
		}
		// A card whose benefits were revoked has its rides of open
		// periods judged again.
		if _, err := tx.Exec(ctx, `INSERT INTO rerate_cards (card, period)
			SELECT DISTINCT e.card, t.period FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS e(card, from_at, reason)
			JOIN taps t ON t.card = e.card AND t.tapped_at >= e.from_at
			WHERE e.reason = $4 AND t.period NOT IN (SELECT period FROM closed_periods)
			ON CONFLICT DO NOTHING`, cards, froms, reasons, store.ReasonBenefitRevoked); err != nil {
			return fmt.Errorf("add hotlist: queue re-rating: %w", err)
		}
		// Ingest reloads its copy of the hotlist when this changes.
		if _, err := tx.Exec(ctx, "UPDATE hotlist_version SET version = version + 1"); err != nil {
			return fmt.Errorf("add hotlist: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT min(e.from_at), `+prefixed("t", tapColumns)+`
			FROM unnest($1::bigint[], $2::timestamptz[], $3::text[]) AS e(card, from_at, reason)
			JOIN taps t ON t.card = e.card AND t.tapped_at >= e.from_at AND t.result = 1
			WHERE e.reason <> $4
			GROUP BY `+prefixed("t", tapColumns), cards, froms, reasons, store.ReasonBenefitRevoked)
		if err != nil {
			return fmt.Errorf("add hotlist: find taps of the cards: %w", err)
		}
		found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (recon.Anomaly, error) {
			var from time.Time
			var ts tapScan
			if err := r.Scan(append([]any{&from}, ts.targets()...)...); err != nil {
				return recon.Anomaly{}, err
			}
			t, err := ts.tap()
			if err != nil {
				return recon.Anomaly{}, err
			}
			return recon.Hotlisted(&t, from.UTC(), s.loc), nil
		})
		if err != nil {
			return fmt.Errorf("add hotlist: find taps of the cards: %w", err)
		}
		flagged, err = countNewAnomalies(ctx, tx, found)
		return err
	})
	return flagged, err
}

func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
