package city

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/citycard/transit/validator/fare"
)

// defaultConfig is a mid-size Ukrainian city at full size: about 270,000
// cardholders, 100,000 of them with benefits, and 800 validators.
//
//go:embed city.json
var defaultConfig []byte

// DefaultConfig returns the embedded mid-size city at scale 1.
func DefaultConfig() Config {
	c, err := ParseConfig(defaultConfig)
	if err != nil {
		panic(fmt.Sprintf("embedded city.json: %v", err)) // a test parses it
	}
	return c
}

// DefaultConfigJSON returns the embedded city config as JSON, for
// editing.
func DefaultConfigJSON() []byte { return bytes.Clone(defaultConfig) }

// Config describes a synthetic city: its carriers and fleet, its
// population by benefit category, how people ride, and which faults to
// inject. Counts are at full size; Scale (and FleetScale) shrink them.
// Money is in kopiyky.
type Config struct {
	Name string `json:"name"`
	// TimeZone is the city's zone (default: the tariff's).
	TimeZone string `json:"time_zone,omitempty"`
	// Issuer is the card issuer code, the first four digits of card
	// numbers.
	Issuer uint16 `json:"issuer"`
	// Start is the first simulated day, YYYY-MM-DD; Days how many.
	Start string `json:"start"`
	Days  int    `json:"days"`
	// Seed makes the city and every day of it repeatable.
	Seed uint64 `json:"seed"`
	// Scale multiplies the population (and the fleet unless FleetScale
	// is set): 1 is the city as described.
	Scale      float64 `json:"scale"`
	FleetScale float64 `json:"fleet_scale,omitempty"`

	Carriers   []Carrier `json:"carriers"`
	Population []Group   `json:"population"`
	Riding     Riding    `json:"riding"`
	Faults     Faults    `json:"faults"`
	Clearing   Clearing  `json:"clearing"`
}

// Carrier is one transport company and its routes.
type Carrier struct {
	// ID is the tariff's carrier id (x_carriers.txt).
	ID string `json:"id"`
	// Ownership is "municipal" or "private"; it is reported, the tariff
	// decides fares.
	Ownership string  `json:"ownership"`
	Routes    []Route `json:"routes"`
}

// Route is one line and the vehicles that serve it.
type Route struct {
	ID string `json:"id"`
	// Code is the number written in the card's tap log; 0 takes the
	// tariff's code for the route, or else a number of its own.
	Code     uint16 `json:"code,omitempty"`
	Vehicles int    `json:"vehicles"`
	// Validators is how many validators each vehicle carries (default 1).
	Validators int `json:"validators,omitempty"`
}

// Group is one kind of cardholder.
type Group struct {
	Profile string `json:"profile"`
	// Category is the benefit category code on the card; 0 is full fare.
	Category uint16 `json:"category,omitempty"`
	// Limit is the monthly ride limit written on the card (0: none).
	Limit       uint8 `json:"limit,omitempty"`
	Cardholders int   `json:"cardholders"`
	// Pattern is when they ride: commuter (morning and evening peaks),
	// daytime, student or school.
	Pattern string `json:"pattern"`
	// TripsPerWeekday is the mean number of trips on a working day;
	// WeekendFactor scales it on Saturdays and Sundays.
	TripsPerWeekday float64 `json:"trips_per_weekday"`
	WeekendFactor   float64 `json:"weekend_factor"`
	// PassShare of the group hold a period pass of product PassProduct
	// (the tariff's pass code).
	PassShare   float64 `json:"pass_share,omitempty"`
	PassProduct uint16  `json:"pass_product,omitempty"`
	// Networks, when set, are the networks the group mostly rides
	// (schoolchildren whose benefit is valid on trams and trolleybuses).
	Networks []string `json:"networks,omitempty"`
}

