// Package plan decides, for both clearing stores, what storing a set of
// taps changes: which taps are new, each device's sequence state and gaps
// (recon.Advance), the statement each new ride is booked into
// (store.Book), the roll-up and per-device counts to add, and the
// anomalies of the sequence. The stores load the state the plan needs,
// call Make inside their transaction, and write what it returns, so the
// two cannot drift apart.
package plan

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// Span is the range of sequence numbers of one device's taps in a call.
type Span struct {
	Device   string
	Min, Max uint64
}

// Spans returns each device's range among taps, sorted by device: what
// a store locks and loads (the device's state and its open gaps that
// overlap the range) before calling Make.
func Spans(taps []tap.Tap) []Span {
	idx := make(map[string]int)
	var out []Span
	for i := range taps {
		t := &taps[i]
		k, ok := idx[t.Device]
		if !ok {
			idx[t.Device] = len(out)
			out = append(out, Span{t.Device, t.Seq, t.Seq})
			continue
		}
		out[k].Min = min(out[k].Min, t.Seq)
		out[k].Max = max(out[k].Max, t.Seq)
	}
	slices.SortFunc(out, func(a, b Span) int { return strings.Compare(a.Device, b.Device) })
	return out
}

// State is what the store knows before the call.
type State struct {
	// Devices holds the state of devices seen before; a device missing
	// here has never been seen.
	Devices map[string]recon.Device
	// Open holds each device's open gaps that overlap its Span.
	Open map[string][]recon.Gap
	// Closed is the set of closed periods.
	Closed map[string]bool
}

// Tap is a new tap with what the store derives from it.
type Tap struct {
	*tap.Tap
	// Period is the accounting month of the ride.
	Period string
	// Booked is the period whose statement the ride is booked into when
	// that is not its own (its own was closed); "" otherwise.
	Booked string
	// Day is the day of the ride in the city, "YYYY-MM-DD".
	Day string
}

// Key is one roll-up row: a line booked into Period.
type Key struct {
	Period                                     string
	Adjusts, Carrier, Category, Funding, Route string
	Day                                        string
}

// DevicePeriod adds to one device's counts in one period.
type DevicePeriod struct {
	Device, Period    string
	Taps, Duplicates  int64
	FirstSeq, LastSeq uint64 // of the new taps; 0 when none
}

// Plan is what storing the taps changes.
type Plan struct {
	// New are the taps to store, sorted by device and sequence number.
	New        []Tap
	Duplicates int
	// Devices are the new states of the devices that got new taps.
	Devices []recon.Device
	// Removed gaps are replaced by Added ones.
	Removed, Added []recon.Gap
	// Anomalies of the sequences (time running backwards).
	Anomalies []recon.Anomaly
	// Rollup holds the amounts to add per roll-up row, in key order so
	// that concurrent transactions lock rows in the same order.
	Rollup []Row
	// DevicePeriods holds the counts to add, by device and period.
	DevicePeriods []DevicePeriod
	// CloneChecks are the runs of new rides the cloned-card check has
	// to look at, by device.
	CloneChecks []CloneCheck
	// Rerate is what re-rating has to look at among the new taps,
	// queued as one row per call.
	Rerate []Need
	// DeviceNumbers are the devices' numbers as card logs record them,
	// from the new taps, by device.
	DeviceNumbers []DeviceNumber
}

// Need is a new tap re-rating has to look at (rerate.Needs): the card,
// the tap's time, the time of the previous ride the card's evidence names
// (zero when none), and whether it is judged itself. That is all a pass
// needs to know which of the card's rides to load, so the queue holds it
// and a pass never reads the new taps back.
type Need struct {
	Card       uint64
	Time, Prev time.Time
	Judged     bool
}

// AppendNeeds appends the queue encoding of needs: a count, then per
// need the card, the time and the previous time in Unix microseconds (0
// for none) as varints and a judged byte.
func AppendNeeds(b []byte, needs []Need) []byte {
	b = binary.AppendUvarint(b, uint64(len(needs)))
	for _, n := range needs {
		b = binary.AppendUvarint(b, n.Card)
		b = binary.AppendVarint(b, n.Time.UnixMicro())
		var p int64
		if !n.Prev.IsZero() {
			p = n.Prev.UnixMicro()
		}
		b = binary.AppendVarint(b, p)
		j := byte(0)
		if n.Judged {
			j = 1
		}
		b = append(b, j)
	}
	return b
}

