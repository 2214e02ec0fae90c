package sqlite

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/plan"
	"github.com/citycard/transit/clearing/store/internal/proofplan"
	"github.com/citycard/transit/validator/tap"
	"github.com/citycard/transit/validator/tariff"
)

// cardsPerRun is how many queued card months a pass takes per run, as in
// the PostgreSQL store.
const cardsPerRun = 20

// Rerate implements store.Store. The store's one writer judges; nothing
// else writes meanwhile.
func (s *Store) Rerate(ctx context.Context, limit int) (store.RerateStats, error) {
	if limit < 1 {
		return store.RerateStats{}, fmt.Errorf("re-rate: take at least one queued run, not %d", limit)
	}
	var st store.RerateStats
	err := s.write(ctx, "re-rate", func(tx *sql.Tx) error {
		var err error
		st, err = s.rerate(ctx, tx, limit)
		return err
	})
	if err != nil {
		return store.RerateStats{}, fmt.Errorf("re-rate: %w", err)
	}
	return st, nil
}

// PendingRerate implements store.Store.
func (s *Store) PendingRerate(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, "SELECT (SELECT count(*) FROM rerate_runs) + (SELECT count(*) FROM rerate_cards)").Scan(&n); err != nil {
		return 0, fmt.Errorf("count queued re-ratings: %w", err)
	}
	return n, nil
}

// drainRerate re-rates in tx until nothing is queued.
func (s *Store) drainRerate(ctx context.Context, tx *sql.Tx) error {
	for {
		st, err := s.rerate(ctx, tx, 100)
		if err != nil {
			return fmt.Errorf("re-rate what is queued: %w", err)
		}
		if st.Runs == 0 && st.Cards == 0 {
			return nil
		}
	}
}

func (s *Store) rerate(ctx context.Context, tx *sql.Tx, limit int) (store.RerateStats, error) {
	var st store.RerateStats
	rows, err := tx.QueryContext(ctx, "SELECT id, needs FROM rerate_runs ORDER BY id LIMIT ?", limit)
	if err != nil {
		return st, fmt.Errorf("take queued runs: %w", err)
	}
	var (
		runs  []int64
		needs []plan.Need
	)
	for rows.Next() {
		var (
			id  int64
			raw []byte
		)
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return st, fmt.Errorf("take queued runs: %w", err)
		}
		ns, err := plan.ParseNeeds(raw)
		if err != nil {
			rows.Close()
			return st, fmt.Errorf("take queued run %d: %w", id, err)
		}
		runs, needs = append(runs, id), append(needs, ns...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("take queued runs: %w", err)
	}
	rows, err = tx.QueryContext(ctx, "SELECT card, period FROM rerate_cards ORDER BY queued_us, card LIMIT ?", limit*cardsPerRun)
	if err != nil {
		return st, fmt.Errorf("take queued cards: %w", err)
	}
	var queued []proofplan.CardMonth
	for rows.Next() {
		var (
			card   int64
			period string
		)
		if err := rows.Scan(&card, &period); err != nil {
			rows.Close()
			return st, fmt.Errorf("take queued cards: %w", err)
		}
		queued = append(queued, proofplan.CardMonth{Card: uint64(card), Period: period})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("take queued cards: %w", err)
	}
	st.Runs = len(runs)
	if len(runs) == 0 && len(queued) == 0 {
		return st, nil
	}
	for _, id := range runs {
		if _, err := tx.ExecContext(ctx, "DELETE FROM rerate_runs WHERE id = ?", id); err != nil {
			return st, fmt.Errorf("dequeue run %d: %w", id, err)
		}
	}
	for _, c := range queued {
		if _, err := tx.ExecContext(ctx, "DELETE FROM rerate_cards WHERE card = ? AND period = ?", int64(c.Card), c.Period); err != nil {
			return st, fmt.Errorf("dequeue card months: %w", err)
		}
	}
	wants := proofplan.Wants(needs, queued, s.loc)
	if len(wants) == 0 {
		return st, nil
	}
	cards, err := s.loadCards(ctx, tx, wants)
	if err != nil {
		return st, err
	}
	w, closed, err := s.world(ctx, tx, cards)
	if err != nil {
		return st, err
	}
	if w.CardMACKeys, err = proofplan.MACKeys(ctx, s.opt.CardMACKeys, cards); err != nil {
		return st, err
	}
	out := proofplan.Judge(w, cards, closed)
	if err := s.writeJudgement(ctx, tx, &out); err != nil {
		return st, err
	}
	st.Cards, st.Rides, st.Changed = out.Cards, out.Rides, out.Changed
	return st, nil
}

