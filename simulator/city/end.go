package city

import (
	"context"
	"errors"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
)

// EndReport is what happened at the end of a day.
type EndReport struct {
	Date time.Time
	// Uploaded validators sent their journals and Offline kept theirs.
	// Batches (Taps taps) were sent since the previous day ended: a full
	// batch leaves as soon as it is full.
	Uploaded, Offline int
	Batches, Taps     int64
	// LateRides are compensable rides of closed months that arrived
	// since the previous day ended.
	LateRides int64
	// Replayed and Forged batches were delivered besides.
	Replayed, Forged int
	// Invented rides were made up today by dishonest validators, and
	// sealed in their batches (Faults.Dishonest).
	Invented int
	// Closed are the statements closed at the end of the day.
	Closed []store.Statement
	// Blocked cards were lost today; a hotlist version lists them.
	Blocked        int
	HotlistVersion uint64
}

// EndDay ends the ridden day: validators online upload their journals,
// forged and replayed batches arrive, clearing takes everything in, a
// month whose close day has come is closed, and the registry blocks the
// cards lost today and issues their replacements.
func (s *Sim) EndDay(ctx context.Context) (EndReport, error) {
	if !s.rode {
		return EndReport{}, errors.New("city: no day ridden to end")
	}
	d := s.day
	rep := EndReport{Date: s.date(d)}
	s.setNow(s.date(d).Add(23*time.Hour + 40*time.Minute))
	var online []*device
	for _, dev := range s.w.devices {
		if dev.offline[d] {
			rep.Offline++
		} else {
			online = append(online, dev)
		}
	}
	rep.Invented = s.inventRides(d)
	if _, _, err := s.upload(ctx, online); err != nil {
		return rep, err
	}
	rep.Uploaded = len(online)
	var err error
	if rep.Replayed, rep.Forged, err = s.misbehave(ctx, d); err != nil {
		return rep, err
	}
	if err := s.sync(ctx); err != nil {
		return rep, err
	}
	// Counted since the last day ended: the fast lane sends full batches
	// during the day, a validator back online its backlog first.
	rep.LateRides, rep.Batches, rep.Taps = s.ledger.late-s.marks.late, s.batches.Load()-s.marks.batches, s.ledger.taps-s.marks.taps
	s.marks.late, s.marks.batches, s.marks.taps = s.ledger.late, s.batches.Load(), s.ledger.taps
	if s.clearing != nil {
		for _, p := range s.dueClosing(d) {
			sts, err := s.ClosePeriod(ctx, p)
			if err != nil {
				return rep, err
			}
			rep.Closed = append(rep.Closed, sts...)
		}
	}
	if err := s.replaceLost(ctx); err != nil {
		return rep, err
	}
	rep.Blocked, rep.HotlistVersion = len(s.lost), s.hot.version
	s.lost = nil
	s.rode = false
	s.day++
	return rep, nil
}

// sync waits for clearing to take in every batch sent.
func (s *Sim) sync(ctx context.Context) error {
	if s.clearing == nil {
		return nil
	}
	return s.clearing.sync(ctx, s.ledger.taps, func(done, total int) { s.progress("clearing", done, total) })
}

// dueClosing lists the months to close at the end of day d: every month
// before d's whose close day (CloseLagDays into the next month) is d or
// earlier, and that is not closed.
func (s *Sim) dueClosing(d int) []string {
	today := s.date(d)
	var out []string
	for _, p := range months(s.w.start, today) {
		m, _ := time.ParseInLocation("2006-01", p, s.w.loc)
		closeOn := m.AddDate(0, 1, s.closeLag()-1)
		if !s.ledger.closed[p] && !today.Before(closeOn) {
			out = append(out, p)
		}
	}
	return out
}

// ClosePeriod closes a month at the simulation's clock: early when the
// month has not ended yet. Rides of it delivered later are owed in an
// adjustment statement of the next open month.
func (s *Sim) ClosePeriod(ctx context.Context, period string) ([]store.Statement, error) {
	if s.clearing == nil {
		return nil, errors.New("city: no clearing to close a period in")
	}
	if err := s.sync(ctx); err != nil {
		return nil, err
	}
	_, end, err := store.Bounds(period, s.w.loc)
	if err != nil {
		return nil, err
	}
	// Clearing proves every ride it pays for: it needs the tariff and
	// the registry's records of the cards.
	if err := s.proveToClearing(ctx); err != nil {
		return nil, err
	}
	// The simulation closes as itself, confirmed by the test or the
	// person that runs it.
	sts, err := s.svc.Close(ctx, period, statement.Closing{Early: s.now().Before(end), Actor: "simulator", Confirmed: true})
	if err != nil {
		return nil, err
	}
	s.ledger.closed[period] = true
	return sts, nil
}

// Flush has every validator upload its journal, online or not (the end
// of a simulation: everyone reconnects), and waits for clearing.
func (s *Sim) Flush(ctx context.Context) (batches, taps int64, err error) {
	if batches, taps, err = s.upload(ctx, s.w.devices); err != nil {
		return batches, taps, err
	}
	return batches, taps, s.sync(ctx)
}

// Run rides every configured day, ending each, then has every validator
// upload what it still holds, and compares clearing with the truth. With
// closeAtEnd the open months are then closed early too, so that their
// statements are signed. Without clearing it returns a nil Comparison.
func (s *Sim) Run(ctx context.Context, closeAtEnd bool, each func(DayReport, EndReport)) (*Comparison, error) {
	for s.day < s.cfg.Days {
		dr, err := s.RideDay(ctx)
		if err != nil {
			return nil, err
		}
		er, err := s.EndDay(ctx)
		if err != nil {
			return nil, err
		}
		if each != nil {
			each(dr, er)
		}
	}
	if _, _, err := s.Flush(ctx); err != nil {
		return nil, err
	}
	if s.clearing == nil {
		return nil, nil
	}
	if closeAtEnd {
		for _, p := range months(s.w.start, s.date(s.cfg.Days-1)) {
			if !s.ledger.closed[p] {
				if _, err := s.ClosePeriod(ctx, p); err != nil {
					return nil, err
				}
			}
		}
	}
	return s.Compare(ctx)
}