// ParseNeeds reads what AppendNeeds wrote.
func ParseNeeds(b []byte) ([]Need, error) {
	bad := errors.New("re-rating queue: malformed row")
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, bad
	}
	b = b[k:]
	out := make([]Need, 0, n)
	for range n {
		card, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, bad
		}
		at, k2 := binary.Varint(b[k1:])
		if k2 <= 0 {
			return nil, bad
		}
		prev, k3 := binary.Varint(b[k1+k2:])
		if k3 <= 0 || len(b) < k1+k2+k3+1 {
			return nil, bad
		}
		nd := Need{Card: card, Time: time.UnixMicro(at).UTC(), Judged: b[k1+k2+k3] == 1}
		if prev != 0 {
			nd.Prev = time.UnixMicro(prev).UTC()
		}
		out = append(out, nd)
		b = b[k1+k2+k3+1:]
	}
	if len(b) != 0 {
		return nil, bad
	}
	return out, nil
}

// DeviceNumber is a device's number as the card's tap log records it
// (tap.Tap.DeviceNumber), first seen at At. Batches are authenticated
// per device, so a device's own taps are what tells clearing its number.
type DeviceNumber struct {
	Number uint32
	Device string
	At     time.Time
}

// needs returns what re-rating needs of the new taps, and the device
// numbers they carry.
func needs(news []Tap) ([]Need, []DeviceNumber) {
	var out []Need
	var nums []DeviceNumber
	for i := range news {
		t := news[i].Tap
		if t.DeviceNumber != 0 {
			if n := len(nums); n == 0 || nums[n-1].Device != t.Device || nums[n-1].Number != t.DeviceNumber {
				nums = append(nums, DeviceNumber{Number: t.DeviceNumber, Device: t.Device, At: t.Time})
			}
		}
		if !rerate.Needs(t) {
			continue
		}
		n := Need{Card: t.Card, Time: t.Time, Judged: rerate.Judged(t)}
		if t.Prev.Device != 0 {
			n.Prev = t.Prev.Time
		}
		out = append(out, n)
	}
	return out, nums
}

// CloneCheck names, for the cloned-card check, a run of one device's new
// rides: those from FirstSeq to LastSeq, tapped from From to To. Only
// the rides the city pays for and whose position is known can be judged
// (store.Compensable, recon.Sighting.Known), so a run starts and ends at
// such rides; other taps inside it are skipped by the check. The run is
// a range rather than a list so that queueing it costs one row per
// device and call, whatever the batch size.
type CloneCheck struct {
	Device            string
	FirstSeq, LastSeq uint64
	From, To          time.Time
}

// Checkable reports whether the cloned-card check looks at t.
func Checkable(t *tap.Tap) bool {
	return store.Compensable(t) && (t.Lat != 0 || t.Lon != 0)
}

