package city

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tariff"
)

// Fidelity says how taps are made.
type Fidelity string

// Fidelities.
const (
	// Full runs every tap through the real validator: virtual cards
	// answering APDUs, validator/agent with validator/cardtx, a journal on
	// disk, signed hotlists and sealed batches from validator/upload.
	Full Fidelity = "full"
	// Fast decides taps with the simulator's own card model and seals
	// batches directly with the devices' batch keys: no card protocol, no
	// journal. It is for volume.
	Fast Fidelity = "fast"
	// Mixed runs some riders on some vehicles of every route at full
	// fidelity and the rest fast.
	Mixed Fidelity = "mixed"
)

// Options set up a simulation.
type Options struct {
	// Dir holds the keystores and, at full fidelity, the validators'
	// journals and hotlists. It must exist.
	Dir string
	// Tariff is the tariff directory (GTFS-Fares v2 and x_ files).
	Tariff fs.FS
	// Fidelity is Full, Fast or Mixed (default Fast).
	Fidelity Fidelity
	// FullCards and FullVehicles are, at Mixed fidelity, the number of
	// riders and the vehicles of each route in the full lane (defaults
	// 300 and 1).
	FullCards, FullVehicles int

	// Store, Producer and Consumer are clearing's store and the bus to
	// it; the simulation runs clearing's ingest on Consumer. With no
	// Store the batches are sealed and dropped (for measuring volume) and
	// there is nothing to compare.
	Store    store.Store
	Producer bus.Producer
	Consumer bus.Consumer
	// IngestWorkers is how many batches clearing stores at once (default 2).
	IngestWorkers int

	// Audit keeps every delivered tap so that Compare checks each stored
	// tap field by field. It costs memory: use it below a few million taps.
	Audit bool
	// Progress, when set, is told how far a long step is.
	Progress func(step string, done, total int)
	// Log receives what clearing and the validators log (default: nothing).
	Log *slog.Logger
}

// Stats counts what happened so far.
type Stats struct {
	Cards, Validators int
	// Taps were journalled; Committed is the accepted ones the card
	// committed; Hotlisted the ones denied for the hotlist.
	Taps, Accepted, Committed, AlreadyPaid, Denied, Hotlisted int64
	// Torn presentations lost the card mid-tap; PowerCuts hit a tap.
	Torn, PowerCuts int64
	TopUps, Lost    int64
	// Batches were sealed and sent, repeats included.
	Batches int64
	// BenefitRides are the compensable rides delivered to clearing and
	// OwedKop what the city owes for them.
	BenefitRides, OwedKop int64
}

// Sim is a simulated city wired to clearing.
type Sim struct {
	cfg Config
	opt Options
	w   *world
	// tariffGiven is set once clearing keeps the city's tariff (proof.go).
	tariffGiven bool
	// horizon is how long a card's previous ride matters to clearing's
	// re-rating of the next (rerate.Tariff.Horizon).
	horizon time.Duration
	log     *slog.Logger

	keys   *hsm.Keystore
	issuer *cardkey.Source
	topUp  *topUpTerminal

	hot     blockList
	hotFile []byte // the newest signed hotlist
	hotRef  hsm.Ref

	clearing *clearingSide
	svc      *statement.Service
	ledger   *ledger

	clock  atomic.Int64 // true time of the simulation, Unix nanoseconds
	day    int          // index of the day RideDay rides next
	rode   bool         // RideDay ran, EndDay not yet
	faults *rand.Rand
	found  []*cardState
	lost   []*rider
	// replay holds batches sent earlier, to deliver again.
	replay [][]byte
	// replayDays and forgedDays say on which day each replay and forgery
	// happens.
	replayDays []int
	forgedDays []forgery
	// outbox collects the fast lane's batches to publish together.
	outbox []bus.Message
	// marks are the counts of late rides, batches and taps sent when the
	// last day ended.
	marks struct{ late, batches, taps int64 }

	stats      Stats
	statsMu    sync.Mutex
	progressMu sync.Mutex
	// batches counts the batches sent; the fast lane sends during the day.
	batches     atomic.Int64
	divMu       sync.Mutex
	divergences int
	samples     []string
	// decideWith, when set, is the tariff the fast lane's validators
	// decide with instead of the city's: a test's way to give them a
	// wrong rule that the truth must catch.
	decideWith *fare.Tariff
	// modelDiffs counts taps decided otherwise than the reference model.
	modelDiffs   int
	modelSamples []string
	// dishonest is the account of the dishonest validators, nil without
	// them.
	dishonest *dishonesty
}

