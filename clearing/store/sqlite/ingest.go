package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/plan"
	"github.com/citycard/transit/validator/tap"
)

// goSteps are the parts of migrations that SQL cannot do here: SQLite
// knows no time zones, so the day of a stored ride is computed in Go.
var goSteps = map[int]func(context.Context, *Store, *sql.Tx) error{
	2: func(ctx context.Context, s *Store, tx *sql.Tx) error { return s.rebuild(ctx, tx) },
	5: func(ctx context.Context, _ *Store, tx *sql.Tx) error { return hashQuarantine(ctx, tx) },
}

// rebuild derives the roll-up, the devices' sequence state and gaps and
// the per-device counts from the taps stored before migration 2, one
// device at a time, exactly as AddTaps would have.
func (s *Store) rebuild(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT DISTINCT device FROM taps ORDER BY device")
	if err != nil {
		return fmt.Errorf("rebuild: list devices: %w", err)
	}
	var devices []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("rebuild: list devices: %w", err)
		}
		devices = append(devices, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild: list devices: %w", err)
	}
	for _, d := range devices {
		// The columns of migration 1: later ones do not exist yet.
		rows, err := tx.QueryContext(ctx, `SELECT `+tapColumnsV1+` FROM taps WHERE device = ? ORDER BY seq`, d)
		if err != nil {
			return fmt.Errorf("rebuild: taps of %s: %w", d, err)
		}
		taps, err := scanTapsOf(rows, false)
		if err != nil {
			return fmt.Errorf("rebuild: taps of %s: %w", d, err)
		}
		p := plan.Make(taps, plan.State{}, s.opt.Clock()(), s.opt.Limits, s.loc)
		if err := s.apply(ctx, tx, p, false); err != nil {
			return fmt.Errorf("rebuild device %s: %w", d, err)
		}
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
	for i := range taps {
		t := &taps[i]
		// Ingest validates batches first, so this fails only on a
		// programming error; nothing is written then.
		if err := t.Validate(); err != nil {
			return 0, 0, fmt.Errorf("add taps: tap %d of %d: %w", i+1, len(taps), err)
		}
		if t.Seq > math.MaxInt64 {
			return 0, 0, fmt.Errorf("add taps: tap %s/%d: sequence above 2^63-1: %w", t.Device, t.Seq, ingest.ErrUnstorable)
		}
	}
	// BEGIN IMMEDIATE (_txlock) makes the transaction the only writer
	// from its start, so the state read below cannot go stale before the
	// plan made from it is written.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	st, err := s.state(ctx, tx, plan.Spans(taps))
	if err != nil {
		return 0, 0, fmt.Errorf("add taps: %w", err)
	}
	p := plan.Make(taps, st, s.opt.Clock()(), s.opt.Limits, s.loc)
	if err := s.apply(ctx, tx, p, true); err != nil {
		return 0, 0, fmt.Errorf("add taps: %w", err)
	}
	if u != nil {
		if err := updateState(ctx, tx, *u); err != nil {
			return 0, 0, fmt.Errorf("add taps: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("add taps: commit %d taps: %w", len(taps), err)
	}
	return len(p.New), p.Duplicates, nil
}

// state loads what plan.Make needs.
func (s *Store) state(ctx context.Context, tx *sql.Tx, spans []plan.Span) (plan.State, error) {
	st := plan.State{Devices: map[string]recon.Device{}, Open: map[string][]recon.Gap{}, Closed: map[string]bool{}}
	closed, err := closedPeriods(ctx, tx)
	if err != nil {
		return st, err
	}
	for _, p := range closed {
		st.Closed[p] = true
	}
	for _, sp := range spans {
		var seq, us int64
		err := tx.QueryRowContext(ctx, "SELECT max_seq, max_us FROM devices WHERE device = ?", sp.Device).Scan(&seq, &us)
		switch {
		case err == sql.ErrNoRows:
			continue // never seen: no gaps either
		case err != nil:
			return st, fmt.Errorf("read the state of device %s: %w", sp.Device, err)
		}
		st.Devices[sp.Device] = recon.Device{Name: sp.Device, MaxSeq: uint64(seq), MaxTime: time.UnixMicro(us).UTC()}
		rows, err := tx.QueryContext(ctx, `SELECT first_seq, last_seq, period, opened_us FROM gaps
			WHERE device = ? AND closed_us IS NULL AND last_seq >= ? AND first_seq <= ?`, sp.Device, int64(sp.Min), int64(sp.Max))
		if err != nil {
			return st, fmt.Errorf("read the gaps of device %s: %w", sp.Device, err)
		}
		for rows.Next() {
			g := recon.Gap{Device: sp.Device}
			var first, last, opened int64
			if err := rows.Scan(&first, &last, &g.Period, &opened); err != nil {
				rows.Close()
				return st, fmt.Errorf("read the gaps of device %s: %w", sp.Device, err)
			}
			g.First, g.Last, g.Opened = uint64(first), uint64(last), time.UnixMicro(opened).UTC()
			st.Open[sp.Device] = append(st.Open[sp.Device], g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return st, fmt.Errorf("read the gaps of device %s: %w", sp.Device, err)
		}
	}
	return st, nil
}

const insertTap = `INSERT INTO taps (device, seq, tapped_us, period, card, carrier, route, vehicle, lat, lon,
	result, reason, product, category, funding, fare_kop, charged_kop, compensation_kop,
	tariff_version, hotlist_version, card_committed, booked, marks, evidence)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device, seq) DO NOTHING`

const upsertRollup = `INSERT INTO rollup
	(period, carrier, adjusts, category, funding, route, day, rides, fare_kop, charged_kop, compensation_kop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (period, carrier, adjusts, category, funding, route, day, kind) DO UPDATE SET
	rides = rides + excluded.rides,
	fare_kop = fare_kop + excluded.fare_kop,
	charged_kop = charged_kop + excluded.charged_kop,
	compensation_kop = compensation_kop + excluded.compensation_kop`

// upsertRollupV2 is upsertRollup on the roll-up of migrations 2 to 7.
const upsertRollupV2 = `INSERT INTO rollup
	(period, carrier, adjusts, category, funding, route, day, rides, fare_kop, charged_kop, compensation_kop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (period, carrier, adjusts, category, funding, route, day) DO UPDATE SET
	rides = rides + excluded.rides,
	fare_kop = fare_kop + excluded.fare_kop,
	charged_kop = charged_kop + excluded.charged_kop,
	compensation_kop = compensation_kop + excluded.compensation_kop`

// apply writes a plan; insert is false when the taps are stored already
// (migration).
func (s *Store) apply(ctx context.Context, tx *sql.Tx, p plan.Plan, insert bool) error {
	if insert && len(p.New) > 0 {
		ins, err := tx.PrepareContext(ctx, insertTap)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, n := range p.New {
			t := n.Tap
			res, err := ins.ExecContext(ctx, t.Device, int64(t.Seq), t.Time.UnixMicro(), n.Period, int64(t.Card),
				t.Carrier, t.Route, t.Vehicle, t.Lat, t.Lon, int64(t.Result), t.Reason, t.Product, t.Category, t.Funding,
				t.FareKop, t.ChargedKop, t.CompensationKop, int64(t.TariffVersion), int64(t.HotlistVersion), t.CardCommitted, n.Booked,
				int64(t.Marks()), t.Evidence())
			if err != nil {
				return fmt.Errorf("insert %s/%d: %w", t.Device, t.Seq, err)
			}
			if k, err := res.RowsAffected(); err != nil || k != 1 {
				// The device state said the tap was missing; the table
				// disagrees. Counting it would count it twice.
				return fmt.Errorf("tap %s/%d is stored although the device's sequence state says it is missing (%v): the state is damaged; restore from a backup", t.Device, t.Seq, err)
			}
		}
	}
	for _, d := range p.Devices {
		if _, err := tx.ExecContext(ctx, `INSERT INTO devices (device, max_seq, max_us) VALUES (?, ?, ?)
			ON CONFLICT (device) DO UPDATE SET max_seq = excluded.max_seq, max_us = excluded.max_us`,
			d.Name, int64(d.MaxSeq), d.MaxTime.UnixMicro()); err != nil {
			return fmt.Errorf("update device %s: %w", d.Name, err)
		}
	}
	for _, g := range p.Removed {
		if _, err := tx.ExecContext(ctx, "DELETE FROM gaps WHERE device = ? AND first_seq = ? AND closed_us IS NULL", g.Device, int64(g.First)); err != nil {
			return fmt.Errorf("update gaps of %s: %w", g.Device, err)
		}
	}
	for _, g := range p.Added {
		var closed any
		if !g.IsOpen() {
			closed = g.Closed.UnixMicro()
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO gaps (device, first_seq, last_seq, period, opened_us, closed_us) VALUES (?, ?, ?, ?, ?, ?)",
			g.Device, int64(g.First), int64(g.Last), g.Period, g.Opened.UnixMicro(), closed); err != nil {
			return fmt.Errorf("record gap %s %d-%d: %w", g.Device, g.First, g.Last, err)
		}
	}
	up := upsertRollup
	if !insert {
		// Migration 2 rebuilds the roll-up before migration 8 gave it a
		// kind.
		up = upsertRollupV2
	}
	for _, r := range p.Rollup {
		if _, err := tx.ExecContext(ctx, up, r.Period, r.Carrier, r.Adjusts, r.Category, r.Funding, r.Route, r.Day,
			r.Rides, r.FareKop, r.ChargedKop, r.CompensationKop); err != nil {
			return fmt.Errorf("update roll-up %s %s/%s/%s: %w", r.Period, r.Carrier, r.Category, r.Funding, err)
		}
	}
	for _, c := range p.DevicePeriods {
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_periods (period, device, taps, duplicates, first_seq, last_seq)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (period, device) DO UPDATE SET
				taps = taps + excluded.taps, duplicates = duplicates + excluded.duplicates,
				first_seq = CASE WHEN first_seq = 0 OR (excluded.first_seq <> 0 AND excluded.first_seq < first_seq)
					THEN excluded.first_seq ELSE first_seq END,
				last_seq = max(last_seq, excluded.last_seq)`,
			c.Period, c.Device, c.Taps, c.Duplicates, int64(c.FirstSeq), int64(c.LastSeq)); err != nil {
			return fmt.Errorf("count taps of %s in %s: %w", c.Device, c.Period, err)
		}
	}
	if err := queueCloneChecks(ctx, tx, p.CloneChecks); err != nil {
		return err
	}
	if insert {
		if err := queueReratings(ctx, tx, p.Rerate, p.DeviceNumbers); err != nil {
			return err
		}
	}
	anomalies := p.Anomalies
	if insert {
		// A migration's rebuild runs before any hotlist exists.
		more, err := s.cardChecks(ctx, tx, p.New)
		if err != nil {
			return err
		}
		anomalies = append(anomalies, more...)
	}
	return addAnomalies(ctx, tx, anomalies)
}

// cardChecks finds the new accepted taps of hotlisted cards.
func (s *Store) cardChecks(ctx context.Context, tx *sql.Tx, news []plan.Tap) ([]recon.Anomaly, error) {
	// A benefit-revoked entry does not deny rides: re-rating judges its
	// card's benefit rides instead.
	var hot bool
	if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM hotlist WHERE reason <> ?)", store.ReasonBenefitRevoked).Scan(&hot); err != nil {
		return nil, fmt.Errorf("look at the hotlist: %w", err)
	}
	if !hot {
		return nil, nil
	}
	hotq, err := tx.PrepareContext(ctx, "SELECT min(from_us) FROM hotlist WHERE card = ? AND from_us <= ? AND reason <> '"+store.ReasonBenefitRevoked+"'")
	if err != nil {
		return nil, err
	}
	defer hotq.Close()
	var out []recon.Anomaly
	for _, n := range news {
		t := n.Tap
		if t.Result != tap.Accepted {
			continue
		}
		var from sql.NullInt64
		if err := hotq.QueryRowContext(ctx, int64(t.Card), t.Time.UnixMicro()).Scan(&from); err != nil {
			return nil, fmt.Errorf("look up card %d in the hotlist: %w", t.Card, err)
		}
		if from.Valid {
			out = append(out, recon.Hotlisted(t, time.UnixMicro(from.Int64).UTC(), s.loc))
		}
	}
	return out, nil
}

// queueCloneChecks queues the runs of rides the cloned-card check will
// look at.
func queueCloneChecks(ctx context.Context, tx *sql.Tx, cs []plan.CloneCheck) error {
	for _, c := range cs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO clone_checks (device, first_seq, last_seq, from_us, to_us)
			VALUES (?, ?, ?, ?, ?)`, c.Device, int64(c.FirstSeq), int64(c.LastSeq), c.From.UnixMicro(), c.To.UnixMicro()); err != nil {
			return fmt.Errorf("queue the cloned-card check of %s/%d-%d: %w", c.Device, c.FirstSeq, c.LastSeq, err)
		}
	}
	return nil
}

// queueReratings queues what re-rating will look at, one row, and
// records the device numbers the taps carry (the first device to report
// a number keeps it).
func queueReratings(ctx context.Context, tx *sql.Tx, needs []plan.Need, nums []plan.DeviceNumber) error {
	if len(needs) > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rerate_runs (needs) VALUES (?)`, plan.AppendNeeds(nil, needs)); err != nil {
			return fmt.Errorf("queue re-rating: %w", err)
		}
	}
	for _, n := range nums {
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_numbers (number, device, since_us) VALUES (?, ?, ?)
			ON CONFLICT DO NOTHING`, int64(n.Number), n.Device, n.At.UnixMicro()); err != nil {
			return fmt.Errorf("record the device number of %s: %w", n.Device, err)
		}
	}
	return nil
}

