package postgres

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/internal/plan"
	"github.com/citycard/transit/clearing/store/internal/proofplan"
	"github.com/citycard/transit/validator/tariff"
)

// cardLockSpace is the first key of the advisory locks that let one
// transaction at a time judge or decide a card's rides.
const cardLockSpace = 0x72617465 // "rate"

// cardsPerRun is how many queued card months a pass takes per run it
// may take: a card month is one card, a run up to a batch of taps.
const cardsPerRun = 20

// Rerate implements store.Store.
func (s *Store) Rerate(ctx context.Context, limit int) (store.RerateStats, error) {
	if limit < 1 {
		return store.RerateStats{}, fmt.Errorf("re-rate: take at least one queued run, not %d", limit)
	}
	for attempt := 1; ; attempt++ {
		var st store.RerateStats
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			// Shared, like ingest: a close waits for the passes under
			// way, which may book into the period it closes.
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", int64(closeLockKey)); err != nil {
				return fmt.Errorf("wait for a period close: %w", err)
			}
			var err error
			st, err = s.rerate(ctx, tx, limit)
			return err
		})
		var pgErr *pgconn.PgError
		if attempt < 4 && errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001") {
			continue
		}
		if err != nil {
			return store.RerateStats{}, fmt.Errorf("re-rate: %w", err)
		}
		return st, nil
	}
}

// PendingRerate implements store.Store.
func (s *Store) PendingRerate(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM rerate_runs) + (SELECT count(*) FROM rerate_cards)").Scan(&n); err != nil {
		return 0, fmt.Errorf("count queued re-ratings: %w", err)
	}
	return n, nil
}

