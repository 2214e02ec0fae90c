package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
)

// Compensation implements store.Store.
func (s *Store) Compensation(ctx context.Context, q store.Query) ([]store.Line, error) {
	if _, err := store.ParsePeriod(q.Period); err != nil {
		return nil, fmt.Errorf("compensation: %w", err)
	}
	route, day := "''::text", "''::text"
	if q.ByRoute {
		route = "route"
	}
	if q.ByDay {
		day = "to_char(day, 'YYYY-MM-DD')"
	}
	// The key columns collate as "C", so ORDER BY gives byte order. The
	// carrier filter is written out only when set: with it the primary
	// key's (period, carrier) prefix finds one carrier's rows alone.
	where := "period = $1"
	args := []any{q.Period}
	if q.Carrier != "" {
		where += " AND carrier = $2"
		args = append(args, q.Carrier)
	}
	// Re-rating takes held rides back out of the roll-up: a row can sum
	// to nothing, and is then no line.
	rows, err := s.pool.Query(ctx, `SELECT adjusts, carrier, category, funding, kind, `+route+` AS r, `+day+` AS d,
			sum(rides)::bigint, sum(fare_kop)::bigint, sum(charged_kop)::bigint, sum(compensation_kop)::bigint
		FROM rollup WHERE `+where+`
		GROUP BY adjusts, carrier, category, funding, kind, r, d
		HAVING sum(rides) <> 0 OR sum(compensation_kop) <> 0
		ORDER BY adjusts, carrier, category, funding, kind, r, d`, args...)
	if err != nil {
		return nil, fmt.Errorf("compensation for %s: %w", q.Period, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Line])
	if err != nil {
		return nil, fmt.Errorf("compensation for %s: %w", q.Period, err)
	}
	return lines, nil
}

// TapLines implements store.Store.
func (s *Store) TapLines(ctx context.Context, period, adjusts string) ([]store.Line, error) {
	month := period
	if adjusts != "" {
		month = adjusts
	}
	from, to, err := store.Bounds(month, s.loc)
	if err != nil {
		return nil, fmt.Errorf("lines from taps: %w", err)
	}
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("lines from taps: %w", err)
	}
	booked := ""
	if adjusts != "" {
		booked = period
	}
	// The rides paid as ingest booked them (store.Compensable, with no
	// judgement that says otherwise), and those whose judgement books
	// them here. The time range lets the planner scan the ride month's
	// partition alone; period and booked pick the statement.
	rows, err := s.pool.Query(ctx, `SELECT $4::text, carrier, category, funding, kind, ''::text, ''::text,
			count(*), sum(fare)::bigint, sum(charged)::bigint, sum(comp)::bigint
		FROM (
			SELECT carrier, category, funding, ''::text AS kind, fare_kop AS fare, charged_kop AS charged, compensation_kop AS comp
			FROM taps t
			WHERE tapped_at >= $1 AND tapped_at < $2 AND period = $3 AND booked = $5
				AND result = 1 AND card_committed AND compensation_kop > 0
				AND compensation_kop <= $7 AND fare_kop BETWEEN 0 AND $7 AND charged_kop BETWEEN 0 AND $7
				AND NOT EXISTS (SELECT 1 FROM judged j WHERE j.device = t.device AND j.seq = t.seq)
			UNION ALL
			SELECT carrier, paid_category, paid_funding, kind, paid_fare, paid_charged, paid_comp
			FROM judged WHERE booked_into = $6 AND booked_adjusts = $4) x
		GROUP BY carrier, category, funding, kind
		ORDER BY carrier, category, funding, kind`, from, to, month, adjusts, booked, period, int64(store.MaxAmountKop))
	if err != nil {
		return nil, fmt.Errorf("lines of %s from taps: %w", period, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Line])
	if err != nil {
		return nil, fmt.Errorf("lines of %s from taps: %w", period, err)
	}
	return lines, nil
}

// ClosedPeriods implements store.Store.
func (s *Store) ClosedPeriods(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT period FROM closed_periods ORDER BY period")
	if err != nil {
		return nil, fmt.Errorf("read closed periods: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read closed periods: %w", err)
	}
	return out, nil
}

// Statements implements store.Store.
func (s *Store) Statements(ctx context.Context, period string) ([]store.Statement, error) {
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	var out []store.Statement
	// One snapshot, so that a close committing meanwhile is seen whole or
	// not at all.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		out, err = statements(ctx, tx, period)
		return err
	})
	return out, err
}

