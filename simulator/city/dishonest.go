package city

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// Dishonest validators (Faults.Dishonest): which lies they tell, and the
// verdict clearing must give each one. The truth owes nothing for a lie:
// an inflated ride is a real ride the card holds, but clearing holds it
// for a person to decide, so the statement pays it only if finance
// releases it, at the re-rated amount; an invented ride never happened.

// streamDishonest is the random stream of the dishonest validators, apart
// from the other faults' so that adding them changes no other fault.
const streamDishonest = 0xD15_4035

// Kinds of DishonestTap.
const (
	// DishonestInflated is a real benefit ride claiming more than the
	// tariff owes.
	DishonestInflated = "inflated"
	// DishonestInvented is a benefit ride of a real card that never
	// happened.
	DishonestInvented = "invented"
)

// InflatedKop is what the most brazen inflated rides claim: 2^40
// kopiyky, about 11 billion UAH, which no tariff can hold.
const InflatedKop = 1 << 40

// DishonestTap is one lie a dishonest validator sealed into its
// authenticated batches, and what clearing must do with it.
type DishonestTap struct {
	Device string
	Seq    uint64
	Card   uint64
	Time   time.Time
	Kind   string
	// Reason is the reason clearing must hold the ride for (a
	// rerate.Reason).
	Reason string
	// ClaimedKop is the compensation the tap claims; OwedKop what the
	// tariff owes for it (0 for an invented ride).
	ClaimedKop, OwedKop int64
}

// dishonesty is the simulation's account of its dishonest validators.
type dishonesty struct {
	cfg Dishonest
	rng *rand.Rand
	// maxComp is the most the tariff owes for any ride (over-tariff is
	// above it).
	maxComp int64
	// lies are the taps injected so far, in the order they were made.
	lies []DishonestTap
	// rides are the day's rides each fast-lane card logged, in order,
	// for placing invented rides between two of them.
	rides map[*cardState][]loggedRide
	// served lists, per dishonest validator, the benefit cards it served
	// today, in the order it first served them.
	served map[*device][]*cardState
	seen   map[*device]map[*cardState]bool
}

// loggedRide is a ride a card's tap log holds: the tap as journalled and
// the validator that made it.
type loggedRide struct {
	rec tap.Tap
	dev *device
}

// planDishonest chooses the dishonest validators among the fast lane's.
func (s *Sim) planDishonest() error {
	cfg := s.cfg.Faults.Dishonest
	if cfg == (Dishonest{}) {
		return nil
	}
	var fast []*device
	for _, d := range s.w.devices {
		if !d.full {
			fast = append(fast, d)
		}
	}
	if cfg.Devices > len(fast) {
		return fmt.Errorf("faults dishonest devices %d: the fast lane has only %d validators (none at full fidelity, whose validators run the real, honest code): lower it, or run fast or mixed",
			cfg.Devices, len(fast))
	}
	dh := &dishonesty{cfg: cfg, rng: rand.New(rand.NewPCG(s.cfg.Seed, streamDishonest)),
		maxComp: rerate.NewTariff(s.w.tariff).MaxCompensationKop,
		rides:   map[*cardState][]loggedRide{}, served: map[*device][]*cardState{}, seen: map[*device]map[*cardState]bool{}}
	for _, i := range dh.rng.Perm(len(fast))[:cfg.Devices] {
		fast[i].dishonest = true
	}
	s.dishonest = dh
	return nil
}

// observe sees a journalled fast-lane tap before it gets its sequence
// number (dev.seq+1): a dishonest validator may inflate it, and a ride
// the card logged is kept for placing invented rides. ow is the truth of
// the tap.
func (dh *dishonesty) observe(dev *device, c *cardState, o *outcome, ow *owed) {
	r := &o.rec
	benefit := r.Result == tap.Accepted && r.CardCommitted && r.Product == fare.ProductBenefit && r.CompensationKop > 0
	if dev.dishonest && benefit {
		if !dh.seen[dev][c] {
			if dh.seen[dev] == nil {
				dh.seen[dev] = map[*cardState]bool{}
			}
			dh.seen[dev][c] = true
			dh.served[dev] = append(dh.served[dev], c)
		}
		// Only a ride the truth owes: one the reference model decides
		// otherwise is a problem of its own.
		if ow != nil && ow.carrier != "" && ow.compensKop == r.CompensationKop && dh.rng.Float64() < dh.cfg.InflateShare {
			dh.inflate(dev, c, r, ow)
		}
	}
	if o.applied && hasBenefit(c) {
		rec := *r
		rec.Device, rec.Seq = dev.id, dev.seq+1
		dh.rides[c] = append(dh.rides[c], loggedRide{rec: rec, dev: dev})
	}
}

