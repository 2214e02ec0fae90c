package city

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// DayReport is what happened on one day.
type DayReport struct {
	Date                        time.Time
	Taps, Accepted, AlreadyPaid int64
	Denied, Hotlisted           int64
	Torn, PowerCuts, TopUps     int64
	Validators, Offline         int
	Presentations               int
}

// dayCounts are counted by the lanes as taps happen.
type dayCounts struct {
	taps, accepted, committed, alreadyPaid, denied, hotlisted, torn, powerCuts, topUps atomic.Int64
}

// RideDay rides the next day: validators back online fetch the newest
// hotlist, then every planned presentation happens.
func (s *Sim) RideDay(ctx context.Context) (DayReport, error) {
	if s.rode {
		return DayReport{}, errors.New("city: the day was ridden; end it first")
	}
	if s.day >= s.cfg.Days {
		return DayReport{}, fmt.Errorf("city: all %d days are ridden", s.cfg.Days)
	}
	d := s.day
	rep := DayReport{Date: s.date(d), Validators: len(s.w.devices)}
	s.setNow(s.date(d).Add(4 * time.Hour))
	if err := s.distributeHotlist(ctx, d); err != nil {
		return rep, err
	}
	for _, dev := range s.w.devices {
		if dev.offline[d] {
			rep.Offline++
		}
	}
	p := s.w.plan(d, s.found)
	rep.Presentations = len(p.events)
	var counts dayCounts
	if err := s.execute(ctx, p.events, &counts); err != nil {
		return rep, err
	}
	s.lost = p.lost
	s.rode = true
	rep.Taps, rep.Accepted, rep.AlreadyPaid = counts.taps.Load(), counts.accepted.Load(), counts.alreadyPaid.Load()
	rep.Denied, rep.Hotlisted = counts.denied.Load(), counts.hotlisted.Load()
	rep.Torn, rep.PowerCuts, rep.TopUps = counts.torn.Load(), counts.powerCuts.Load(), counts.topUps.Load()
	s.statsMu.Lock()
	s.stats.Taps += rep.Taps
	s.stats.Accepted += rep.Accepted
	s.stats.Committed += counts.committed.Load()
	s.stats.AlreadyPaid += rep.AlreadyPaid
	s.stats.Denied += rep.Denied
	s.stats.Hotlisted += rep.Hotlisted
	s.stats.Torn += rep.Torn
	s.stats.PowerCuts += rep.PowerCuts
	s.stats.TopUps += rep.TopUps
	s.statsMu.Unlock()
	return rep, nil
}