func addAnomalies(ctx context.Context, tx *sql.Tx, as []recon.Anomaly) (err error) {
	_, err = insertAnomalies(ctx, tx, as)
	return err
}

// insertAnomalies records as, keeping one of each, and returns how many
// were new.
func insertAnomalies(ctx context.Context, tx *sql.Tx, as []recon.Anomaly) (int, error) {
	if len(as) == 0 {
		return 0, nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO anomalies (kind, device, seq, other_device, other_seq, period, at_us, card, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	n := 0
	for _, a := range as {
		res, err := ins.ExecContext(ctx, string(a.Kind), a.Device, int64(a.Seq), a.OtherDevice, int64(a.OtherSeq),
			a.Period, a.At.UnixMicro(), int64(a.Card), a.Detail)
		if err != nil {
			return n, fmt.Errorf("record anomaly %s of %s/%d: %w", a.Kind, a.Device, a.Seq, err)
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
		}
	}
	return n, nil
}

// AddAnomalies implements store.Store.
func (s *Store) AddAnomalies(ctx context.Context, as []recon.Anomaly) error {
	if len(as) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record anomalies: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	if err := addAnomalies(ctx, tx, as); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record anomalies: commit: %w", err)
	}
	return nil
}

// AddHotlist implements store.Store.
func (s *Store) AddHotlist(ctx context.Context, entries []store.HotlistEntry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("add hotlist: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var found []recon.Anomaly
	for _, e := range entries {
		if e.From.IsZero() {
			return 0, fmt.Errorf("add hotlist: card %d has no time from which it is blocked", e.Card)
		}
		from := e.From.Truncate(time.Microsecond)
		if _, err := tx.ExecContext(ctx, "INSERT INTO hotlist (card, from_us, reason) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
			int64(e.Card), from.UnixMicro(), e.Reason); err != nil {
			return 0, fmt.Errorf("add hotlist: card %d: %w", e.Card, err)
		}
		if e.Reason == store.ReasonBenefitRevoked {
			// No ride is denied; the card's rides of open periods are
			// judged again.
			if _, err := tx.ExecContext(ctx, `INSERT INTO rerate_cards (card, period, queued_us)
				SELECT DISTINCT card, period, ? FROM taps WHERE card = ? AND tapped_us >= ?
					AND period NOT IN (SELECT period FROM closed_periods)
				ON CONFLICT DO NOTHING`, s.opt.Clock()().UnixMicro(), int64(e.Card), from.UnixMicro()); err != nil {
				return 0, fmt.Errorf("add hotlist: queue re-rating of card %d: %w", e.Card, err)
			}
			continue
		}
		taps, err := s.cardTaps(ctx, tx, e.Card, from)
		if err != nil {
			return 0, fmt.Errorf("add hotlist: %w", err)
		}
		for i := range taps {
			found = append(found, recon.Hotlisted(&taps[i], from, s.loc))
		}
	}
	n, err := insertAnomalies(ctx, tx, found)
	if err != nil {
		return 0, fmt.Errorf("add hotlist: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("add hotlist: commit: %w", err)
	}
	return n, nil
}

// cardTaps returns the accepted taps of card at or after from.
func (s *Store) cardTaps(ctx context.Context, tx *sql.Tx, card uint64, from time.Time) ([]tap.Tap, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+tapColumns+` FROM taps
		WHERE card = ? AND tapped_us >= ? AND result = ? ORDER BY tapped_us, device, seq`,
		int64(card), from.UnixMicro(), int64(tap.Accepted))
	if err != nil {
		return nil, fmt.Errorf("taps of card %d: %w", card, err)
	}
	out, err := scanTaps(rows)
	if err != nil {
		return nil, fmt.Errorf("taps of card %d: %w", card, err)
	}
	return out, nil
}