// rideColumns are tapColumns and booked.
const rideColumns = tapColumns + `, booked`

// rideRow receives rideColumns.
type rideRow struct {
	t                                 tap.Tap
	seq, us, card, res, tv, hv, marks int64
	evidence                          []byte
	booked                            string
}

func (r *rideRow) targets() []any {
	t := &r.t
	return []any{&t.Device, &r.seq, &r.us, &r.card, &t.Carrier, &t.Route, &t.Vehicle, &t.Lat, &t.Lon,
		&r.res, &t.Reason, &t.Product, &t.Category, &t.Funding, &t.FareKop, &t.ChargedKop, &t.CompensationKop,
		&r.tv, &r.hv, &t.CardCommitted, &r.marks, &r.evidence, &r.booked}
}

func (r *rideRow) ride() (rerate.Ride, error) {
	t := r.t
	t.Seq, t.Time, t.Card, t.Result = uint64(r.seq), time.UnixMicro(r.us).UTC(), uint64(r.card), tap.Result(r.res)
	t.TariffVersion, t.HotlistVersion = uint32(r.tv), uint64(r.hv)
	if err := t.SetMarks(uint8(r.marks)); err != nil {
		return rerate.Ride{}, fmt.Errorf("tap %s/%d: %w", t.Device, t.Seq, err)
	}
	if err := t.SetEvidence(r.evidence); err != nil {
		return rerate.Ride{}, fmt.Errorf("tap %s/%d: %w", t.Device, t.Seq, err)
	}
	return rerate.Ride{Tap: &t, Booked: r.booked}, nil
}