// hasBenefit reports whether c's contract holds an entitlement: only
// such cards' rides are kept for placing invented rides.
func hasBenefit(c *cardState) bool {
	for _, e := range c.contract.Entitlements {
		if !e.Empty() {
			return true
		}
	}
	return false
}

// inflate raises the compensation r claims, in one of three ways, and
// marks its truth as held.
func (dh *dishonesty) inflate(dev *device, c *cardState, r *tap.Tap, ow *owed) {
	owed := r.CompensationKop
	reason := []string{rerate.ReasonDiffers, rerate.ReasonOverTariff, rerate.ReasonAmountInvalid}[dh.rng.IntN(3)]
	if reason == rerate.ReasonDiffers && owed >= dh.maxComp {
		reason = rerate.ReasonOverTariff // no room below the tariff's most
	}
	switch reason {
	case rerate.ReasonDiffers:
		// A little more, still within what some ride may owe: only
		// deciding the ride again shows it.
		r.CompensationKop += 1 + dh.rng.Int64N(dh.maxComp-owed)
	case rerate.ReasonOverTariff:
		r.CompensationKop = min(dh.maxComp+100+dh.rng.Int64N(100*dh.maxComp), rerate.MaxAmountKop)
	default:
		r.CompensationKop = InflatedKop
	}
	ow.held = reason
	dh.lies = append(dh.lies, DishonestTap{Device: dev.id, Seq: dev.seq + 1, Card: c.number, Time: r.Time, Kind: DishonestInflated,
		Reason: reason, ClaimedKop: r.CompensationKop, OwedKop: owed})
}

// inventRides has each dishonest validator invent the day's benefit
// rides of cards it served, sealed in its next batches like its real
// taps. Each goes between two rides of the card that clearing will have
// before the day's month closes (both validators online today), the
// later one naming the earlier in the card's log, more than
// rerate.ClockTolerance from either: clearing must find the card's chain
// skips it. It is decided, with the validator's own code and the card's
// contract, as the ride it pretends to be, so its amounts are the
// tariff's own. It returns how many rides were invented.
func (s *Sim) inventRides(d int) int {
	dh := s.dishonest
	if dh == nil {
		return 0
	}
	defer func() {
		clear(dh.rides)
		clear(dh.served)
		clear(dh.seen)
	}()
	if dh.cfg.InventPerDay == 0 {
		return 0
	}
	margin := rerate.ClockTolerance + 30*time.Second
	// used are the later rides of the pairs already spanned, so that
	// two validators do not invent into the same gap.
	type ride struct {
		dev *device
		seq uint64
	}
	used := map[ride]bool{}
	invented := 0
	for _, dev := range s.w.devices {
		cards := dh.served[dev]
		if !dev.dishonest || len(cards) == 0 {
			continue
		}
		made := 0
		for _, k := range dh.rng.Perm(len(cards)) {
			if made == dh.cfg.InventPerDay {
				break
			}
			c := cards[k]
			rides := dh.rides[c]
			for j := 1; j < len(rides) && made < dh.cfg.InventPerDay; j++ {
				p, y := rides[j-1], rides[j]
				gap := y.rec.Time.Sub(p.rec.Time)
				if !rerate.Judged(&y.rec) || !y.rec.CardCommitted || !names(&y.rec, &p) || p.dev.offline[d] || y.dev.offline[d] ||
					gap <= 2*margin || used[ride{y.dev, y.rec.Seq}] {
					continue
				}
				at := p.rec.Time.Add(margin + time.Duration(dh.rng.Int64N(int64(gap-2*margin)))).Truncate(time.Millisecond)
				t, ok := s.invent(dev, c, at)
				if !ok {
					continue
				}
				used[ride{y.dev, y.rec.Seq}] = true
				dev.seq++
				t.Seq, t.Device = dev.seq, dev.id
				dev.pending = append(dev.pending, t)
				dev.owed = append(dev.owed, nil)
				dh.lies = append(dh.lies, DishonestTap{Device: dev.id, Seq: t.Seq, Card: c.number, Time: t.Time, Kind: DishonestInvented,
					Reason: rerate.ReasonContradicted, ClaimedKop: t.CompensationKop})
				made++
				break // one invented ride per card and validator a day
			}
		}
		invented += made
	}
	s.statsMu.Lock()
	s.stats.Taps += int64(invented)
	s.statsMu.Unlock()
	return invented
}

