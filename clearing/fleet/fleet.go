// Package fleet answers an operator's questions about the validators from
// what clearing received: which devices went silent, which run an old
// hotlist or tariff, whose clock is off. It reads the per-device state
// that ingest keeps (store.DeviceState) and needs nothing from the
// devices themselves, so it also sees the ones that are off the network.
//
// The newest hotlist and tariff versions are the newest any device
// reported: a device behind them has not fetched the update the others
// run. A device that never reported a version (taps stored before clearing
// kept fleet state) counts as neither old nor current.
package fleet

import (
	"context"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// Defaults of Options.
const (
	// DefaultOffline is how long a device may stay silent before it is
	// shown as offline: buses upload every few seconds while on the road.
	DefaultOffline = time.Hour
	// DefaultClockSkew is how far a device's clock may be from clearing's
	// before it is flagged.
	DefaultClockSkew = 5 * time.Minute
)

// Thresholds are the silences the summary counts: a shift, a day, a week;
// ThresholdNames name them (in metrics and reports).
var (
	Thresholds     = []time.Duration{time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	ThresholdNames = []string{"1h", "24h", "7d"}
)

// Options tune what counts as a problem.
type Options struct {
	// Offline is the silence after which a device is offline; 0 means
	// DefaultOffline.
	Offline time.Duration
	// ClockSkew is the clock offset beyond which a device is flagged; 0
	// means DefaultClockSkew.
	ClockSkew time.Duration
}

func (o Options) withDefaults() Options {
	if o.Offline <= 0 {
		o.Offline = DefaultOffline
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = DefaultClockSkew
	}
	return o
}

// Device is one device's state with what it means now.
type Device struct {
	store.DeviceState
	// HeardAt is when clearing last heard from the device: its last
	// batch, or its last tap when no batch is known. Zero when neither.
	HeardAt time.Time
	// Silent is how long ago that was (0 when HeardAt is zero).
	Silent time.Duration
	// Offline is set when the device has been silent longer than
	// Options.Offline, or was never heard from.
	Offline bool
	// OldHotlist and OldTariff are set when the device's version is behind
	// the newest in the fleet.
	OldHotlist, OldTariff bool
	// ClockSkewed is set when the clock offset exceeds Options.ClockSkew
	// either way.
	ClockSkewed bool
}

// Summary counts the fleet's problems.
type Summary struct {
	Devices int
	Offline int
	// SilentOver counts the devices silent for longer than each of
	// Thresholds (never-heard devices in all of them).
	SilentOver  []int
	OldHotlist  int
	OldTariff   int
	ClockSkewed int
}

// View is the fleet at one instant.
type View struct {
	At            time.Time
	Options       Options
	NewestHotlist uint64
	NewestTariff  uint32
	Devices       []Device // sorted by device, as the store gives them
	Summary       Summary
}

// Build interprets states at now.
func Build(states []store.DeviceState, now time.Time, opt Options) View {
	opt = opt.withDefaults()
	v := View{At: now, Options: opt, Summary: Summary{Devices: len(states), SilentOver: make([]int, len(Thresholds))}}
	for _, s := range states {
		v.NewestHotlist = max(v.NewestHotlist, s.HotlistVersion)
		v.NewestTariff = max(v.NewestTariff, s.TariffVersion)
	}
	v.Devices = make([]Device, 0, len(states))
	for _, s := range states {
		d := Device{DeviceState: s, HeardAt: s.LastBatch}
		if d.HeardAt.IsZero() {
			d.HeardAt = s.LastTap
		}
		if !d.HeardAt.IsZero() {
			d.Silent = max(0, now.Sub(d.HeardAt))
		}
		d.Offline = d.HeardAt.IsZero() || d.Silent > opt.Offline
		known := s.VersionSeq > 0
		d.OldHotlist = known && s.HotlistVersion < v.NewestHotlist
		d.OldTariff = known && s.TariffVersion < v.NewestTariff
		d.ClockSkewed = !s.LastBatch.IsZero() && (s.ClockOffset > opt.ClockSkew || s.ClockOffset < -opt.ClockSkew)
		sum := &v.Summary
		if d.Offline {
			sum.Offline++
		}
		for i, th := range Thresholds {
			if d.HeardAt.IsZero() || d.Silent > th {
				sum.SilentOver[i]++
			}
		}
		if d.OldHotlist {
			sum.OldHotlist++
		}
		if d.OldTariff {
			sum.OldTariff++
		}
		if d.ClockSkewed {
			sum.ClockSkewed++
		}
		v.Devices = append(v.Devices, d)
	}
	return v
}

// Source is the part of a clearing store the fleet view reads.
type Source interface {
	Fleet(ctx context.Context) ([]store.DeviceState, error)
}

// Read builds the view of the fleet in src at now.
func Read(ctx context.Context, src Source, now time.Time, opt Options) (View, error) {
	states, err := src.Fleet(ctx)
	if err != nil {
		return View{}, err
	}
	return Build(states, now, opt), nil
}

// Problems returns the devices with any problem, in the view's order.
func (v View) Problems() []Device {
	var out []Device
	for _, d := range v.Devices {
		if d.Offline || d.OldHotlist || d.OldTariff || d.ClockSkewed {
			out = append(out, d)
		}
	}
	return out
}

// RecentWindow is how long before a period a device must have been heard
// from for SilentOver to count it: a device retired long ago is not a
// month's open question.
const RecentWindow = 7 * 24 * time.Hour

// SilentOver returns the devices that may still hold rides of the period
// [start, end): heard from during the period or in the RecentWindow before
// it, but not since the period ended (for a period still running: not
// within the Offline threshold). A device uploads its batches in order, so
// one heard from after the end has sent everything it took before then;
// the gap check covers what it lost. Never-heard devices tell nothing and
// are left out.
func (v View) SilentOver(start, end time.Time) []Device {
	cutoff := end
	if recent := v.At.Add(-v.Options.withDefaults().Offline); recent.Before(cutoff) {
		cutoff = recent
	}
	from := start.Add(-RecentWindow)
	var out []Device
	for _, d := range v.Devices {
		if !d.HeardAt.IsZero() && !d.HeardAt.Before(from) && d.HeardAt.Before(cutoff) {
			out = append(out, d)
		}
	}
	return out
}