// drainRerate re-rates in tx until nothing is queued; CloseStatements
// runs it with the close lock held, so nothing is queued meanwhile.
func (s *Store) drainRerate(ctx context.Context, tx pgx.Tx) error {
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

// rerate is one pass in tx (which holds the close lock): take queued
// work, load what the cards' judgement needs, judge, write.
func (s *Store) rerate(ctx context.Context, tx pgx.Tx, limit int) (store.RerateStats, error) {
	var st store.RerateStats
	// SKIP LOCKED: passes running at once take different work; it is
	// deleted here and gone only if this transaction commits.
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM rerate_runs WHERE id IN (SELECT id FROM rerate_runs ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING needs`, limit)
	b.Queue(`DELETE FROM rerate_cards WHERE (card, period) IN (
			SELECT card, period FROM rerate_cards ORDER BY queued, card LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING card, period`, limit*cardsPerRun)
	br := tx.SendBatch(ctx, b)
	var (
		needs []plan.Need
		raw   []byte
		runs  int
	)
	rows, err := br.Query()
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&raw}, func() error {
			ns, err := plan.ParseNeeds(raw)
			needs = append(needs, ns...)
			runs++
			return err
		})
	}
	if err != nil {
		br.Close()
		return st, fmt.Errorf("take queued runs: %w", err)
	}
	var queued []proofplan.CardMonth
	var (
		card   int64
		period string
	)
	rows, err = br.Query()
	if err == nil {
		_, err = pgx.ForEachRow(rows, []any{&card, &period}, func() error {
			queued = append(queued, proofplan.CardMonth{Card: uint64(card), Period: period})
			return nil
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return st, fmt.Errorf("take queued cards: %w", err)
	}
	st.Runs = runs
	if runs == 0 && len(queued) == 0 {
		return st, nil
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

// lockCards takes the advisory lock of each card, in one order for every
// transaction, so that two never judge one card at once.
func lockCards(ctx context.Context, tx pgx.Tx, cards []uint64) error {
	keys := make([]int64, len(cards))
	for i, c := range cards {
		keys[i] = int64(c % 2147483647)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, k::int) FROM unnest($2::bigint[]) WITH ORDINALITY AS u(k, o) ORDER BY o`,
		int32(cardLockSpace), keys); err != nil {
		return fmt.Errorf("lock the cards to judge: %w", err)
	}
	return nil
}

// loadCards loads what Judge needs of each wanted card.
func (s *Store) loadCards(ctx context.Context, tx pgx.Tx, wants []proofplan.Want) ([]proofplan.Card, error) {
	ids := make([]uint64, len(wants))
	cardIDs := make([]int64, len(wants))
	for i, w := range wants {
		ids[i], cardIDs[i] = w.Card, int64(w.Card)
	}
	if err := lockCards(ctx, tx, ids); err != nil {
		return nil, err
	}
	cards := make([]proofplan.Card, len(wants))
	idx := make(map[uint64]int, len(wants))
	for i, w := range wants {
		cards[i] = proofplan.Card{Want: w, Records: map[rerate.Key]rerate.Record{}, Confirmed: map[rerate.Key]bool{}}
		idx[w.Card] = i
	}
	// Open links: taps that named a ride of these cards before it
	// arrived. Those whose named ride falls in what is loaded are judged
	// again, in their own month.
	rows, err := tx.Query(ctx, "SELECT card, prev_at, device, seq FROM open_links WHERE card = ANY($1)", cardIDs)
	if err != nil {
		return nil, fmt.Errorf("read open links: %w", err)
	}
	var (
		card, seq int64
		prevAt    time.Time
		dev       string
		nDevs     []string
		nSeqs     []int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&card, &prevAt, &dev, &seq}, func() error {
		c := &cards[idx[uint64(card)]]
		for _, r := range c.Ranges(s.loc) {
			if !prevAt.Before(r.From) && prevAt.Before(r.To) {
				c.Links = append(c.Links, proofplan.OpenLink{Card: uint64(card), PrevTime: prevAt.UTC(), Key: rerate.Key{Device: dev, Seq: uint64(seq)}})
				nDevs, nSeqs = append(nDevs, dev), append(nSeqs, seq)
				break
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read open links: %w", err)
	}
	if len(nDevs) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+prefixed("t", tapColumns)+`, t.booked
			FROM unnest($1::text[], $2::bigint[]) AS u(device, seq)
			CROSS JOIN LATERAL (SELECT * FROM taps t WHERE t.device = u.device AND t.seq = u.seq OFFSET 0) t`, nDevs, nSeqs)
		if err != nil {
			return nil, fmt.Errorf("read the taps of open links: %w", err)
		}
		namers, err := pgx.CollectRows(rows, scanRide)
		if err != nil {
			return nil, fmt.Errorf("read the taps of open links: %w", err)
		}
		for _, n := range namers {
			c := &cards[idx[n.Card]]
			if m := n.Period(s.loc); rerate.Judged(n.Tap) && !slices.Contains(c.Months, m) {
				c.Months = append(c.Months, m)
			}
			c.Rides = append(c.Rides, n)
		}
	}
	// The rides: every tap of the cards in their ranges. One scan of
	// the card index over the pass's whole time range (a pass's cards
	// are nearly all of one month) costs far less than a probe per card
	// and range; what falls outside a card's own ranges is dropped.
	var (
		seen     = map[rerate.Key]bool{}
		revCards []int64
		ranges   = make([][]proofplan.Span, len(cards))
		lo, hi   time.Time
	)
	for i := range cards {
		for _, k := range cards[i].Rides {
			seen[rerate.KeyOf(k.Tap)] = true
		}
		ranges[i] = cards[i].Ranges(s.loc)
		for _, r := range ranges[i] {
			if lo.IsZero() || r.From.Before(lo) {
				lo = r.From
			}
			if r.To.After(hi) {
				hi = r.To
			}
		}
		revCards = append(revCards, int64(cards[i].Card))
	}
	rows, err = tx.Query(ctx, `SELECT `+tapColumns+`, booked FROM taps
		WHERE card = ANY($1) AND tapped_at >= $2 AND tapped_at < $3`, revCards, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read the cards' rides: %w", err)
	}
	loaded, err := pgx.CollectRows(rows, scanRide)
	if err != nil {
		return nil, fmt.Errorf("read the cards' rides: %w", err)
	}
	for _, r := range loaded {
		k := rerate.KeyOf(r.Tap)
		i := idx[r.Card]
		if seen[k] || !slices.ContainsFunc(ranges[i], func(sp proofplan.Span) bool { return !r.Time.Before(sp.From) && r.Time.Before(sp.To) }) {
			continue
		}
		seen[k] = true
		cards[i].Rides = append(cards[i].Rides, r)
	}
	// Judged rides have a record only when it differs from what ingest
	// booked: few, found by card.
	b := &pgx.Batch{}
	b.Queue(`SELECT `+judgedColumns+` FROM judged j WHERE j.card = ANY($1) AND j.tapped_at >= $2 AND j.tapped_at < $3`, revCards, lo, hi)
	b.Queue(`SELECT card, record FROM card_records WHERE card = ANY($1)`, revCards)
	b.Queue(`SELECT card, from_at FROM hotlist WHERE card = ANY($1) AND reason = $2`, revCards, store.ReasonBenefitRevoked)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("read the judged rides: %w", err)
	}
	var js judgedScan
	if _, err := pgx.ForEachRow(rows, js.targets(), func() error {
		k, rec, card := js.record()
		cards[idx[card]].Records[k] = rec
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the judged rides: %w", err)
	}
	recs := make(map[uint64]store.CardRecord)
	var doc string
	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("read card records: %w", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&card, &doc}, func() error {
		rec, err := proofplan.Decode(uint64(card), doc)
		recs[uint64(card)] = rec
		return err
	}); err != nil {
		return nil, fmt.Errorf("read card records: %w", err)
	}
	revoked := make(map[uint64][]time.Time)
	var fromAt time.Time
	rows, err = br.Query()
	if err != nil {
		return nil, fmt.Errorf("read benefit revocations: %w", err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&card, &fromAt}, func() error {
		revoked[uint64(card)] = append(revoked[uint64(card)], fromAt.UTC())
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read benefit revocations: %w", err)
	}
	for i := range cards {
		c := &cards[i]
		c.Facts = proofplan.Facts(recs[c.Card], revoked[c.Card], s.loc)
		slices.Sort(c.Months)
	}
	return cards, br.Close()
}

// scanRide reads tapColumns and booked.
func scanRide(r pgx.CollectableRow) (rerate.Ride, error) {
	var ts tapScan
	var booked string
	if err := r.Scan(append(ts.targets(), &booked)...); err != nil {
		return rerate.Ride{}, err
	}
	t, err := ts.tap()
	if err != nil {
		return rerate.Ride{}, err
	}
	return rerate.Ride{Tap: &t, Booked: booked}, nil
}

// world loads what re-rating knows beyond the cards: the tariffs the
// rides name, the device numbers their evidence names, the carriers'
// routes, how current the registry's records are, and the closed periods.
func (s *Store) world(ctx context.Context, tx pgx.Tx, cards []proofplan.Card) (*rerate.World, map[string]bool, error) {
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
	w := &rerate.World{Location: s.loc, Tariffs: map[uint32]*rerate.Tariff{}, Devices: map[uint32]string{}, Routes: map[string]map[string]bool{}}
	var missing []int64
	s.mu.Lock()
	if s.tariffs == nil {
		s.tariffs = map[uint32]*rerate.Tariff{}
	}
	for v := range versions {
		if t, ok := s.tariffs[v]; ok {
			w.Tariffs[v] = t
		} else {
			missing = append(missing, int64(v))
		}
	}
	s.mu.Unlock()
	var nums []int64
	for n := range numbers {
		nums = append(nums, int64(n))
	}
	b := &pgx.Batch{}
	b.Queue("SELECT version, zip FROM tariffs WHERE version = ANY($1)", missing)
	b.Queue("SELECT number, device FROM device_numbers WHERE number = ANY($1)", nums)
	b.Queue("SELECT carrier, route FROM carrier_routes")
	b.Queue("SELECT as_of FROM registry_feed")
	b.Queue("SELECT period FROM closed_periods")
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read tariffs: %w", err)
	}
	var (
		v   int64
		zb  []byte
		got = map[uint32]*rerate.Tariff{}
	)
	if _, err := pgx.ForEachRow(rows, []any{&v, &zb}, func() error {
		t, err := parseTariff(zb)
		if err != nil {
			return fmt.Errorf("tariff version %d as kept: %w", v, err)
		}
		got[uint32(v)] = t
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("read tariffs: %w", err)
	}
	s.mu.Lock()
	for v, t := range got {
		s.tariffs[v], w.Tariffs[v] = t, t
	}
	s.mu.Unlock()
	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read device numbers: %w", err)
	}
	var (
		n   int64
		dev string
	)
	if _, err := pgx.ForEachRow(rows, []any{&n, &dev}, func() error {
		w.Devices[uint32(n)] = dev
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("read device numbers: %w", err)
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read carriers' routes: %w", err)
	}
	var c, r string
	if _, err := pgx.ForEachRow(rows, []any{&c, &r}, func() error {
		if w.Routes[c] == nil {
			w.Routes[c] = map[string]bool{}
		}
		w.Routes[c][r] = true
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("read carriers' routes: %w", err)
	}
	var asOf *time.Time
	if err := br.QueryRow().Scan(&asOf); err != nil {
		return nil, nil, fmt.Errorf("read the registry feed's state: %w", err)
	}
	if asOf != nil {
		w.RecordsAsOf = asOf.UTC()
	}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("read closed periods: %w", err)
	}
	closed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("read closed periods: %w", err)
	}
	cm := make(map[string]bool, len(closed))
	for _, p := range closed {
		cm[p] = true
	}
	return w, cm, br.Close()
}

// parseTariff reads a kept tariff's files. Their signature was verified
// when the tariff was added; parsing them again checks nothing more.
func parseTariff(zb []byte) (*rerate.Tariff, error) {
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		return nil, err
	}
	ft, err := tariff.Parse(zr)
	if err != nil {
		return nil, err
	}
	return rerate.NewTariff(ft), nil
}