// names reports whether y's card evidence names p.
func names(y *tap.Tap, p *loggedRide) bool {
	return y.Prev.Device == p.dev.number && y.Prev.Seq == uint32(p.rec.Seq) && y.Prev.Time.Unix() == p.rec.Time.Unix()
}

// invent makes the tap of a benefit ride of c on dev at at that never
// happened: decided by the validator's code from the card's contract, as
// if the card had been presented with nothing in its log (the device has
// no log to quote) and enough in its purse. ok is false when the card
// would not ride on a benefit there.
func (s *Sim) invent(dev *device, c *cardState, at time.Time) (tap.Tap, bool) {
	fc := cardtx.FareCard(&c.contract, nil, s.w.vehicleOf, at, s.w.loc)
	fc.PurseKop = math.MaxInt32
	d := fare.Decide(fc, s.w.tariff, s.hot.at(dev.hotlist), fare.Device{ID: dev.id, Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle}, at)
	if d.Result != tap.Accepted || d.Product != fare.ProductBenefit || d.CompensationKop <= 0 {
		return tap.Tap{}, false
	}
	t := tapOf(dev, c, nil, at, d, s.w.tariff.Version, dev.hotlist)
	t.CardCommitted = true
	return t, true
}

// DishonestLine counts the lies of one kind and reason.
type DishonestLine struct {
	Kind, Reason string
	// Injected taps of this kind were made to be held for Reason; Held of
	// them are; ClaimedKop is what they claim, OwedKop what the tariff
	// owes for the real ones.
	Injected, Held      int
	ClaimedKop, OwedKop int64
}

// DishonestCheck is how clearing judged the dishonest validators' lies
// and the honest rides.
type DishonestCheck struct {
	// Devices is the number of dishonest validators.
	Devices int
	// Lines count the lies per kind and expected reason.
	Lines []DishonestLine
	// Misjudged lies are not held for the reason they were made to be
	// held for; Samples shows the first.
	Misjudged int
	// HonestHeld are held rides that no validator lied about, by reason;
	// HonestWaiting wait for a fact (an unsettled commit-unknown ride),
	// which the truth does not owe either.
	HonestHeld    map[string]int
	HonestWaiting map[string]int
	Samples       []string
}

// Injected returns the number of lies.
func (d *DishonestCheck) Injected() int {
	n := 0
	for _, l := range d.Lines {
		n += l.Injected
	}
	return n
}

// judge has clearing judge what waits for re-rating, as its checker does
// beside ingest, with the tariff and the registry's records as of now:
// the drafts of open months then stand as a close would seal them.
func (s *Sim) judge(ctx context.Context) error {
	if err := s.proveToClearing(ctx); err != nil {
		return err
	}
	for {
		rs, err := s.clearing.st.Rerate(ctx, 100)
		if err != nil {
			return fmt.Errorf("compare: clearing's re-rating: %w", err)
		}
		if rs.Runs == 0 && rs.Cards == 0 {
			return nil
		}
	}
}

