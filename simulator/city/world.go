package city

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// Streams of the seeded generator: each part of the city draws from its
// own, so that changing one (more faults) does not reshuffle another (the
// population).
const (
	streamPopulation = 0xC17
	streamFleet      = 0xF1EE7
	streamFaults     = 0xFA17
	streamDay        = 0xDA7 << 20 // + day index
)

// world is the city as built from the config: the fleet, the riders and
// their cards. It is what the simulator knows to be true.
type world struct {
	cfg    Config
	tariff *fare.Tariff
	loc    *time.Location
	start  time.Time // first day, midnight local

	routes  []*route
	devices []*device
	// vehicleOf maps a device number to its vehicle code, as the
	// validators' cardtx.Fleet does, so that a card's last tap at one
	// door is the same ride at the other.
	vehicleOf map[uint32]string
	byID      map[string]*device

	riders []*rider
	groups []Group
	// serial is the last card serial issued.
	serial uint64
	// issued are every card issued, replacements and lost ones included:
	// the registry's records of them are clearing's (proof.go).
	issued []*cardState
}

// route is one served route and its vehicles.
type route struct {
	idx      int
	carrier  string
	id       string
	code     uint16
	network  string
	vehicles [][]*device // each vehicle's validators
	// full and fast are the indexes of vehicles of each lane.
	full, fast []int
}

// device is one validator and what the simulator knows about it.
type device struct {
	idx         int
	id          string
	number      uint32
	carrier     string
	route       *route
	vehicle     string
	carrierCode uint16
	full        bool

	// drift is how far its clock is off.
	drift time.Duration
	// offline[d] is true when the validator is offline on day d.
	offline []bool

	// hotlist is the version of the hotlist in force on it.
	hotlist uint64
	// seq is the last sequence number its journal gave out.
	seq uint64
	// pending are the taps journalled but not yet delivered to clearing,
	// in sequence order; delivered counts those that were.
	pending   []tap.Tap
	delivered int64
	// owed is, for each pending tap, what the reference model says
	// clearing must pay for it (nil: nothing).
	owed []*owed
	// audit keeps the delivered taps when Options.Audit is set.
	audit []tap.Tap

	rig  *rig        // full fidelity: the real validator
	fast *fastDevice // fast fidelity: sealing
	// dishonest validators lie in their batches (Faults.Dishonest).
	dishonest bool
}

// rider is one cardholder.
type rider struct {
	idx      int
	group    int
	home     *route
	other    *route
	careless bool
	full     bool
	// morning and evening are the rider's habitual departures, seconds
	// after midnight.
	morning, evening int32
	card             *cardState
	// topUp is set after a denial for funds: even a careless rider tops
	// up before the next trip.
	topUp bool
}

func (w *world) rng(stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(w.cfg.Seed, stream))
}

// buildFleet makes the routes, vehicles and validators of the scaled
// city. fullPerRoute vehicles of each route (all when negative) belong
// to the full-fidelity lane.
func (w *world) buildFleet(fullPerRoute int) error {
	counts := w.cfg.vehiclesPerRoute()
	w.vehicleOf = map[uint32]string{}
	w.byID = map[string]*device{}
	var number uint32 = 100_000
	for ci, ca := range w.cfg.Carriers {
		tc, priced := w.tariff.Carriers[ca.ID]
		slug := strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(ca.ID))
		// The card's log names the last route by its code, and the next
		// validator prices a transfer from it: two routes of a carrier
		// with one code would price the wrong network.
		codes := map[uint16]string{}
		for ri, rc := range ca.Routes {
			n := counts[ci][ri]
			if n == 0 {
				continue
			}
			r := &route{idx: len(w.routes), carrier: ca.ID, id: rc.ID, code: rc.Code}
			if priced {
				r.network = tc.Network
				for _, tr := range tc.Routes {
					if tr.ID == rc.ID {
						r.network = tr.Network
						if r.code == 0 {
							r.code = tr.Code
						}
					}
				}
			}
			if r.code == 0 {
				r.code = uint16(1000 + ri)
			}
			if other, ok := codes[r.code]; ok {
				return fmt.Errorf("carrier %s: routes %s and %s have the same code %d", ca.ID, other, rc.ID, r.code)
			}
			codes[r.code] = rc.ID
			doors := max(rc.Validators, 1)
			for v := range n {
				veh := fmt.Sprintf("%s-%s-%03d", slug, rc.ID, v+1)
				// A route keeps at least one vehicle in the fast lane when
				// it has both, so both lanes' riders can ride it.
				full := fullPerRoute < 0 || (n > 1 && v < min(fullPerRoute, n-1))
				var vd []*device
				for door := range doors {
					number++
					d := &device{idx: len(w.devices), id: fmt.Sprintf("%s-%d", veh, door+1), number: number,
						carrier: ca.ID, route: r, vehicle: veh, full: full, offline: make([]bool, w.cfg.Days+1)}
					if priced {
						d.carrierCode = tc.Code
					}
					w.devices = append(w.devices, d)
					w.byID[d.id] = d
					w.vehicleOf[number] = veh
					vd = append(vd, d)
				}
				if full {
					r.full = append(r.full, len(r.vehicles))
				} else {
					r.fast = append(r.fast, len(r.vehicles))
				}
				r.vehicles = append(r.vehicles, vd)
			}
			w.routes = append(w.routes, r)
		}
	}
	if len(w.devices) == 0 {
		return errors.New("the scaled fleet has no validator: raise fleet_scale")
	}
	return nil
}

