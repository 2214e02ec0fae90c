package city

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// ledger is the simulator's account of what the city owes: every
// compensable ride, booked when clearing first receives it, into the
// statement clearing must book it into: its own month while that is open,
// else an adjustment of the next open month. It also counts what clearing
// must have seen: taps, repeats and forged batches.
type ledger struct {
	loc    *time.Location
	closed map[string]bool
	lines  map[lineKey]*store.Line
	// late counts compensable rides that arrived after their month closed.
	late int64
	// taps is the number of distinct taps delivered, dups the repeats.
	taps, dups int64
	// forged counts quarantine-bound batches by the reason clearing must
	// give.
	forged map[string]int
}

type lineKey struct{ period, adjusts, carrier, category, funding string }

func newLedger(loc *time.Location) *ledger {
	return &ledger{loc: loc, closed: map[string]bool{}, lines: map[lineKey]*store.Line{}, forged: map[string]int{}}
}

// book returns the statement a ride of month period goes into now.
func (l *ledger) book(period string) (into, adjusts string) {
	if !l.closed[period] {
		return period, ""
	}
	p, err := time.Parse("2006-01", period)
	if err != nil {
		return period, ""
	}
	for {
		p = p.AddDate(0, 1, 0)
		if n := p.Format("2006-01"); !l.closed[n] {
			return n, period
		}
	}
}

// deliver records that clearing received t for the first time, and books
// what the reference model says is owed for it (o, nil for nothing) once
// clearing has all it needs to pay it (owed.pending), and what waited for
// t.
func (l *ledger) deliver(t *tap.Tap, o *owed) {
	l.taps++
	if o == nil {
		return
	}
	o.arrived = true
	for _, w := range o.waiting {
		w.pending--
		l.settle(w)
	}
	o.waiting = nil
	if c := o.confirms; c != nil {
		c.pending--
		l.settle(c)
	}
	if o.carrier != "" { // not a tap that only confirms or is waited for
		o.pending--
		l.settle(o)
	}
}

// settle books a ride once clearing has all it needs to pay it.
func (l *ledger) settle(o *owed) {
	if o.pending <= 0 && !o.booked {
		o.booked = true
		if o.held == "" {
			l.bookAt(o.at, o)
		}
	}
}

// bookAt books o, a ride at at, into the statement its month goes into
// now.
func (l *ledger) bookAt(at time.Time, o *owed) {
	into, adj := l.book(at.In(l.loc).Format("2006-01"))
	if adj != "" {
		l.late++
	}
	k := lineKey{into, adj, o.carrier, o.category, o.funding}
	line := l.lines[k]
	if line == nil {
		line = &store.Line{Adjusts: adj, Carrier: o.carrier, Category: o.category, Funding: o.funding}
		l.lines[k] = line
	}
	line.Rides++
	line.FareKop += o.fareKop
	line.ChargedKop += o.chargedKop
	line.CompensationKop += o.compensKop
}

// statement returns the lines the ledger holds for one statement, sorted
// as clearing sorts them.
func (l *ledger) statement(period, adjusts string) []store.Line {
	var out []store.Line
	for k, line := range l.lines {
		if k.period == period && k.adjusts == adjusts {
			out = append(out, *line)
		}
	}
	slices.SortFunc(out, store.CompareLines)
	return out
}

// statements lists the (period, adjusts) pairs the ledger holds.
func (l *ledger) statements() map[[2]string]bool {
	out := map[[2]string]bool{}
	for k := range l.lines {
		out[[2]string{k.period, k.adjusts}] = true
	}
	return out
}

// Owed returns the compensation the ledger holds for every statement.
func (l *ledger) owed() (rides, kop int64) {
	for _, line := range l.lines {
		rides += line.Rides
		kop += line.CompensationKop
	}
	return rides, kop
}

// Comparison is the truth against clearing.
type Comparison struct {
	// Statements compares each statement, own and adjustment, of every
	// month the simulation touched.
	Statements []StatementCheck
	// Taps compares the validators' sequences with what clearing stored.
	Taps TapCheck
	// Quarantine compares the forged batches with clearing's quarantine,
	// by reason.
	Quarantine []QuarantineCheck
	// Dishonest compares the rides clearing holds with the lies of the
	// dishonest validators: each lie held for its reason, no honest ride
	// held.
	Dishonest DishonestCheck
	// Divergences counts full-fidelity taps where a validator's journal
	// differs from the simulator's own decision; Samples shows the first.
	Divergences int
	Samples     []string
	// ModelDifferences counts taps, in either lane, that the validator's
	// decision (fare.Decide) decided otherwise than the reference model
	// (validator/fareref) that the truth comes from; ModelSamples shows
	// the first.
	ModelDifferences int
	ModelSamples     []string
	// Problems says, in words, everything that differs; empty when the
	// clearing result is the truth.
	Problems []string
}

