package city

import (
	"fmt"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/fareref"
	"github.com/citycard/transit/validator/tap"
)

// The truth does not come from the validator's code: every presentation is
// also decided by the reference model (validator/fareref, a separate
// reading of FORMAT.md's "Deciding a tap"), on the model's own account of
// the card: the contract the desk wrote, and the purse and previous ride as
// the model's own decisions left them. The lanes make the taps with
// fare.Decide, as validators do; the statements are compared with what the
// model says is owed, and every tap the two decide differently is a
// problem of its own.

// owed is what the reference model says clearing must pay for one
// delivered tap; it also stands for a tap that owes nothing when later
// rides wait for clearing to receive it.
type owed struct {
	carrier, category, funding      string
	fareKop, chargedKop, compensKop int64
	// unknown marks a ride journalled as commit unknown that the card
	// holds: clearing pays it once a later tap of the card names it.
	unknown bool
	// at is the tap's time as journalled: the ride's month is its own.
	at time.Time
	// pending counts what clearing lacks to pay the ride: the tap itself,
	// for an unknown ride the later tap that names it, and the card's
	// previous ride when its evidence names one recent enough to matter
	// (clearing/rerate, evidence-pending). At 0 the ride is booked into
	// its month's statement as that then stands.
	pending int
	booked  bool
	// held is the reason clearing must hold the ride for, when a
	// dishonest validator inflated its claim: it is never booked.
	held string
	// confirms is the card's commit-unknown ride that this tap's evidence
	// names (the card's newest log record when it was tapped).
	confirms *owed
	// arrived is set once clearing has the tap; waiting are the rides
	// that wait for it to arrive.
	arrived bool
	waiting []*owed
}

// truthCard is the model's view of c now: the contract's facts, with the
// model's own purse and previous ride.
func (c *cardState) truthCard() fareref.Card {
	date := func(d card.Date) fareref.Date { return fareref.DateOf(d.Time()) }
	ct := &c.contract
	tc := fareref.Card{Number: c.number, Blocked: ct.Status == card.StatusBlocked, Expiry: date(ct.Expires),
		PurseKop: c.tPurse, Last: c.tLast}
	for i, e := range ct.Entitlements {
		if !e.Empty() {
			tc.Entitlements[i] = fareref.Entitlement{Category: e.Category, From: date(e.ValidFrom), To: date(e.ValidTo), Limit: int(e.Limit)}
		}
	}
	for i, p := range ct.Passes {
		if !p.Empty() {
			tc.Passes[i] = fareref.Pass{Product: p.Product, From: date(p.ValidFrom), To: date(p.ValidTo), Groups: p.Carriers}
		}
	}
	return tc
}

// truthDecide decides the presentation of c at now on dev with the
// reference model.
func (s *Sim) truthDecide(c *cardState, dev *device, now time.Time) (fareref.Card, fareref.Tap, fareref.Decision) {
	tc := c.truthCard()
	tp := fareref.Tap{Time: now, Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle,
		CarrierCode: dev.carrierCode, RouteCode: dev.route.code}
	switch s.hot.at(dev.hotlist).Listing(c.number) {
	case fare.Listed:
		tp.Listing = fareref.Listed
	case fare.BenefitRevoked:
		tp.Listing = fareref.BenefitRevoked
	}
	return tc, tp, fareref.Decide(s.w.tariff, &tc, tp)
}

// truthAfter takes what became of the presentation into the model's
// account: a ride the card committed is the card's previous ride and
// debits the model's purse; and it returns what clearing must pay for the
// tap, nil for nothing. Clearing pays a compensable ride whose tap record
// says the card committed it (FORMAT.md, "What is owed, and by whom"),
// and one journalled as commit unknown that the card holds: the card's
// later evidence shows it, and clearing pays it then (clearing/rerate).
func (s *Sim) truthAfter(c *cardState, tc fareref.Card, tp fareref.Tap, td fareref.Decision, o outcome) *owed {
	if !o.applied || td.Result != fareref.ResultAccepted {
		return nil
	}
	if err := tc.Commit(s.w.tariff, tp, td); err != nil {
		s.modelDiverge("card %d at %s: the card committed a ride the reference model cannot: %v", c.number, tp.Time.Format(time.RFC3339), err)
		return nil
	}
	c.tPurse, c.tLast = tc.PurseKop, tc.Last
	if !o.journalled || !o.rec.CardCommitted && !o.rec.CommitUnknown || td.CompensationKop <= 0 {
		return nil
	}
	ow := &owed{carrier: tp.Carrier, category: td.Category, funding: td.Funding,
		fareKop: td.FareKop, chargedKop: td.ChargedKop, compensKop: td.CompensationKop,
		unknown: !o.rec.CardCommitted, pending: 1}
	if ow.unknown {
		ow.pending++
	}
	return ow
}

// checkModel counts a tap that fare.Decide decided otherwise than the
// reference model.
func (s *Sim) checkModel(dev *device, c *cardState, now time.Time, d fare.Decision, td fareref.Decision) {
	want := fare.Decision{Result: resultOf(td.Result), Reason: td.Reason, Product: td.Product, Category: td.Category, Funding: td.Funding,
		FareKop: td.FareKop, ChargedKop: td.ChargedKop, CompensationKop: td.CompensationKop, Slot: td.Slot,
		CountRide: td.Counted, ClockAnomaly: td.ClockAnomaly, BenefitRevoked: td.BenefitRevoked}
	if want.Result == tap.Accepted {
		want.DebitKop, want.LogTap = td.ChargedKop, true
	}
	if d != want {
		s.modelDiverge("%s, card %d at %s: the validator decided %+v, the reference model %+v", dev.id, c.number, now.Format(time.RFC3339Nano), d, want)
	}
}

func resultOf(r string) tap.Result {
	switch r {
	case fareref.ResultAccepted:
		return tap.Accepted
	case fareref.ResultDenied:
		return tap.Denied
	}
	return tap.AlreadyPaid
}

// modelDiverge records a disagreement with the reference model.
func (s *Sim) modelDiverge(format string, args ...any) {
	s.divMu.Lock()
	defer s.divMu.Unlock()
	s.modelDiffs++
	if len(s.modelSamples) < 5 {
		s.modelSamples = append(s.modelSamples, fmt.Sprintf(format, args...))
	}
}

// linkEvidence takes into the truth what the tap's evidence, the card's
// newest log record, tells clearing (clearing/rerate): a commit-unknown
// ride it names is confirmed, and a compensable ride whose named previous
// ride is recent enough to matter waits until clearing has that ride too.
// Then the tap, if the card logged it, is the one the card's next tap
// names. *ow is the tap's truth, made when the tap needs one.
func (s *Sim) linkEvidence(c *cardState, ow **owed, o outcome) {
	if *ow != nil {
		(*ow).at = o.rec.Time
	}
	if p := c.lastOwed; p != nil && *ow != nil && (*ow).carrier != "" && !p.arrived &&
		o.rec.Time.Sub(p.at.Truncate(time.Second)) < s.horizon {
		(*ow).pending++
		p.waiting = append(p.waiting, *ow)
	}
	if c.unsettled != nil {
		if *ow == nil {
			*ow = &owed{at: o.rec.Time}
		}
		(*ow).confirms, c.unsettled = c.unsettled, nil
	}
	if *ow != nil && (*ow).unknown {
		c.unsettled = *ow
	}
	if o.applied {
		if *ow == nil {
			*ow = &owed{at: o.rec.Time}
		}
		c.lastOwed = *ow
	}
}
