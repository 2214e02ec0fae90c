// Package recon is clearing's reconciliation core: it decides, from what
// clearing already knows of a device's sequence, which arriving taps are
// new and which are repeats, keeps the device's missing sequence numbers
// as ranges (gaps) that close when late batches fill them, and recognises
// taps that cannot be right: clocks that run backwards or disagree with
// the batch, and one card seen on two vehicles too far apart to be one
// person.
//
// Everything here is a pure function of its arguments; the stores call it
// inside their transactions and persist what it returns, so both stores
// reconcile identically and tests need no database.
package recon

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/citycard/transit/validator/tap"
)

// Kind names a kind of anomaly. The values are stable: they are stored and
// shown in reports.
type Kind string

// Kinds of anomaly.
const (
	// TimeBackwards: a tap is earlier than the tap before it in the
	// device's sequence by more than Limits.MaxBackwards.
	TimeBackwards Kind = "time-backwards"
	// TapAfterSeal: a tap is later than the creation of the batch that
	// carries it, which a working validator cannot produce.
	TapAfterSeal Kind = "tap-after-seal"
	// TapLongBeforeSeal: a tap is older than its batch by more than
	// Limits.MaxBeforeBatch.
	TapLongBeforeSeal Kind = "tap-long-before-seal"
	// BatchSealedAhead: a batch was created later than clearing received
	// it, by more than Limits.MaxBatchAhead: the device clock runs ahead.
	// It is recorded against the batch's first tap.
	BatchSealedAhead Kind = "batch-sealed-ahead"
	// BeforePreviousRide: a tap is stamped before the card's previous ride
	// as the card's own log recorded it (tap.Tap.ClockAnomaly): one of the
	// two validators' clocks is wrong. The tap was decided with neither
	// anti-passback nor a transfer (FORMAT.md, "Deciding a tap").
	BeforePreviousRide Kind = "before-previous-ride"
	// HotlistedCard: a tap accepted at or after the time the card was
	// hotlisted.
	HotlistedCard Kind = "hotlisted-card"
	// ClonedCard: one card on two vehicles closer in time than one person
	// could travel between them.
	ClonedCard Kind = "cloned-card"
)

// Anomaly is one tap that reconciliation found suspect. Device and Seq
// name the tap; for a cloned card OtherDevice and OtherSeq name the other
// sighting. Anomalies are keyed by (Kind, Device, Seq, OtherDevice,
// OtherSeq), so recording one twice keeps one.
type Anomaly struct {
	Kind        Kind
	Device      string
	Seq         uint64
	OtherDevice string
	OtherSeq    uint64
	// Period is the accounting month of the tap (tap.Period).
	Period string
	// At is the tap's time, Card its card.
	At   time.Time
	Card uint64
	// Detail says in words what is wrong, with the numbers.
	Detail string
}

// Limits are the thresholds of the checks. The zero value of a field
// means its default.
type Limits struct {
	// MaxBackwards is how much earlier than its predecessor in the
	// device's sequence a tap may be (clock corrections). Default 5 s.
	MaxBackwards time.Duration
	// MaxAfterBatch is how much later than its batch's creation a tap
	// may be (rounding of the two clocks). Default 1 min.
	MaxAfterBatch time.Duration
	// MaxBeforeBatch is how much older than its batch a tap may be.
	// Validators work offline and keep taps until they can upload, so
	// this is generous. Default 7 days.
	MaxBeforeBatch time.Duration
	// MaxBatchAhead is how much later than its receipt a batch may claim
	// to have been created. Default 5 min.
	MaxBatchAhead time.Duration
	// CloneSpeedKmh is the speed above which two sightings of one card
	// cannot be one person: faster than a city bus or car can take them.
	// Default 120 km/h.
	CloneSpeedKmh float64
	// CloneMinKm is the least distance between two sightings that counts:
	// nearer ones are within GPS error and the length of a stop. Default
	// 2 km.
	CloneMinKm float64
	// CloneWindow is how far apart in time two sightings are compared.
	// At CloneSpeedKmh it covers any two places in a city of 120 km
	// across. Default 1 h.
	CloneWindow time.Duration
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&l.MaxBackwards, 5*time.Second)
	def(&l.MaxAfterBatch, time.Minute)
	def(&l.MaxBeforeBatch, 7*24*time.Hour)
	def(&l.MaxBatchAhead, 5*time.Minute)
	def(&l.CloneWindow, time.Hour)
	if l.CloneSpeedKmh <= 0 {
		l.CloneSpeedKmh = 120
	}
	if l.CloneMinKm <= 0 {
		l.CloneMinKm = 2
	}
	return l
}

