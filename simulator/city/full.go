package city

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
	"github.com/citycard/transit/validator/upload"
)

// rig is a real validator in the full-fidelity lane: the agent reading
// virtual cards through validator/cardtx with its own role keystore, a
// journal on disk, a signed hotlist in a Holder and an uploader sealing
// batches with the device's batch key.
type rig struct {
	dir     string
	keys    *hsm.Keystore
	hotKeys hotlist.KeyLookup
	holder  *hotlist.Holder
	journal *journal.Journal
	power   *powerJournal
	agent   *agent.Agent
	up      *upload.Uploader
}

// errPowerCut is what a validator's journal "returns" when the power
// goes: the process is gone, nothing after this point runs.
var errPowerCut = errors.New("power cut")

// powerJournal is the validator's journal with a power switch: armed, it
// lets the journal write and then cuts the power, before the card is
// written (after Append) or before the journal settles (in SettleAs).
type powerJournal struct {
	*journal.Journal
	cut uint8
	// appended is the tap as journalled when the power went; settling is
	// the tap the agent was about to settle (what the card did).
	appended, settling tap.Tap
}

func (p *powerJournal) Append(ctx context.Context, t *tap.Tap) error {
	if err := p.Journal.Append(ctx, t); err != nil {
		return err
	}
	if p.cut == powerBeforeCard {
		p.cut, p.appended = powerNone, *t
		return errPowerCut
	}
	p.appended = *t
	return nil
}

func (p *powerJournal) SettleAs(ctx context.Context, t *tap.Tap) error {
	if p.cut == powerAfterCard {
		p.cut, p.settling = powerNone, *t
		return errPowerCut
	}
	return p.Journal.SettleAs(ctx, t)
}

// cheapKDF keeps keystore files quick to write; production keystores use
// hsm.DefaultKDF.
var cheapKDF = hsm.KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

// KeystorePassphrase protects the simulation's keystores in Options.Dir
// (city.keys, topup.keys, validators/*/validator.keys). It is fixed and
// public: the keys are throwaway, and a kept directory can be opened with
// the other commands (TRANSIT_KEYSTORE_PASSPHRASE).
const KeystorePassphrase = "simulated city"

// newRig sets up the validator of dev in dir.
func (s *Sim) newRig(ctx context.Context, dev *device) (*rig, error) {
	dir := filepath.Join(s.opt.Dir, "validators", dev.id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("validator %s: %w", dev.id, err)
	}
	ks, err := hsm.ExportRole(ctx, s.keys, hsm.RoleValidator, dev.id, filepath.Join(dir, "validator.keys"), []byte(KeystorePassphrase), cheapKDF)
	if err != nil {
		return nil, fmt.Errorf("validator %s: %w", dev.id, err)
	}
	r := &rig{dir: dir, keys: ks}
	if r.hotKeys, err = hotlist.HSMKeys(ctx, ks); err != nil {
		return nil, fmt.Errorf("validator %s: %w", dev.id, err)
	}
	quiet := slog.New(slog.DiscardHandler)
	if r.holder, err = hotlist.Open(ctx, hotlist.Config{Dir: filepath.Join(dir, "hotlist"), Log: quiet}, r.hotKeys); err != nil {
		return nil, fmt.Errorf("validator %s: %w", dev.id, err)
	}
	sealer, err := upload.NewKeySealer(ctx, ks)
	if err != nil {
		return nil, fmt.Errorf("validator %s: %w", dev.id, err)
	}
	cards := agent.DESFire(cardkey.New(ks), dev.number, dev.vehicle, s.w.loc)
	cards.Carrier, cards.Route = dev.carrierCode, dev.route.code
	// Anti-passback across the doors of a vehicle needs every device's
	// vehicle, as a fleet's validators are configured.
	cards.Fleet = s.w.vehicleOf
	// Every simulated card is a virtual EV1 (vcard.New), as the registry's
	// list of EV1 UIDs would tell a validator: no AuthenticateEV2First
	// attempt, so the model's tear points stay where it expects them.
	cards.EV1 = func([]byte) bool { return true }
	r.agent = &agent.Agent{
		Device:  fare.Device{ID: dev.id, Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle},
		Tariff:  s.w.tariff,
		Hotlist: r.holder,
		Cards:   cards,
		// Torn cards and power cuts are part of the simulation, not
		// warnings.
		Log: quiet,
	}
	r.up = &upload.Uploader{Sealer: sealer, Publisher: &publisher{s: s}, MaxTaps: s.batchTaps(), Log: quiet,
		KeepSent: -1, Now: func() time.Time { return s.deviceNow(dev) }}
	if err := r.open(ctx, dev); err != nil {
		return nil, err
	}
	return r, nil
}

// open opens the journal, as the validator does when it starts: taps a
// power cut left pending are settled as not committed.
func (r *rig) open(ctx context.Context, dev *device) error {
	j, err := journal.Open(ctx, filepath.Join(r.dir, "journal.db"), dev.id)
	if err != nil {
		return fmt.Errorf("validator %s: %w", dev.id, err)
	}
	r.journal = j
	r.power = &powerJournal{Journal: j}
	r.agent.Journal = r.power
	r.up.Journal = j
	return nil
}

// reboot restarts the validator after a power cut.
func (r *rig) reboot(ctx context.Context, dev *device) error {
	if err := r.journal.Close(); err != nil {
		return fmt.Errorf("validator %s: close the journal: %w", dev.id, err)
	}
	return r.open(ctx, dev)
}

