package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
)

// Compensation implements store.Store.
func (s *Store) Compensation(ctx context.Context, q store.Query) ([]store.Line, error) {
	if _, err := store.ParsePeriod(q.Period); err != nil {
		return nil, fmt.Errorf("compensation: %w", err)
	}
	route, day := "''", "''"
	if q.ByRoute {
		route = "route"
	}
	if q.ByDay {
		day = "day"
	}
	// TEXT compares with the BINARY collation, so ORDER BY gives byte
	// order, as the PostgreSQL store's "C" collation does.
	// Re-rating takes held rides back out of the roll-up: a row can sum
	// to nothing, and is then no line.
	rows, err := s.db.QueryContext(ctx, `SELECT adjusts, carrier, category, funding, kind, `+route+` AS r, `+day+` AS d,
			sum(rides), sum(fare_kop), sum(charged_kop), sum(compensation_kop)
		FROM rollup
		WHERE period = ?1 AND (?2 = '' OR carrier = ?2)
		GROUP BY adjusts, carrier, category, funding, kind, r, d
		HAVING sum(rides) <> 0 OR sum(compensation_kop) <> 0
		ORDER BY adjusts, carrier, category, funding, kind, r, d`, q.Period, q.Carrier)
	if err != nil {
		return nil, fmt.Errorf("compensation for %s: %w", q.Period, err)
	}
	lines, err := scanLines(rows)
	if err != nil {
		return nil, fmt.Errorf("compensation for %s: %w", q.Period, err)
	}
	return lines, nil
}

func scanLines(rows *sql.Rows) ([]store.Line, error) {
	defer rows.Close()
	var lines []store.Line
	for rows.Next() {
		var l store.Line
		if err := rows.Scan(&l.Adjusts, &l.Carrier, &l.Category, &l.Funding, &l.Kind, &l.Route, &l.Day,
			&l.Rides, &l.FareKop, &l.ChargedKop, &l.CompensationKop); err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	return lines, rows.Err()
}

// TapLines implements store.Store.
func (s *Store) TapLines(ctx context.Context, period, adjusts string) ([]store.Line, error) {
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("lines from taps: %w", err)
	}
	// A ride of the period booked into it, or a ride of the adjusted
	// period booked into this one, as ingest booked it (store.Compensable,
	// with no judgement that says otherwise); and the rides whose
	// judgement books them here.
	rows, err := s.db.QueryContext(ctx, `SELECT ?2, carrier, category, funding, kind, '', '',
			count(*), sum(fare), sum(charged), sum(comp)
		FROM (
			SELECT carrier, category, funding, '' AS kind, fare_kop AS fare, charged_kop AS charged, compensation_kop AS comp
			FROM taps t
			WHERE result = ?3 AND card_committed AND compensation_kop > 0
				AND compensation_kop <= ?4 AND fare_kop BETWEEN 0 AND ?4 AND charged_kop BETWEEN 0 AND ?4
				AND (?2 = '' AND period = ?1 AND booked = '' OR ?2 <> '' AND period = ?2 AND booked = ?1)
				AND NOT EXISTS (SELECT 1 FROM judged j WHERE j.device = t.device AND j.seq = t.seq)
			UNION ALL
			SELECT carrier, paid_category, paid_funding, kind, paid_fare, paid_charged, paid_comp
			FROM judged WHERE booked_into = ?1 AND booked_adjusts = ?2)
		GROUP BY carrier, category, funding, kind
		ORDER BY carrier, category, funding, kind`, period, adjusts, 1, store.MaxAmountKop)
	if err != nil {
		return nil, fmt.Errorf("lines of %s from taps: %w", period, err)
	}
	lines, err := scanLines(rows)
	if err != nil {
		return nil, fmt.Errorf("lines of %s from taps: %w", period, err)
	}
	return lines, nil
}

func closedPeriods(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT period FROM closed_periods ORDER BY period")
	if err != nil {
		return nil, fmt.Errorf("read closed periods: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("read closed periods: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read closed periods: %w", err)
	}
	return out, nil
}

// ClosedPeriods implements store.Store.
func (s *Store) ClosedPeriods(ctx context.Context) ([]string, error) {
	return closedPeriods(ctx, s.db)
}

// Statements implements store.Store.
func (s *Store) Statements(ctx context.Context, period string) ([]store.Statement, error) {
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("statements: %w", err)
	}
	return s.statements(ctx, s.db, period)
}