type forgery struct {
	day    int
	reason string
}

// New builds the city of cfg, issues its cards (writing the full lane's
// virtual cards as a desk would), sets up its validators and starts
// clearing's ingest.
func New(ctx context.Context, cfg Config, opt Options) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Tariff == nil {
		return nil, errors.New("city: no tariff")
	}
	if opt.Dir == "" {
		return nil, errors.New("city: no directory for keystores and journals")
	}
	if opt.Fidelity == "" {
		opt.Fidelity = Fast
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Store != nil && (opt.Producer == nil || opt.Consumer == nil) {
		return nil, errors.New("city: clearing needs a bus producer and consumer")
	}
	tf, err := tariff.Parse(opt.Tariff)
	if err != nil {
		return nil, fmt.Errorf("city tariff: %w", err)
	}
	if err := cfg.checkTariff(tf); err != nil {
		return nil, err
	}
	zone := cfg.TimeZone
	if zone == "" && tf.Location != nil {
		zone = tf.Location.String()
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("city time zone %q: %w", zone, err)
	}
	start, err := cfg.StartDay(loc)
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, opt: opt, log: opt.Log, ledger: newLedger(loc),
		w:      &world{cfg: cfg, tariff: tf, loc: loc, start: start},
		faults: rand.New(rand.NewPCG(cfg.Seed, streamFaults)), horizon: rerate.NewTariff(tf).Horizon()}
	fullCards, fullVehicles := 0, 0
	switch opt.Fidelity {
	case Full:
		fullCards, fullVehicles = -1, -1
	case Fast:
	case Mixed:
		fullCards, fullVehicles = opt.FullCards, opt.FullVehicles
		if fullCards <= 0 {
			fullCards = 300
		}
		if fullVehicles <= 0 {
			fullVehicles = 1
		}
	default:
		return nil, fmt.Errorf("city: fidelity %q: want full, fast or mixed", opt.Fidelity)
	}
	if err := s.w.buildFleet(fullVehicles); err != nil {
		return nil, err
	}
	if err := s.w.buildPopulation(fullCards); err != nil {
		return nil, err
	}
	s.planFaults()
	if err := s.planDishonest(); err != nil {
		return nil, err
	}
	s.setNow(start.Add(-time.Hour))
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if err := s.setUpKeys(ctx); err != nil {
		return nil, err
	}
	if err := s.setUpValidators(ctx); err != nil {
		return nil, err
	}
	if err := s.issueCards(ctx); err != nil {
		return nil, err
	}
	if opt.Store != nil {
		devices := map[string]bool{}
		for _, d := range s.w.devices {
			devices[d.id] = true
		}
		proc := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: s.keys, Devices: devices}, Store: opt.Store,
			Log: s.log, Now: s.now, Location: loc}
		s.clearing = startClearing(ctx, opt.Store, opt.Producer, opt.Consumer, proc, max(opt.IngestWorkers, 2), s.log)
		s.svc = &statement.Service{Store: opt.Store, Keys: s.keys, Location: loc, Now: s.now, Log: s.log}
	}
	s.stats.Validators = len(s.w.devices)
	ok = true
	return s, nil
}

