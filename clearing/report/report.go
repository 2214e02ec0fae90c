// Package report builds the documents finance staff and operators read
// from a clearing store, compensation and reconciliation, and writes them
// as a text table, CSV, JSON, XLSX or PDF. The command line, the HTTP API
// and the console all use it, so they always say the same thing.
//
// Carriers and benefit categories are named from the finance register
// (clearing/register) when one is given; times are in the city's zone;
// text cells of CSV and XLSX are defused (spreadsheet.Defuse).
package report

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/store"
)

// Detail chooses how finely compensation is split.
type Detail struct {
	// Category splits each carrier by benefit category and funding
	// source, and shows adjustments of earlier periods apart.
	Category bool
	// Route and Day split further by route and day of the ride (they
	// imply Category).
	Route, Day bool
}

// Compensation is what the city owes for the rides booked in a period.
type Compensation struct {
	Period   string
	Carrier  string // "" for all carriers
	Category string // "" for all categories
	Detail   Detail
	// Closed says whether the period is closed: its figures are then
	// final.
	Closed bool
	// Lines are one per carrier without Detail; otherwise per carrier,
	// adjusted period, category and funding (and route, day).
	Lines []store.Line
	Total store.Line

	// Names names carriers and categories; nil names them by their
	// codes. Lang is the language of names in a one-language document
	// ("uk", the default, or "en"); the PDF has both.
	Names *register.Register
	Lang  string
	// Location is the city's zone, in which the documents give times
	// (default UTC); Created is when the document is made (the PDF
	// states it), zero for now.
	Location *time.Location
	Created  time.Time
	// PerCarrier puts each carrier of a PDF on pages of its own, with its
	// legal details and approval lines: the copy sent to that carrier.
	PerCarrier bool
}

// ErrUnknown is wrapped when a report names a carrier or a category that
// neither the register nor the store knows: a typo, most likely.
var ErrUnknown = errors.New("unknown")

// Query is what BuildCompensation reports.
type Query struct {
	Period   string
	Carrier  string // "" for all
	Category string // "" for all
	Detail   Detail
	// Names, when set, is the finance register: it names carriers and
	// categories, and a filter must name one it knows or one with rides.
	Names *register.Register
}

// BuildCompensation reads the compensation of a period from the roll-up.
// A carrier or category filter that matches nothing is checked: one the
// register and the store do not know fails with ErrUnknown, naming the
// known ones.
func BuildCompensation(ctx context.Context, st store.Store, q Query) (Compensation, error) {
	if _, err := store.ParsePeriod(q.Period); err != nil {
		return Compensation{}, err
	}
	d := q.Detail
	if d.Route || d.Day {
		d.Category = true
	}
	lines, err := st.Compensation(ctx, store.Query{Period: q.Period, Carrier: q.Carrier, ByRoute: d.Route, ByDay: d.Day})
	if err != nil {
		return Compensation{}, err
	}
	if len(lines) == 0 && q.Carrier != "" {
		if err := knownCarrier(ctx, st, q.Names, q.Carrier); err != nil {
			return Compensation{}, err
		}
	}
	if q.Category != "" {
		all := lines
		lines = slices.DeleteFunc(slices.Clone(lines), func(l store.Line) bool { return l.Category != q.Category })
		if len(lines) == 0 && !q.Names.HasCategory(q.Category) && !slices.ContainsFunc(all, func(l store.Line) bool { return l.Category == q.Category }) {
			known := q.Names.Categories()
			for _, l := range all {
				if !slices.Contains(known, l.Category) {
					known = append(known, l.Category)
				}
			}
			slices.Sort(known)
			return Compensation{}, fmt.Errorf("category %q: %w: neither the finance register nor %s's rides have it; known: %s",
				q.Category, ErrUnknown, q.Period, listOrNone(known))
		}
	}
	closed, err := st.ClosedPeriods(ctx)
	if err != nil {
		return Compensation{}, err
	}
	c := Compensation{Period: q.Period, Carrier: q.Carrier, Category: q.Category, Detail: d, Closed: slices.Contains(closed, q.Period),
		Lines: lines, Names: q.Names}
	if !d.Category {
		c.Lines = PerCarrier(lines)
	}
	for _, l := range c.Lines {
		c.Total.Add(l)
	}
	return c, nil
}