// buildPopulation makes the riders of the scaled city; fullCards of them
// (all when negative), spread over every group, ride in the full-fidelity
// lane. It issues their cards' contents but writes no card.
func (w *world) buildPopulation(fullCards int) error {
	rng := w.rng(streamPopulation)
	w.groups = w.cfg.Population
	total := 0
	for _, g := range w.groups {
		total += w.cfg.groupSize(g)
	}
	if total == 0 {
		return errors.New("the scaled city has no cardholder: raise scale")
	}
	// Every stride-th rider rides in the full lane, so each group has its
	// share of real cards.
	stride := 1
	if fullCards >= 0 && fullCards < total {
		stride = max(1, total/max(fullCards, 1))
	}
	fullLeft := fullCards
	// One allocation each for the riders and their cards, sized to never
	// grow: a city of a million people is otherwise a million small
	// objects for the garbage collector to walk.
	riders := make([]rider, 0, total)
	cards := make([]cardState, 0, total)
	w.riders = make([]*rider, 0, total)
	for gi, g := range w.groups {
		choices := [2][]*route{w.routesFor(g, false), w.routesFor(g, true)}
		for range w.cfg.groupSize(g) {
			riders = append(riders, rider{idx: len(w.riders), group: gi, careless: rng.Float64() < w.cfg.Riding.CarelessShare})
			r := &riders[len(riders)-1]
			if fullCards < 0 || (fullLeft > 0 && r.idx%stride == 0) {
				r.full = true
				fullLeft--
			}
			lane := choices[0]
			if r.full {
				lane = choices[1]
			}
			if len(lane) == 0 {
				return fmt.Errorf("profile %s: no route served in its fidelity lane", g.Profile)
			}
			r.home = pick(rng, lane)
			r.other = pick(rng, lane)
			switch g.Pattern {
			case PatternCommuter:
				r.morning = int32(6*3600 + 30*60 + rng.IntN(150*60))
				r.evening = int32(16*3600 + 30*60 + rng.IntN(180*60))
			case PatternStudent:
				r.morning = int32(7*3600 + 30*60 + rng.IntN(120*60))
				r.evening = int32(13*3600 + rng.IntN(300*60))
			case PatternSchool:
				r.morning = int32(7*3600 + rng.IntN(60*60))
				r.evening = int32(13*3600 + rng.IntN(180*60))
			default: // daytime
				r.morning = int32(8*3600 + 30*60 + rng.IntN(180*60))
				r.evening = int32(12*3600 + rng.IntN(240*60))
			}
			purse := w.cfg.Riding.PurseMinKop
			if span := w.cfg.Riding.PurseMaxKop - w.cfg.Riding.PurseMinKop; span > 0 {
				purse += rng.Int64N(span+1) / 100 * 100 // whole hryvnias, as desks take them
			}
			var pass *card.Pass
			if g.PassProduct != 0 && rng.Float64() < g.PassShare {
				pp := w.tariff.Passes[g.PassProduct]
				// Passes were bought on different days, so some run out
				// during the simulation and their riders pay again.
				from := w.start.AddDate(0, 0, -rng.IntN(max(pp.Days, 1)))
				fd, err := card.DateOf(from)
				if err != nil {
					return err
				}
				to, err := card.DateOf(from.AddDate(0, 0, max(pp.Days, 1)-1))
				if err != nil {
					return err
				}
				pass = &card.Pass{Product: g.PassProduct, ValidFrom: fd, ValidTo: to, Carriers: pp.Groups}
			}
			cards = append(cards, cardState{})
			c, err := w.newCard(&cards[len(cards)-1], g, purse, pass, nil)
			if err != nil {
				return err
			}
			c.rider = r
			r.card = c
			w.riders = append(w.riders, r)
		}
	}
	return nil
}