func statements(ctx context.Context, tx pgx.Tx, period string) ([]store.Statement, error) {
	rows, err := tx.Query(ctx, `SELECT adjusts, closed, content_hash, signature, key_ref,
			closed_by, form, key_fingerprint, part_seed
		FROM statements WHERE period = $1 ORDER BY adjusts`, period)
	if err != nil {
		return nil, fmt.Errorf("statements of %s: %w", period, err)
	}
	sts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Statement, error) {
		st := store.Statement{Period: period, Closed: true}
		err := r.Scan(&st.Adjusts, &st.ClosedAt, &st.Hash, &st.Signature, &st.KeyRef,
			&st.ClosedBy, &st.Form, &st.KeyFingerprint, &st.PartSeed)
		st.ClosedAt = st.ClosedAt.UTC()
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("statements of %s: %w", period, err)
	}
	if len(sts) == 0 {
		return drafts(ctx, tx, period)
	}
	rows, err = tx.Query(ctx, `SELECT adjusts, carrier, category, funding, kind, ''::text, ''::text,
			rides, fare_kop, charged_kop, compensation_kop
		FROM statement_lines WHERE period = $1 ORDER BY adjusts, carrier, category, funding, kind`, period)
	if err != nil {
		return nil, fmt.Errorf("statement lines of %s: %w", period, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Line])
	if err != nil {
		return nil, fmt.Errorf("statement lines of %s: %w", period, err)
	}
	for _, l := range lines {
		for i := range sts {
			if sts[i].Adjusts == l.Adjusts {
				sts[i].Lines = append(sts[i].Lines, l)
			}
		}
	}
	rows, err = tx.Query(ctx, `SELECT adjusts, carrier, reason, rides, claimed_kop
		FROM statement_held WHERE period = $1 ORDER BY adjusts, carrier, reason`, period)
	if err != nil {
		return nil, fmt.Errorf("held rides of the statements of %s: %w", period, err)
	}
	var (
		adjusts string
		h       store.HeldLine
	)
	if _, err := pgx.ForEachRow(rows, []any{&adjusts, &h.Carrier, &h.Reason, &h.Rides, &h.ClaimedKop}, func() error {
		for i := range sts {
			if sts[i].Adjusts == adjusts {
				sts[i].Held = append(sts[i].Held, h)
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("held rides of the statements of %s: %w", period, err)
	}
	return sts, nil
}

// drafts reads an open period's statements from the roll-up, with the
// rides held back from them.
func drafts(ctx context.Context, tx pgx.Tx, period string) ([]store.Statement, error) {
	rows, err := tx.Query(ctx, `SELECT adjusts, carrier, category, funding, kind, ''::text, ''::text,
			sum(rides)::bigint, sum(fare_kop)::bigint, sum(charged_kop)::bigint, sum(compensation_kop)::bigint
		FROM rollup WHERE period = $1
		GROUP BY adjusts, carrier, category, funding, kind
		HAVING sum(rides) <> 0 OR sum(compensation_kop) <> 0
		ORDER BY adjusts, carrier, category, funding, kind`, period)
	if err != nil {
		return nil, fmt.Errorf("draft statements of %s: %w", period, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Line])
	if err != nil {
		return nil, fmt.Errorf("draft statements of %s: %w", period, err)
	}
	rows, err = tx.Query(ctx, `SELECT claim_adjusts, carrier, reason, count(*), sum(claimed_kop)::bigint
		FROM judged WHERE claim_into = $1 AND state IN ('held', 'waiting')
		GROUP BY claim_adjusts, carrier, reason ORDER BY claim_adjusts, carrier, reason`, period)
	if err != nil {
		return nil, fmt.Errorf("held rides of the draft statements of %s: %w", period, err)
	}
	var held []store.AdjustsHeld
	var h store.AdjustsHeld
	if _, err := pgx.ForEachRow(rows, []any{&h.Adjusts, &h.Carrier, &h.Reason, &h.Rides, &h.ClaimedKop}, func() error {
		held = append(held, h)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("held rides of the draft statements of %s: %w", period, err)
	}
	return store.DraftsHeld(period, lines, held), nil
}

// CloseStatements implements store.Store.
func (s *Store) CloseStatements(ctx context.Context, period string, closedAt time.Time, seal store.Sealer) ([]store.Statement, error) {
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	var sts []store.Statement
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Exclusive: waits for the ingest transactions under way, which
		// may still book into the period, and holds off new ones until
		// the close commits; they then book into the next open period.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(closeLockKey)); err != nil {
			return fmt.Errorf("close %s: wait for ingest: %w", period, err)
		}
		var closed time.Time
		err := tx.QueryRow(ctx, "SELECT closed FROM closed_periods WHERE period = $1", period).Scan(&closed)
		switch {
		case err == nil:
			return fmt.Errorf("close %s: %w (on %s)", period, store.ErrPeriodClosed, closed.UTC().Format(time.RFC3339))
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("close %s: %w", period, err)
		}
		// Nothing is sealed unjudged: what ingest queued for re-rating
		// (late rides of the period among it) is judged first.
		if err := s.drainRerate(ctx, tx); err != nil {
			return fmt.Errorf("close %s: %w", period, err)
		}
		if sts, err = drafts(ctx, tx, period); err != nil {
			return fmt.Errorf("close %s: %w", period, err)
		}
		at := closedAt.UTC().Truncate(time.Microsecond)
		b := &pgx.Batch{}
		for i := range sts {
			st := &sts[i]
			st.Closed, st.ClosedAt = true, at
			if err := seal(ctx, st); err != nil {
				return fmt.Errorf("close %s: seal the statement: %w", period, err)
			}
			b.Queue(`INSERT INTO statements (period, adjusts, closed, content_hash, signature, key_ref,
					closed_by, form, key_fingerprint, part_seed)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, st.Period, st.Adjusts, at, st.Hash, st.Signature, st.KeyRef,
				st.ClosedBy, max(st.Form, 1), st.KeyFingerprint, st.PartSeed)
			var (
				carriers, categories, fundings, kinds []string
				rides, fares, charged, comps          []int64
			)
			for _, l := range st.Lines {
				carriers, categories, fundings = append(carriers, l.Carrier), append(categories, l.Category), append(fundings, l.Funding)
				kinds = append(kinds, l.Kind)
				rides, fares = append(rides, l.Rides), append(fares, l.FareKop)
				charged, comps = append(charged, l.ChargedKop), append(comps, l.CompensationKop)
			}
			b.Queue(`INSERT INTO statement_lines
				(period, adjusts, carrier, category, funding, kind, rides, fare_kop, charged_kop, compensation_kop)
				SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[])`,
				st.Period, st.Adjusts, carriers, categories, fundings, kinds, rides, fares, charged, comps)
			if len(st.Held) > 0 {
				var (
					hc, hr []string
					hn, hk []int64
				)
				for _, h := range st.Held {
					hc, hr, hn, hk = append(hc, h.Carrier), append(hr, h.Reason), append(hn, h.Rides), append(hk, h.ClaimedKop)
				}
				b.Queue(`INSERT INTO statement_held (period, adjusts, carrier, reason, rides, claimed_kop)
					SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[])`,
					st.Period, st.Adjusts, hc, hr, hn, hk)
			}
		}
		b.Queue("INSERT INTO closed_periods (period, closed) VALUES ($1, $2)", period, at)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("close %s: store the statements: %w", period, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sts, nil
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, period string) ([]store.DeviceStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT device, taps, duplicates, first_seq, last_seq
		FROM device_periods WHERE period = $1 ORDER BY device`, period)
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", period, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.DeviceStats, error) {
		var d store.DeviceStats
		var first, last int64
		err := r.Scan(&d.Device, &d.Taps, &d.Duplicates, &first, &last)
		d.FirstSeq, d.LastSeq = uint64(first), uint64(last)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", period, err)
	}
	return out, nil
}