// judgedColumns are what judgedScan reads, with j the judged table.
const judgedColumns = `j.device, j.seq, j.card, j.state, j.reason, j.detail, j.booked_into, j.booked_adjusts, j.kind,
	j.paid_category, j.paid_funding, j.paid_fare, j.paid_charged, j.paid_comp,
	j.priced, j.release_category, j.release_funding, j.release_fare, j.release_charged, j.release_comp,
	j.decided_by, j.decided_at, j.decision_note`

type judgedScan struct {
	device    string
	seq, card int64
	state     string
	r         rerate.Record
	decidedAt *time.Time
}

func (s *judgedScan) targets() []any {
	r := &s.r
	return []any{&s.device, &s.seq, &s.card, &s.state, &r.Reason, &r.Detail, &r.Booking.Into, &r.Booking.Adjusts, &r.Booking.Kind,
		&r.Paid.Category, &r.Paid.Funding, &r.Paid.FareKop, &r.Paid.ChargedKop, &r.Paid.CompensationKop,
		&r.Priced, &r.Release.Category, &r.Release.Funding, &r.Release.FareKop, &r.Release.ChargedKop, &r.Release.CompensationKop,
		&r.Decision.By, &s.decidedAt, &r.Decision.Note}
}

func (s *judgedScan) record() (rerate.Key, rerate.Record, uint64) {
	r := s.r
	r.State = rerate.State(s.state)
	r.Decision.At = time.Time{}
	if s.decidedAt != nil {
		r.Decision.At = s.decidedAt.UTC()
	}
	return rerate.Key{Device: s.device, Seq: uint64(s.seq)}, r, uint64(s.card)
}

