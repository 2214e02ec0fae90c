package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/postgres/pgcluster"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/tap"
)

// transitProcess returns a command that runs this test binary as
// `transit args...` (TestMain, asMainVar).
func transitProcess(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asMainVar+"=1")
	return cmd
}

// faultScale is how hard TestClearingRidesOutFaults goes: the normal run
// kills 12 times; TRANSIT_FAULT_KILLS=N (say 300) makes the long run that
// anyone can start, with the taps scaled to match.
func faultScale(t *testing.T) (kills int) {
	kills = 12
	if v := os.Getenv("TRANSIT_FAULT_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			t.Fatalf("TRANSIT_FAULT_KILLS=%q: want a number of kills, 1 to 100000", v)
		}
		kills = n
	}
	return kills
}

// instance is one `transit clearing serve` process, restarted whenever it
// ends, as systemd would.
type instance struct {
	name, metrics string
	args          []string
	logPath       string

	mu         sync.Mutex
	cmd        *exec.Cmd
	killing    bool // the current process is being killed by the test
	starts     int
	unexpected []string // exits the test did not cause
	done       chan struct{}
}

// supervisor runs the instances and counts what happened to them.
type supervisor struct {
	t       testing.TB
	env     []string
	gate    sync.RWMutex // held for writing while PostgreSQL is down
	stop    chan struct{}
	wg      sync.WaitGroup
	r       *rand.Rand
	rmu     sync.Mutex
	started *regexp.Regexp
}

func (s *supervisor) rand(n int) int {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.r.IntN(n)
}

// run keeps in running until s.stop.
func (s *supervisor) run(in *instance) {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		// An instance starts only while PostgreSQL is up: one that finds
		// the database down at start exits (systemd would restart it),
		// and that is not the fault under test. The gate is held until
		// the instance says it runs.
		s.gate.RLock()
		cmd := transitProcess(in.args...)
		cmd.Env = append(cmd.Env, s.env...)
		logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			s.gate.RUnlock()
			s.t.Errorf("%s: log: %v", in.name, err)
			return
		}
		fmt.Fprintf(logf, "---- start %d\n", in.starts+1)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			s.gate.RUnlock()
			logf.Close()
			s.t.Errorf("%s: start: %v", in.name, err)
			return
		}
		in.mu.Lock()
		in.cmd, in.killing, in.done = cmd, false, make(chan struct{})
		in.starts++
		done := in.done
		in.mu.Unlock()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait(); close(done) }()
		var err2 error
		waitStarted := time.After(60 * time.Second)
	starting:
		for {
			select {
			case err2 = <-exited:
				break starting
			case <-waitStarted:
				break starting
			case <-time.After(50 * time.Millisecond):
				if s.startedSince(in) {
					break starting
				}
			}
		}
		s.gate.RUnlock()
		if err2 == nil {
			select {
			case err2 = <-exited:
			case <-s.stop:
				// Stopped below by the test; wait for it.
				err2 = <-exited
				logf.Close()
				in.mu.Lock()
				in.cmd = nil
				in.mu.Unlock()
				return
			}
		}
		logf.Close()
		in.mu.Lock()
		killed := in.killing
		in.cmd = nil
		in.mu.Unlock()
		if !killed {
			select {
			case <-s.stop:
				return
			default:
			}
			in.mu.Lock()
			in.unexpected = append(in.unexpected, fmt.Sprintf("start %d ended by itself (%v):\n%s", in.starts, err2, tail(in.logPath, 30)))
			in.mu.Unlock()
		}
		// systemd's RestartSec, shortened.
		time.Sleep(time.Duration(s.rand(800)) * time.Millisecond)
	}
}

// startedSince reports whether in's current process logged its start.
func (s *supervisor) startedSince(in *instance) bool {
	b, err := os.ReadFile(in.logPath)
	if err != nil {
		return false
	}
	i := bytes.LastIndex(b, []byte("---- start "))
	return i >= 0 && s.started.Match(b[i:])
}

