package golden

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
	"github.com/citycard/transit/validator/tariff"
	"github.com/citycard/transit/validator/upload"
)

// cheapKDF keeps the throwaway keystores quick to write; production
// keystores use hsm.DefaultKDF.
var cheapKDF = hsm.KDFParams{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

var passphrase = []byte("golden month")

// issuerCode is the card issuer of the golden city (the numbers' first
// four digits).
const issuerCode = 1001

// system is the golden city's platform: the city keystore, one real
// validator per device, the virtual cards and clearing.
type system struct {
	m     *month
	dir   string
	quiet *slog.Logger
	clock atomic.Int64 // clearing's and the uploaders' time, Unix nanoseconds

	keys   *hsm.Keystore
	hotRef hsm.Ref

	validators map[string]*validator
	cards      map[string]*vcard.Card

	store    *sqlite.Store
	prod     *inproc.Producer
	svc      *statement.Service
	stopRun  func()
	runDone  chan error
	mu       sync.Mutex
	sent     int // batches published
	handled  int // batches ingest has handled
	rejected []string
	changed  chan struct{}
}

// validator is one device's validator as `transit validator run` builds
// it: its own role keystore, the signed tariff loaded with it, a hotlist
// holder, a journal, the agent and the uploader.
type validator struct {
	dev     *deviceRow
	keys    *hsm.Keystore
	hotKeys hotlist.KeyLookup
	holder  *hotlist.Holder
	journal *journal.Journal
	agent   *agent.Agent
	up      *upload.Uploader
}

func (s *system) now() time.Time { return time.Unix(0, s.clock.Load()) }

func (s *system) setNow(t time.Time) { s.clock.Store(t.UnixNano()) }

// newSystem sets up the city of m in a temporary directory.
func newSystem(t *testing.T, ctx context.Context, m *month) *system {
	t.Helper()
	s := &system{m: m, dir: t.TempDir(), quiet: slog.New(slog.DiscardHandler), validators: map[string]*validator{},
		cards: map[string]*vcard.Card{}, changed: make(chan struct{})}
	s.setNow(m.hotlists[0].from)
	s.setUpKeys(t, ctx)
	tariffPath := s.signTariff(t, ctx)

	// Anti-passback across the doors of a vehicle: every validator knows
	// the vehicle of every device, as a fleet is configured.
	fleet := cardtx.Fleet{}
	for _, d := range m.devices {
		fleet[d.number] = d.vehicle
	}
	s.setUpClearing(t, ctx)
	s.proveToClearing(t, ctx, tariffPath)
	for _, d := range m.devices {
		s.validators[d.id] = s.newValidator(t, ctx, d, tariffPath, fleet)
	}
	issuer := cardkey.New(s.keys)
	for i, c := range m.cards {
		uid := uidOf(i)
		vc := vcard.New(uid)
		issued := card.MustDate(2026, time.October, 1)
		p := issue.Personalisation{
			Identity: card.Identity{Number: c.number, Issuer: issuerCode, Issued: issued, Expires: c.expires},
			Holder:   card.Holder{Name: "Golden Rider " + c.label, BirthDate: card.BirthDate{Year: 1960, Month: time.March, Day: 8}, RegistryRef: uint64(i + 1)},
			Contract: card.Contract{Status: c.status, Number: c.number, Expires: c.expires, Entitlements: c.ents, Passes: c.passes},
			PurseKop: c.purseKop,
		}
		if err := issue.Personalise(ctx, vc, issuer, uid, p); err != nil {
			t.Fatalf("personalise card %s: %v", c.label, err)
		}
		s.cards[c.label] = vc
	}
	return s
}

// uidOf is the UID of the i-th card of cards.csv.
func uidOf(i int) []byte { return []byte{0x04, 'G', 'O', 'L', 'D', byte(i >> 8), byte(i)} }

// setUpKeys creates the city's keystore with every key the platform uses.
func (s *system) setUpKeys(t *testing.T, ctx context.Context) {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(s.dir, "city.keys"), passphrase, cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	s.keys = ks
	for _, r := range hsm.Roles {
		if _, err := ks.Generate(ctx, hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []string{hsm.LabelSignHotlist, hsm.LabelSignTariff, hsm.LabelSignStatement} {
		if _, err := ks.Generate(ctx, l, hsm.KindSigning); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.Generate(ctx, hsm.LabelBatchMaster, hsm.KindBatchMaster); err != nil {
		t.Fatal(err)
	}
	info, err := hsm.Resolve(ctx, ks, hsm.Ref{Label: hsm.LabelSignHotlist})
	if err != nil {
		t.Fatal(err)
	}
	s.hotRef = info.Ref
}

// signTariff copies the sample tariff and signs the copy as
// `transit tariff sign` does.
func (s *system) signTariff(t *testing.T, ctx context.Context) string {
	t.Helper()
	dir := filepath.Join(s.dir, "tariff")
	if err := os.CopyFS(dir, os.DirFS(tariffDir)); err != nil {
		t.Fatal(err)
	}
	fsys := os.DirFS(dir)
	tf, err := tariff.Parse(fsys)
	if err != nil {
		t.Fatal(err)
	}
	info, err := hsm.Resolve(ctx, s.keys, hsm.Ref{Label: hsm.LabelSignTariff})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := s.keys.Signer(ctx, info.Ref)
	if err != nil {
		t.Fatal(err)
	}
	digest, err := tariff.Digest(fsys)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := tariff.Sign(digest, tf.Version, info.Ref, signer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tariff.SignatureFile), sig, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newValidator sets up the validator of d.
func (s *system) newValidator(t *testing.T, ctx context.Context, d *deviceRow, tariffPath string, fleet cardtx.Fleet) *validator {
	t.Helper()
	dir := filepath.Join(s.dir, "validators", d.id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	ks, err := hsm.ExportRole(ctx, s.keys, hsm.RoleValidator, d.id, filepath.Join(dir, "validator.keys"), passphrase, cheapKDF)
	if err != nil {
		t.Fatalf("validator %s: %v", d.id, err)
	}
	t.Cleanup(func() { ks.Close() })
	v := &validator{dev: d, keys: ks}
	// The validator verifies the tariff with its own keystore's
	// sign-tariff key before it parses it.
	tf, err := tariff.LoadSigned(ctx, tariffPath, ks, 0)
	if err != nil {
		t.Fatalf("validator %s: %v", d.id, err)
	}
	if v.hotKeys, err = hotlist.HSMKeys(ctx, ks); err != nil {
		t.Fatal(err)
	}
	if v.holder, err = hotlist.Open(ctx, hotlist.Config{Dir: filepath.Join(dir, "hotlist"), Log: s.quiet}, v.hotKeys); err != nil {
		t.Fatal(err)
	}
	if v.journal, err = journal.Open(ctx, filepath.Join(dir, "journal.db"), d.id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.journal.Close() })
	sealer, err := upload.NewKeySealer(ctx, ks)
	if err != nil {
		t.Fatal(err)
	}
	cards := agent.DESFire(cardkey.New(ks), d.number, d.vehicle, s.m.loc)
	cards.Carrier, cards.Route, cards.Fleet = d.carrierCode, d.routeCode, fleet
	// The month's cards are virtual EV1s (vcard.New): the validators know
	// it, as the registry's list of EV1 UIDs tells them, so the tears the
	// golden month plans fall on the exchanges it expects.
	cards.EV1 = func([]byte) bool { return true }
	v.agent = &agent.Agent{
		Device:  fare.Device{ID: d.id, Carrier: d.carrier, Route: d.route, Vehicle: d.vehicle},
		Tariff:  tf,
		Hotlist: v.holder,
		Cards:   cards,
		Journal: v.journal,
		Log:     s.quiet, // torn cards are part of the month, not warnings
	}
	v.up = &upload.Uploader{Journal: v.journal, Sealer: sealer, Publisher: &countingPublisher{s: s}, Log: s.quiet,
		KeepSent: -1, Now: s.now}
	return v
}

// countingPublisher publishes a validator's batches on the bus and counts
// them, so that the month can wait for clearing to take each one in.
type countingPublisher struct{ s *system }

func (p *countingPublisher) Publish(ctx context.Context, key, value []byte) error {
	p.s.mu.Lock()
	p.s.sent++
	p.s.mu.Unlock()
	return bus.KeyValuePublisher{Producer: p.s.prod}.Publish(ctx, key, value)
}

// setUpClearing opens the embedded store and runs clearing's ingest on an
// in-process bus, as `transit demo` does, with the batch keys checked
// against the city's batch master.
func (s *system) setUpClearing(t *testing.T, ctx context.Context) {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(s.dir, "clearing.db"), store.Options{Location: s.m.loc, Now: s.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s.store = st
	b := inproc.New(4)
	s.prod = b.Producer()
	t.Cleanup(func() { s.prod.Close() })
	cons, err := b.Consumer("clearing")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cons.Close() })
	devices := map[string]bool{}
	for _, d := range s.m.devices {
		devices[d.id] = true
	}
	proc := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: s.keys, Devices: devices}, Store: st, Log: s.quiet,
		Now: s.now, Location: s.m.loc}
	r := &ingest.Runner{Consumer: cons, Processor: proc, Workers: 2, Linger: 5 * time.Millisecond,
		OnBatch: func(o ingest.Outcome, tot ingest.Totals) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.handled = tot.Batches
			if o.Quarantined != "" {
				s.rejected = append(s.rejected, fmt.Sprintf("%s: %s", o.Device, o.Quarantined))
			}
			close(s.changed)
			s.changed = make(chan struct{})
		}}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.runDone = make(chan error, 1)
	go func() { s.runDone <- r.Run(rctx) }()
	s.stopRun = cancel
	t.Cleanup(s.stopIngest)
	s.svc = &statement.Service{Store: st, Keys: s.keys, Location: s.m.loc, Now: s.now, Log: s.quiet}
}

func (s *system) stopIngest() {
	if s.stopRun != nil {
		s.stopRun()
		<-s.runDone
		s.stopRun = nil
	}
}

// applyHotlist signs version v and has every validator apply it, as
// validator/update does when the registry publishes one.
func (s *system) applyHotlist(t *testing.T, ctx context.Context, v hotlistVersion) {
	t.Helper()
	signer, err := s.keys.Signer(ctx, s.hotRef)
	if err != nil {
		t.Fatal(err)
	}
	file, err := hotlist.Build(v.entries, v.version, v.from, signer, s.hotRef.Version)
	if err != nil {
		t.Fatalf("hotlist version %d: %v", v.version, err)
	}
	for _, d := range s.m.devices {
		val := s.validators[d.id]
		if _, err := val.holder.Apply(ctx, file, val.hotKeys); err != nil {
			t.Fatalf("validator %s: hotlist version %d: %v", d.id, v.version, err)
		}
	}
}

// present hands ride r's card to its validator: a fresh presentation,
// torn away as the ride says.
func (s *system) present(t *testing.T, ctx context.Context, r *rideRow) tap.Tap {
	t.Helper()
	v, vc := s.validators[r.device], s.cards[r.card]
	vc.Reset() // a new presentation powers the card up afresh
	var tr apdu.Transport = vc
	var tear *vcard.Tear
	if r.tear > 0 {
		tear = &vcard.Tear{Card: vc, After: r.tear, LoseResponse: r.lost}
		tr = tear
	}
	v.agent.Now = func() time.Time { return r.at }
	ev, err := v.agent.Tap(ctx, tr, vc.UID())
	if err != nil {
		t.Fatalf("ride %s: the validator stopped: %v", r.id, err)
	}
	got, ok := ev.Tap()
	if !ok {
		t.Fatalf("ride %s: nothing journalled (%s: %s)", r.id, ev.Reason, ev.Err)
	}
	if tear != nil && !tear.Torn() {
		t.Fatalf("ride %s: the card was to leave after %d APDUs but the tap took fewer", r.id, r.tear)
	}
	return got
}

// upload has every validator in reach at instant at send its journal,
// and waits until clearing has taken every batch in.
func (s *system) upload(t *testing.T, ctx context.Context, at time.Time) {
	t.Helper()
	s.setNow(at)
	for _, d := range s.m.devices {
		if !d.online.IsZero() && at.Before(d.online) {
			continue
		}
		if _, err := s.validators[d.id].up.Flush(ctx); err != nil {
			t.Fatalf("validator %s: upload at %s: %v", d.id, at.Format(timeLayout), err)
		}
	}
	s.waitIngest(t, ctx)
}

func (s *system) waitIngest(t *testing.T, ctx context.Context) {
	t.Helper()
	for {
		s.mu.Lock()
		sent, handled, rejected, changed := s.sent, s.handled, s.rejected, s.changed
		s.mu.Unlock()
		if len(rejected) > 0 {
			t.Fatalf("clearing quarantined batches: %v", rejected)
		}
		if handled >= sent {
			return
		}
		select {
		case <-changed:
		case err := <-s.runDone:
			t.Fatalf("clearing's ingest stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("clearing handled %d of %d batches: %v", handled, sent, ctx.Err())
		}
	}
}

// purse reads a card's balance as a validator can: its own session,
// then GetValue.
func (s *system) purse(ctx context.Context, label string) (int64, error) {
	vc := s.cards[label]
	vc.Reset()
	keys := cardkey.New(s.validators[s.m.devices[0].id].keys)
	sess, err := cardtx.Read(ctx, desfire.New(vc), keys, vc.UID(), s.now(), s.m.loc)
	if err != nil {
		return 0, err
	}
	bal, err := sess.ReadBalance(ctx)
	if err != nil {
		return 0, err
	}
	vc.Reset()
	return int64(bal), nil
}

// storedTaps returns every tap clearing holds, by device and sequence.
func (s *system) storedTaps(ctx context.Context) (map[string]map[uint64]tap.Tap, error) {
	out := map[string]map[uint64]tap.Tap{}
	for _, d := range s.m.devices {
		out[d.id] = map[uint64]tap.Tap{}
		var after uint64
		for {
			page, err := s.store.Taps(ctx, d.id, after, 500)
			if err != nil {
				return nil, err
			}
			if len(page) == 0 {
				break
			}
			for _, tp := range page {
				out[d.id][tp.Seq] = tp
				after = tp.Seq
			}
		}
	}
	return out, nil
}

var errNoStatement = errors.New("no such statement")

// statementOf returns the statement of period that adjusts adjusts.
func (s *system) statementOf(ctx context.Context, period, adjusts string) (store.Statement, error) {
	sts, err := s.store.Statements(ctx, period)
	if err != nil {
		return store.Statement{}, err
	}
	for _, st := range sts {
		if st.Adjusts == adjusts {
			return st, nil
		}
	}
	return store.Statement{}, fmt.Errorf("%s adjusting %q: %w", period, adjusts, errNoStatement)
}