func (s *Store) statements(ctx context.Context, q querier, period string) ([]store.Statement, error) {
	var closedUs int64
	err := q.QueryRowContext(ctx, "SELECT closed_us FROM closed_periods WHERE period = ?", period).Scan(&closedUs)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.drafts(ctx, q, period)
	case err != nil:
		return nil, fmt.Errorf("statements of %s: %w", period, err)
	}
	rows, err := q.QueryContext(ctx, `SELECT adjusts, closed_us, content_hash, signature, key_ref,
			closed_by, form, key_fingerprint, part_seed
		FROM statements WHERE period = ? ORDER BY adjusts`, period)
	if err != nil {
		return nil, fmt.Errorf("statements of %s: %w", period, err)
	}
	var out []store.Statement
	for rows.Next() {
		st := store.Statement{Period: period, Closed: true}
		var us int64
		if err := rows.Scan(&st.Adjusts, &us, &st.Hash, &st.Signature, &st.KeyRef,
			&st.ClosedBy, &st.Form, &st.KeyFingerprint, &st.PartSeed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("statements of %s: %w", period, err)
		}
		st.ClosedAt = time.UnixMicro(us).UTC()
		out = append(out, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("statements of %s: %w", period, err)
	}
	for i := range out {
		rows, err := q.QueryContext(ctx, `SELECT adjusts, carrier, category, funding, kind, '', '',
				rides, fare_kop, charged_kop, compensation_kop
			FROM statement_lines WHERE period = ? AND adjusts = ?
			ORDER BY carrier, category, funding, kind`, period, out[i].Adjusts)
		if err != nil {
			return nil, fmt.Errorf("statement lines of %s: %w", period, err)
		}
		if out[i].Lines, err = scanLines(rows); err != nil {
			return nil, fmt.Errorf("statement lines of %s: %w", period, err)
		}
		rows, err = q.QueryContext(ctx, `SELECT '', carrier, reason, rides, claimed_kop FROM statement_held
			WHERE period = ? AND adjusts = ? ORDER BY carrier, reason`, period, out[i].Adjusts)
		if err != nil {
			return nil, fmt.Errorf("held rides of the statements of %s: %w", period, err)
		}
		held, err := scanHeldLines(rows)
		if err != nil {
			return nil, fmt.Errorf("held rides of the statements of %s: %w", period, err)
		}
		for _, h := range held {
			out[i].Held = append(out[i].Held, h.HeldLine)
		}
	}
	return out, nil
}

// drafts reads an open period's statements from the roll-up.
func (s *Store) drafts(ctx context.Context, q querier, period string) ([]store.Statement, error) {
	rows, err := q.QueryContext(ctx, `SELECT adjusts, carrier, category, funding, kind, '', '',
			sum(rides), sum(fare_kop), sum(charged_kop), sum(compensation_kop)
		FROM rollup WHERE period = ?
		GROUP BY adjusts, carrier, category, funding, kind
		HAVING sum(rides) <> 0 OR sum(compensation_kop) <> 0
		ORDER BY adjusts, carrier, category, funding, kind`, period)
	if err != nil {
		return nil, fmt.Errorf("draft statements of %s: %w", period, err)
	}
	lines, err := scanLines(rows)
	if err != nil {
		return nil, fmt.Errorf("draft statements of %s: %w", period, err)
	}
	rows, err = q.QueryContext(ctx, `SELECT claim_adjusts, carrier, reason, count(*), sum(claimed_kop)
		FROM judged WHERE claim_into = ? AND state IN ('held', 'waiting')
		GROUP BY claim_adjusts, carrier, reason ORDER BY claim_adjusts, carrier, reason`, period)
	if err != nil {
		return nil, fmt.Errorf("held rides of the draft statements of %s: %w", period, err)
	}
	held, err := scanHeldLines(rows)
	if err != nil {
		return nil, fmt.Errorf("held rides of the draft statements of %s: %w", period, err)
	}
	return store.DraftsHeld(period, lines, held), nil
}

