package city

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// eventKind says why a card is presented.
type eventKind uint8

const (
	evRide      eventKind = iota // a leg of a trip
	evDoubleTap                  // the same card at the same door seconds later
	evRetap                      // again, after a torn card or a power cut
	evFound                      // a lost card, tapped by whoever found it
)

// Power cuts of an event.
const (
	powerNone       = 0
	powerBeforeCard = 1 // after the journal append, before the card is written
	powerAfterCard  = 2 // after the card committed, before the journal settled
)

// event is one presentation of a card to a validator, at a true instant;
// the validator stamps it with its own clock.
type event struct {
	at    time.Time
	order int32 // planning order, which breaks ties of at
	card  *cardState
	dev   *device
	kind  eventKind
	first bool  // the first leg of a trip: a rider tops up before it
	tear  uint8 // the card leaves the field after this many APDUs (0: it stays)
	power uint8 // powerBeforeCard or powerAfterCard: the validator loses power mid-tap
}

// dayPlan is everything that happens on one day, decided in advance so
// that the day is the same however its taps are executed.
type dayPlan struct {
	index  int
	date   time.Time // midnight local
	events []event
	// lost are the riders who lose their card in the evening.
	lost []*rider
}

// Ride hours: nobody rides before 05:00 or after 23:30.
const (
	firstRide = 5 * 3600
	lastRide  = 23*3600 + 30*60
)

// plan decides the rides of day index d. found are the lost cards their
// finders still tap.
func (w *world) plan(d int, found []*cardState) *dayPlan {
	rng := w.rng(streamDay + uint64(d))
	date := w.start.AddDate(0, 0, d)
	p := &dayPlan{index: d, date: date}
	weekend := date.Weekday() == time.Saturday || date.Weekday() == time.Sunday
	// Rides are at wall clock times: on the day of a time change a ride
	// at 08:00 is still at 08:00, which adding seconds to midnight would
	// miss, so that day takes the slower time.Date.
	y, m, dd := date.Date()
	plainDay := date.AddDate(0, 0, 1).Sub(date) == 24*time.Hour
	at := func(secs int) time.Time {
		secs = min(max(secs, firstRide), lastRide)
		ms := time.Duration(rng.IntN(1000)) * time.Millisecond
		if plainDay {
			return date.Add(time.Duration(secs)*time.Second + ms)
		}
		return time.Date(y, m, dd, 0, 0, secs, int(ms), w.loc)
	}
	faults := w.cfg.Faults
	riding := w.cfg.Riding
	add := func(e event) {
		p.events = append(p.events, e)
		if rng.Float64() < faults.TornShare {
			// The card leaves after 1 to 9 APDUs: while being read, while
			// being written, or, for a short transaction, not at all.
			p.events[len(p.events)-1].tear = uint8(1 + rng.IntN(9))
			p.events = append(p.events, event{at: e.at.Add(time.Duration(3000+rng.IntN(5000)) * time.Millisecond),
				card: e.card, dev: e.dev, kind: evRetap})
		}
		if e.kind == evRide && rng.Float64() < riding.DoubleTapShare {
			p.events = append(p.events, event{at: e.at.Add(time.Duration(10+rng.IntN(50)) * time.Second),
				card: e.card, dev: e.dev, kind: evDoubleTap})
		}
	}
	for _, r := range w.riders {
		if r.card == nil || r.card.lost {
			continue
		}
		g := &w.groups[r.group]
		mean := g.TripsPerWeekday
		if weekend {
			mean *= g.WeekendFactor
		}
		trips := int(mean)
		if rng.Float64() < mean-math.Floor(mean) {
			trips++
		}
		for k := range trips {
			var start int
			var from, to *route
			switch k {
			case 0:
				start, from, to = int(r.morning)+int(rng.NormFloat64()*15*60), r.home, r.other
				if weekend {
					start += 2 * 3600
				}
			case 1:
				start, from, to = int(r.evening)+int(rng.NormFloat64()*20*60), r.other, r.home
			default:
				start = 9*3600 + rng.IntN(12*3600)
				from, to = r.home, r.other
				if rng.IntN(2) == 0 {
					from, to = to, from
				}
			}
			legs := []*route{from}
			// A rider whose two routes are one has nowhere to change.
			if rng.Float64() < riding.TransferShare && to != from {
				legs = append(legs, to)
			}
			t := start
			for i, rt := range legs {
				dev := w.boardOn(rng, rt, r.full)
				if dev == nil {
					break // the rider's lane has no vehicle on this route
				}
				add(event{at: at(t), card: r.card, dev: dev, kind: evRide, first: i == 0})
				t += (10 + rng.IntN(25)) * 60
			}
		}
		if rng.Float64() < riding.LostPerDay {
			p.lost = append(p.lost, r)
		}
	}
	for _, c := range found {
		if rng.IntN(2) == 0 {
			continue
		}
		rt := w.routes[rng.IntN(len(w.routes))]
		if dev := w.boardOn(rng, rt, c.vc != nil); dev != nil {
			add(event{at: at(7*3600 + rng.IntN(14*3600)), card: c, dev: dev, kind: evFound})
		}
	}
	// Power cuts: a share of validators lose power once during one of
	// their taps; the rider taps again once the validator has rebooted.
	if faults.PowerCutShare > 0 {
		byDev := map[*device][]int{}
		for i := range p.events {
			if p.events[i].kind == evRide && p.events[i].tear == 0 {
				byDev[p.events[i].dev] = append(byDev[p.events[i].dev], i)
			}
		}
		for _, dev := range w.devices {
			idx := byDev[dev]
			if len(idx) == 0 || rng.Float64() >= faults.PowerCutShare {
				continue
			}
			e := &p.events[idx[rng.IntN(len(idx))]]
			e.power = uint8(1 + rng.IntN(2))
			p.events = append(p.events, event{at: e.at.Add(time.Duration(60+rng.IntN(60)) * time.Second),
				card: e.card, dev: e.dev, kind: evRetap})
		}
	}
	// Events planned earlier come first at equal instants, so the order
	// is the same on every run.
	p.events = sortEvents(p.events, date)
	return p
}

// sortEvents orders events by time, and events planned earlier first at
// equal times, so the order is the same on every run. Sorting a million
// events of a day by a packed key (milliseconds into the day, planning
// order) and moving each once is several times faster than sorting the
// events themselves.
func sortEvents(events []event, day time.Time) []event {
	keys := make([]uint64, len(events))
	for i := range events {
		ms := events[i].at.Sub(day).Milliseconds()
		if ms < 0 || ms >= 1<<31 || events[i].at.Sub(day)%time.Millisecond != 0 {
			// Not a day's events: sort them as they are.
			for i := range events {
				events[i].order = int32(i)
			}
			slices.SortFunc(events, func(a, b event) int {
				return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.order, b.order))
			})
			return events
		}
		keys[i] = uint64(ms)<<32 | uint64(i)
	}
	slices.Sort(keys)
	out := make([]event, len(events))
	for i, k := range keys {
		out[i] = events[uint32(k)]
	}
	return out
}

// boardOn picks a vehicle of route rt in the rider's lane, and one of its
// doors; nil when the lane has no vehicle there.
func (w *world) boardOn(rng *rand.Rand, rt *route, full bool) *device {
	vs := rt.fast
	if full {
		vs = rt.full
	}
	if len(vs) == 0 {
		return nil
	}
	veh := rt.vehicles[vs[rng.IntN(len(vs))]]
	return veh[rng.IntN(len(veh))]
}
