package recon

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/citycard/transit/validator/tap"
)

// Device is what clearing knows of one device's sequence. Every sequence
// number up to MaxSeq is either stored or inside one of the device's open
// gaps; that invariant is what lets Advance tell a new tap from a repeat
// without looking the tap up.
type Device struct {
	Name string
	// MaxSeq is the highest sequence number stored, 0 before the first.
	MaxSeq uint64
	// MaxTime is the validator time of tap MaxSeq.
	MaxTime time.Time
}

// Gap is a run of a device's sequence numbers, First to Last inclusive,
// that clearing did not have when a later tap arrived. A gap is open
// while the taps are missing; when a late batch brings some of them, that
// part becomes a closed gap (Closed set) and the rest stays open, so the
// gaps of a device never overlap and keep their history.
type Gap struct {
	Device      string
	First, Last uint64
	// Period is the accounting month of the tap that revealed the gap,
	// the first one after it.
	Period string
	// Opened is when clearing noticed the gap, Closed when the taps
	// arrived (zero while open).
	Opened time.Time
	Closed time.Time
}

// IsOpen reports whether the gap's taps are still missing.
func (g Gap) IsOpen() bool { return g.Closed.IsZero() }

// Missing is the number of sequence numbers in the gap.
func (g Gap) Missing() uint64 { return g.Last - g.First + 1 }

// Step is what Advance decided for one device's taps.
type Step struct {
	// Device is the device's state after the taps are stored.
	Device Device
	// New holds the indexes of the taps to store, in sequence order; a
	// tap repeated in the batch appears once, by its first copy.
	New []int
	// Duplicates counts the taps that were already stored or repeated.
	Duplicates int
	// Removed are open gaps the taps fell into; the store replaces them
	// with the gaps in Added.
	Removed []Gap
	// Added are the new gaps: runs the taps skipped, and the filled
	// (closed) and still missing (open) parts of each removed gap.
	Added []Gap
	// Anomalies are taps whose time runs backwards in the sequence.
	Anomalies []Anomaly
}

// Advance classifies taps, all of device dev.Name and in any order, given
// the device's state and its open gaps (at least those overlapping the
// taps' sequence numbers; others are left alone). now stamps gaps opened
// or closed; loc is the city's time zone.
func Advance(dev Device, open []Gap, taps []tap.Tap, now time.Time, lim Limits, loc *time.Location) Step {
	lim = lim.WithDefaults()
	st := Step{Device: dev}
	order := make([]int, len(taps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(taps[a].Seq, taps[b].Seq) })
	open = slices.Clone(open)
	slices.SortFunc(open, func(a, b Gap) int { return cmp.Compare(a.First, b.First) })
	filled := make(map[int][]uint64) // index in open -> sequence numbers now stored

	var (
		topSeq, topTime = dev.MaxSeq, dev.MaxTime // highest tap known so far
		prevSeq         uint64                    // previous new tap of this batch
		prevTime        time.Time
		last            uint64 // previous sequence number of this batch
		seen            bool
	)
	for _, i := range order {
		t := &taps[i]
		if seen && t.Seq == last {
			st.Duplicates++
			continue
		}
		last, seen = t.Seq, true
		var (
			before    time.Time // the time of the tap before t, when known
			beforeSeq uint64
			isNew     bool
		)
		switch {
		case t.Seq > dev.MaxSeq:
			isNew = true
			if t.Seq > topSeq+1 {
				st.Added = append(st.Added, Gap{Device: dev.Name, First: topSeq + 1, Last: t.Seq - 1, Period: t.Period(loc), Opened: now})
			}
			if topSeq > 0 {
				before, beforeSeq = topTime, topSeq
			}
			topSeq, topTime = t.Seq, t.Time
		default:
			g := sort.Search(len(open), func(k int) bool { return open[k].Last >= t.Seq })
			if g < len(open) && open[g].First <= t.Seq {
				isNew = true
				filled[g] = append(filled[g], t.Seq)
				if prevSeq != 0 && prevSeq == t.Seq-1 {
					before, beforeSeq = prevTime, prevSeq
				}
			}
		}
		if !isNew {
			st.Duplicates++
			continue
		}
		if !before.IsZero() && t.Time.Before(before.Add(-lim.MaxBackwards)) {
			st.Anomalies = append(st.Anomalies, anomaly(TimeBackwards, t, loc, fmt.Sprintf(
				"tap %d at %s is %s earlier than tap %d before it (%s)",
				t.Seq, stamp(t.Time), before.Sub(t.Time).Round(time.Millisecond), beforeSeq, stamp(before))))
		}
		st.New = append(st.New, i)
		prevSeq, prevTime = t.Seq, t.Time
	}
	st.Device.MaxSeq, st.Device.MaxTime = topSeq, topTime

	for g := range open {
		seqs := filled[g]
		if len(seqs) == 0 {
			continue
		}
		old := open[g]
		st.Removed = append(st.Removed, old)
		part := func(first, last uint64, closed bool) {
			p := Gap{Device: old.Device, First: first, Last: last, Period: old.Period, Opened: old.Opened}
			if closed {
				p.Closed = now
			}
			st.Added = append(st.Added, p)
		}
		cur := old.First
		for k := 0; k < len(seqs); {
			run := k
			for run+1 < len(seqs) && seqs[run+1] == seqs[run]+1 {
				run++
			}
			if seqs[k] > cur {
				part(cur, seqs[k]-1, false)
			}
			part(seqs[k], seqs[run], true)
			cur = seqs[run] + 1
			k = run + 1
		}
		if cur <= old.Last && cur != 0 {
			part(cur, old.Last, false)
		}
	}
	slices.SortStableFunc(st.Added, func(a, b Gap) int { return cmp.Compare(a.First, b.First) })
	return st
}