// kill SIGKILLs in's running process, if any, and reports whether it did.
func (in *instance) kill() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil || in.cmd.Process == nil || in.killing {
		return false
	}
	in.killing = true
	in.cmd.Process.Kill() //nolint:errcheck // it may have just exited
	return true
}

// roundQueue is rounds of batches published in order.
type roundQueue struct {
	plan [][]bus.Message
	next int // the next round to publish
}

// notStored is the line an instance logs when storing a batch failed and
// it tries again.
const notStored = `msg="batch not stored; retrying"`

// logCount counts the lines of the instances' logs that hold s.
func logCount(ins []*instance, s string) int {
	n := 0
	for _, in := range ins {
		b, _ := os.ReadFile(in.logPath)
		n += bytes.Count(b, []byte(s))
	}
	return n
}

// metricValue sums the samples of a metric in a Prometheus text scrape.
func metricValue(body, name string) (float64, bool) {
	var sum float64
	found := false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

func scrape(url string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestClearingRidesOutFaults runs three `transit clearing serve` processes
// in one consumer group on a six-partition topic while tap batches flow,
// SIGKILLs them at random, and crashes PostgreSQL (immediate stop, server
// default synchronous_commit=off) twice. No instance may end by itself,
// and in the end the statement equals the truth: no tap lost, none
// counted twice, no open gap, nothing quarantined. The normal run kills
// 12 times; TRANSIT_FAULT_KILLS=300 go test -run TestClearingRidesOutFaults
// -timeout 3h ./cmd/transit is the long run.
func TestClearingRidesOutFaults(t *testing.T) {
	broker := testenv.Kafka(t)
	kills := faultScale(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d kills", seed, kills)
	r := rand.New(rand.NewPCG(seed, 19))
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+kills/4)*time.Minute)
	defer cancel()
	dir := t.TempDir()
	if os.Getenv("TRANSIT_TEST_KEEP") != "" {
		// Keep the instances' logs for a look after a failure.
		if dir, err = os.MkdirTemp("", "faults-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("logs in %s", dir)
	}

	pg := pgcluster.Start(t, "synchronous_commit = off")
	dsn := pg.CreateDB("clearing")
	const pass = "fault test passphrase"
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", pass)
	keys := filepath.Join(dir, "city.keys")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)
	transit(t, ctx, 0, "clearing", "migrate", "--db", dsn, "--tz", "UTC")
	topic := fmt.Sprintf("faults-%x", r.Uint32())
	kcfg := kafka.Config{Brokers: strings.Split(broker, ","), Topic: topic, Log: slog.New(slog.DiscardHandler)}
	if err := kafka.CreateTopic(ctx, kcfg, 6); err != nil {
		t.Fatal(err)
	}

	// The truth: devices' batches of taps, sealed with their batch keys.
	ks, err := hsm.OpenKeystore(keys, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	devices := 24
	rounds := 40 + 4*kills
	const perBatch = 25
	now := time.Now().UTC().Truncate(time.Millisecond)
	at := now.Add(-2 * time.Hour)
	type key struct{ carrier, category string }
	truth := map[key][2]int64{}
	// The rides are benefit rides clearing's re-rating proves (serve
	// judges them beside ingest): each card holds one of three benefits,
	// which owe a fare of 15.00, a flat 7.50 and half the fare.
	cats, owes := []string{"11", "12", "31"}, []int64{1500, 750, 750}
	proveFaultRides(t, ctx, dsn, cats)
	var plan [][]bus.Message
	macs := map[string]*cmac.MAC{}
	for d := range devices {
		dev := fmt.Sprintf("bus-%03d", d)
		k, err := hsm.DeviceKey(ctx, ks, hsm.Ref{Label: hsm.LabelBatchMaster, Version: 1}, dev)
		if err != nil {
			t.Fatal(err)
		}
		if macs[dev], err = cmac.New(k[:]); err != nil {
			t.Fatal(err)
		}
	}
	ks.Close()
	for rd := range rounds {
		var round []bus.Message
		for d := range devices {
			dev := fmt.Sprintf("bus-%03d", d)
			b := tap.Batch{Device: dev, KeyVersion: 1, Created: now}
			for i := range perBatch {
				seq := uint64(rd*perBatch + i + 1)
				card := uint64(1_000_000 + r.IntN(5000))
				c := card % 3
				tp := tap.Tap{Device: dev, Seq: seq, Time: at.Add(time.Duration(seq) * 10 * time.Millisecond), Card: card,
					Carrier: []string{"ATP-1", "ATP-2"}[d%2], Route: "12", Result: tap.Accepted, Reason: "ok", Product: "benefit",
					Category: cats[c], Funding: "city", FareKop: 1500, ChargedKop: 1500 - []int64{1500, 1500, 750}[c],
					CompensationKop: owes[c], TariffVersion: faultTariff, CardCommitted: true}
				b.Taps = append(b.Taps, tp)
				k := key{tp.Carrier, tp.Category}
				v := truth[k]
				truth[k] = [2]int64{v[0] + 1, v[1] + tp.CompensationKop}
			}
			sum := macs[dev].Sum(b.Body())
			b.MAC = sum[:]
			wire, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			round = append(round, bus.Message{Key: []byte(dev), Value: wire})
		}
		plan = append(plan, round)
	}
	total := int64(devices * rounds * perBatch)

	// Three instances, each with a metrics listener of its own.
	sup := &supervisor{t: t, env: []string{"TRANSIT_KEYSTORE_PASSPHRASE=" + pass}, stop: make(chan struct{}), r: r,
		started: regexp.MustCompile(`msg="clearing started"`)}
	var ins []*instance
	for i := range 3 {
		name := fmt.Sprintf("clearing-%c", 'a'+i)
		m := freePort(t)
		in := &instance{name: name, metrics: m, logPath: filepath.Join(dir, name+".log"), args: []string{
			"clearing", "serve", "--log-level", "info", "--db", dsn, "--tz", "UTC", "--brokers", broker, "--topic", topic,
			"--group", topic, "--keystore", keys, "--instance", name, "--metrics", m, "--workers", "2",
			"--kafka-session-timeout", "6s"}}
		ins = append(ins, in)
		sup.wg.Add(1)
		go sup.run(in)
	}
	stopAll := func() {
		close(sup.stop)
		for _, in := range ins {
			in.mu.Lock()
			if in.cmd != nil && in.cmd.Process != nil {
				in.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // may have exited
			}
			in.mu.Unlock()
		}
		sup.wg.Wait()
	}
	var stopOnce sync.Once
	defer stopOnce.Do(stopAll)

	// Batches flow for the whole run, a round at a time.
	prod, err := kafka.NewProducer(ctx, kcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	faultsFor := time.Duration(kills) * 2500 * time.Millisecond
	// The crashes each meet 6 rounds held back for them: on a slow
	// machine the faults outlast the steady flow, and a crash after the
	// last batch was stored proves nothing.
	var pubMu sync.Mutex
	steady := &roundQueue{plan: plan[:len(plan)-12]}
	burst := &roundQueue{plan: plan[len(plan)-12:]}
	// publish publishes up to n more rounds of q and reports whether any
	// was left.
	publish := func(q *roundQueue, n int) bool {
		pubMu.Lock()
		defer pubMu.Unlock()
		for ; n > 0 && q.next < len(q.plan); n-- {
			for {
				err := prod.Publish(ctx, q.plan[q.next]...)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return false
				}
				time.Sleep(100 * time.Millisecond)
			}
			q.next++
		}
		return q.next < len(q.plan)
	}
	published := make(chan error, 1)
	go func() {
		pause := faultsFor / time.Duration(len(steady.plan))
		for publish(steady, 1) {
			time.Sleep(pause)
		}
		published <- ctx.Err()
	}()
	// ready waits until every instance is ready and the six partitions
	// are all owned, so that a fault meets ingest at work.
	ready := func(within time.Duration) bool {
		for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
			assigned, n := 0.0, 0
			for _, in := range ins {
				if code, _ := scrape("http://" + in.metrics + "/readyz"); code == http.StatusOK {
					n++
				}
				_, body := scrape("http://" + in.metrics + "/metrics")
				v, _ := metricValue(body, "transit_clearing_assigned_partitions")
				assigned += v
			}
			if n == len(ins) && assigned == 6 {
				return true
			}
			if time.Now().After(deadline) {
				t.Logf("%d of %d instances ready, %v of 6 partitions assigned", n, len(ins), assigned)
				return false
			}
		}
	}

	// Faults: SIGKILLs at random instants, and PostgreSQL crashed at a
	// third and at two thirds of them, while a burst of batches is being
	// stored and while more arrive.
	killed := 0
	for k := range kills {
		time.Sleep(time.Duration(500+sup.rand(3500)) * time.Millisecond)
		if k == kills/3 || k == 2*kills/3 {
			ready(30 * time.Second)
			sup.gate.Lock()
			publish(burst, 4)
			time.Sleep(time.Duration(sup.rand(50)) * time.Millisecond)
			failedBefore := logCount(ins, notStored)
			t.Logf("crash PostgreSQL (fault %d)", k)
			pg.Crash()
			// Batches that arrive while the database is down must wait
			// in their instances, retried, until it is back. The database
			// stays down until an instance has met it so (a rebalance may
			// hold every partition for a while), within reason.
			publish(burst, 2)
			for deadline := time.Now().Add(30 * time.Second); logCount(ins, notStored) == failedBefore && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(time.Duration(500+sup.rand(1500)) * time.Millisecond)
			pg.Up()
			sup.gate.Unlock()
		}
		if ins[sup.rand(len(ins))].kill() {
			killed++
		}
	}
	if err := <-published; err != nil {
		t.Fatalf("publish: %v", err)
	}
	// What the crashes left of theirs (kills < 3 crash once).
	publish(burst, len(burst.plan))
	t.Logf("%d SIGKILLs, 2 PostgreSQL crashes; waiting for ingest to catch up", killed)

	st, err := postgres.Open(ctx, dsn, store.Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recovery := time.Now()
	last, lastChange := int64(-1), time.Now()
	for {
		n, err := st.TapCount(ctx)
		if err == nil && n == total {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > 60*time.Second || ctx.Err() != nil {
			for _, in := range ins {
				t.Logf("%s log tail:\n%s", in.name, tail(in.logPath, 15))
			}
			t.Fatalf("%d of %d taps stored and no progress for 60 s (%v)", n, total, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("caught up %s after the last fault", time.Since(recovery).Round(100*time.Millisecond))

	// Every instance is ready and the partitions are shared among them.
	// kfake starts no session timer for a member whose JoinGroup answer
	// found its connection closed (an instance killed mid-join), so a
	// generation that gives that member partitions stays until the next
	// change of membership; a real Kafka coordinator expires it after
	// the session timeout. When that is seen, one more kill makes the
	// group rebalance, and the instances must settle after it.
	if !ready(60 * time.Second) {
		t.Log("a partition stayed with a member that is gone (the kfake join answer to a dead connection); one more kill makes the group rebalance")
		ins[sup.rand(len(ins))].kill()
		if !ready(120 * time.Second) {
			t.Fatal("the instances did not settle after the faults")
		}
	}
	stopOnce.Do(stopAll)
	retried, failed := 0, logCount(ins, notStored)
	for _, in := range ins {
		in.mu.Lock()
		for _, u := range in.unexpected {
			t.Errorf("%s: %s", in.name, u)
		}
		in.mu.Unlock()
		if !strings.Contains(tail(in.logPath, 5), `msg="clearing stopped"`) {
			t.Errorf("%s did not log its stop:\n%s", in.name, tail(in.logPath, 10))
		}
		b, _ := os.ReadFile(in.logPath)
		retried += strings.Count(string(b), `msg="batch stored after retrying"`)
	}
	// The crashes met batches being stored, which were stored again (a
	// batch whose retrying instance was killed next is stored by another
	// without a retry, so the failed attempts are the proof).
	if failed == 0 {
		t.Error("no instance ever failed to store a batch: the PostgreSQL crashes did not meet ingest at work, so the test proved nothing of them")
	}

	// The statement equals the truth; so do the taps themselves.
	period := at.Format("2006-01")
	lines, err := st.Compensation(ctx, store.Query{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	got := map[key][2]int64{}
	for _, l := range lines {
		v := got[key{l.Carrier, l.Category}]
		got[key{l.Carrier, l.Category}] = [2]int64{v[0] + l.Rides, v[1] + l.CompensationKop}
	}
	if fmt.Sprint(got) != fmt.Sprint(truth) {
		t.Errorf("statement %v\n   truth %v", got, truth)
	}
	fromTaps, err := st.TapLines(ctx, period, "")
	if err != nil || len(fromTaps) != len(lines) {
		t.Errorf("taps give %d lines (%v), the roll-up %d", len(fromTaps), err, len(lines))
	}
	for i := range min(len(fromTaps), len(lines)) {
		if fromTaps[i] != lines[i] {
			t.Errorf("roll-up %+v, taps %+v", lines[i], fromTaps[i])
		}
	}
	if gaps, missing, err := st.OpenGaps(ctx); err != nil || gaps != 0 {
		t.Errorf("%d open gaps, %d taps missing (%v)", gaps, missing, err)
	}
	if q, err := st.Quarantined(ctx, time.Time{}, time.Time{}); err != nil || len(q) != 0 {
		t.Errorf("%d batches quarantined (%v), want none: every batch was good", len(q), err)
	}
	devs, err := st.Devices(ctx, period)
	if err != nil {
		t.Fatal(err)
	}
	var dups int64
	for _, d := range devs {
		dups += d.Duplicates
	}
	t.Logf("%d taps, %d re-deliveries ignored as duplicates, %d failed attempts to store, %d batches stored after retrying", total, dups, failed, retried)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("the test ran out of time")
	}
}

// faultTariff is the version of the tariff proveFaultRides gives
// clearing.
const faultTariff = 9

// proveFaultRides gives the clearing store at dsn a tariff pricing the
// fault test's rides (buses of ATP-1 and ATP-2 at 15.00; categories cats:
// free, free with a flat 7.50, half price; the city pays) and registry
// records giving each of its cards the benefit cats[card%3].
func proveFaultRides(t *testing.T, ctx context.Context, dsn string, cats []string) {
	t.Helper()
	st, err := postgres.Open(ctx, dsn, store.Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.AddTariff(ctx, storetest.TariffFileOf(t, faultTariff, map[string]string{
		"x_tariff.txt":       "version,currency,timezone,passback_seconds\n9,UAH,UTC,0\n",
		"networks.txt":       "network_id,network_name\nbus,Bus\n",
		"x_carriers.txt":     "carrier_id,carrier_name,carrier_code,carrier_group,network_id\nATP-1,ATP-1,1,0,bus\nATP-2,ATP-2,2,0,bus\n",
		"fare_products.txt":  "fare_product_id,fare_product_name,amount,currency\nbus,Bus,15.00,UAH\n",
		"fare_leg_rules.txt": "leg_group_id,network_id,from_timeframe_group_id,fare_product_id\nmunicipal,bus,,bus\n",
		"rider_categories.txt": "rider_category_id,rider_category_name,is_default_fare_category,eligibility_url\n" +
			"adult,Adult,1,\npensioner,Pensioner,0,\nveteran,Veteran,0,\nstudent,Student,0,\n",
		"x_benefits.txt": "rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n" +
			"pensioner," + cats[0] + ",100,0,city,,,\nveteran," + cats[1] + ",100,0,city,7.50,,\nstudent," + cats[2] + ",50,0,city,,,\n",
	})); err != nil {
		t.Fatal(err)
	}
	recs := make([]store.CardRecord, 0, 5000)
	for card := uint64(1_000_000); card < 1_005_000; card++ {
		code, _ := strconv.Atoi(cats[card%3])
		recs = append(recs, store.CardRecord{Card: card, Entitlements: []store.RecordEntitlement{
			{Category: uint16(code), ValidFrom: "2020-01-01", ValidTo: "2040-12-31", Funding: "city"}}})
	}
	if _, err := st.SetCardRecords(ctx, recs, store.Feed{Next: 1, AsOf: time.Date(2041, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
}
