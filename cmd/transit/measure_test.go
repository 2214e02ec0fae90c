package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
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
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/tap"
)

// Measurements of clearing as an operator runs it: real `transit clearing
// serve` processes on a PostgreSQL server of their own with fsync on and
// synchronous commits (as in production), on the harness's Kafka broker.
//
//	go test -run '^$' -bench 'ClearingIngest|ClearingRecovery' -benchtime 1x ./cmd/transit
//
// Each benchmark runs its scenario once whatever b.N (use -benchtime 1x)
// and reports taps/s or seconds.

// rig is a clearing deployment for a measurement.
type rig struct {
	tb     testing.TB
	ctx    context.Context
	pg     *pgcluster.Cluster
	dsn    string
	keys   string
	env    []string
	broker string
	topic  string
	kcfg   kafka.Config
	dir    string
	macs   map[string]*cmac.MAC
	st     *postgres.Store
	sup    *supervisor
	ins    []*instance
}

const rigPass = "measure passphrase"

func newRig(tb testing.TB, partitions int, settings ...string) *rig {
	tb.Helper()
	broker := testenv.Kafka(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	tb.Cleanup(cancel)
	r := &rig{tb: tb, ctx: ctx, broker: broker, dir: tb.TempDir(), env: []string{"TRANSIT_KEYSTORE_PASSPHRASE=" + rigPass}}
	r.pg = pgcluster.Start(tb, settings...)
	r.dsn = r.pg.CreateDB("clearing")
	r.keys = filepath.Join(r.dir, "city.keys")
	tb.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", rigPass)
	for _, args := range [][]string{{"hsm", "init", "--keystore", r.keys}, {"clearing", "migrate", "--db", r.dsn, "--tz", "UTC"}} {
		if code := run(ctx, args, io.Discard, os.Stderr); code != 0 {
			tb.Fatalf("transit %s: exit %d", strings.Join(args, " "), code)
		}
	}
	r.topic = fmt.Sprintf("measure-%x", rand.Uint32())
	r.kcfg = kafka.Config{Brokers: strings.Split(broker, ","), Topic: r.topic, Log: slog.New(slog.DiscardHandler)}
	if err := kafka.CreateTopic(ctx, r.kcfg, partitions); err != nil {
		tb.Fatal(err)
	}
	var err error
	if r.st, err = postgres.Open(ctx, r.dsn, store.Options{Location: time.UTC}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.st.Close() })
	r.sup = &supervisor{t: tb, env: r.env, stop: make(chan struct{}), r: rand.New(rand.NewPCG(1, 2)),
		started: regexp.MustCompile(`msg="clearing started"`)}
	r.macs = map[string]*cmac.MAC{}
	return r
}

// mac returns device's batch MAC, derived as clearing derives it.
func (r *rig) mac(device string) *cmac.MAC {
	if m := r.macs[device]; m != nil {
		return m
	}
	ks, err := hsm.OpenKeystore(r.keys, []byte(rigPass))
	if err != nil {
		r.tb.Fatal(err)
	}
	defer ks.Close()
	k, err := hsm.DeviceKey(r.ctx, ks, hsm.Ref{Label: hsm.LabelBatchMaster, Version: 1}, device)
	if err != nil {
		r.tb.Fatal(err)
	}
	m, err := cmac.New(k[:])
	if err != nil {
		r.tb.Fatal(err)
	}
	r.macs[device] = m
	return m
}

// rounds returns n rounds of one batch per device, perBatch taps each,
// continuing devices' sequences from round first.
func (r *rig) rounds(devices, first, n, perBatch int) [][]bus.Message {
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var out [][]bus.Message
	for rd := first; rd < first+n; rd++ {
		var round []bus.Message
		for d := range devices {
			dev := fmt.Sprintf("bus-%04d", d)
			b := tap.Batch{Device: dev, KeyVersion: 1, Created: time.Now().UTC().Truncate(time.Millisecond)}
			for i := range perBatch {
				seq := uint64(rd*perBatch + i + 1)
				b.Taps = append(b.Taps, tap.Tap{Device: dev, Seq: seq, Time: at.Add(time.Duration(seq) * time.Millisecond),
					Card: uint64(1_000_000 + (d*7919+int(seq))%200_000), Carrier: "ATP-1", Route: "12", Result: tap.Accepted, Reason: "ok",
					Product: "benefit", Category: "pensioner", Funding: "city", FareKop: 1500, CompensationKop: 1500, CardCommitted: true})
			}
			sum := r.mac(dev).Sum(b.Body())
			b.MAC = sum[:]
			wire, err := b.Marshal()
			if err != nil {
				r.tb.Fatal(err)
			}
			round = append(round, bus.Message{Key: []byte(dev), Value: wire})
		}
		out = append(out, round)
	}
	return out
}

func (r *rig) publish(p bus.Producer, rounds [][]bus.Message) {
	for _, round := range rounds {
		for i := 0; i < len(round); i += 500 {
			if err := p.Publish(r.ctx, round[i:min(i+500, len(round))]...); err != nil {
				r.tb.Fatal(err)
			}
		}
	}
}

