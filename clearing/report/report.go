// Package report builds the documents finance staff and operators read
// from a clearing store, compensation and reconciliation, and writes them
// as a text table, CSV, JSON or XLSX. The command line and the HTTP API
// both use it, so the two always say the same thing.
package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
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
	Period  string
	Carrier string // "" for all carriers
	Detail  Detail
	// Closed says whether the period is closed: its figures are then
	// final.
	Closed bool
	// Lines are one per carrier without Detail; otherwise per carrier,
	// adjusted period, category and funding (and route, day).
	Lines []store.Line
	Total store.Line
}

// BuildCompensation reads the compensation of a period from the
// roll-up.
func BuildCompensation(ctx context.Context, st store.Store, period, carrier string, d Detail) (Compensation, error) {
	if d.Route || d.Day {
		d.Category = true
	}
	lines, err := st.Compensation(ctx, store.Query{Period: period, Carrier: carrier, ByRoute: d.Route, ByDay: d.Day})
	if err != nil {
		return Compensation{}, err
	}
	closed, err := st.ClosedPeriods(ctx)
	if err != nil {
		return Compensation{}, err
	}
	c := Compensation{Period: period, Carrier: carrier, Detail: d, Closed: slices.Contains(closed, period), Lines: lines}
	if !d.Category {
		c.Lines = PerCarrier(lines)
	}
	for _, l := range c.Lines {
		c.Total.Add(l)
	}
	return c, nil
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
}

// BuildReconciliation gathers the reconciliation of a period; loc is the
// city's time zone, which bounds the period's quarantine window.
func BuildReconciliation(ctx context.Context, st store.Store, period string, loc *time.Location) (Reconciliation, error) {
	from, to, err := store.Bounds(period, loc)
	if err != nil {
		return Reconciliation{}, fmt.Errorf("reconciliation: %w", err)
	}
	r := Reconciliation{Period: period, ByReason: map[string]int{}, ByKind: map[string]int{}}
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