// knownCarrier checks a carrier filter that matched nothing.
func knownCarrier(ctx context.Context, st store.Store, names *register.Register, carrier string) error {
	if _, ok := names.Carrier(carrier); ok {
		return nil
	}
	have, err := st.Carriers(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(have, carrier) {
		return nil
	}
	known := slices.Clone(have)
	for _, id := range names.Carriers() {
		if !slices.Contains(known, id) {
			known = append(known, id)
		}
	}
	slices.Sort(known)
	return fmt.Errorf("carrier %q: %w: no rides of it were ever stored and the finance register does not list it; known carriers: %s",
		carrier, ErrUnknown, listOrNone(known))
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none yet"
	}
	return strings.Join(xs, ", ")
}

// PerCarrier folds lines into one per carrier, in carrier order: what
// each carrier is owed in the period, its adjustments included.
func PerCarrier(lines []store.Line) []store.Line {
	idx := map[string]int{}
	var out []store.Line
	for _, l := range lines {
		i, ok := idx[l.Carrier]
		if !ok {
			i = len(out)
			idx[l.Carrier] = i
			out = append(out, store.Line{Carrier: l.Carrier})
		}
		out[i].Add(l)
	}
	slices.SortStableFunc(out, func(a, b store.Line) int { return strings.Compare(a.Carrier, b.Carrier) })
	return out
}

// UAH formats kopiyky as hryvnias with two decimals, exactly.
func UAH(kop int64) string {
	sign := ""
	u := uint64(kop)
	if kop < 0 {
		sign, u = "-", uint64(-kop)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// Reconciliation is what clearing knows of a period's taps beyond the
// money: per device counts, sequence gaps, quarantined batches and
// anomalies.
type Reconciliation struct {
	Period  string
	Devices []store.DeviceStats
	// Gaps are those revealed by taps of the period; OpenGaps and
	// MissingTaps count the ones still open.
	Gaps                  []recon.Gap
	OpenGaps, MissingTaps int64
	// Quarantined are the batches received in the period (in the city's
	// time zone), without their bytes.
	Quarantined []ingest.Rejected
	ByReason    map[string]int
	Anomalies   []recon.Anomaly
	ByKind      map[string]int
	// PendingCloneChecks counts the runs of rides (of any period) still
	// waiting for the cloned-card check: until it is 0, cloned-card
	// suspicions may be missing from Anomalies.
	PendingCloneChecks int64
	// Taps and Duplicates total the devices' counts.
	Taps, Duplicates int64
	// Location is the city's zone, in which the documents give times.
	Location *time.Location
	// Created is when the document is made (the PDF states it); zero
	// for now.
	Created time.Time
}

// BuildReconciliation gathers the reconciliation of a period; loc is the
// city's time zone, which bounds the period's quarantine window.
func BuildReconciliation(ctx context.Context, st store.Store, period string, loc *time.Location) (Reconciliation, error) {
	from, to, err := store.Bounds(period, loc)
	if err != nil {
		return Reconciliation{}, fmt.Errorf("reconciliation: %w", err)
	}
	r := Reconciliation{Period: period, ByReason: map[string]int{}, ByKind: map[string]int{}, Location: loc}
	if r.Devices, err = st.Devices(ctx, period); err != nil {
		return r, err
	}
	for _, d := range r.Devices {
		r.Taps += d.Taps
		r.Duplicates += d.Duplicates
	}
	if r.Gaps, err = st.Gaps(ctx, period); err != nil {
		return r, err
	}
	for _, g := range r.Gaps {
		if g.IsOpen() {
			r.OpenGaps++
			r.MissingTaps += int64(g.Missing())
		}
	}
	if r.Quarantined, err = st.Quarantined(ctx, from, to); err != nil {
		return r, err
	}
	for i := range r.Quarantined {
		r.ByReason[r.Quarantined[i].Reason]++
		r.Quarantined[i].Raw = nil
	}
	if r.Anomalies, err = st.Anomalies(ctx, period); err != nil {
		return r, err
	}
	for _, a := range r.Anomalies {
		r.ByKind[string(a.Kind)]++
	}
	if r.PendingCloneChecks, err = st.PendingCloneChecks(ctx); err != nil {
		return r, err
	}
	return r, nil
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[string])
	return keys
}