// scanRides reads and closes rows of rideColumns.
func scanRides(rows *sql.Rows) ([]rerate.Ride, error) {
	defer rows.Close()
	var out []rerate.Ride
	for rows.Next() {
		var rr rideRow
		if err := rows.Scan(rr.targets()...); err != nil {
			return nil, err
		}
		r, err := rr.ride()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// loadCards loads what proofplan.Judge needs of each wanted card.
func (s *Store) loadCards(ctx context.Context, tx *sql.Tx, wants []proofplan.Want) ([]proofplan.Card, error) {
	cards := make([]proofplan.Card, len(wants))
	for i, w := range wants {
		c := &cards[i]
		*c = proofplan.Card{Want: w, Records: map[rerate.Key]rerate.Record{}, Confirmed: map[rerate.Key]bool{}}
		seen := map[rerate.Key]bool{}
		// Open links whose named ride falls in what is loaded: their
		// taps are judged again, in their own month.
		rows, err := tx.QueryContext(ctx, "SELECT prev_us, device, seq FROM open_links WHERE card = ?", int64(w.Card))
		if err != nil {
			return nil, fmt.Errorf("read open links: %w", err)
		}
		ranges := c.Ranges(s.loc)
		for rows.Next() {
			var (
				us, seq int64
				dev     string
			)
			if err := rows.Scan(&us, &dev, &seq); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read open links: %w", err)
			}
			at := time.UnixMicro(us).UTC()
			for _, r := range ranges {
				if !at.Before(r.From) && at.Before(r.To) {
					c.Links = append(c.Links, proofplan.OpenLink{Card: w.Card, PrevTime: at, Key: rerate.Key{Device: dev, Seq: uint64(seq)}})
					break
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read open links: %w", err)
		}
		for _, l := range c.Links {
			rows, err := tx.QueryContext(ctx, `SELECT `+rideColumns+` FROM taps WHERE device = ? AND seq = ?`, l.Device, int64(l.Seq))
			if err != nil {
				return nil, fmt.Errorf("read the taps of open links: %w", err)
			}
			rs, err := scanRides(rows)
			if err != nil {
				return nil, fmt.Errorf("read the taps of open links: %w", err)
			}
			for _, r := range rs {
				if m := r.Period(s.loc); rerate.Judged(r.Tap) && !slices.Contains(c.Months, m) {
					c.Months = append(c.Months, m)
				}
				seen[rerate.KeyOf(r.Tap)] = true
				c.Rides = append(c.Rides, r)
			}
		}
		slices.Sort(c.Months)
		for _, r := range c.Ranges(s.loc) {
			rows, err := tx.QueryContext(ctx, `SELECT `+rideColumns+` FROM taps WHERE card = ? AND tapped_us >= ? AND tapped_us < ?`,
				int64(w.Card), r.From.UnixMicro(), r.To.UnixMicro())
			if err != nil {
				return nil, fmt.Errorf("read the rides of a card: %w", err)
			}
			rs, err := scanRides(rows)
			if err != nil {
				return nil, fmt.Errorf("read the rides of a card: %w", err)
			}
			for _, r := range rs {
				if k := rerate.KeyOf(r.Tap); !seen[k] {
					seen[k] = true
					c.Rides = append(c.Rides, r)
				}
			}
		}
		for _, r := range c.Rides {
			if !rerate.Judged(r.Tap) {
				continue
			}
			k := rerate.KeyOf(r.Tap)
			rec, ok, err := judgedRecord(ctx, tx, k)
			if err != nil {
				return nil, err
			}
			if ok {
				c.Records[k] = rec
			}
			var one int
			switch err := tx.QueryRowContext(ctx, "SELECT 1 FROM confirmed WHERE device = ? AND seq = ?", k.Device, int64(k.Seq)).Scan(&one); {
			case err == nil:
				c.Confirmed[k] = true
			case err != sql.ErrNoRows:
				return nil, fmt.Errorf("read confirmed rides: %w", err)
			}
		}
		var rec store.CardRecord
		var doc string
		switch err := tx.QueryRowContext(ctx, "SELECT record FROM card_records WHERE card = ?", int64(w.Card)).Scan(&doc); {
		case err == nil:
			if rec, err = proofplan.Decode(w.Card, doc); err != nil {
				return nil, err
			}
		case err != sql.ErrNoRows:
			return nil, fmt.Errorf("read card records: %w", err)
		}
		rows, err = tx.QueryContext(ctx, "SELECT from_us FROM hotlist WHERE card = ? AND reason = ?", int64(w.Card), store.ReasonBenefitRevoked)
		if err != nil {
			return nil, fmt.Errorf("read benefit revocations: %w", err)
		}
		var revoked []time.Time
		for rows.Next() {
			var us int64
			if err := rows.Scan(&us); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read benefit revocations: %w", err)
			}
			revoked = append(revoked, time.UnixMicro(us).UTC())
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read benefit revocations: %w", err)
		}
		c.Facts = proofplan.Facts(rec, revoked, s.loc)
	}
	return cards, nil
}

// judgedColumns are what scanJudged reads.
const judgedColumns = `card, state, reason, detail, booked_into, booked_adjusts, kind,
	paid_category, paid_funding, paid_fare, paid_charged, paid_comp,
	priced, release_category, release_funding, release_fare, release_charged, release_comp,
	decided_by, decided_us, decision_note`

// judgedRecord reads the record of ride k, if it has one.
func judgedRecord(ctx context.Context, q querier, k rerate.Key) (rerate.Record, bool, error) {
	rec, _, err := scanJudged(q.QueryRowContext(ctx, `SELECT `+judgedColumns+` FROM judged WHERE device = ? AND seq = ?`, k.Device, int64(k.Seq)))
	if err == sql.ErrNoRows {
		return rerate.Record{}, false, nil
	}
	if err != nil {
		return rerate.Record{}, false, fmt.Errorf("read the judgement of %s/%d: %w", k.Device, k.Seq, err)
	}
	return rec, true, nil
}

type scanner interface{ Scan(dest ...any) error }

// judgedRow receives judgedColumns.
type judgedRow struct {
	r       rerate.Record
	card    int64
	state   string
	decided sql.NullInt64
}

func (j *judgedRow) targets() []any {
	r := &j.r
	return []any{&j.card, &j.state, &r.Reason, &r.Detail, &r.Booking.Into, &r.Booking.Adjusts, &r.Booking.Kind,
		&r.Paid.Category, &r.Paid.Funding, &r.Paid.FareKop, &r.Paid.ChargedKop, &r.Paid.CompensationKop,
		&r.Priced, &r.Release.Category, &r.Release.Funding, &r.Release.FareKop, &r.Release.ChargedKop, &r.Release.CompensationKop,
		&r.Decision.By, &j.decided, &r.Decision.Note}
}

func (j *judgedRow) record() rerate.Record {
	r := j.r
	r.State = rerate.State(j.state)
	if j.decided.Valid {
		r.Decision.At = time.UnixMicro(j.decided.Int64).UTC()
	}
	return r
}

func scanJudged(row scanner) (rerate.Record, uint64, error) {
	var j judgedRow
	err := row.Scan(j.targets()...)
	return j.record(), uint64(j.card), err
}

// world loads what re-rating knows beyond the cards.
func (s *Store) world(ctx context.Context, tx *sql.Tx, cards []proofplan.Card) (*rerate.World, map[string]bool, error) {
	w := &rerate.World{Location: s.loc, Tariffs: map[uint32]*rerate.Tariff{}, Devices: map[uint32]string{}, Routes: map[string]map[string]bool{}}
	versions := map[uint32]bool{}
	numbers := map[uint32]bool{}
	for i := range cards {
		for _, r := range cards[i].Rides {
			versions[r.TariffVersion] = true
			if r.Prev.Device != 0 {
				numbers[r.Prev.Device] = true
			}
		}
	}
	for v := range versions {
		var zb []byte
		switch err := tx.QueryRowContext(ctx, "SELECT zip FROM tariffs WHERE version = ?", int64(v)).Scan(&zb); {
		case err == sql.ErrNoRows:
			continue
		case err != nil:
			return nil, nil, fmt.Errorf("read tariff version %d: %w", v, err)
		}
		zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
		if err != nil {
			return nil, nil, fmt.Errorf("tariff version %d as kept: %w", v, err)
		}
		// Verified when it was added; parsed again here.
		ft, err := tariff.Parse(zr)
		if err != nil {
			return nil, nil, fmt.Errorf("tariff version %d as kept: %w", v, err)
		}
		w.Tariffs[v] = rerate.NewTariff(ft)
	}
	for n := range numbers {
		var dev string
		switch err := tx.QueryRowContext(ctx, "SELECT device FROM device_numbers WHERE number = ?", int64(n)).Scan(&dev); {
		case err == nil:
			w.Devices[n] = dev
		case err != sql.ErrNoRows:
			return nil, nil, fmt.Errorf("read device numbers: %w", err)
		}
	}
	routes, err := s.routes(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	for c, rs := range routes {
		w.Routes[c] = map[string]bool{}
		for _, r := range rs {
			w.Routes[c][r] = true
		}
	}
	var asOf sql.NullInt64
	if err := tx.QueryRowContext(ctx, "SELECT as_of_us FROM registry_feed").Scan(&asOf); err != nil {
		return nil, nil, fmt.Errorf("read the registry feed's state: %w", err)
	}
	if asOf.Valid {
		w.RecordsAsOf = time.UnixMicro(asOf.Int64).UTC()
	}
	closed, err := closedPeriods(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	cm := make(map[string]bool, len(closed))
	for _, p := range closed {
		cm[p] = true
	}
	return w, cm, nil
}

func (s *Store) routes(ctx context.Context, q querier) (map[string][]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT carrier, route FROM carrier_routes ORDER BY carrier, route")
	if err != nil {
		return nil, fmt.Errorf("read carriers' routes: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]string)
	for rows.Next() {
		var c, r string
		if err := rows.Scan(&c, &r); err != nil {
			return nil, fmt.Errorf("read carriers' routes: %w", err)
		}
		out[c] = append(out[c], r)
	}
	return out, rows.Err()
}

const upsertJudged = `INSERT INTO judged (device, seq, tapped_us, card, period, carrier, claimed_kop, claim_into, claim_adjusts,
	state, reason, detail, booked_into, booked_adjusts, kind, paid_category, paid_funding, paid_fare, paid_charged, paid_comp,
	priced, release_category, release_funding, release_fare, release_charged, release_comp, decided_by, decided_us, decision_note, updated_us)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device, seq) DO UPDATE SET state = excluded.state, reason = excluded.reason, detail = excluded.detail,
	booked_into = excluded.booked_into, booked_adjusts = excluded.booked_adjusts, kind = excluded.kind,
	paid_category = excluded.paid_category, paid_funding = excluded.paid_funding, paid_fare = excluded.paid_fare,
	paid_charged = excluded.paid_charged, paid_comp = excluded.paid_comp, priced = excluded.priced,
	release_category = excluded.release_category, release_funding = excluded.release_funding, release_fare = excluded.release_fare,
	release_charged = excluded.release_charged, release_comp = excluded.release_comp,
	decided_by = excluded.decided_by, decided_us = excluded.decided_us, decision_note = excluded.decision_note, updated_us = excluded.updated_us`

const upsertDelta = `INSERT INTO rollup
	(period, carrier, adjusts, category, funding, route, day, kind, rides, fare_kop, charged_kop, compensation_kop)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (period, carrier, adjusts, category, funding, route, day, kind) DO UPDATE SET
	rides = rides + excluded.rides,
	fare_kop = fare_kop + excluded.fare_kop,
	charged_kop = charged_kop + excluded.charged_kop,
	compensation_kop = compensation_kop + excluded.compensation_kop`

// writeRows writes judged rows and roll-up changes.
func (s *Store) writeRows(ctx context.Context, tx *sql.Tx, rows []proofplan.Row, deltas []rerate.Delta) error {
	now := s.now()
	for _, r := range rows {
		t := r.Tap
		var decided any
		if !r.Decision.At.IsZero() {
			decided = r.Decision.At.UnixMicro()
		}
		if _, err := tx.ExecContext(ctx, upsertJudged, t.Device, int64(t.Seq), t.Time.UnixMicro(), int64(t.Card), r.Period, t.Carrier,
			t.CompensationKop, r.Claim.Into, r.Claim.Adjusts, string(r.State), r.Reason, r.Detail,
			r.Booking.Into, r.Booking.Adjusts, r.Booking.Kind, r.Paid.Category, r.Paid.Funding, r.Paid.FareKop, r.Paid.ChargedKop, r.Paid.CompensationKop,
			r.Priced, r.Release.Category, r.Release.Funding, r.Release.FareKop, r.Release.ChargedKop, r.Release.CompensationKop,
			r.Decision.By, decided, r.Decision.Note, now); err != nil {
			return fmt.Errorf("record the judgement of %s/%d: %w", t.Device, t.Seq, err)
		}
	}
	for _, d := range deltas {
		if _, err := tx.ExecContext(ctx, upsertDelta, d.Into, d.Carrier, d.Adjusts, d.Category, d.Funding, d.Route, d.Day, d.Kind,
			d.Rides, d.FareKop, d.ChargedKop, d.CompensationKop); err != nil {
			return fmt.Errorf("update roll-up %s %s/%s/%s: %w", d.Into, d.Carrier, d.Category, d.Funding, err)
		}
	}
	return nil
}

// writeJudgement writes what a pass decided.
func (s *Store) writeJudgement(ctx context.Context, tx *sql.Tx, out *proofplan.Writes) error {
	if err := s.writeRows(ctx, tx, out.Rows, out.Deltas); err != nil {
		return err
	}
	for _, c := range out.Confirmed {
		if _, err := tx.ExecContext(ctx, "INSERT INTO confirmed (device, seq, period, carrier) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			c.Device, int64(c.Seq), c.Period, c.Carrier); err != nil {
			return fmt.Errorf("record a confirmed ride: %w", err)
		}
	}
	for _, c := range out.Recheck {
		if _, err := tx.ExecContext(ctx, "INSERT INTO rerate_cards (card, period, queued_us) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
			int64(c.Card), c.Period, s.now()); err != nil {
			return fmt.Errorf("queue a card month: %w", err)
		}
	}
	for _, l := range out.Links {
		if _, err := tx.ExecContext(ctx, "INSERT INTO open_links (card, prev_us, device, seq) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
			int64(l.Card), l.PrevTime.UnixMicro(), l.Device, int64(l.Seq)); err != nil {
			return fmt.Errorf("record an open link: %w", err)
		}
	}
	for _, l := range out.DropLinks {
		if _, err := tx.ExecContext(ctx, "DELETE FROM open_links WHERE card = ? AND prev_us = ? AND device = ? AND seq = ?",
			int64(l.Card), l.PrevTime.UnixMicro(), l.Device, int64(l.Seq)); err != nil {
			return fmt.Errorf("drop an open link: %w", err)
		}
	}
	return nil
}
