package city

import (
	"strconv"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/tap"
)

// cardState is the simulator's own account of one card: what it holds,
// kept by applying each tap the way the card's transaction does. The
// simulator decides every tap from it (fare.Decide, the tariff's rules),
// so it knows what every ride owes without asking the validators; in the
// full-fidelity lane each validator's decision on the real (virtual) card
// is checked against it.
type cardState struct {
	serial    uint64
	number    uint64
	issuedFor time.Time
	contract  card.Contract
	purse     int64
	counters  card.Counters
	last      lastRecord // the newest tap log record
	hasLast   bool
	rider     *rider
	vc        *vcard.Card // the card itself, in the full-fidelity lane
	lost      bool
	found     bool // someone who found it taps it
}

// uid returns the card's 7-byte UID, made from its serial.
func (c *cardState) uid() []byte {
	s := c.serial
	return []byte{0x04, byte(s >> 40), byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

// lastRecord is the part of a tap log record decisions read.
type lastRecord struct {
	at             card.Stamp
	device         uint32
	carrier, route uint16
	product        string
}

// midnight returns the start of civil day d in loc.
func midnight(d card.Date, loc *time.Location) time.Time {
	y, m, dd := d.Time().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, loc)
}

// calendar gives the midnights of card dates in the city's zone. A view
// needs four of them per tap, so the years around the simulation are in
// a table.
type calendar struct {
	loc   *time.Location
	first card.Date
	days  []time.Time
}

func newCalendar(loc *time.Location, around time.Time) *calendar {
	c := &calendar{loc: loc}
	first, err := card.DateOf(around.AddDate(-8, 0, 0))
	if err != nil {
		first = 0
	}
	c.first = first
	for d := int(first); d < int(first)+16*366 && d <= 0xFFFF; d++ {
		c.days = append(c.days, midnight(card.Date(d), loc))
	}
	return c
}

// midnight returns the start of day d.
func (c *calendar) midnight(d card.Date) time.Time {
	if i := int(d) - int(c.first); i >= 0 && i < len(c.days) {
		return c.days[i]
	}
	return midnight(d, c.loc)
}

// after returns the end of day d: the midnight that starts the next one.
func (c *calendar) after(d card.Date) time.Time {
	if d == 0xFFFF {
		return midnight(d, c.loc).AddDate(0, 0, 1)
	}
	return c.midnight(d + 1)
}

// view returns the card as a validator sees it at instant now of its own
// clock. It mirrors validator/cardtx: Read stops after the contract of a
// blocked or expired card, reads the counters when a limited benefit is
// valid today, and skips the tap log when the ride can only be a counted
// benefit ride (the counters then carry the last ride, without a carrier,
// so no transfer follows from it); Session.Fare gives the purse's upper
// limit as the balance, since the card's own debit is the funds check.
//
// The card is built in buf, whose slices are reused: the fast lane makes
// a million views a day.
func (c *cardState) view(buf *cardView, now time.Time, cal *calendar, vehicleOf map[uint32]string) (fare.Card, card.Month) {
	local := now.In(cal.loc)
	day, _ := card.DateOf(local) // the simulated years fit the card's dates
	mon, _ := card.MonthOf(local)
	ct := &c.contract
	fc := fare.Card{
		Number:       c.number,
		Blocked:      ct.Status == card.StatusBlocked,
		Expiry:       cal.after(ct.Expires),
		PurseKop:     int64(card.PurseUpper),
		Entitlements: buf.ents[:0],
		Passes:       buf.passes[:0],
	}
	countersRead, hasLast := false, false
	usable := func(i int) bool {
		e := ct.Entitlements[i]
		if !e.ValidOn(day) {
			return false
		}
		return e.Limit == 0 || !countersRead || c.counters.UsedIn(i, e.Category, mon) < e.Limit
	}
	if ct.Status != card.StatusBlocked && ct.Expires >= day {
		hasLast = c.hasLast
		for _, e := range ct.Entitlements {
			if e.Limit > 0 && e.ValidOn(day) {
				countersRead = true
			}
		}
		if countersRead && onlyCountedRides(ct, day, usable) {
			hasLast = false
		}
	}
	for i, e := range ct.Entitlements {
		if e.Empty() || (e.Limit > 0 && e.ValidOn(day) && !usable(i)) {
			continue
		}
		fe := fare.Entitlement{
			Category:  strconv.Itoa(int(e.Category)),
			ValidFrom: cal.midnight(e.ValidFrom),
			ValidTo:   cal.after(e.ValidTo),
			Slot:      i,
			Limit:     int(e.Limit),
		}
		if countersRead {
			fe.Used = int(c.counters.UsedIn(i, e.Category, mon))
		}
		fc.Entitlements = append(fc.Entitlements, fe)
	}
	for i, p := range ct.Passes {
		if p.Empty() {
			continue
		}
		fc.Passes = append(fc.Passes, fare.Pass{Product: p.Product, ValidFrom: cal.midnight(p.ValidFrom),
			ValidTo: cal.after(p.ValidTo), Groups: p.Carriers, Slot: i})
	}
	vehicle := func(dev uint32) string {
		if v, ok := vehicleOf[dev]; ok {
			return v
		}
		return cardtx.DeviceVehicle(dev)
	}
	switch {
	case hasLast:
		buf.last = fare.LastTap{Time: c.last.at.Time(), Vehicle: vehicle(c.last.device),
			Carrier: c.last.carrier, Route: c.last.route, Product: c.last.product}
		fc.LastTap = &buf.last
	case countersRead && c.counters.LastRide != 0:
		buf.last = fare.LastTap{Time: c.counters.LastRide.Time(), Vehicle: vehicle(c.counters.LastDevice),
			Product: fare.ProductBenefit}
		fc.LastTap = &buf.last
	}
	buf.ents, buf.passes = fc.Entitlements, fc.Passes
	return fc, mon
}

// cardView holds the storage of one view of a card.
type cardView struct {
	ents   []fare.Entitlement
	passes []fare.Pass
	last   fare.LastTap
}

// onlyCountedRides mirrors cardtx: some limited benefit has rides left
// today and neither an unlimited one nor a pass is valid.
func onlyCountedRides(ct *card.Contract, day card.Date, usable func(int) bool) bool {
	for _, p := range ct.Passes {
		if !p.Empty() && p.ValidFrom <= day && day <= p.ValidTo {
			return false
		}
	}
	left := false
	for i, e := range ct.Entitlements {
		switch {
		case e.Empty() || !e.ValidOn(day):
		case e.Limit == 0:
			return false
		case usable(i):
			left = true
		}
	}
	return left
}

// writes reports whether decision d changes the card when committed.
func writes(d fare.Decision) bool { return d.Result == tap.Accepted }

// refuses reports whether the card refuses d's debit: the purse cannot go
// below zero.
func (c *cardState) refuses(d fare.Decision) bool { return writes(d) && d.DebitKop > c.purse }

// commit applies decision d, taken at instant at in month mon on dev, as
// the card's committed transaction does: the debit, the counted ride on a
// limited benefit, and the tap log record. The caller has checked that
// the card does not refuse it.
func (c *cardState) commit(d fare.Decision, at time.Time, mon card.Month, dev *device) {
	if !writes(d) {
		return
	}
	stamp, _ := card.StampOf(at)
	c.purse -= d.DebitKop
	counted := false
	if d.Product == fare.ProductBenefit && d.Slot >= 0 && d.Slot < card.MaxEntitlements {
		if e := c.contract.Entitlements[d.Slot]; e.Limit > 0 {
			counted = true
			// The only error is a 256th ride in a month, which no limit allows.
			_ = c.counters.Ride(d.Slot, e.Category, mon, stamp, dev.number)
		}
	}
	if d.LogTap || counted {
		c.last = lastRecord{at: stamp, device: dev.number, carrier: dev.carrierCode, route: dev.route.code, product: d.Product}
		c.hasLast = true
	}
}

// tapOf is the tap a validator journals for decision d, before the card
// transaction (CardCommitted false), as validator/agent records it.
func tapOf(dev *device, c *cardState, now time.Time, d fare.Decision, tariffVersion uint32, hl uint64) tap.Tap {
	return tap.Tap{Device: dev.id, Time: now, Card: c.number, Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle,
		Result: d.Result, Reason: d.Reason, Product: d.Product, Category: d.Category, Funding: d.Funding,
		FareKop: d.FareKop, ChargedKop: d.ChargedKop, CompensationKop: d.CompensationKop,
		TariffVersion: tariffVersion, HotlistVersion: hl}
}

// refused turns t into the record of a card that refused the debit, as
// the agent does: denied for funds, nothing charged or owed.
func refused(t tap.Tap) tap.Tap {
	t.Result, t.Reason, t.Product = tap.Denied, fare.ReasonInsufficientFunds, ""
	t.ChargedKop, t.CompensationKop = 0, 0
	t.CardCommitted = true
	return t
}

// blockList is the registry's hotlist as the simulator keeps it: which
// version first listed each card.
type blockList struct {
	version uint64
	since   map[uint64]uint64
	entries []hotlist.Entry
}

// at returns the list as of version v, for fare.Decide.
func (b *blockList) at(v uint64) fare.Hotlist { return listAt{b, v} }

type listAt struct {
	b *blockList
	v uint64
}

func (l listAt) Contains(c uint64) bool {
	s, ok := l.b.since[c]
	return ok && s <= l.v
}

// compensable is the city's rule for paying a ride: accepted, committed
// on the card, and owing the carrier something.
func compensable(t *tap.Tap) bool {
	return t.Result == tap.Accepted && t.CardCommitted && t.CompensationKop > 0
}