// execute runs the day's events. Fast-lane events run in time order on
// one goroutine. Full-lane events run on one goroutine per validator,
// each in its own order, and an event waits until the previous
// presentation of its card is over: the same order of each card's and
// each validator's taps as one by one, with the validators' journals
// writing at the same time.
func (s *Sim) execute(ctx context.Context, events []event, counts *dayCounts) error {
	var full, fast []*event
	for i := range events {
		if events[i].dev.full {
			full = append(full, &events[i])
		} else {
			fast = append(fast, &events[i])
		}
	}
	var handled atomic.Int64
	total := len(events)
	report := func() {
		n := handled.Add(1)
		if n%256 == 0 || int(n) == total {
			s.progress("riding "+s.date(s.day).Format("Mon 2 Jan"), int(n), total)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, e := range fast {
			if ctx.Err() != nil {
				return
			}
			if _, _, err := s.present(ctx, e, counts); err != nil {
				cancel(err)
				return
			}
			report()
		}
	})
	if len(full) > 0 {
		done := make(map[*event]chan struct{}, len(full))
		prev := make(map[*event]*event, len(full))
		last := map[*cardState]*event{}
		byDev := map[*device][]*event{}
		var order []*device
		for _, e := range full {
			done[e] = make(chan struct{})
			if p, ok := last[e.card]; ok {
				prev[e] = p
			}
			last[e.card] = e
			if _, ok := byDev[e.dev]; !ok {
				order = append(order, e.dev)
			}
			byDev[e.dev] = append(byDev[e.dev], e)
		}
		for _, dev := range order {
			evs := byDev[dev]
			wg.Go(func() {
				for _, e := range evs {
					if p := prev[e]; p != nil {
						select {
						case <-done[p]:
						case <-ctx.Done():
							return
						}
					}
					if _, _, err := s.present(ctx, e, counts); err != nil {
						cancel(err)
						return
					}
					close(done[e])
					report()
				}
			})
		}
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// outcome is what became of one presentation.
type outcome struct {
	journalled bool
	rec        tap.Tap // the journalled tap
	applied    bool    // the card committed the decision's writes
}

// present makes one presentation: the rider tops up if needed, the
// simulator decides the tap from its own model of the card, the lane
// makes it happen (and checks the real validator against the model), and
// the model takes what the card committed. It returns the tap journalled,
// if any.
func (s *Sim) present(ctx context.Context, e *event, counts *dayCounts) (tap.Tap, bool, error) {
	dev, c := e.dev, e.card
	if e.kind == evRide && e.first {
		if err := s.maybeTopUp(ctx, c, counts); err != nil {
			return tap.Tap{}, false, err
		}
	}
	now := e.at.Add(dev.drift).UTC().Truncate(time.Millisecond)
	buf := new(cardView)
	fc, mon := c.view(buf, now, s.w.loc, s.w.vehicleOf)
	fd, hl := fare.Device{ID: dev.id, Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle}, s.hot.at(dev.hotlist)
	tf := s.w.tariff
	if s.decideWith != nil && !dev.full {
		tf = s.decideWith
	}
	d := fare.Decide(fc, tf, hl, fd, now)
	want := tapOf(dev, c, buf.prev, now, d, s.w.tariff.Version, dev.hotlist)
	tc, tp, td := s.truthDecide(c, dev, now)
	// The validator leaves the funds check to the card's debit; with the
	// balance it decides as the card makes it come out.
	withBalance := fc
	withBalance.PurseKop = c.purse
	s.checkModel(dev, c, now, fare.Decide(withBalance, tf, hl, fd, now), td)
	var o outcome
	if dev.full {
		var err error
		if o, err = s.tapFull(ctx, e, now, d, want, buf.exchanges(c, d)); err != nil {
			return tap.Tap{}, false, err
		}
	} else {
		o = tapFast(e, d, want, buf.reads, buf.exchanges(c, d))
	}
	if o.applied {
		c.commit(d, now, mon, dev, dev.seq+1) // the sequence the tap gets below
	}
	ow := s.truthAfter(c, tc, tp, td, o)
	if o.journalled {
		s.linkEvidence(c, &ow, o)
		if s.dishonest != nil && !dev.full {
			// The fast lane runs on one goroutine.
			s.dishonest.observe(dev, c, &o, ow)
		}
	}
	if e.tear > 0 && (!o.journalled || !o.rec.CardCommitted) {
		counts.torn.Add(1)
	}
	if e.power != powerNone {
		counts.powerCuts.Add(1)
	}
	if !o.journalled {
		return tap.Tap{}, false, nil
	}
	dev.seq++
	o.rec.Seq, o.rec.Device = dev.seq, dev.id
	dev.pending = append(dev.pending, o.rec)
	dev.owed = append(dev.owed, ow)
	counts.taps.Add(1)
	if dev.fast != nil && len(dev.pending) >= s.batchTaps() && s.day < len(dev.offline) && !dev.offline[s.day] {
		// An online validator sends a batch as soon as it is full, which
		// keeps a million-tap day from piling up in memory.
		s.setNow(e.at)
		if err := s.sealFast(ctx, dev); err != nil {
			return tap.Tap{}, false, err
		}
		s.deliver(dev)
	}
	switch o.rec.Result {
	case tap.Accepted:
		counts.accepted.Add(1)
		if o.rec.CardCommitted {
			counts.committed.Add(1)
		}
	case tap.AlreadyPaid:
		counts.alreadyPaid.Add(1)
	case tap.Denied:
		counts.denied.Add(1)
		if o.rec.Reason == fare.ReasonHotlisted {
			counts.hotlisted.Add(1)
		}
		if o.rec.Reason == fare.ReasonInsufficientFunds && c.rider != nil && c.rider.card == c {
			c.rider.topUp = true
		}
	}
	return o.rec, true, nil
}

// tapFast makes the tap without a card or a validator: the journalled
// record follows from the decision and the fault, as the full lane's
// validator would journal it. The tap takes n exchanges, reads of them
// reading (cardView.exchanges). A tear after fewer than reads exchanges
// hits while the card is read (nothing journalled); after more, while it
// is written (journalled, not committed), or at the commit itself (the
// card's answer is lost: commit unknown, the card holds nothing); a tear
// point past n finds the transaction over. A power cut leaves the record
// journalled before the card, settled as commit unknown at the reboot.
func tapFast(e *event, d fare.Decision, want tap.Tap, reads, n int) outcome {
	c := e.card
	tear := int(e.tear)
	switch {
	case e.power != powerNone:
		return outcome{journalled: true, rec: uncertain(want),
			applied: e.power == powerAfterCard && writes(d) && !c.refuses(d)}
	case tear > 0 && tear < reads:
		return outcome{}
	case tear > 0 && tear < n && writes(d):
		if tear == n-1 && !c.refuses(d) {
			return outcome{journalled: true, rec: uncertain(want)}
		}
		return outcome{journalled: true, rec: want}
	case c.refuses(d):
		return outcome{journalled: true, rec: refused(want)}
	}
	want.CardCommitted = true
	return outcome{journalled: true, rec: want, applied: writes(d)}
}

// maybeTopUp tops up the purse before a trip: when it runs low, or, for
// a careless rider, after a denial for funds.
func (s *Sim) maybeTopUp(ctx context.Context, c *cardState, counts *dayCounts) error {
	r := c.rider
	if r == nil || r.card != c || c.lost {
		return nil
	}
	rd := s.cfg.Riding
	if !r.topUp && (r.careless || c.purse >= rd.TopUpBelowKop) {
		return nil
	}
	amount := min(rd.TopUpKop, int64(card.PurseUpper)-c.purse) / 100 * 100
	if amount <= 0 {
		return nil
	}
	if c.vc != nil {
		if err := s.topUp.credit(ctx, c, amount); err != nil {
			return err
		}
	}
	c.purse += amount
	c.tPurse += amount
	r.topUp = false
	counts.topUps.Add(1)
	return nil
}
