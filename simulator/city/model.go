package city

import (
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/fareref"
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
	last      card.TapRecord // the newest tap log record, with the ride counts
	hasLast   bool
	// tPurse and tLast are the reference model's account of the purse and
	// of the card's previous ride (reference.go).
	tPurse int64
	tLast  *fareref.Ride
	rider  *rider
	vc     *vcard.Card // the card itself, in the full-fidelity lane
	lost   bool
	found  bool // someone who found it taps it
	// unsettled is the truth of the card's newest ride when it was
	// journalled as commit unknown and the card holds it: owed once the
	// card's next tap names it (reference.go).
	unsettled *owed
	// lastOwed is the truth of the tap that wrote the card's newest log
	// record, which the card's next tap names.
	lastOwed *owed
}

// uid returns the card's 7-byte UID, made from its serial.
func (c *cardState) uid() []byte {
	s := c.serial
	return []byte{0x04, byte(s >> 40), byte(s >> 32), byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}
}

// view returns the card as a validator sees it at instant now of its own
// clock, as validator/cardtx reads it: Read stops after the contract of a
// blocked or expired card, and otherwise reads the newest tap log record
// (the previous ride and the month's ride counts); cardtx.FareCard makes
// the decision's view of them.
func (c *cardState) view(buf *cardView, now time.Time, loc *time.Location, vehicleOf map[uint32]string) (fare.Card, card.Month) {
	local := now.In(loc)
	day, _ := card.DateOf(local) // the simulated years fit the card's dates
	mon, _ := card.MonthOf(local)
	ct := &c.contract
	var prev *card.TapRecord
	switch {
	case ct.Status == card.StatusBlocked || ct.Expires < day:
		buf.reads = 4
	case c.hasLast:
		prev, buf.reads = &c.last, 5
	default:
		buf.reads = 7
	}
	buf.prev = prev
	return cardtx.FareCard(ct, prev, vehicleOf, now, loc), mon
}

// cardView is what a view read, for the tap's record and fault model.
type cardView struct {
	// prev is the newest tap record the validator read, nil for none
	// (an empty log, or a blocked or expired card).
	prev *card.TapRecord
	// reads is how many exchanges the validator's Read takes
	// (LAYOUT.md): 4 for a blocked or expired card, 5, or 7 when the
	// empty log makes it authenticate again.
	reads int
}

// exchanges returns how many APDUs a tap decided as d takes in all: the
// reads of view, then the writes (Debit when charged, the record, the
// commit), or only the Debit that the card refuses.
func (v *cardView) exchanges(c *cardState, d fare.Decision) int {
	switch {
	case !writes(d):
		return v.reads
	case c.refuses(d):
		return v.reads + 1
	case d.DebitKop > 0:
		return v.reads + 3
	}
	return v.reads + 2
}

// writes reports whether decision d changes the card when committed.
func writes(d fare.Decision) bool { return d.Result == tap.Accepted }

// refuses reports whether the card refuses d's debit: the purse cannot go
// below zero.
func (c *cardState) refuses(d fare.Decision) bool { return writes(d) && d.DebitKop > c.purse }

// commit applies decision d, taken at instant at in month mon on dev, as
// the card's committed transaction does: the debit and the tap log
// record (cardtx.NextRecord), which carries the ride counts. The caller
// has checked that the card does not refuse it.
func (c *cardState) commit(d fare.Decision, at time.Time, mon card.Month, dev *device, seq uint64) {
	if !writes(d) {
		return
	}
	stamp, _ := card.StampOf(at)
	c.purse -= d.DebitKop
	var prev *card.TapRecord
	if c.hasLast {
		prev = &c.last
	}
	// The only error is a 256th ride in a month, which no limit allows.
	next, _ := cardtx.NextRecord(&c.contract, prev, d, card.TapRecord{Time: stamp, Device: dev.number, Seq: uint32(seq),
		Carrier: dev.carrierCode, Route: dev.route.code}, mon)
	c.last, c.hasLast = next, true
}

// tapOf is the tap a validator journals for decision d, before the card
// transaction (CardCommitted false), as validator/agent records it, with
// prev the tap record the validator read.
func tapOf(dev *device, c *cardState, prev *card.TapRecord, now time.Time, d fare.Decision, tariffVersion uint32, hl uint64) tap.Tap {
	t := tap.Tap{Device: dev.id, Time: now, Card: c.number, Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle,
		Result: d.Result, Reason: d.Reason, Product: d.Product, Category: d.Category, Funding: d.Funding,
		FareKop: d.FareKop, ChargedKop: d.ChargedKop, CompensationKop: d.CompensationKop,
		TariffVersion: tariffVersion, HotlistVersion: hl,
		ClockAnomaly: d.ClockAnomaly, BenefitRevoked: d.BenefitRevoked, Counted: d.Result == tap.Accepted && d.CountRide,
		DeviceNumber: dev.number}
	if prev != nil {
		t.Prev = agent.CardRide(*prev)
	}
	return t
}

// uncertain turns t, an accepted tap the validator journalled and could
// not settle (the card's answer to the commit was lost, or the power
// went), into what the validator then records: commit unknown. A tap that
// writes nothing is committed whatever happened.
func uncertain(t tap.Tap) tap.Tap {
	t.CardCommitted = t.Result != tap.Accepted
	t.CommitUnknown = t.Result == tap.Accepted
	return t
}

// refused turns t into the record of a card that refused the debit, as
// the agent does: denied for funds, nothing charged or owed.
func refused(t tap.Tap) tap.Tap {
	t.Result, t.Reason, t.Product = tap.Denied, fare.ReasonInsufficientFunds, ""
	t.ChargedKop, t.CompensationKop, t.Counted = 0, 0, false
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

func (l listAt) Listing(c uint64) fare.Listing {
	if s, ok := l.b.since[c]; ok && s <= l.v {
		return fare.Listed
	}
	return fare.NotListed
}