// Gaps implements store.Store.
func (s *Store) Gaps(ctx context.Context, period string) ([]recon.Gap, error) {
	rows, err := s.pool.Query(ctx, `SELECT device, first_seq, last_seq, period, opened, closed
		FROM gaps WHERE period = $1 ORDER BY device, first_seq`, period)
	if err != nil {
		return nil, fmt.Errorf("gaps of %s: %w", period, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (recon.Gap, error) {
		var (
			g           recon.Gap
			first, last int64
			closed      *time.Time
		)
		err := r.Scan(&g.Device, &first, &last, &g.Period, &g.Opened, &closed)
		g.First, g.Last, g.Opened = uint64(first), uint64(last), g.Opened.UTC()
		if closed != nil {
			g.Closed = closed.UTC()
		}
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("gaps of %s: %w", period, err)
	}
	return out, nil
}

// Anomalies implements store.Store.
func (s *Store) Anomalies(ctx context.Context, period string) ([]recon.Anomaly, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, device, seq, other_device, other_seq, period, at, card, detail
		FROM anomalies WHERE period = $1 ORDER BY kind, device, seq, other_device, other_seq`, period)
	if err != nil {
		return nil, fmt.Errorf("anomalies of %s: %w", period, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (recon.Anomaly, error) {
		var (
			a               recon.Anomaly
			kind            string
			seq, oseq, card int64
		)
		err := r.Scan(&kind, &a.Device, &seq, &a.OtherDevice, &oseq, &a.Period, &a.At, &card, &a.Detail)
		a.Kind, a.Seq, a.OtherSeq, a.Card, a.At = recon.Kind(kind), uint64(seq), uint64(oseq), uint64(card), a.At.UTC()
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("anomalies of %s: %w", period, err)
	}
	return out, nil
}

// OpenGaps implements store.Store.
func (s *Store) OpenGaps(ctx context.Context) (gaps, missing int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(last_seq - first_seq + 1), 0)::bigint
		FROM gaps WHERE closed IS NULL`).Scan(&gaps, &missing)
	if err != nil {
		return 0, 0, fmt.Errorf("count open gaps: %w", err)
	}
	return gaps, missing, nil
}

// Carriers implements store.Store.
func (s *Store) Carriers(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, "SELECT DISTINCT carrier FROM rollup ORDER BY carrier")
	if err != nil {
		return nil, fmt.Errorf("list carriers: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list carriers: %w", err)
	}
	return out, nil
}