func (r *rig) close() error {
	var err error
	if r.journal != nil {
		err = r.journal.Close()
	}
	return errors.Join(err, r.keys.Close())
}

// tapFull presents the card of e to the real validator and checks what
// it did against the model's decision, which it then applies.
func (s *Sim) tapFull(ctx context.Context, e *event, now time.Time, d fare.Decision, want tap.Tap, n int) (outcome, error) {
	dev, c, r := e.dev, e.card, e.dev.rig
	r.agent.Now = func() time.Time { return now }
	c.vc.Reset() // a new presentation powers the card up afresh
	var tr apdu.Transport = c.vc
	var tear *vcard.Tear
	if e.tear > 0 {
		tear = &vcard.Tear{Card: c.vc, After: int(e.tear)}
		tr = tear
	}
	r.power.cut = e.power
	ev, err := r.agent.Tap(ctx, tr, c.uid())
	torn := tear != nil && tear.Torn()

	if e.power != powerNone {
		if !errors.Is(err, errPowerCut) {
			return outcome{}, fmt.Errorf("validator %s: power cut during a tap of card %d, but the tap ended with %v", dev.id, c.number, err)
		}
		// What survives is the journalled record, settled as commit
		// unknown when the validator starts again.
		got, settling := r.power.appended, r.power.settling
		want.Seq = got.Seq
		if err := r.reboot(ctx, dev); err != nil {
			return outcome{}, err
		}
		o := outcome{journalled: true, rec: uncertain(want)}
		if e.power == powerAfterCard && writes(d) && !c.refuses(d) {
			if !settling.CardCommitted {
				s.diverge("%s seq %d: power cut after the card: the model says card %d committed, the validator saw it fail", dev.id, got.Seq, c.number)
			}
			o.applied = true
		}
		// got is the tap as appended, before the reboot settled it; the
		// audit of clearing's copy checks the settling.
		pending := want
		pending.CardCommitted, pending.CommitUnknown = false, false
		s.check(dev, got, pending)
		return o, nil
	}
	if err != nil {
		return outcome{}, fmt.Errorf("validator %s, card %d: %w", dev.id, c.number, err)
	}
	got, journalled := ev.Tap()
	switch {
	case !journalled && torn:
		// Torn while being read: nothing journalled, nothing on the card.
		return outcome{}, nil
	case !journalled:
		s.diverge("%s: card %d not read: %s", dev.id, c.number, ev.Err)
		return outcome{}, nil
	case torn && got.Result == tap.Denied && got.Reason == fare.ReasonInsufficientFunds:
		// The card refused the debit before it left the field.
		want = refused(want)
		if !c.refuses(d) {
			s.diverge("%s seq %d: card %d refused the debit of %d kop; the model holds %d kop", dev.id, got.Seq, c.number, d.DebitKop, c.purse)
		}
	case torn && writes(d) && tear.After == n-1:
		// Lost at CommitTransaction itself: the validator cannot know
		// whether the card committed; this card did not.
		want = uncertain(want)
	case torn && writes(d):
		// Left before CommitTransaction: journalled, not committed, and
		// the card is as it was.
		want.CardCommitted = false
	default:
		if c.refuses(d) {
			want = refused(want)
		} else {
			want.CardCommitted = true
		}
	}
	want.Seq = got.Seq
	s.check(dev, got, want)
	return outcome{journalled: true, rec: want, applied: want.CardCommitted && writes(d) && want.Result == tap.Accepted}, nil
}

// check compares a journalled tap with the model's.
func (s *Sim) check(dev *device, got, want tap.Tap) {
	want.Seq, want.Device = got.Seq, dev.id
	if got.Seq != dev.seq+1 {
		s.diverge("%s: journal gave sequence %d, the model expected %d", dev.id, got.Seq, dev.seq+1)
	}
	if got != want {
		s.diverge("%s seq %d: validator journalled %+v, the model decided %+v", dev.id, got.Seq, got, want)
	}
}

// publisher hands the full-fidelity uploaders' batches to clearing and
// loses some acknowledgements on purpose.
type publisher struct{ s *Sim }

func (p *publisher) Publish(ctx context.Context, key, value []byte) error {
	return p.s.send(ctx, key, value)
}

// topUpTerminal credits purses as a top-up point does, with the top-up
// role's keys only.
type topUpTerminal struct {
	keys *hsm.Keystore
	src  *cardkey.Source
}

// credit adds amount to the purse of c's card in one transaction.
func (t *topUpTerminal) credit(ctx context.Context, c *cardState, amount int64) error {
	key, err := t.src.Key(ctx, card.RoleTopUp, c.uid(), card.AIDTransport, 0)
	if err != nil {
		return fmt.Errorf("top-up of card %d: %w", c.number, err)
	}
	c.vc.Reset()
	dc := desfire.New(c.vc)
	steps := []struct {
		what string
		do   func() error
	}{
		{"select the transport application", func() error { return dc.SelectApplication(card.AIDTransport.Bytes()) }},
		{"authenticate with the top-up key", func() error { return dc.AuthenticateAES(card.KeyTopUp, key.Value[:]) }},
		{"credit the purse", func() error { return dc.Credit(card.FilePurse, int32(amount), desfire.CommMAC) }},
		{"commit", dc.CommitTransaction},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			return fmt.Errorf("top-up of card %d: %s: %w", c.number, st.what, err)
		}
	}
	return nil
}