// routesFor lists the routes a group rides in a lane, each repeated by
// its vehicle count so that busier routes carry more riders.
func (w *world) routesFor(g Group, full bool) []*route {
	var all, preferred []*route
	for _, r := range w.routes {
		n := len(r.fast)
		if full {
			n = len(r.full)
		}
		for range n {
			all = append(all, r)
			for _, n := range g.Networks {
				if r.network == n {
					preferred = append(preferred, r)
				}
			}
		}
	}
	if len(preferred) > 0 {
		return preferred
	}
	return all
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// newCard issues the next card serial for a member of group g, in c
// (nil: a new one). A replacement passes the card it replaces as old: it
// keeps the contract and gets a fresh number, UID and counters.
func (w *world) newCard(c *cardState, g Group, purse int64, pass *card.Pass, old *cardState) (*cardState, error) {
	w.serial++
	num, err := card.NewNumber(w.cfg.Issuer, w.serial)
	if err != nil {
		return nil, err
	}
	issued := w.start.AddDate(0, 0, -int(w.serial%900)-30)
	if old != nil {
		issued = old.issuedFor
	}
	if _, err := card.DateOf(issued); err != nil {
		return nil, err
	}
	expires, err := card.DateOf(issued.AddDate(5, 0, 0))
	if err != nil {
		return nil, err
	}
	if c == nil {
		c = new(cardState)
	}
	*c = cardState{serial: w.serial, number: uint64(num), purse: purse, tPurse: purse, issuedFor: issued}
	c.contract = card.Contract{Status: card.StatusActive, Number: num, Expires: expires}
	w.issued = append(w.issued, c)
	if old != nil {
		c.contract.Entitlements, c.contract.Passes = old.contract.Entitlements, old.contract.Passes
		c.contract.Expires = old.contract.Expires
		return c, nil
	}
	if g.Category != 0 {
		cat := w.tariff.Categories[strconv.Itoa(int(g.Category))]
		funding := card.FundingCity
		if cat.Funding == fare.FundingState {
			funding = card.FundingState
		}
		from, err := card.DateOf(issued)
		if err != nil {
			return nil, err
		}
		to, err := card.DateOf(w.start.AddDate(1, 0, 0))
		if err != nil {
			return nil, err
		}
		c.contract.Entitlements[0] = card.Entitlement{Category: g.Category, ValidFrom: from, ValidTo: to, Limit: g.Limit, Funding: funding}
	}
	if pass != nil {
		c.contract.Passes[0] = *pass
	}
	return c, nil
}

// personalisation is what the desk writes on c.
func (c *cardState) personalisation() issue.Personalisation {
	num := card.Number(c.number)
	issued, _ := card.DateOf(c.issuedFor) // newCard checked the range
	return issue.Personalisation{
		Identity: card.Identity{Number: num, Issuer: uint16(c.number / 1e12), Issued: issued, Expires: c.contract.Expires},
		Holder: card.Holder{Name: fmt.Sprintf("Resident %d", c.serial),
			BirthDate:   card.BirthDate{Year: 1935 + int(c.serial%60), Month: time.Month(1 + c.serial%12), Day: 1 + int(c.serial%28)},
			RegistryRef: 70_000 + c.serial},
		Contract: c.contract,
		PurseKop: c.purse,
	}
}