// BatchClock checks the taps of one sealed batch against the batch's
// creation time and against the time clearing received it. It returns the
// anomalies found, in sequence order; loc is the city's time zone.
func BatchClock(b *tap.Batch, received time.Time, lim Limits, loc *time.Location) []Anomaly {
	lim = lim.WithDefaults()
	var out []Anomaly
	first := -1
	for i := range b.Taps {
		t := &b.Taps[i]
		if first < 0 || t.Seq < b.Taps[first].Seq {
			first = i
		}
		if t.ClockAnomaly {
			detail := fmt.Sprintf("tap at %s is before the card's previous ride", stamp(t.Time))
			if t.Prev.Device != 0 {
				detail = fmt.Sprintf("tap at %s is %s before the card's previous ride (device %d, sequence %d, at %s)",
					stamp(t.Time), t.Prev.Time.Sub(t.Time).Round(time.Second), t.Prev.Device, t.Prev.Seq, stamp(t.Prev.Time))
			}
			out = append(out, anomaly(BeforePreviousRide, t, loc, detail))
		}
		switch {
		case t.Time.After(b.Created.Add(lim.MaxAfterBatch)):
			out = append(out, anomaly(TapAfterSeal, t, loc, fmt.Sprintf("tap at %s is %s after its batch was created (%s)",
				stamp(t.Time), t.Time.Sub(b.Created).Round(time.Second), stamp(b.Created))))
		case t.Time.Before(b.Created.Add(-lim.MaxBeforeBatch)):
			out = append(out, anomaly(TapLongBeforeSeal, t, loc, fmt.Sprintf("tap at %s is %s older than its batch (created %s)",
				stamp(t.Time), b.Created.Sub(t.Time).Round(time.Second), stamp(b.Created))))
		}
	}
	if first >= 0 && b.Created.After(received.Add(lim.MaxBatchAhead)) {
		t := &b.Taps[first]
		out = append(out, anomaly(BatchSealedAhead, t, loc, fmt.Sprintf("batch created %s, %s after clearing received it (%s): the device clock runs ahead",
			stamp(b.Created), b.Created.Sub(received).Round(time.Second), stamp(received))))
	}
	slices.SortStableFunc(out, func(a, b Anomaly) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

func anomaly(k Kind, t *tap.Tap, loc *time.Location, detail string) Anomaly {
	return Anomaly{Kind: k, Device: t.Device, Seq: t.Seq, Period: t.Period(loc), At: t.Time, Card: t.Card, Detail: detail}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Sighting is a tap reduced to what the cloned-card check needs.
type Sighting struct {
	Device  string
	Seq     uint64
	Vehicle string
	Time    time.Time
	// Lat and Lon are in microdegrees; (0, 0) means unknown.
	Lat, Lon int32
}

// Known reports whether the sighting has a position.
func (s Sighting) Known() bool { return s.Lat != 0 || s.Lon != 0 }

// DistanceKm is the great-circle distance between two positions given in
// microdegrees (haversine on a sphere of the Earth's mean radius).
func DistanceKm(lat1, lon1, lat2, lon2 int32) float64 {
	const earthKm = 6371.0088
	rad := func(micro int32) float64 { return float64(micro) / 1e6 * math.Pi / 180 }
	φ1, φ2 := rad(lat1), rad(lat2)
	dφ, dλ := φ2-φ1, rad(lon2)-rad(lon1)
	h := math.Sin(dφ/2)*math.Sin(dφ/2) + math.Cos(φ1)*math.Cos(φ2)*math.Sin(dλ/2)*math.Sin(dλ/2)
	return 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Clone reports whether two sightings of one card are too far apart for
// the time between them, and the speed that would take (+Inf for the same
// instant). Sightings on the same vehicle, without a position, more than
// CloneWindow apart or nearer than CloneMinKm are never suspect.
func Clone(a, b Sighting, lim Limits) (kmh float64, suspect bool) {
	lim = lim.WithDefaults()
	if a.Vehicle == b.Vehicle || !a.Known() || !b.Known() {
		return 0, false
	}
	dt := a.Time.Sub(b.Time).Abs()
	if dt > lim.CloneWindow {
		return 0, false
	}
	km := DistanceKm(a.Lat, a.Lon, b.Lat, b.Lon)
	if km < lim.CloneMinKm {
		return 0, false
	}
	if dt == 0 {
		return math.Inf(1), true
	}
	kmh = km / dt.Hours()
	return kmh, kmh > lim.CloneSpeedKmh
}

// CloneAnomaly describes a suspect pair as one anomaly, keyed with the
// lesser (device, seq) first so that finding the pair from either side
// records it once.
func CloneAnomaly(card uint64, a, b Sighting, kmh float64, loc *time.Location) Anomaly {
	if cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Seq, b.Seq)) > 0 {
		a, b = b, a
	}
	speed := "at the same instant"
	if !math.IsInf(kmh, 1) {
		speed = fmt.Sprintf("%.0f km/h", kmh)
	}
	return Anomaly{
		Kind: ClonedCard, Device: a.Device, Seq: a.Seq, OtherDevice: b.Device, OtherSeq: b.Seq,
		Period: (&tap.Tap{Time: a.Time}).Period(loc), At: a.Time, Card: card,
		Detail: fmt.Sprintf("card %d on vehicle %s at %s and on vehicle %s at %s, %.1f km apart: %s",
			card, a.Vehicle, stamp(a.Time), b.Vehicle, stamp(b.Time),
			DistanceKm(a.Lat, a.Lon, b.Lat, b.Lon), speed),
	}
}

// Hotlisted describes an accepted tap of a card hotlisted from from.
func Hotlisted(t *tap.Tap, from time.Time, loc *time.Location) Anomaly {
	return anomaly(HotlistedCard, t, loc, fmt.Sprintf("card %d is hotlisted from %s; tap accepted at %s, %s later",
		t.Card, stamp(from), stamp(t.Time), t.Time.Sub(from).Round(time.Second)))
}