// writeJudgement writes what a pass decided, in one round trip.
func (s *Store) writeJudgement(ctx context.Context, tx pgx.Tx, out *proofplan.Writes) error {
	b := &pgx.Batch{}
	now := s.opt.Clock()().UTC().Truncate(time.Microsecond)
	queueJudgedRows(b, out.Rows, now)
	queueDeltas(b, out.Deltas)
	if len(out.Confirmed) > 0 {
		devs, periods, carriers := make([]string, len(out.Confirmed)), make([]string, len(out.Confirmed)), make([]string, len(out.Confirmed))
		seqs := make([]int64, len(out.Confirmed))
		for i, c := range out.Confirmed {
			devs[i], seqs[i], periods[i], carriers[i] = c.Device, int64(c.Seq), c.Period, c.Carrier
		}
		b.Queue(`INSERT INTO confirmed (device, seq, period, carrier)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`, devs, seqs, periods, carriers)
	}
	if len(out.Recheck) > 0 {
		cards, periods := make([]int64, len(out.Recheck)), make([]string, len(out.Recheck))
		for i, c := range out.Recheck {
			cards[i], periods[i] = int64(c.Card), c.Period
		}
		b.Queue(`INSERT INTO rerate_cards (card, period) SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING`, cards, periods)
	}
	for _, ls := range []struct {
		links []proofplan.OpenLink
		sql   string
	}{
		{out.Links, `INSERT INTO open_links (card, prev_at, device, seq)
			SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::bigint[]) ON CONFLICT DO NOTHING`},
		{out.DropLinks, `DELETE FROM open_links o USING unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::bigint[]) AS u(card, prev_at, device, seq)
			WHERE o.card = u.card AND o.prev_at = u.prev_at AND o.device = u.device AND o.seq = u.seq`},
	} {
		if len(ls.links) == 0 {
			continue
		}
		cards, ats, devs, seqs := make([]int64, len(ls.links)), make([]time.Time, len(ls.links)), make([]string, len(ls.links)), make([]int64, len(ls.links))
		for i, l := range ls.links {
			cards[i], ats[i], devs[i], seqs[i] = int64(l.Card), l.PrevTime, l.Device, int64(l.Seq)
		}
		b.Queue(ls.sql, cards, ats, devs, seqs)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record the judgement: %w", err)
	}
	return nil
}