// start starts n instances.
func (r *rig) start(n int) {
	for i := range n {
		name := fmt.Sprintf("clearing-%c", 'a'+i)
		m := freePortTB(r.tb)
		in := &instance{name: name, metrics: m, logPath: filepath.Join(r.dir, name+".log"), args: []string{
			"clearing", "serve", "--log-level", "info", "--db", r.dsn, "--tz", "UTC", "--brokers", r.broker, "--topic", r.topic,
			"--group", r.topic, "--keystore", r.keys, "--instance", name, "--metrics", m, "--workers", "2",
			"--kafka-session-timeout", "6s"}}
		r.ins = append(r.ins, in)
		r.sup.wg.Add(1)
		go r.sup.run(in)
	}
	r.tb.Cleanup(r.stop)
}

func (r *rig) stop() {
	select {
	case <-r.sup.stop:
		return
	default:
	}
	close(r.sup.stop)
	for _, in := range r.ins {
		in.mu.Lock()
		if in.cmd != nil && in.cmd.Process != nil {
			in.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // may have exited
		}
		in.mu.Unlock()
	}
	r.sup.wg.Wait()
}

func (r *rig) count() int64 {
	n, err := r.st.TapCount(r.ctx)
	if err != nil {
		r.tb.Fatal(err)
	}
	return n
}

// waitCount waits until at least n taps are stored and returns when.
func (r *rig) waitCount(n int64, within time.Duration) time.Time {
	deadline := time.Now().Add(within)
	for {
		if r.count() >= n {
			return time.Now()
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("%d of %d taps stored after %s", r.count(), n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready waits until every instance is ready and the partitions are all
// owned.
func (r *rig) ready(within time.Duration) {
	for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
		assigned, n := 0.0, 0
		for _, in := range r.ins {
			if code, _ := scrape("http://" + in.metrics + "/readyz"); code == 200 {
				n++
			}
			_, body := scrape("http://" + in.metrics + "/metrics")
			v, _ := metricValue(body, "transit_clearing_assigned_partitions")
			assigned += v
		}
		if n == len(r.ins) && assigned == 6 {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("%d of %d instances ready, %v of 6 partitions assigned after %s", n, len(r.ins), assigned, within)
		}
	}
}

func freePortTB(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BenchmarkClearingIngest stores the same backlog of 120,000 taps with
// 1, 2 and 3 instances, in batches of 50 taps (a validator uploading every
// few seconds) and of 500 (the uploader's largest, after a spell offline),
// and reports the taps per second between 10% and 90% of it stored
// (start-up excluded).
func BenchmarkClearingIngest(b *testing.B) {
	for _, perBatch := range []int{50, 500} {
		for _, n := range []int{1, 2, 3} {
			b.Run(fmt.Sprintf("batch=%d/instances=%d", perBatch, n), func(b *testing.B) {
				r := newRig(b, 6)
				const rounds = 4
				devices := 120_000 / (rounds * perBatch)
				total := int64(devices * rounds * perBatch)
				p, err := kafka.NewProducer(r.ctx, r.kcfg)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				rs := r.rounds(devices, 0, rounds, perBatch)
				// The instances start on an empty topic and settle first,
				// so that no rebalance falls into the measurement.
				r.start(n)
				r.ready(2 * time.Minute)
				b.ResetTimer()
				r.publish(p, rs)
				t10 := r.waitCount(total/10, 5*time.Minute)
				t90 := r.waitCount(total*9/10, 10*time.Minute)
				b.StopTimer()
				r.waitCount(total, 5*time.Minute)
				b.ReportMetric(float64(total*8/10)/t90.Sub(t10).Seconds(), "taps/s")
			})
		}
	}
}

// BenchmarkClearingRecovery runs three instances under a steady flow
// (100 devices, a batch of 20 taps each every second: 2,000 taps/s), then
// SIGKILLs one instance, and later crashes PostgreSQL for 2 s, and reports
// for each how long until every tap published by then is stored.
func BenchmarkClearingRecovery(b *testing.B) {
	r := newRig(b, 6, "synchronous_commit = off")
	const devices, perBatch = 100, 20
	p, err := kafka.NewProducer(r.ctx, r.kcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var (
		mu        sync.Mutex
		published int64
		round     int
	)
	stopFlow := make(chan struct{})
	flowDone := make(chan struct{})
	go func() {
		defer close(flowDone)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopFlow:
				return
			case <-t.C:
			}
			rs := r.rounds(devices, round, 1, perBatch)
			r.publish(p, rs)
			mu.Lock()
			round++
			published += devices * perBatch
			mu.Unlock()
		}
	}()
	defer func() { close(stopFlow); <-flowDone }()
	r.start(3)
	// caughtUp waits until the stored taps are within one round of what
	// was published: the backlog of a fault is cleared.
	caughtUp := func() time.Time {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			mu.Lock()
			n := published
			mu.Unlock()
			if r.count() >= n-devices*perBatch {
				return time.Now()
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d taps stored after 5 minutes", r.count(), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	time.Sleep(15 * time.Second) // start-up and the first rebalances
	caughtUp()
	time.Sleep(5 * time.Second)

	b.ResetTimer()
	killed := time.Now()
	r.ins[0].kill()
	time.Sleep(time.Second)
	afterKill := caughtUp().Sub(killed)
	time.Sleep(20 * time.Second) // the killed instance is back and the group settled
	caughtUp()

	crashed := time.Now()
	r.pg.Crash()
	time.Sleep(2 * time.Second)
	r.pg.Up()
	afterCrash := caughtUp().Sub(crashed)
	b.StopTimer()
	b.ReportMetric(afterKill.Seconds(), "s-after-kill")
	b.ReportMetric(afterCrash.Seconds(), "s-after-pg-crash")
}
