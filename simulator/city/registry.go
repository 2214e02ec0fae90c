package city

import (
	"context"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/tap"
)

// distributeHotlist gives the newest hotlist to every validator online
// on day d that lacks it.
func (s *Sim) distributeHotlist(ctx context.Context, d int) error {
	if s.hot.version == 0 {
		return nil
	}
	for _, dev := range s.w.devices {
		if (d < len(dev.offline) && dev.offline[d]) || dev.hotlist == s.hot.version {
			continue
		}
		if err := s.applyHotlist(ctx, dev); err != nil {
			return err
		}
	}
	return nil
}

func (s *Sim) applyHotlist(ctx context.Context, dev *device) error {
	if dev.rig != nil {
		if _, err := dev.rig.holder.Apply(ctx, s.hotFile, dev.rig.hotKeys); err != nil {
			return fmt.Errorf("validator %s: apply hotlist %d: %w", dev.id, s.hot.version, err)
		}
		if v := dev.rig.holder.Version(); v != s.hot.version {
			return fmt.Errorf("validator %s: holds hotlist %d after applying %d", dev.id, v, s.hot.version)
		}
	}
	dev.hotlist = s.hot.version
	return nil
}

// block lists cards on a new hotlist version, signed with the
// sign-hotlist key, and tells clearing from when they are blocked.
func (s *Sim) block(ctx context.Context, cards []*cardState, reason hotlist.Reason) error {
	if len(cards) == 0 {
		return nil
	}
	if s.hot.since == nil {
		s.hot.since = map[uint64]uint64{}
	}
	v := s.hot.version + 1
	var added []store.HotlistEntry
	for _, c := range cards {
		if _, ok := s.hot.since[c.number]; ok {
			continue
		}
		s.hot.since[c.number] = v
		s.hot.entries = append(s.hot.entries, hotlist.Entry{Card: c.number, Reason: reason})
		added = append(added, store.HotlistEntry{Card: c.number, From: s.now()})
	}
	if len(added) == 0 {
		return nil // every card is listed already
	}
	signer, err := s.keys.Signer(ctx, s.hotRef)
	if err != nil {
		return err
	}
	data, err := hotlist.Build(s.hot.entries, v, s.now(), signer, s.hotRef.Version)
	if err != nil {
		return err
	}
	s.hot.version, s.hotFile = v, data
	if s.clearing != nil {
		if _, err := s.clearing.st.AddHotlist(ctx, added); err != nil {
			return fmt.Errorf("tell clearing of hotlist %d: %w", v, err)
		}
	}
	return nil
}

// replaceLost blocks the cards lost today on a new hotlist version and
// issues each rider a replacement with the balance carried over; a share
// of lost cards go on being tapped by whoever found them.
func (s *Sim) replaceLost(ctx context.Context) error {
	if len(s.lost) == 0 {
		return nil
	}
	var cards []*cardState
	for _, r := range s.lost {
		old := r.card
		old.lost = true
		old.found = s.faults.Float64() < s.cfg.Riding.FoundShare
		if old.found {
			s.found = append(s.found, old)
		}
		cards = append(cards, old)
		nc, err := s.w.newCard(nil, s.w.groups[r.group], old.purse, nil, old)
		if err != nil {
			return err
		}
		nc.tPurse = old.tPurse // the balance the model holds moves too
		nc.rider = r
		if r.full {
			if err := s.personalise(ctx, nc); err != nil {
				return err
			}
		}
		r.card = nc
	}
	s.statsMu.Lock()
	s.stats.Lost += int64(len(s.lost))
	s.statsMu.Unlock()
	return s.block(ctx, cards, hotlist.ReasonLost)
}

// Block hotlists card now, as a desk does for a card reported lost, and
// gives the new hotlist to every validator online today. It returns the
// new hotlist version and how many validators apply it.
func (s *Sim) Block(ctx context.Context, number uint64, reason hotlist.Reason) (version uint64, validators int, err error) {
	c := s.cardByNumber(number)
	if c == nil {
		return 0, 0, fmt.Errorf("city: no card %d", number)
	}
	if err := s.block(ctx, []*cardState{c}, reason); err != nil {
		return 0, 0, err
	}
	d := min(s.day, s.cfg.Days)
	for _, dev := range s.w.devices {
		if d < len(dev.offline) && dev.offline[d] {
			continue
		}
		if err := s.applyHotlist(ctx, dev); err != nil {
			return 0, 0, err
		}
		validators++
	}
	return s.hot.version, validators, nil
}

func (s *Sim) cardByNumber(number uint64) *cardState {
	for _, r := range s.w.riders {
		if r.card.number == number {
			return r.card
		}
	}
	for _, c := range s.found {
		if c.number == number {
			return c
		}
	}
	return nil
}

// Presentation is one tap made by Present.
type Presentation struct {
	Device, Carrier, Route string
	Tap                    tap.Tap
}

// Present taps card number at the validator device at the simulation's
// clock set to at, outside the plan, as the tour does to show a blocked
// card refused. The tap is journalled and sent with the next upload.
func (s *Sim) Present(ctx context.Context, number uint64, deviceID string, at time.Time) (Presentation, error) {
	c := s.cardByNumber(number)
	dev := s.w.byID[deviceID]
	if c == nil || dev == nil {
		return Presentation{}, fmt.Errorf("city: no card %d or no validator %q", number, deviceID)
	}
	if (c.vc != nil) != dev.full {
		return Presentation{}, fmt.Errorf("city: card %d and validator %s are in different fidelity lanes", number, deviceID)
	}
	s.setNow(at)
	var counts dayCounts
	e := &event{at: at, card: c, dev: dev, kind: evFound}
	t, ok, err := s.present(ctx, e, &counts)
	if err != nil {
		return Presentation{}, err
	}
	if !ok {
		return Presentation{}, fmt.Errorf("city: card %d was not read at %s", number, deviceID)
	}
	s.statsMu.Lock()
	s.stats.Taps++
	s.statsMu.Unlock()
	return Presentation{Device: dev.id, Carrier: dev.carrier, Route: dev.route.id, Tap: t}, nil
}

// Cards lists the numbers of the cards riders hold now, with their
// benefit category (0 for none) and whether they are in the full lane.
func (s *Sim) Cards() []CardInfo {
	out := make([]CardInfo, 0, len(s.w.riders))
	for _, r := range s.w.riders {
		out = append(out, CardInfo{Number: r.card.number, Profile: s.w.groups[r.group].Profile,
			Category: s.w.groups[r.group].Category, Full: r.card.vc != nil, PurseKop: r.card.purse})
	}
	return out
}

// CardInfo describes a rider's card.
type CardInfo struct {
	Number   uint64
	Profile  string
	Category uint16
	Full     bool
	PurseKop int64
}

// Validators lists the validators' ids with their carrier and route.
func (s *Sim) Validators() []ValidatorInfo {
	out := make([]ValidatorInfo, 0, len(s.w.devices))
	for _, d := range s.w.devices {
		out = append(out, ValidatorInfo{ID: d.id, Carrier: d.carrier, Route: d.route.id, Vehicle: d.vehicle, Full: d.full,
			Drift: d.drift})
	}
	return out
}

// ValidatorInfo describes a validator.
type ValidatorInfo struct {
	ID, Carrier, Route, Vehicle string
	Full                        bool
	Drift                       time.Duration
}