// queueJudgedRows queues the upsert of judged rows.
func queueJudgedRows(b *pgx.Batch, rows []proofplan.Row, now time.Time) {
	if len(rows) == 0 {
		return
	}
	n := len(rows)
	var (
		devs, periods, carriers, cinto, cadj, states, reasons, details = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		binto, badj, kinds, pcat, pfund, rcat, rfund, by, notes        = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		seqs, cards, claimed, pf, pc, pk, rf, rc, rk                   = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		ats                                                            = make([]time.Time, n)
		decided                                                        = make([]*time.Time, n)
		priced                                                         = make([]bool, n)
	)
	for i, r := range rows {
		t := r.Tap
		devs[i], seqs[i], ats[i], cards[i], periods[i], carriers[i], claimed[i] = t.Device, int64(t.Seq), t.Time, int64(t.Card), r.Period, t.Carrier, t.CompensationKop
		cinto[i], cadj[i] = r.Claim.Into, r.Claim.Adjusts
		states[i], reasons[i], details[i] = string(r.State), r.Reason, r.Detail
		binto[i], badj[i], kinds[i] = r.Booking.Into, r.Booking.Adjusts, r.Booking.Kind
		pcat[i], pfund[i], pf[i], pc[i], pk[i] = r.Paid.Category, r.Paid.Funding, r.Paid.FareKop, r.Paid.ChargedKop, r.Paid.CompensationKop
		priced[i] = r.Priced
		rcat[i], rfund[i], rf[i], rc[i], rk[i] = r.Release.Category, r.Release.Funding, r.Release.FareKop, r.Release.ChargedKop, r.Release.CompensationKop
		by[i], notes[i] = r.Decision.By, r.Decision.Note
		if !r.Decision.At.IsZero() {
			at := r.Decision.At.UTC().Truncate(time.Microsecond)
			decided[i] = &at
		}
	}
	b.Queue(`INSERT INTO judged AS j (device, seq, tapped_at, card, period, carrier, claimed_kop, claim_into, claim_adjusts,
			state, reason, detail, booked_into, booked_adjusts, kind, paid_category, paid_funding, paid_fare, paid_charged, paid_comp,
			priced, release_category, release_funding, release_fare, release_charged, release_comp, decided_by, decided_at, decision_note, updated)
		SELECT u.*, $30::timestamptz FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::bigint[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
			$18::bigint[], $19::bigint[], $20::bigint[], $21::boolean[], $22::text[], $23::text[], $24::bigint[], $25::bigint[], $26::bigint[],
			$27::text[], $28::timestamptz[], $29::text[]) AS u
		ON CONFLICT (device, seq) DO UPDATE SET state = excluded.state, reason = excluded.reason, detail = excluded.detail,
			booked_into = excluded.booked_into, booked_adjusts = excluded.booked_adjusts, kind = excluded.kind,
			paid_category = excluded.paid_category, paid_funding = excluded.paid_funding, paid_fare = excluded.paid_fare,
			paid_charged = excluded.paid_charged, paid_comp = excluded.paid_comp, priced = excluded.priced,
			release_category = excluded.release_category, release_funding = excluded.release_funding, release_fare = excluded.release_fare,
			release_charged = excluded.release_charged, release_comp = excluded.release_comp,
			decided_by = excluded.decided_by, decided_at = excluded.decided_at, decision_note = excluded.decision_note, updated = excluded.updated`,
		devs, seqs, ats, cards, periods, carriers, claimed, cinto, cadj, states, reasons, details, binto, badj, kinds, pcat, pfund,
		pf, pc, pk, priced, rcat, rfund, rf, rc, rk, by, decided, notes, now)
}

