package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/postgres/pgcluster"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/validator/tap"
)

// TestNoTapLostWhenPostgresCrashesMidIngest runs ingest from Kafka into a
// PostgreSQL server of the test's own whose default is
// synchronous_commit=off, with the WAL writer held back (10 s) so that
// commits wait in memory, and crashes the server twice (immediate stop)
// while batches flow. Ingest commits a batch's Kafka offset once the
// store returned; had the store's commits not been synchronous, the
// batches committed just before a crash would be gone for good. Every tap
// must be stored, none twice, with no open gap.
func TestNoTapLostWhenPostgresCrashesMidIngest(t *testing.T) {
	broker := testenv.Kafka(t)
	pg := pgcluster.Start(t, "synchronous_commit = off", "wal_writer_delay = 10000ms", "wal_writer_flush_after = 1GB")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dsn := pg.CreateDB("clearing")
	if _, err := postgres.Migrate(ctx, dsn, time.UTC); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := kafka.Config{Brokers: strings.Split(broker, ","), Topic: fmt.Sprintf("durable-%d", time.Now().UnixNano()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := kafka.CreateTopic(ctx, cfg, 4); err != nil {
		t.Fatal(err)
	}
	ks := keystore(t)

	const devices, rounds, perBatch = 12, 30, 20
	total := devices * rounds * perBatch
	now := time.Now().UTC().Truncate(time.Millisecond)
	var wires [][]bus.Message
	for r := range rounds {
		var round []bus.Message
		for d := range devices {
			dev := fmt.Sprintf("bus-%02d", d)
			b := tap.Batch{Device: dev, KeyVersion: 1, Created: now}
			for i := range perBatch {
				seq := uint64(r*perBatch + i + 1)
				b.Taps = append(b.Taps, tap.Tap{Device: dev, Seq: seq, Time: now.Add(-time.Hour).Add(time.Duration(seq) * time.Millisecond),
					Card: 1000 + seq, Carrier: "ATP-1", Result: tap.Accepted, Reason: "ok", Product: "benefit", Category: "pensioner",
					Funding: "city", FareKop: 1500, CompensationKop: 1500, CardCommitted: true})
			}
			round = append(round, bus.Message{Key: []byte(dev), Value: sealBatch(t, ks, b)})
		}
		wires = append(wires, round)
	}
	prod, err := kafka.NewProducer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	published := make(chan error, 1)
	go func() {
		for _, round := range wires {
			if err := prod.Publish(ctx, round...); err != nil {
				published <- err
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
		published <- nil
	}()

	cons, err := kafka.NewConsumer(ctx, cfg, "clearing")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var handled atomic.Int64
	rctx, stop := context.WithCancel(ctx)
	r := &ingest.Runner{Consumer: cons, Workers: 2, Linger: 20 * time.Millisecond, RetryMin: 50 * time.Millisecond, RetryMax: time.Second,
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		Processor: &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
		OnBatch:   func(ingest.Outcome, ingest.Totals) { handled.Add(1) }}
	var wg sync.WaitGroup
	var runErr error
	wg.Go(func() { runErr = r.Run(rctx) })

	waitHandled := func(n int64) {
		t.Helper()
		for handled.Load() < n {
			if ctx.Err() != nil {
				t.Fatalf("only %d batches handled, waiting for %d", handled.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	batches := int64(devices * rounds)
	waitHandled(batches / 3)
	pg.Restart(300 * time.Millisecond)
	waitHandled(2 * batches / 3)
	pg.Restart(time.Second)
	if err := <-published; err != nil {
		t.Fatalf("publish: %v", err)
	}

	// Everything comes in: the stored taps reach the total, or stop short
	// for good when commits were lost.
	var n int64
	last, lastChange := int64(-1), time.Now()
	for {
		if n, err = st.TapCount(ctx); err == nil && n == int64(total) {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > 20*time.Second || ctx.Err() != nil {
			t.Fatalf("%d of %d taps stored and no progress for 20 s (%v): taps whose Kafka offsets were committed were lost", n, total, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if !errors.Is(runErr, context.Canceled) {
		t.Errorf("Run: %v, want it to have ridden out the crashes", runErr)
	}
	gaps, missing, err := st.OpenGaps(ctx)
	if err != nil || gaps != 0 {
		t.Errorf("%d open gaps, %d taps missing (%v)", gaps, missing, err)
	}
	lines, err := st.Compensation(ctx, store.Query{Period: now.Add(-time.Hour).Format("2006-01")})
	var rides, kop int64
	for _, l := range lines {
		rides, kop = rides+l.Rides, kop+l.CompensationKop
	}
	if err != nil || rides != int64(total) || kop != int64(total)*1500 {
		t.Errorf("statement: %d rides, %d kop (%v); want %d rides, %d kop: none lost, none twice", rides, kop, err, total, total*1500)
	}
}