// Close stops clearing's ingest and closes the validators' journals and
// keystores. The store and the bus belong to the caller.
func (s *Sim) Close() error {
	if s.clearing != nil {
		s.clearing.close()
		s.clearing = nil
	}
	var errs []error
	for _, d := range s.w.devices {
		if d.rig != nil {
			errs = append(errs, d.rig.close())
			d.rig = nil
		}
	}
	if s.topUp != nil {
		errs = append(errs, s.topUp.keys.Close())
		s.topUp = nil
	}
	if s.keys != nil {
		errs = append(errs, s.keys.Close())
		s.keys = nil
	}
	return errors.Join(errs...)
}

func (s *Sim) now() time.Time { return time.Unix(0, s.clock.Load()) }

func (s *Sim) setNow(t time.Time) { s.clock.Store(t.UnixNano()) }

func (s *Sim) batchTaps() int { return cmpOr(s.cfg.Clearing.BatchTaps, 500) }

func (s *Sim) closeLag() int { return cmpOr(s.cfg.Clearing.CloseLagDays, 1) }

func (s *Sim) date(d int) time.Time { return s.w.start.AddDate(0, 0, d) }

// progress tells Options.Progress, one call at a time: the validators
// of the full lane report from their own goroutines.
func (s *Sim) progress(step string, done, total int) {
	if s.opt.Progress != nil {
		s.progressMu.Lock()
		defer s.progressMu.Unlock()
		s.opt.Progress(step, done, total)
	}
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// deviceNow is dev's clock now: the simulation's plus its drift.
func (s *Sim) deviceNow(dev *device) time.Time {
	return s.now().Add(dev.drift).UTC().Truncate(time.Millisecond)
}

// Stats returns the counts so far.
func (s *Sim) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	st := s.stats
	st.Batches = s.batches.Load()
	st.BenefitRides, st.OwedKop = s.ledger.owed()
	return st
}

// Totals returns what clearing's ingest counted.
func (s *Sim) Totals() ingest.Totals {
	if s.clearing == nil {
		return ingest.Totals{}
	}
	return s.clearing.Totals()
}

// diverge records a full-fidelity tap that differs from the model.
func (s *Sim) diverge(format string, args ...any) {
	s.divMu.Lock()
	defer s.divMu.Unlock()
	s.divergences++
	if len(s.samples) < 5 {
		s.samples = append(s.samples, fmt.Sprintf(format, args...))
	}
}

// planFaults decides which validators go offline, whose clocks drift,
// and on which days batches are replayed or forged.
func (s *Sim) planFaults() {
	rng, f := s.faults, s.cfg.Faults
	lanes := [2][]*device{}
	for _, d := range s.w.devices {
		if d.full {
			lanes[0] = append(lanes[0], d)
		} else {
			lanes[1] = append(lanes[1], d)
		}
	}
	// Each lane gets its share, at least one validator when the share is
	// not zero, so a small full-fidelity lane sees every fault too.
	choose := func(share float64) []*device {
		var out []*device
		for _, lane := range lanes {
			if share == 0 || len(lane) == 0 {
				continue
			}
			n := max(1, int(share*float64(len(lane))+0.5))
			for _, i := range rng.Perm(len(lane))[:min(n, len(lane))] {
				out = append(out, lane[i])
			}
		}
		return out
	}
	for _, o := range f.Offline {
		for _, d := range choose(o.Share) {
			for day := o.FromDay; day < o.FromDay+o.Days && day < len(d.offline); day++ {
				d.offline[day] = true
			}
		}
	}
	if f.ClockDrift.MaxSeconds > 0 {
		for _, d := range choose(f.ClockDrift.Share) {
			secs := 1 + rng.IntN(f.ClockDrift.MaxSeconds)
			if rng.IntN(2) == 0 {
				secs = -secs
			}
			d.drift = time.Duration(secs) * time.Second
		}
	}
	days := s.cfg.Days
	for range f.Replays {
		s.replayDays = append(s.replayDays, min(days-1, 1+rng.IntN(max(days-1, 1))))
	}
	forged := []struct {
		reason string
		n      int
	}{{ingest.ReasonBadMAC, f.Forged.BadMAC}, {ingest.ReasonUnknownDevice, f.Forged.UnknownDevice}, {ingest.ReasonMalformed, f.Forged.Malformed}}
	for _, fg := range forged {
		for range fg.n {
			s.forgedDays = append(s.forgedDays, forgery{day: rng.IntN(days), reason: fg.reason})
		}
	}
}