// cloneChecks returns a run per device of the checkable rides among
// news, which are sorted by device and sequence number.
func cloneChecks(news []Tap) []CloneCheck {
	var out []CloneCheck
	for i := range news {
		t := news[i].Tap
		if !Checkable(t) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Device == t.Device {
			c := &out[n-1]
			c.LastSeq = t.Seq
			// A batch is nearly always in time order, but a clock
			// stepped back makes it not so; the run covers both ends.
			c.From, c.To = minTime(c.From, t.Time), maxTime(c.To, t.Time)
			continue
		}
		out = append(out, CloneCheck{Device: t.Device, FirstSeq: t.Seq, LastSeq: t.Seq, From: t.Time, To: t.Time})
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Row is an addition to one roll-up row.
type Row struct {
	Key
	Rides, FareKop, ChargedKop, CompensationKop int64
}

// Make plans storing taps. It does not modify taps; the Tap pointers in
// the plan point into it.
func Make(taps []tap.Tap, st State, now time.Time, lim recon.Limits, loc *time.Location) Plan {
	var p Plan
	byDevice := make(map[string][]int)
	for i := range taps {
		byDevice[taps[i].Device] = append(byDevice[taps[i].Device], i)
	}
	devices := make([]string, 0, len(byDevice))
	for d := range byDevice {
		devices = append(devices, d)
	}
	slices.Sort(devices)

	rollup := make(map[Key]*Row)
	counts := make(map[[2]string]*DevicePeriod)
	count := func(device, period string) *DevicePeriod {
		k := [2]string{device, period}
		c := counts[k]
		if c == nil {
			c = &DevicePeriod{Device: device, Period: period}
			counts[k] = c
		}
		return c
	}
	months := periods{loc: loc}
	for _, d := range devices {
		idx := byDevice[d]
		mine := make([]tap.Tap, len(idx))
		for k, i := range idx {
			mine[k] = taps[i]
		}
		dev, ok := st.Devices[d]
		if !ok {
			dev = recon.Device{Name: d}
		}
		step := recon.Advance(dev, st.Open[d], mine, now, lim, loc)
		p.Duplicates += step.Duplicates
		p.Removed = append(p.Removed, step.Removed...)
		p.Added = append(p.Added, step.Added...)
		p.Anomalies = append(p.Anomalies, step.Anomalies...)
		if len(step.New) > 0 {
			p.Devices = append(p.Devices, step.Device)
		}
		isNew := make([]bool, len(mine))
		for _, k := range step.New {
			isNew[k] = true
			t := &taps[idx[k]]
			period, day := months.of(t.Time)
			into, adjusts := store.Book(period, st.Closed)
			nt := Tap{Tap: t, Period: period, Day: day}
			if adjusts != "" {
				nt.Booked = into
			}
			p.New = append(p.New, nt)
			c := count(d, period)
			c.Taps++
			if c.FirstSeq == 0 || t.Seq < c.FirstSeq {
				c.FirstSeq = t.Seq
			}
			c.LastSeq = max(c.LastSeq, t.Seq)
			if !store.Compensable(t) {
				continue
			}
			key := Key{Period: into, Adjusts: adjusts, Carrier: t.Carrier, Category: t.Category, Funding: t.Funding, Route: t.Route, Day: day}
			r := rollup[key]
			if r == nil {
				r = &Row{Key: key}
				rollup[key] = r
			}
			r.Rides++
			r.FareKop += t.FareKop
			r.ChargedKop += t.ChargedKop
			r.CompensationKop += t.CompensationKop
		}
		for k := range mine {
			if !isNew[k] {
				period, _ := months.of(mine[k].Time)
				count(d, period).Duplicates++
			}
		}
	}
	for _, r := range rollup {
		p.Rollup = append(p.Rollup, *r)
	}
	slices.SortFunc(p.Rollup, func(a, b Row) int { return compareKeys(a.Key, b.Key) })
	for _, c := range counts {
		p.DevicePeriods = append(p.DevicePeriods, *c)
	}
	slices.SortFunc(p.DevicePeriods, func(a, b DevicePeriod) int {
		return cmp.Or(strings.Compare(a.Device, b.Device), strings.Compare(a.Period, b.Period))
	})
	p.CloneChecks = cloneChecks(p.New)
	p.Rerate, p.DeviceNumbers = needs(p.New)
	return p
}

func compareKeys(a, b Key) int {
	return cmp.Or(strings.Compare(a.Period, b.Period), strings.Compare(a.Carrier, b.Carrier),
		strings.Compare(a.Adjusts, b.Adjusts), strings.Compare(a.Category, b.Category),
		strings.Compare(a.Funding, b.Funding), strings.Compare(a.Route, b.Route), strings.Compare(a.Day, b.Day))
}

// periods gives the accounting month and day of a time as tap.Period
// does. A batch is one device's taps in time order, so nearly every tap is
// on the day of the one before, and formatting each one's date cost more
// than encoding the rest of its row.
type periods struct {
	loc         *time.Location
	y           int
	m           time.Month
	d           int
	month, date string
}

func (p *periods) of(t time.Time) (month, day string) {
	y, m, d := t.In(p.loc).Date()
	if p.date == "" || y != p.y || m != p.m || d != p.d {
		p.y, p.m, p.d = y, m, d
		lt := t.In(p.loc)
		p.date, p.month = lt.Format("2006-01-02"), lt.Format("2006-01")
	}
	return p.month, p.date
}