// Riding shapes the day's rides and the cards' lives.
type Riding struct {
	// TransferShare of trips have a second leg on another route.
	TransferShare float64 `json:"transfer_share"`
	// DoubleTapShare of taps are followed by the same card at the same
	// door seconds later (anti-passback).
	DoubleTapShare float64 `json:"double_tap_share"`
	// PurseMinKop..PurseMaxKop is the purse of a newly issued card.
	PurseMinKop int64 `json:"purse_min_kop"`
	PurseMaxKop int64 `json:"purse_max_kop"`
	// A rider whose purse is below TopUpBelowKop tops it up with
	// TopUpKop before a trip, unless careless (CarelessShare): a careless
	// rider tops up only after being denied for funds.
	TopUpBelowKop int64   `json:"topup_below_kop"`
	TopUpKop      int64   `json:"topup_kop"`
	CarelessShare float64 `json:"careless_share"`
	// LostPerDay is the share of cardholders who lose their card on a
	// day; the registry blocks it overnight and issues a replacement with
	// the balance carried over. FoundShare of lost cards are tapped by
	// whoever found them.
	LostPerDay float64 `json:"lost_per_day"`
	FoundShare float64 `json:"found_share"`
}

// Faults are what goes wrong on the way from the card to clearing.
type Faults struct {
	// TornShare of taps lose the card mid-transaction; the rider taps
	// again.
	TornShare float64 `json:"torn_share"`
	// PowerCutShare of validators lose power mid-tap once a day; the
	// validator reboots and the rider taps again.
	PowerCutShare float64 `json:"power_cut_share"`
	// Offline windows: validators that neither upload nor receive
	// hotlists for some days, then drain their journals.
	Offline []Offline `json:"offline,omitempty"`
	// LostAckShare of batches are stored by the bus but the
	// acknowledgement is lost, so the validator sends them again.
	LostAckShare float64 `json:"lost_ack_share"`
	// Replays is how many earlier batches are delivered again days later.
	Replays int `json:"replays"`
	// Forged batches, spread over the days.
	Forged Forged `json:"forged"`
	// ClockDrift sets some validators' clocks off.
	ClockDrift Drift `json:"clock_drift"`
	// Dishonest validators hold a valid device key and pad their
	// carrier's claims; clearing must hold every padded claim and pay
	// every honest ride.
	Dishonest Dishonest `json:"dishonest,omitzero"`
}

// Dishonest makes some validators lie in their own authenticated
// batches, as a carrier paid per benefit ride might have them do. They
// are chosen among the fast lane's validators: the full lane runs the
// real validator code, which does not lie.
//
// A dishonest validator inflates some of the benefit rides it really
// made (the card rode, the card's log holds the ride, only the amounts
// claimed are raised), in three ways that clearing's re-rating catches:
// a compensation raised but still within what the tariff can owe
// (held: differs), one above the most the tariff owes for any ride
// (over-tariff), and one of 2^40 kopiyky, which no tariff can hold
// (amount-invalid). It also invents benefit rides of real benefit cards
// it served that day, placed between two of the card's real rides, the
// later of which names the earlier in the card's own tap log: the card's
// chain skips the invented ride, so clearing holds it
// (contradicted-by-card). An invented ride carries no card evidence:
// the device never saw the card at that moment, so it has no log to
// quote.
//
// What clearing cannot catch, and the simulation therefore does not
// inject, since the statement would then rightly differ from the truth:
// an invented ride after the card's last ride to reach clearing before
// the period closes, which no evidence contradicts yet (clearing pays
// it, unconfirmed, and reports it so: report proof); an invented ride
// between rides the card's log does not link in clearing by the close
// (the later ride's validator still offline). An inflated ride needs no
// later evidence: re-rating catches it on its own facts. An
// invented ride that quotes the card's real log from an earlier tap is
// caught too, once the card's next tap names the honest ride that shares
// its claim, but until then it forks the card's chain and the honest ride
// waits with it; the simulation does not inject that either.
//
// The embedded city has no dishonest validators: its run may be at full
// fidelity, which has none to make dishonest, and its statements are an
// honest city's. testdata/dishonest.json is the embedded city, smaller,
// with four.
type Dishonest struct {
	// Devices is how many fast-lane validators are dishonest (at most
	// all of the fast lane).
	Devices int `json:"devices"`
	// InflateShare of a dishonest validator's compensable benefit rides
	// claim more than the tariff owes.
	InflateShare float64 `json:"inflate_share"`
	// InventPerDay is how many benefit rides each dishonest validator
	// invents a day, fewer when it served too few benefit cards whose
	// later rides that day expose them.
	InventPerDay int `json:"invent_per_day"`
}

// Offline takes a share of validators offline from day FromDay (0 is
// the first day) for Days days.
type Offline struct {
	Share   float64 `json:"share"`
	FromDay int     `json:"from_day"`
	Days    int     `json:"days"`
}