// setUpKeys creates the city's software keystore with every key the
// platform uses, and the top-up terminals' keystore.
func (s *Sim) setUpKeys(ctx context.Context) error {
	ks, err := hsm.CreateKeystore(filepath.Join(s.opt.Dir, "city.keys"), []byte(KeystorePassphrase), cheapKDF)
	if err != nil {
		return fmt.Errorf("city keystore: %w", err)
	}
	s.keys = ks
	for _, r := range hsm.Roles {
		if _, err := ks.Generate(ctx, hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			return err
		}
	}
	for _, l := range []string{hsm.LabelSignHotlist, hsm.LabelSignTariff, hsm.LabelSignStatement} {
		if _, err := ks.Generate(ctx, l, hsm.KindSigning); err != nil {
			return err
		}
	}
	if _, err := ks.Generate(ctx, hsm.LabelBatchMaster, hsm.KindBatchMaster); err != nil {
		return err
	}
	info, err := hsm.Resolve(ctx, ks, hsm.Ref{Label: hsm.LabelSignHotlist})
	if err != nil {
		return err
	}
	s.hotRef = info.Ref
	s.issuer = cardkey.New(ks)
	if s.opt.Fidelity != Fast {
		tk, err := hsm.ExportRole(ctx, ks, hsm.RoleTopup, "", filepath.Join(s.opt.Dir, "topup.keys"), []byte(KeystorePassphrase), cheapKDF)
		if err != nil {
			return fmt.Errorf("top-up keystore: %w", err)
		}
		s.topUp = &topUpTerminal{keys: tk, src: cardkey.New(tk)}
	}
	return nil
}

// setUpValidators gives each full-lane device a real validator and each
// fast-lane device its batch key.
func (s *Sim) setUpValidators(ctx context.Context) error {
	master, err := hsm.Resolve(ctx, s.keys, hsm.Ref{Label: hsm.LabelBatchMaster})
	if err != nil {
		return err
	}
	full := 0
	for _, d := range s.w.devices {
		if d.full {
			full++
		}
	}
	done := 0
	for _, d := range s.w.devices {
		if !d.full {
			if d.fast, err = newFastDevice(ctx, s.keys, master.Ref, d.id); err != nil {
				return err
			}
			continue
		}
		if d.rig, err = s.newRig(ctx, d); err != nil {
			return err
		}
		done++
		s.progress("setting up validators", done, full)
	}
	return nil
}

// issueCards personalises the full lane's virtual cards as a desk does.
func (s *Sim) issueCards(ctx context.Context) error {
	var full []*cardState
	for _, r := range s.w.riders {
		if r.full {
			full = append(full, r.card)
		}
	}
	s.stats.Cards = len(s.w.riders)
	for i, c := range full {
		if err := s.personalise(ctx, c); err != nil {
			return err
		}
		if i%16 == 15 || i == len(full)-1 {
			s.progress("issuing cards", i+1, len(full))
		}
	}
	return nil
}

func (s *Sim) personalise(ctx context.Context, c *cardState) error {
	c.vc = vcard.New(c.uid())
	if err := issue.Personalise(ctx, c.vc, s.issuer, c.uid(), c.personalisation()); err != nil {
		return fmt.Errorf("personalise card %d: %w", c.number, err)
	}
	return nil
}