// compareHeld checks clearing's held rides of periods against the lies:
// every lie held for its reason, and no honest ride held.
func (s *Sim) compareHeld(ctx context.Context, c *Comparison, periods []string) error {
	st := s.clearing.st
	got := map[rerate.Key]store.HeldRide{}
	for _, p := range periods {
		q := store.HeldQuery{Period: p, Decided: true, Limit: store.MaxHeldPage}
		for {
			page, err := st.Held(ctx, q)
			if err != nil {
				return fmt.Errorf("compare: held rides of %s: %w", p, err)
			}
			for _, h := range page {
				got[rerate.Key{Device: h.Tap.Device, Seq: h.Tap.Seq}] = h
			}
			if len(page) < q.Limit {
				break
			}
			last := page[len(page)-1].Tap
			q.After = store.Ride{Device: last.Device, Seq: last.Seq}
		}
	}
	dc := &c.Dishonest
	dc.HonestHeld, dc.HonestWaiting = map[string]int{}, map[string]int{}
	sample := func(format string, args ...any) {
		if len(dc.Samples) < 5 {
			dc.Samples = append(dc.Samples, fmt.Sprintf(format, args...))
		}
	}
	lines := map[[2]string]*DishonestLine{}
	var lies []DishonestTap
	if dh := s.dishonest; dh != nil {
		lies = dh.lies
		for _, dev := range s.w.devices {
			if dev.dishonest {
				dc.Devices++
			}
		}
	}
	for _, l := range lies {
		k := [2]string{l.Kind, l.Reason}
		line := lines[k]
		if line == nil {
			line = &DishonestLine{Kind: l.Kind, Reason: l.Reason}
			lines[k] = line
		}
		line.Injected++
		line.ClaimedKop += l.ClaimedKop
		line.OwedKop += l.OwedKop
		key := rerate.Key{Device: l.Device, Seq: l.Seq}
		h, ok := got[key]
		delete(got, key)
		switch {
		case !ok:
			dc.Misjudged++
			sample("%s ride %s/%d of card %d at %s claiming %s UAH: clearing holds nothing back, it pays it; it must be held (%s)",
				l.Kind, l.Device, l.Seq, l.Card, l.Time.In(s.w.loc).Format(time.DateTime), report.UAH(l.ClaimedKop), l.Reason)
		case h.State != string(rerate.Held) || h.Reason != l.Reason:
			dc.Misjudged++
			sample("%s ride %s/%d of card %d at %s claiming %s UAH: clearing has it %s (%s: %s); it must be held (%s)",
				l.Kind, l.Device, l.Seq, l.Card, l.Time.In(s.w.loc).Format(time.DateTime), report.UAH(l.ClaimedKop), h.State, h.Reason, h.Detail, l.Reason)
		default:
			line.Held++
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(lines), func(a, b [2]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	}) {
		dc.Lines = append(dc.Lines, *lines[k])
	}
	honest := slices.SortedFunc(maps.Keys(got), func(a, b rerate.Key) int {
		return cmp.Or(strings.Compare(a.Device, b.Device), cmp.Compare(a.Seq, b.Seq))
	})
	for _, k := range honest {
		h := got[k]
		switch rerate.State(h.State) {
		case rerate.Waiting:
			dc.HonestWaiting[h.Reason]++
		case rerate.Held:
			dc.HonestHeld[h.Reason]++
			sample("honest ride %s/%d of card %d at %s: clearing holds it (%s: %s)",
				k.Device, k.Seq, h.Tap.Card, h.Tap.Time.In(s.w.loc).Format(time.DateTime), h.Reason, h.Detail)
		}
	}
	if dc.Misjudged > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d of the %d rides dishonest validators lied about are not held for the reason clearing must give", dc.Misjudged, len(lies)))
	}
	if n := sum(dc.HonestHeld); n > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("clearing holds %d honest rides: %v", n, dc.HonestHeld))
	}
	return nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Lies returns the taps the dishonest validators sealed so far.
func (s *Sim) Lies() []DishonestTap {
	if s.dishonest == nil {
		return nil
	}
	return slices.Clone(s.dishonest.lies)
}

// writeDishonest prints how clearing judged the lies and the honest
// rides.
func writeDishonest(ew *errWriter, d *DishonestCheck) {
	if d.Devices > 0 {
		ew.printf("  %d dishonest validators sealed %d lies in their batches; clearing held:\n", d.Devices, d.Injected())
		for _, l := range d.Lines {
			owed := ""
			if l.Kind == DishonestInflated {
				owed = ", the tariff owes " + report.UAH(l.OwedKop) + " UAH"
			}
			ew.printf("    %-9s rides, held %-21s %5d of %5d, claiming %s UAH%s\n", l.Kind, l.Reason+":", l.Held, l.Injected, report.UAH(l.ClaimedKop), owed)
		}
	}
	if n := sum(d.HonestHeld); n > 0 {
		ew.printf("  %d honest rides held: %v\n", n, d.HonestHeld)
	} else {
		ew.printf("  no honest ride held")
		if n := sum(d.HonestWaiting); n > 0 {
			ew.printf("; %d wait for a fact clearing lacks, and the truth owes them nothing yet: %v", n, d.HonestWaiting)
		}
		ew.printf("\n")
	}
	if len(d.Samples) > 0 {
		ew.printf("  misjudged, e.g.:\n")
		for _, s := range d.Samples {
			ew.printf("    %s\n", s)
		}
	}
}