// OK reports whether clearing matches the truth in every respect.
func (c *Comparison) OK() bool { return len(c.Problems) == 0 }

// StatementCheck is one statement: what the simulator knows is owed and
// what clearing books.
type StatementCheck struct {
	Period  string
	Adjusts string
	Closed  bool
	KeyRef  string
	// Truth and Clearing are the lines per carrier, category and funding.
	Truth, Clearing []store.Line
	Equal           bool
}

// TruthTotal and ClearingTotal sum the lines.
func (s *StatementCheck) TruthTotal() store.Line    { return total(s.Truth) }
func (s *StatementCheck) ClearingTotal() store.Line { return total(s.Clearing) }

func total(ls []store.Line) store.Line {
	var t store.Line
	for _, l := range ls {
		t.Add(l)
	}
	return t
}

// TapCheck compares taps per device.
type TapCheck struct {
	Devices int
	// Journalled is what the validators numbered and delivered; Stored
	// what clearing holds; Pending what is still in offline journals.
	Journalled, Stored, Pending int64
	// Duplicates is what clearing counted as repeats; Expected what the
	// simulation sent again (lost acknowledgements, replays). Clearing may
	// count more: a bus delivers a batch again after a consumer's error or
	// a rebalance, and each such tap is a repeat too.
	Duplicates, DuplicatesExpected int64
	// OpenGaps are sequence gaps clearing still waits for.
	OpenGaps int64
	// Audited taps were compared field by field with clearing's copy.
	Audited int64
}

// QuarantineCheck is one quarantine reason.
type QuarantineCheck struct {
	Reason        string
	Expected, Got int
}

// months lists the accounting months from a to b, inclusive.
func months(a, b time.Time) []string {
	var out []string
	for m := time.Date(a.Year(), a.Month(), 1, 0, 0, 0, 0, time.UTC); !m.After(b); m = m.AddDate(0, 1, 0) {
		out = append(out, m.Format("2006-01"))
	}
	return out
}

