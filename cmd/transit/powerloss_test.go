package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/card/issue"
	"github.com/citycard/transit/card/pcsc"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/simulator/vcard"
	"github.com/citycard/transit/simulator/vpcd"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
)

// powerLossRunsVar sets how many times TestValidatorPowerLoss kills the
// validator (default 50, the CI run); the long run is
//
//	TRANSIT_POWERLOSS_RUNS=500 go test -run TestValidatorPowerLoss -timeout 2h ./cmd/transit
const powerLossRunsVar = "TRANSIT_POWERLOSS_RUNS"

// TestValidatorPowerLoss kills the whole validator agent, a real `transit
// validator run` process on the real pcscd, with SIGKILL at random
// instants of a tap of a virtual card (before an APDU reaches the card,
// after the card executed one but before its answer got back, or a moment
// after an answer: inside the journal's writes), restarts it, and checks
// after every kill that the card holds each transaction wholly or not at
// all, and at the end that the card, the journal and clearing agree: every
// journalled tap stored once, every ride on the card in clearing with what
// it charged, nothing counted that the card does not hold.
func TestValidatorPowerLoss(t *testing.T) {
	runs := 50
	if v := os.Getenv(powerLossRunsVar); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of kills", powerLossRunsVar, v)
		}
		runs = n
	}
	broker := testenv.Kafka(t)
	vpcdAddr, reader := testenv.PCSC(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(runs)*10*time.Second+2*time.Minute)
	defer cancel()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 19))
	t.Logf("%d kills, seed %d", runs, seed)
	dir := t.TempDir()
	const pass = "power loss"
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", pass)
	t.Setenv("TRANSIT_ROLE_PASSPHRASE", pass)

	// The city's keys, and the validator's own keystore with a cheap KDF:
	// it is opened at every restart.
	keys := filepath.Join(dir, "city.keys")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)
	ks, err := hsm.OpenKeystore(keys, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	const device, deviceNumber = "powerloss-bus-1", 77001
	vks, err := hsm.ExportRole(ctx, ks, hsm.RoleValidator, device, filepath.Join(dir, "validator.keys"), []byte(pass),
		hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	vks.Close()

	// The sample tariff without anti-passback, so that every tap of the
	// one card is a new ride that writes it; signed by the city.
	tariffDir := filepath.Join(dir, "tariff")
	if err := os.CopyFS(tariffDir, os.DirFS(filepath.Join("..", "..", "testdata", "tariff"))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tariffDir, "x_tariff.txt"), []byte("version,currency,timezone,passback_seconds\n2,UAH,Europe/Kyiv,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	transit(t, ctx, 0, "tariff", "sign", tariffDir, "--keystore", keys)

	// Clearing, consuming the validator's topic into the embedded store.
	suffix := fmt.Sprintf("%x", rand.Uint32())
	topic := "powerloss-" + suffix
	if err := kafka.CreateTopic(ctx, kafka.Config{Brokers: []string{broker}, Topic: topic}, 2); err != nil {
		t.Fatal(err)
	}
	clearingDB := filepath.Join(dir, "clearing.db")
	stopClearing, _ := background(t, ctx, "clearing serve", "clearing", "serve", "--db", "sqlite:"+clearingDB,
		"--brokers", broker, "--topic", topic, "--group", "powerloss-"+suffix, "--keystore", keys)

	// One full-fare card with money on it.
	keySrc := cardkey.New(ks)
	uid := []byte{0x04, 0x50, 0x4C, 0x01, 0x02, 0x03, 0x80}
	vc := vcard.New(uid)
	num, _ := card.NewNumber(1001, 4242)
	issued, _ := card.DateOf(time.Now().AddDate(0, 0, -1))
	expires, _ := card.DateOf(time.Now().AddDate(4, 0, 0))
	const initialKop = 4000_00
	if err := issue.Personalise(ctx, vc, keySrc, uid, issue.Personalisation{
		Identity: card.Identity{Number: num, Issuer: 1001, Issued: issued, Expires: expires},
		Holder:   card.Holder{Name: "Power Loss", BirthDate: card.BirthDate{Year: 1980, Month: 5, Day: 6}, RegistryRef: 1},
		Contract: card.Contract{Status: card.StatusActive, Number: num, Expires: expires},
		PurseKop: initialKop,
	}); err != nil {
		t.Fatal(err)
	}
	insp := &inspector{t: t, vc: vc, keys: keySrc, uid: uid, records: map[uint32]card.TapRecord{}}
	insp.purse = insp.read().purse
	toppedUp := int64(0)

	metricsAddr := freeAddr(t)
	cfg := filepath.Join(dir, "validator.json")
	doc := fmt.Sprintf(`{"device": %q, "device_number": %d, "carrier": "ATP-1", "route": "12", "vehicle": "pl-1",
		"reader": %q, "journal": "journal.db", "keystore": "validator.keys", "tariff": "tariff",
		"metrics_listen": %q, "kafka": {"brokers": [%q], "topic": %q}, "upload_interval": "100ms", "batch_size": 50}`,
		device, deviceNumber, reader, metricsAddr, broker, topic)
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "validator.log")
	events := filepath.Join(dir, "events.jsonl")
	kc := &killCard{card: vc}
	watcher := pcsc.Open(reader) // the test's own view of the reader
	defer watcher.Close()
	start := func() *process {
		p := startProcess(t, "validator", dir, logPath, nil, "validator", "run", "--config", cfg, "--events", events, "--log-level", "info")
		kc.attach(p)
		waitReady(t, ctx, p, metricsAddr, logPath, kc.fired)
		return p
	}

	var slot *vpcd.Slot
	var stats powerLossStats
	presented := 0 // presentations since the card was last inspected
	for i := range runs {
		// A card left in the field is tapped as soon as the validator
		// is up: the kill point is armed before it starts.
		seen := countEvents(t, events)
		plan := kc.arm(rng)
		v := start()
		if slot == nil {
			if slot, err = vpcd.Insert(ctx, vpcdAddr, kc); err != nil {
				t.Fatal(err)
			}
		}
		// Wait for the kill; if the tap ended before the kill point, or
		// the point lies past its last APDU, kill a moment after the end.
		deadline := time.Now().Add(20 * time.Second)
		for v.running() && !kc.fired() {
			if countEvents(t, events) > seen {
				time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
				kc.late()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d (%s): no tap within 20 s of presenting the card\n%s", i, plan, tail(logPath, 30))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if !kc.fired() {
			t.Fatalf("kill %d (%s): the validator exited by itself: %v\n%s", i, plan, v.err, tail(logPath, 30))
		}
		v.kill()
		stats.count(kc.report())
		// Mostly the rider takes the card away; sometimes it stays in the
		// field while the validator starts again, and is tapped at once.
		presented++
		if rng.IntN(4) == 0 && i < runs-1 {
			stats.keptInField++
			continue
		}
		slot.Remove()
		slot = nil
		// pcscd must see the reader empty before the card comes back,
		// or the next connection finds a card that is gone.
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		err := watcher.WaitRemoval(wctx, nil)
		wcancel()
		if err != nil {
			t.Fatalf("kill %d: pcscd did not see the card leave: %v", i, err)
		}
		insp.check(fmt.Sprintf("kill %d (%s)", i, plan), presented)
		presented = 0
		if insp.purse < 100_00 {
			toppedUp += insp.topUp(1000_00)
		}
	}

	// A last clean run uploads everything the journal holds.
	v := start()
	deadline := time.Now().Add(60 * time.Second)
	for backlog(t, metricsAddr) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("journal backlog not sent within 60 s\n%s", tail(logPath, 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := v.stop(30 * time.Second); err != nil {
		t.Fatalf("validator stop: %v\n%s", err, tail(logPath, 30))
	}
	j, err := journal.Open(ctx, filepath.Join(dir, "journal.db"), device)
	if err != nil {
		t.Fatal(err)
	}
	js, err := j.Stats(ctx)
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	if js.Pending != 0 || js.Backlog != 0 {
		t.Fatalf("journal after a clean stop: %+v", js)
	}

	// Clearing holds every journalled tap once.
	st, err := sqlite.Open(ctx, clearingDB, store.Options{Location: mustLoc(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var taps []tap.Tap
	for deadline := time.Now().Add(60 * time.Second); ; {
		if taps, err = st.Taps(ctx, device, 0, int(js.LastSeq)+100); err != nil {
			t.Fatal(err)
		}
		if uint64(len(taps)) >= js.LastSeq || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopClearing()
	if uint64(len(taps)) != js.LastSeq {
		t.Fatalf("clearing holds %d taps of %s, the journal issued %d", len(taps), device, js.LastSeq)
	}
	byseq := map[uint64]tap.Tap{}
	for k, tp := range taps {
		if tp.Seq != uint64(k+1) {
			t.Fatalf("clearing's taps of %s: sequence %d at position %d: a tap is missing or there twice", device, tp.Seq, k+1)
		}
		byseq[tp.Seq] = tp
	}

	// The card's rides, the journal's taps and clearing agree.
	var charged int64
	uncertain := 0
	for seq, r := range insp.records {
		charged += int64(r.Charged)
		tp, ok := byseq[uint64(seq)]
		switch {
		case !ok:
			t.Errorf("the card holds ride %d, clearing does not: a ride lost", seq)
		case tp.Result != tap.Accepted || tp.ChargedKop != int64(r.Charged):
			t.Errorf("ride %d: the card charged %d kop (%s), clearing has %s charging %d kop", seq, r.Charged, r.Result, tp.Result, tp.ChargedKop)
		case !tp.CardCommitted:
			// The card committed, but the kill came before the journal
			// heard so: recorded as not known to be on the card.
			uncertain++
		}
	}
	for _, tp := range taps {
		_, onCard := insp.records[uint32(tp.Seq)]
		if tp.CardCommitted && tp.Result == tap.Accepted && !onCard {
			t.Errorf("clearing counts ride %d as on the card, the card does not hold it: counted but never paid", tp.Seq)
		}
		if tp.Result != tap.Accepted && onCard {
			t.Errorf("tap %d is %s in clearing but the card holds it as a ride", tp.Seq, tp.Result)
		}
	}
	if got := int64(initialKop) + toppedUp - insp.purse; got != charged {
		t.Errorf("the purse lost %d kop, the card's rides charged %d kop", got, charged)
	}
	if uncertain > stats.afterCommit {
		t.Errorf("%d rides on the card are recorded as uncertain, but only %d kills came after the card's commit", uncertain, stats.afterCommit)
	}
	t.Logf("%d kills: %s; %d taps journalled, %d rides on the card (%d kop), %d of them recorded as uncertain (killed between the card's commit and the journal's settle)",
		runs, stats, js.LastSeq, len(insp.records), charged, uncertain)
	if len(insp.records) < runs/4 {
		t.Errorf("only %d rides reached the card in %d kills: the kill points do not cover whole taps", len(insp.records), runs)
	}
}

// waitReady waits until the validator's /readyz answers 200, or the test
// killed it (killed reports that).
func waitReady(t *testing.T, ctx context.Context, p *process, addr, logPath string, killed func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, err := httpGet("http://" + addr + "/readyz")
		if err == nil && code == 200 {
			return
		}
		if !p.running() {
			if killed() {
				return // a card left in the field was tapped, and the kill came at start
			}
			t.Fatalf("validator exited at start: %v\n%s", p.err, tail(logPath, 30))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("validator not ready within 30 s (last: %d %v)\n%s", code, err, tail(logPath, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// backlog reads transit_validator_journal_backlog_taps from /metrics.
func backlog(t *testing.T, addr string) int {
	t.Helper()
	code, body, err := httpGet("http://" + addr + "/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, "transit_validator_journal_backlog_taps "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("backlog %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("/metrics has no transit_validator_journal_backlog_taps:\n%s", body)
	return 0
}

func countEvents(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// killCard is the virtual card as vpcd presents it, with a kill switch:
// at the armed APDU it SIGKILLs the validator process.
type killCard struct {
	card *vcard.Card

	mu     sync.Mutex
	proc   *process
	at     int // 1-based APDU of the tap to kill at
	mode   killMode
	delay  time.Duration
	n      int  // APDUs since armed
	done   bool // the kill happened
	commit bool // the card executed CommitTransaction before the kill
	how    string
}

type killMode int

const (
	killBefore killMode = iota // before the APDU reaches the card
	killLost                   // the card executes it, its answer is lost
	killAfter                  // delay after the answer went back
)

func (m killMode) String() string {
	return [...]string{"before APDU", "answer of APDU lost", "after APDU"}[m]
}

// arm sets a random kill point for the next tap.
func (k *killCard) arm(rng *rand.Rand) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc, k.n, k.done, k.commit = nil, 0, false, false
	k.at = 1 + rng.IntN(12) // a tap takes 9 to 11 APDUs: some kills come after it
	if rng.IntN(4) == 0 {
		k.at = atCommit // the moment that matters most
	}
	k.mode = killMode(rng.IntN(3))
	k.delay = time.Duration(rng.IntN(4000)) * time.Microsecond
	k.how = ""
	if k.at == atCommit {
		return k.mode.String() + " CommitTransaction"
	}
	return fmt.Sprintf("%s %d", k.mode, k.at)
}

// atCommit as the kill point means the tap's CommitTransaction.
const atCommit = -1

// attach names the process to kill. APDUs before it count.
func (k *killCard) attach(p *process) {
	k.mu.Lock()
	k.proc = p
	k.mu.Unlock()
}

func (k *killCard) ATR() []byte { return k.card.ATR() }
func (k *killCard) Reset()      { k.card.Reset() }

func (k *killCard) Respond(cmd []byte) []byte {
	k.mu.Lock()
	if k.proc != nil {
		k.n++
	}
	hit := !k.done && k.proc != nil && (k.n == k.at || k.at == atCommit && isCommit(cmd))
	mode, delay, p := k.mode, k.delay, k.proc
	if hit {
		k.done = true
		k.how = fmt.Sprintf("%s %d (% X)", mode, k.n, cmd[:min(len(cmd), 2)])
	}
	k.mu.Unlock()
	if hit && mode == killBefore {
		p.kill()
		return []byte{0x6F, 0x00}
	}
	resp := k.card.Respond(cmd)
	if isCommit(cmd) {
		k.mu.Lock()
		if !k.done || hit {
			k.commit = true // executed before the kill (or by the APDU killed at)
		}
		k.mu.Unlock()
	}
	switch {
	case hit && mode == killLost:
		p.kill()
	case hit:
		time.AfterFunc(delay, p.kill)
	}
	return resp
}

// isCommit reports whether cmd is DESFire CommitTransaction, wrapped.
func isCommit(cmd []byte) bool { return len(cmd) >= 2 && cmd[0] == 0x90 && cmd[1] == 0xC7 }

func (k *killCard) fired() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.done
}

// late kills now: the tap ended before the kill point.
func (k *killCard) late() {
	k.mu.Lock()
	if k.done {
		k.mu.Unlock()
		return
	}
	k.done, k.how = true, fmt.Sprintf("after the tap (%d APDUs)", k.n)
	p := k.proc
	k.mu.Unlock()
	p.kill()
}

// report says where the last kill landed.
func (k *killCard) report() (how string, afterCommit bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.how, k.commit
}

type powerLossStats struct {
	before, lost, after, late, afterCommit, keptInField int
}

func (s *powerLossStats) count(how string, afterCommit bool) {
	switch {
	case strings.HasPrefix(how, killBefore.String()):
		s.before++
	case strings.HasPrefix(how, killLost.String()):
		s.lost++
	case strings.HasPrefix(how, killAfter.String()):
		s.after++
	default:
		s.late++
	}
	if afterCommit {
		s.afterCommit++
	}
}

func (s powerLossStats) String() string {
	return fmt.Sprintf("%d before an APDU, %d with its answer lost, %d just after an answer, %d after the whole tap; %d after the card's commit; card left in the field %d times",
		s.before, s.lost, s.after, s.late, s.afterCommit, s.keptInField)
}

// inspector reads the card as an inspector and a validator would, out of
// the field: the purse and the tap log.
type inspector struct {
	t       *testing.T
	vc      *vcard.Card
	keys    *cardkey.Source
	uid     []byte
	purse   int64
	newest  uint32                    // highest sequence seen in the log
	records map[uint32]card.TapRecord // every ride ever seen in the log, by sequence
}

type cardState struct {
	purse   int64
	records []card.TapRecord
}

func (in *inspector) key(r card.Role) []byte {
	k, err := in.keys.Key(context.Background(), r, in.uid, card.AIDTransport, 1)
	if err != nil {
		in.t.Fatal(err)
	}
	return k.Value[:]
}

func (in *inspector) read() cardState {
	in.t.Helper()
	in.vc.Reset() // out of the field: uncommitted changes are gone
	c := desfire.New(in.vc)
	must := func(what string, err error) {
		in.t.Helper()
		if err != nil {
			in.t.Fatalf("inspect the card: %s: %v", what, err)
		}
	}
	must("select transport", c.SelectApplication(card.AIDTransport.Bytes()))
	must("inspector key", c.AuthenticateAES(card.KeyInspector, in.key(card.RoleInspector)))
	raws, err := c.ReadRecords(card.FileTapLog, 0, 0, card.TapRecordSize, desfire.CommEnciphered)
	if errors.Is(err, desfire.ErrBoundary) { // an empty log; the card ended the session
		raws, err = nil, nil
		must("select transport", c.SelectApplication(card.AIDTransport.Bytes()))
	}
	must("tap log", err)
	var st cardState
	for _, raw := range raws {
		var r card.TapRecord
		must("decode tap record", r.UnmarshalBinary(raw))
		st.records = append(st.records, r)
	}
	must("validator key", c.AuthenticateAES(card.KeyValidator, in.key(card.RoleValidator)))
	v, err := c.GetValue(card.FilePurse, desfire.CommMAC)
	must("purse", err)
	st.purse = int64(v)
	return st
}

// check reads the card and fails the test unless it changed since the last
// check by whole transactions: at most one new ride in the log for each of
// taps presentations, in sequence, and the purse lower by exactly what
// they charged.
func (in *inspector) check(when string, taps int) {
	in.t.Helper()
	st := in.read()
	var fresh []card.TapRecord
	for _, r := range st.records {
		if old, ok := in.records[r.Seq]; ok {
			if old != r {
				in.t.Fatalf("%s: ride %d changed on the card: %+v, was %+v", when, r.Seq, r, old)
			}
			continue
		}
		if r.Seq <= in.newest {
			in.t.Fatalf("%s: a ride with sequence %d appeared after %d", when, r.Seq, in.newest)
		}
		fresh = append(fresh, r)
	}
	if len(fresh) > taps {
		in.t.Fatalf("%s: %d new rides on the card since the last look, after %d presentations", when, len(fresh), taps)
	}
	var charged int64
	for _, r := range fresh {
		charged += int64(r.Charged)
		in.records[r.Seq] = r
		in.newest = max(in.newest, r.Seq)
	}
	if in.purse-st.purse != charged {
		var seqs []uint32
		for _, r := range fresh {
			seqs = append(seqs, r.Seq)
		}
		in.t.Fatalf("%s: the purse went from %d to %d kop, but the new rides %v charged %d kop: a transaction is on the card in part",
			when, in.purse, st.purse, seqs, charged)
	}
	in.purse = st.purse
}

// topUp credits kop with the top-up key, as a top-up point does, and
// returns it.
func (in *inspector) topUp(kop int64) int64 {
	in.t.Helper()
	in.vc.Reset()
	c := desfire.New(in.vc)
	if err := c.SelectApplication(card.AIDTransport.Bytes()); err != nil {
		in.t.Fatalf("top up: select transport: %v", err)
	}
	if err := c.AuthenticateAES(card.KeyTopUp, in.key(card.RoleTopUp)); err != nil {
		in.t.Fatalf("top up: top-up key: %v", err)
	}
	if err := c.Credit(card.FilePurse, int32(kop), desfire.CommMAC); err != nil {
		in.t.Fatalf("top up: credit: %v", err)
	}
	if err := c.CommitTransaction(); err != nil {
		in.t.Fatalf("top up: commit: %v", err)
	}
	in.purse += kop
	return kop
}