// queueDeltas queues the roll-up changes, in key order.
func queueDeltas(b *pgx.Batch, ds []rerate.Delta) {
	if len(ds) == 0 {
		return
	}
	slices.SortFunc(ds, proofplan.CompareDeltas)
	n := len(ds)
	periods, carriers, adjusts, categories, fundings, routes, days, kinds := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rides, fares, charged, comps := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, d := range ds {
		periods[i], carriers[i], adjusts[i], categories[i], fundings[i], routes[i], days[i], kinds[i] = d.Into, d.Carrier, d.Adjusts, d.Category, d.Funding, d.Route, d.Day, d.Kind
		rides[i], fares[i], charged[i], comps[i] = d.Rides, d.FareKop, d.ChargedKop, d.CompensationKop
	}
	b.Queue(`INSERT INTO rollup AS r (period, carrier, adjusts, category, funding, route, day, kind, rides, fare_kop, charged_kop, compensation_kop)
		SELECT period, carrier, adjusts, category, funding, route, day::date, kind, rides, fare, charged, comp
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
			WITH ORDINALITY AS u(period, carrier, adjusts, category, funding, route, day, kind, rides, fare, charged, comp, o)
		ORDER BY o
		ON CONFLICT (period, carrier, adjusts, category, funding, route, day, kind) DO UPDATE SET
			rides = r.rides + excluded.rides,
			fare_kop = r.fare_kop + excluded.fare_kop,
			charged_kop = r.charged_kop + excluded.charged_kop,
			compensation_kop = r.compensation_kop + excluded.compensation_kop`,
		periods, carriers, adjusts, categories, fundings, routes, days, kinds, rides, fares, charged, comps)
}