// Forged counts batches that must be quarantined: BadMAC are real
// batches altered after sealing or sealed with a key version clearing
// does not hold; UnknownDevice come from a device clearing does not know;
// Malformed are not batches at all.
type Forged struct {
	BadMAC        int `json:"bad_mac"`
	UnknownDevice int `json:"unknown_device"`
	Malformed     int `json:"malformed"`
}

// Drift puts Share of validators' clocks off by up to MaxSeconds either
// way.
type Drift struct {
	Share      float64 `json:"share"`
	MaxSeconds int     `json:"max_seconds"`
}

// Clearing says when periods close and how batches are cut.
type Clearing struct {
	// CloseLagDays is how many days into a month the previous month is
	// closed (at the end of that day); default 1.
	CloseLagDays int `json:"close_lag_days,omitempty"`
	// BatchTaps is the most taps in one batch (default 500).
	BatchTaps int `json:"batch_taps,omitempty"`
}

// Patterns of Group.Pattern.
const (
	PatternCommuter = "commuter"
	PatternDaytime  = "daytime"
	PatternStudent  = "student"
	PatternSchool   = "school"
)

// LoadConfig reads a city from a JSON file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("city config: %w", err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("city config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes a city from JSON, refusing unknown fields (a typo
// would otherwise silently switch a fault off), and checks what can be
// checked without the tariff.
func ParseConfig(data []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("decode: more than one JSON value")
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// StartDay returns the first simulated day at midnight in loc.
func (c *Config) StartDay(loc *time.Location) (time.Time, error) {
	d, err := time.ParseInLocation(time.DateOnly, c.Start, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("start %q: want YYYY-MM-DD", c.Start)
	}
	return d, nil
}

func share(name string, v float64) error {
	if math.IsNaN(v) || v < 0 || v > 1 {
		return fmt.Errorf("%s %v: want a share between 0 and 1", name, v)
	}
	return nil
}

// Validate reports the first thing in c that cannot work.
func (c *Config) Validate() error {
	if c.Issuer < 1000 || c.Issuer > 9999 {
		return fmt.Errorf("issuer %d: want a four-digit issuer code", c.Issuer)
	}
	if _, err := c.StartDay(time.UTC); err != nil {
		return err
	}
	if c.Days < 1 || c.Days > 366 {
		return fmt.Errorf("days %d: want 1 to 366", c.Days)
	}
	if !(c.Scale > 0) || c.Scale > 100 {
		return fmt.Errorf("scale %v: want above 0 and at most 100", c.Scale)
	}
	if c.FleetScale < 0 || c.FleetScale > 100 {
		return fmt.Errorf("fleet_scale %v: want 0 (same as scale) to 100", c.FleetScale)
	}
	if len(c.Carriers) == 0 {
		return errors.New("no carriers")
	}
	seen := map[string]bool{}
	for _, ca := range c.Carriers {
		if ca.ID == "" || seen[ca.ID] {
			return fmt.Errorf("carrier %q: empty or listed twice", ca.ID)
		}
		seen[ca.ID] = true
		if ca.Ownership != "municipal" && ca.Ownership != "private" {
			return fmt.Errorf("carrier %s: ownership %q, want municipal or private", ca.ID, ca.Ownership)
		}
		if len(ca.Routes) == 0 {
			return fmt.Errorf("carrier %s: no routes", ca.ID)
		}
		routes := map[string]bool{}
		for _, r := range ca.Routes {
			if r.ID == "" || routes[r.ID] {
				return fmt.Errorf("carrier %s: route %q empty or listed twice", ca.ID, r.ID)
			}
			routes[r.ID] = true
			if r.Vehicles < 1 || r.Validators < 0 || r.Validators > 8 {
				return fmt.Errorf("carrier %s route %s: %d vehicles with %d validators: want at least 1 vehicle and 0 (one) to 8 validators",
					ca.ID, r.ID, r.Vehicles, r.Validators)
			}
		}
	}
	if len(c.Population) == 0 {
		return errors.New("no population")
	}
	profiles := map[string]bool{}
	for _, g := range c.Population {
		if g.Profile == "" || profiles[g.Profile] {
			return fmt.Errorf("population: profile %q empty or listed twice", g.Profile)
		}
		profiles[g.Profile] = true
		switch g.Pattern {
		case PatternCommuter, PatternDaytime, PatternStudent, PatternSchool:
		default:
			return fmt.Errorf("profile %s: pattern %q, want commuter, daytime, student or school", g.Profile, g.Pattern)
		}
		if g.Cardholders < 0 || g.TripsPerWeekday < 0 || g.TripsPerWeekday > 8 || g.WeekendFactor < 0 || g.WeekendFactor > 2 {
			return fmt.Errorf("profile %s: cardholders %d, trips %v, weekend factor %v out of range", g.Profile, g.Cardholders, g.TripsPerWeekday, g.WeekendFactor)
		}
		if err := share("profile "+g.Profile+" pass_share", g.PassShare); err != nil {
			return err
		}
		if g.PassShare > 0 && g.PassProduct == 0 {
			return fmt.Errorf("profile %s: pass_share without pass_product", g.Profile)
		}
		if g.Limit > 0 && g.Category == 0 {
			return fmt.Errorf("profile %s: a ride limit without a benefit category", g.Profile)
		}
	}
	r := c.Riding
	for _, s := range []struct {
		name string
		v    float64
	}{{"transfer_share", r.TransferShare}, {"double_tap_share", r.DoubleTapShare}, {"careless_share", r.CarelessShare},
		{"lost_per_day", r.LostPerDay}, {"found_share", r.FoundShare}} {
		if err := share("riding "+s.name, s.v); err != nil {
			return err
		}
	}
	if r.PurseMinKop < 0 || r.PurseMaxKop < r.PurseMinKop || r.PurseMaxKop > 500_000 || r.TopUpKop < 0 || r.TopUpKop > 500_000 || r.TopUpBelowKop < 0 {
		return fmt.Errorf("riding: purse %d..%d kop, top-up %d kop below %d kop: want 0 <= min <= max <= 500000 and a top-up within the purse",
			r.PurseMinKop, r.PurseMaxKop, r.TopUpKop, r.TopUpBelowKop)
	}
	f := c.Faults
	for _, s := range []struct {
		name string
		v    float64
	}{{"torn_share", f.TornShare}, {"power_cut_share", f.PowerCutShare}, {"lost_ack_share", f.LostAckShare},
		{"clock_drift share", f.ClockDrift.Share}} {
		if err := share("faults "+s.name, s.v); err != nil {
			return err
		}
	}
	for i, o := range f.Offline {
		if err := share(fmt.Sprintf("faults offline[%d] share", i), o.Share); err != nil {
			return err
		}
		if o.FromDay < 0 || o.Days < 1 {
			return fmt.Errorf("faults offline[%d]: from_day %d for %d days: want from_day >= 0 and days >= 1", i, o.FromDay, o.Days)
		}
	}
	if f.Replays < 0 || f.Forged.BadMAC < 0 || f.Forged.UnknownDevice < 0 || f.Forged.Malformed < 0 {
		return errors.New("faults: negative count of replayed or forged batches")
	}
	// Clearing refuses taps more than a day ahead of its clock; a drift
	// beyond that would be a different fault (quarantine), not drift.
	if f.ClockDrift.MaxSeconds < 0 || f.ClockDrift.MaxSeconds > 6*3600 {
		return fmt.Errorf("faults clock_drift max_seconds %d: want 0 to 21600", f.ClockDrift.MaxSeconds)
	}
	if dh := f.Dishonest; dh != (Dishonest{}) {
		if err := share("faults dishonest inflate_share", dh.InflateShare); err != nil {
			return err
		}
		switch {
		case dh.Devices < 1 || dh.Devices > 10_000:
			return fmt.Errorf("faults dishonest devices %d: want 1 to 10000 dishonest validators, or no dishonest section", dh.Devices)
		case dh.InventPerDay < 0 || dh.InventPerDay > 1000:
			return fmt.Errorf("faults dishonest invent_per_day %d: want 0 to 1000", dh.InventPerDay)
		case dh.InflateShare == 0 && dh.InventPerDay == 0:
			return fmt.Errorf("faults dishonest: %d devices that neither inflate (inflate_share) nor invent rides (invent_per_day): set one, or drop the section", dh.Devices)
		}
	}
	if c.Clearing.CloseLagDays < 0 || c.Clearing.CloseLagDays > 27 {
		return fmt.Errorf("clearing close_lag_days %d: want 0 (default 1) to 27", c.Clearing.CloseLagDays)
	}
	if c.Clearing.BatchTaps < 0 || c.Clearing.BatchTaps > 10_000 {
		return fmt.Errorf("clearing batch_taps %d: want 0 (default 500) to 10000", c.Clearing.BatchTaps)
	}
	return nil
}

// checkTariff checks that the tariff knows every carrier, benefit
// category and pass product the city uses.
func (c *Config) checkTariff(t *fare.Tariff) error {
	for _, ca := range c.Carriers {
		if _, ok := t.Carriers[ca.ID]; !ok {
			if _, flat := t.FareKop[ca.ID]; !flat {
				return fmt.Errorf("carrier %s is not in the tariff: add it to x_carriers.txt or use a tariff carrier", ca.ID)
			}
		}
	}
	for _, g := range c.Population {
		if g.Category != 0 {
			if _, ok := t.Categories[strconv.Itoa(int(g.Category))]; !ok {
				return fmt.Errorf("profile %s: benefit category %d is not in the tariff's x_benefits.txt", g.Profile, g.Category)
			}
		}
		if g.PassProduct != 0 {
			if _, ok := t.Passes[g.PassProduct]; !ok {
				return fmt.Errorf("profile %s: pass product %d is not in the tariff's x_passes.txt", g.Profile, g.PassProduct)
			}
		}
	}
	return nil
}

// Sizes is how big the scaled city is.
type Sizes struct {
	Cardholders, Benefits, Vehicles, Validators int
}

// groupSize returns the scaled number of cardholders of g.
func (c *Config) groupSize(g Group) int { return int(math.Round(float64(g.Cardholders) * c.Scale)) }

// fleetScale returns the scale of the fleet.
func (c *Config) fleetScale() float64 {
	if c.FleetScale > 0 {
		return c.FleetScale
	}
	return c.Scale
}

// FullSize returns the city's size at scale 1.
func (c *Config) FullSize() Sizes {
	var s Sizes
	for _, g := range c.Population {
		s.Cardholders += g.Cardholders
		if g.Category != 0 {
			s.Benefits += g.Cardholders
		}
	}
	for _, ca := range c.Carriers {
		for _, r := range ca.Routes {
			s.Vehicles += r.Vehicles
			s.Validators += r.Vehicles * max(r.Validators, 1)
		}
	}
	return s
}

// vehiclesPerRoute scales each carrier's fleet: the carrier keeps
// round(vehicles x scale) vehicles, at least one, shared among its routes
// by largest remainder (ties to the route listed first), so that a small
// city keeps every carrier and the busiest routes. A route left with no
// vehicle is not served.
func (c *Config) vehiclesPerRoute() [][]int {
	fs := c.fleetScale()
	out := make([][]int, len(c.Carriers))
	for i, ca := range c.Carriers {
		total := 0
		for _, r := range ca.Routes {
			total += r.Vehicles
		}
		keep := max(1, int(math.Round(float64(total)*fs)))
		counts := make([]int, len(ca.Routes))
		type rem struct {
			i int
			r float64
		}
		var rems []rem
		given := 0
		for j, r := range ca.Routes {
			exact := float64(r.Vehicles) * float64(keep) / float64(total)
			counts[j] = int(exact)
			given += counts[j]
			rems = append(rems, rem{j, exact - float64(counts[j])})
		}
		// Stable: equal remainders keep the listed order.
		for k := 1; k < len(rems); k++ {
			for m := k; m > 0 && rems[m].r > rems[m-1].r; m-- {
				rems[m], rems[m-1] = rems[m-1], rems[m]
			}
		}
		for k := 0; given < keep; k++ {
			counts[rems[k%len(rems)].i]++
			given++
		}
		out[i] = counts
	}
	return out
}

// Size returns the size of the scaled city.
func (c *Config) Size() Sizes {
	var s Sizes
	for _, g := range c.Population {
		n := c.groupSize(g)
		s.Cardholders += n
		if g.Category != 0 {
			s.Benefits += n
		}
	}
	for i, counts := range c.vehiclesPerRoute() {
		for j, n := range counts {
			s.Vehicles += n
			s.Validators += n * max(c.Carriers[i].Routes[j].Validators, 1)
		}
	}
	return s
}