// scanHeldLines reads and closes rows of (adjusts, carrier, reason,
// rides, claimed kop).
func scanHeldLines(rows *sql.Rows) ([]store.AdjustsHeld, error) {
	defer rows.Close()
	var out []store.AdjustsHeld
	for rows.Next() {
		var h store.AdjustsHeld
		if err := rows.Scan(&h.Adjusts, &h.Carrier, &h.Reason, &h.Rides, &h.ClaimedKop); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// CloseStatements implements store.Store.
func (s *Store) CloseStatements(ctx context.Context, period string, closedAt time.Time, seal store.Sealer) ([]store.Statement, error) {
	if _, err := store.ParsePeriod(period); err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	// The transaction is the only writer from BEGIN (IMMEDIATE), so no
	// tap can be booked into the period between reading and closing.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("close %s: begin: %w", period, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op
	var closedUs int64
	switch err := tx.QueryRowContext(ctx, "SELECT closed_us FROM closed_periods WHERE period = ?", period).Scan(&closedUs); {
	case err == nil:
		return nil, fmt.Errorf("close %s: %w (on %s)", period, store.ErrPeriodClosed, time.UnixMicro(closedUs).UTC().Format(time.RFC3339))
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("close %s: %w", period, err)
	}
	// Nothing is sealed unjudged: what ingest queued for re-rating (late
	// rides of the period among it) is judged first.
	if err := s.drainRerate(ctx, tx); err != nil {
		return nil, fmt.Errorf("close %s: %w", period, err)
	}
	sts, err := s.statements(ctx, tx, period)
	if err != nil {
		return nil, fmt.Errorf("close %s: %w", period, err)
	}
	at := closedAt.UTC().Truncate(time.Microsecond)
	for i := range sts {
		st := &sts[i]
		st.Closed, st.ClosedAt = true, at
		if err := seal(ctx, st); err != nil {
			return nil, fmt.Errorf("close %s: seal the statement: %w", period, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO statements (period, adjusts, closed_us, content_hash, signature, key_ref,
				closed_by, form, key_fingerprint, part_seed)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, st.Period, st.Adjusts, at.UnixMicro(), st.Hash, st.Signature, st.KeyRef,
			st.ClosedBy, max(st.Form, 1), st.KeyFingerprint, st.PartSeed); err != nil {
			return nil, fmt.Errorf("close %s: store the statement: %w", period, err)
		}
		for _, l := range st.Lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO statement_lines
				(period, adjusts, carrier, category, funding, kind, rides, fare_kop, charged_kop, compensation_kop)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, st.Period, st.Adjusts, l.Carrier, l.Category, l.Funding, l.Kind,
				l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop); err != nil {
				return nil, fmt.Errorf("close %s: store a statement line: %w", period, err)
			}
		}
		for _, h := range st.Held {
			if _, err := tx.ExecContext(ctx, `INSERT INTO statement_held (period, adjusts, carrier, reason, rides, claimed_kop)
				VALUES (?, ?, ?, ?, ?, ?)`, st.Period, st.Adjusts, h.Carrier, h.Reason, h.Rides, h.ClaimedKop); err != nil {
				return nil, fmt.Errorf("close %s: store what the statement holds back: %w", period, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO closed_periods (period, closed_us) VALUES (?, ?)", period, at.UnixMicro()); err != nil {
		return nil, fmt.Errorf("close %s: %w", period, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("close %s: commit: %w", period, err)
	}
	return sts, nil
}

// Devices implements store.Store.
func (s *Store) Devices(ctx context.Context, period string) ([]store.DeviceStats, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, taps, duplicates, first_seq, last_seq
		FROM device_periods WHERE period = ? ORDER BY device`, period)
	if err != nil {
		return nil, fmt.Errorf("devices of %s: %w", period, err)
	}
	defer rows.Close()
	var out []store.DeviceStats
	for rows.Next() {
		var d store.DeviceStats
		var first, last int64
		if err := rows.Scan(&d.Device, &d.Taps, &d.Duplicates, &first, &last); err != nil {
			return nil, fmt.Errorf("devices of %s: %w", period, err)
		}
		d.FirstSeq, d.LastSeq = uint64(first), uint64(last)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("devices of %s: %w", period, err)
	}
	return out, nil
}

// Gaps implements store.Store.
func (s *Store) Gaps(ctx context.Context, period string) ([]recon.Gap, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, first_seq, last_seq, period, opened_us, closed_us
		FROM gaps WHERE period = ? ORDER BY device, first_seq`, period)
	if err != nil {
		return nil, fmt.Errorf("gaps of %s: %w", period, err)
	}
	defer rows.Close()
	var out []recon.Gap
	for rows.Next() {
		var (
			g                   recon.Gap
			first, last, opened int64
			closed              sql.NullInt64
		)
		if err := rows.Scan(&g.Device, &first, &last, &g.Period, &opened, &closed); err != nil {
			return nil, fmt.Errorf("gaps of %s: %w", period, err)
		}
		g.First, g.Last, g.Opened = uint64(first), uint64(last), time.UnixMicro(opened).UTC()
		if closed.Valid {
			g.Closed = time.UnixMicro(closed.Int64).UTC()
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gaps of %s: %w", period, err)
	}
	return out, nil
}

// Anomalies implements store.Store.
func (s *Store) Anomalies(ctx context.Context, period string) ([]recon.Anomaly, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, device, seq, other_device, other_seq, period, at_us, card, detail
		FROM anomalies WHERE period = ? ORDER BY kind, device, seq, other_device, other_seq`, period)
	if err != nil {
		return nil, fmt.Errorf("anomalies of %s: %w", period, err)
	}
	defer rows.Close()
	var out []recon.Anomaly
	for rows.Next() {
		var (
			a                   recon.Anomaly
			kind                string
			seq, oseq, us, card int64
		)
		if err := rows.Scan(&kind, &a.Device, &seq, &a.OtherDevice, &oseq, &a.Period, &us, &card, &a.Detail); err != nil {
			return nil, fmt.Errorf("anomalies of %s: %w", period, err)
		}
		a.Kind, a.Seq, a.OtherSeq, a.At, a.Card = recon.Kind(kind), uint64(seq), uint64(oseq), time.UnixMicro(us).UTC(), uint64(card)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("anomalies of %s: %w", period, err)
	}
	return out, nil
}

// OpenGaps implements store.Store.
func (s *Store) OpenGaps(ctx context.Context) (gaps, missing int64, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(last_seq - first_seq + 1), 0)
		FROM gaps WHERE closed_us IS NULL`).Scan(&gaps, &missing)
	if err != nil {
		return 0, 0, fmt.Errorf("count open gaps: %w", err)
	}
	return gaps, missing, nil
}

// Carriers implements store.Store.
func (s *Store) Carriers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT DISTINCT carrier FROM rollup ORDER BY carrier")
	if err != nil {
		return nil, fmt.Errorf("list carriers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("list carriers: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list carriers: %w", err)
	}
	return out, nil
}