// Compare checks clearing against the truth: every statement's lines,
// every device's sequence, the quarantine, the rides clearing holds (each
// lie of a dishonest validator held for the reason it must give, no
// honest ride held) and, when the simulation keeps its taps
// (Options.Audit), every stored tap field by field. It needs clearing;
// closed statements' signatures are verified too. It first has clearing
// judge whatever waits for re-rating, with the tariff and the registry's
// records as of now, as clearing serve does beside ingest: the drafts of
// open months are compared as a close would seal them.
func (s *Sim) Compare(ctx context.Context) (*Comparison, error) {
	if s.clearing == nil {
		return nil, fmt.Errorf("compare: the simulation runs without clearing")
	}
	st := s.clearing.st
	c := &Comparison{}
	problem := func(format string, args ...any) { c.Problems = append(c.Problems, fmt.Sprintf(format, args...)) }
	if err := s.judge(ctx); err != nil {
		return nil, err
	}

	// The months the taps can fall in: drift moves a tap across midnight.
	first := s.w.start.AddDate(0, -1, 0)
	last := s.w.start.AddDate(0, 1, s.cfg.Days)
	periods := months(first, last)
	truth := s.ledger.statements()
	for _, p := range periods {
		sts, err := st.Statements(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		seen := map[string]bool{}
		for _, cs := range sts {
			seen[cs.Adjusts] = true
			want := s.ledger.statement(p, cs.Adjusts)
			if len(want) == 0 && len(cs.Lines) == 0 && !cs.Closed {
				continue
			}
			sc := StatementCheck{Period: p, Adjusts: cs.Adjusts, Closed: cs.Closed, KeyRef: cs.KeyRef,
				Truth: want, Clearing: cs.Lines, Equal: slices.Equal(want, cs.Lines)}
			c.Statements = append(c.Statements, sc)
			if !sc.Equal {
				problem("statement %s: clearing books %s UAH over %d rides, the truth is %s UAH over %d rides",
					name(p, cs.Adjusts), report.UAH(sc.ClearingTotal().CompensationKop), sc.ClearingTotal().Rides,
					report.UAH(sc.TruthTotal().CompensationKop), sc.TruthTotal().Rides)
			}
		}
		for k := range truth {
			if k[0] == p && !seen[k[1]] {
				problem("statement %s: owed, but clearing has no such statement", name(k[0], k[1]))
			}
		}
	}
	for k := range truth {
		if !slices.Contains(periods, k[0]) {
			problem("statement %s: owed, outside the months compared", name(k[0], k[1]))
		}
	}
	if err := s.verifyClosed(ctx, c); err != nil {
		return nil, err
	}
	if err := s.compareTaps(ctx, c, periods); err != nil {
		return nil, err
	}
	if err := s.compareHeld(ctx, c, periods); err != nil {
		return nil, err
	}

	q, err := st.Quarantined(ctx, time.Time{}, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	got := map[string]int{}
	for _, b := range q {
		got[b.Reason]++
	}
	reasons := slices.Sorted(maps.Keys(got))
	for r := range s.ledger.forged {
		if !slices.Contains(reasons, r) {
			reasons = append(reasons, r)
		}
	}
	slices.Sort(reasons)
	for _, r := range reasons {
		qc := QuarantineCheck{Reason: r, Expected: s.ledger.forged[r], Got: got[r]}
		c.Quarantine = append(c.Quarantine, qc)
		if qc.Expected != qc.Got {
			problem("quarantine %s: %d batches, %d forged", r, qc.Got, qc.Expected)
		}
	}

	s.divMu.Lock()
	c.Divergences, c.Samples = s.divergences, slices.Clone(s.samples)
	c.ModelDifferences, c.ModelSamples = s.modelDiffs, slices.Clone(s.modelSamples)
	s.divMu.Unlock()
	if c.Divergences > 0 {
		problem("%d validator decisions differ from the simulator's", c.Divergences)
	}
	if c.ModelDifferences > 0 {
		problem("%d taps decided otherwise than the reference model", c.ModelDifferences)
	}
	return c, nil
}

// verifyClosed checks the hash and signature of every closed statement
// and that its lines still equal the roll-up and the raw taps.
func (s *Sim) verifyClosed(ctx context.Context, c *Comparison) error {
	done := map[string]bool{}
	for _, sc := range c.Statements {
		if !sc.Closed || done[sc.Period] {
			continue
		}
		done[sc.Period] = true
		vs, err := s.svc.Verify(ctx, sc.Period, true)
		if err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		for _, v := range vs {
			if !v.OK() {
				c.Problems = append(c.Problems, fmt.Sprintf("statement %s: %s", name(v.Statement.Period, v.Statement.Adjusts),
					strings.Join(v.Problems, "; ")))
			}
		}
	}
	return nil
}

// compareTaps checks each device's sequence: clearing must hold taps 1
// to n of a validator that delivered n, each once, and nothing from a
// device the city does not have.
func (s *Sim) compareTaps(ctx context.Context, c *Comparison, periods []string) error {
	st := s.clearing.st
	type agg struct {
		taps, dups    int64
		first, lastSq uint64
	}
	stored := map[string]*agg{}
	for _, p := range periods {
		ds, err := st.Devices(ctx, p)
		if err != nil {
			return fmt.Errorf("compare: %w", err)
		}
		for _, d := range ds {
			a := stored[d.Device]
			if a == nil {
				a = &agg{first: d.FirstSeq}
				stored[d.Device] = a
			}
			a.taps += d.Taps
			a.dups += d.Duplicates
			a.first = min(a.first, d.FirstSeq)
			a.lastSq = max(a.lastSq, d.LastSeq)
		}
	}
	t := &c.Taps
	t.Devices = len(s.w.devices)
	t.DuplicatesExpected = s.ledger.dups
	bad := 0
	for _, dev := range s.w.devices {
		t.Journalled += dev.delivered
		t.Pending += int64(len(dev.pending))
		a := stored[dev.id]
		delete(stored, dev.id)
		if a == nil {
			a = &agg{}
		}
		t.Stored += a.taps
		t.Duplicates += a.dups
		ok := a.taps == dev.delivered && (dev.delivered == 0 || a.first == 1 && a.lastSq == uint64(dev.delivered))
		if !ok {
			bad++
			if bad <= 5 {
				c.Problems = append(c.Problems, fmt.Sprintf("device %s: delivered taps 1..%d, clearing holds %d taps numbered %d..%d",
					dev.id, dev.delivered, a.taps, a.first, a.lastSq))
			}
		}
	}
	if bad > 5 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d more devices whose taps differ", bad-5))
	}
	for id, a := range stored {
		t.Stored += a.taps
		c.Problems = append(c.Problems, fmt.Sprintf("clearing holds %d taps of %s, a device the city does not have", a.taps, id))
	}
	if t.Duplicates < t.DuplicatesExpected {
		c.Problems = append(c.Problems, fmt.Sprintf("clearing counted %d repeated taps; %d were sent again", t.Duplicates, t.DuplicatesExpected))
	}
	gaps, missing, err := st.OpenGaps(ctx)
	if err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	t.OpenGaps = gaps
	if gaps != 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("clearing waits for %d taps in %d sequence gaps; the validators sent every tap", missing, gaps))
	}
	if !s.opt.Audit {
		return nil
	}
	for _, dev := range s.w.devices {
		var after uint64
		want := dev.audit
		for {
			page, err := st.Taps(ctx, dev.id, after, 1000)
			if err != nil {
				return fmt.Errorf("compare: %w", err)
			}
			if len(page) == 0 {
				break
			}
			for _, got := range page {
				after = got.Seq
				i := int(got.Seq) - 1
				if i < 0 || i >= len(want) {
					c.Problems = append(c.Problems, fmt.Sprintf("device %s: clearing holds tap %d, which was never delivered", dev.id, got.Seq))
					continue
				}
				t.Audited++
				w := want[i]
				if !got.Time.Equal(w.Time) {
					c.Problems = append(c.Problems, fmt.Sprintf("device %s tap %d: time %s, sent %s", dev.id, got.Seq, got.Time, w.Time))
					continue
				}
				got.Time = w.Time
				if got != w {
					c.Problems = append(c.Problems, fmt.Sprintf("device %s tap %d: clearing holds %+v, sent %+v", dev.id, got.Seq, got, w))
				}
			}
		}
	}
	return nil
}

func name(period, adjusts string) string {
	if adjusts == "" {
		return period
	}
	return period + " (adjusting " + adjusts + ")"
}

// WriteComparison prints the comparison as text: one block per statement
// with a line per carrier, then the taps and the quarantine.
func WriteComparison(w io.Writer, c *Comparison) error {
	ew := &errWriter{w: w}
	ew.printf("Truth against clearing\n")
	for _, sc := range c.Statements {
		state := "open (draft)"
		if sc.Closed {
			state = "closed, signed " + sc.KeyRef
		}
		verdict := "EQUAL"
		if !sc.Equal {
			verdict = "DIFFERENT"
		}
		ew.printf("\n  statement %s, %s: %s\n", name(sc.Period, sc.Adjusts), state, verdict)
		ew.printf("    %-14s %14s %20s %14s %20s\n", "carrier", "truth rides", "truth, UAH", "clearing rides", "clearing, UAH")
		tl, cl := report.PerCarrier(sc.Truth), report.PerCarrier(sc.Clearing)
		carriers := map[string][2]store.Line{}
		for _, l := range tl {
			p := carriers[l.Carrier]
			p[0] = l
			carriers[l.Carrier] = p
		}
		for _, l := range cl {
			p := carriers[l.Carrier]
			p[1] = l
			carriers[l.Carrier] = p
		}
		for _, id := range slices.Sorted(maps.Keys(carriers)) {
			p := carriers[id]
			ew.printf("    %-14s %14d %20s %14d %20s\n", id, p[0].Rides, report.UAH(p[0].CompensationKop), p[1].Rides, report.UAH(p[1].CompensationKop))
		}
		tt, ct := sc.TruthTotal(), sc.ClearingTotal()
		ew.printf("    %-14s %14d %20s %14d %20s\n", "TOTAL", tt.Rides, report.UAH(tt.CompensationKop), ct.Rides, report.UAH(ct.CompensationKop))
	}
	t := c.Taps
	ew.printf("\n  taps: %d devices numbered and delivered %d taps, clearing stored %d; %d repeats counted, %d sent again; %d open gaps",
		t.Devices, t.Journalled, t.Stored, t.Duplicates, t.DuplicatesExpected, t.OpenGaps)
	if t.Pending > 0 {
		ew.printf("; %d taps still in offline journals", t.Pending)
	}
	if t.Audited > 0 {
		ew.printf("; %d compared field by field", t.Audited)
	}
	ew.printf("\n")
	for _, q := range c.Quarantine {
		ew.printf("  quarantined %-15s %d batches (%d forged)\n", q.Reason+":", q.Got, q.Expected)
	}
	writeDishonest(ew, &c.Dishonest)
	if c.Divergences > 0 {
		ew.printf("  %d validator decisions differ from the simulator's, e.g.:\n", c.Divergences)
		for _, s := range c.Samples {
			ew.printf("    %s\n", s)
		}
	}
	if c.ModelDifferences > 0 {
		ew.printf("  %d taps decided otherwise than the reference model (validator/fareref), e.g.:\n", c.ModelDifferences)
		for _, s := range c.ModelSamples {
			ew.printf("    %s\n", s)
		}
	} else {
		ew.printf("  every tap decided as the reference model (validator/fareref) decides it\n")
	}
	if c.OK() {
		ew.printf("\nClearing equals the truth, to the kopiyka.\n")
	} else {
		ew.printf("\nClearing differs from the truth:\n")
		for _, p := range c.Problems {
			ew.printf("  - %s\n", p)
		}
	}
	return ew.err
}

// errWriter keeps the first write error so a report is written without
// checking each line.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
