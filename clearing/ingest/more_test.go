package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/validator/tap"
)

func TestClockAnomaliesAndMetrics(t *testing.T) {
	ks := keystore(t)
	b := tap.Batch{Device: "bus-1", KeyVersion: 1, Created: clock.Add(-time.Hour)}
	for i := range 3 {
		b.Taps = append(b.Taps, tap.Tap{Device: "bus-1", Seq: uint64(i + 1), Time: clock.Add(-2 * time.Hour), Result: tap.Accepted})
	}
	b.Taps[2].Time = clock.Add(-30 * time.Minute) // after the batch was sealed
	wire := sealBatch(t, ks, b)
	old := sealBatch(t, ks, tap.Batch{Device: "bus-1", KeyVersion: 1, Created: clock,
		Taps: []tap.Tap{{Device: "bus-1", Seq: 4, Time: time.Unix(-1, 0), Result: tap.Accepted}}})

	reg := prometheus.NewRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	p := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Metrics: m, Now: func() time.Time { return clock }}
	for _, w := range [][]byte{wire, wire, old, []byte("junk")} {
		if _, err := p.Process(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	if len(st.anomalies) != 1 {
		t.Fatalf("anomalies %+v, want one tap-after-seal", st.anomalies)
	}
	for _, a := range st.anomalies {
		if a.Kind != recon.TapAfterSeal || a.Seq != 3 {
			t.Errorf("anomaly %+v", a)
		}
	}
	if got := counter(t, reg, "transit_clearing_taps_ingested_total", "added"); got != 3 {
		t.Errorf("added taps %v, want 3", got)
	}
	if got := counter(t, reg, "transit_clearing_taps_ingested_total", "duplicate"); got != 3 {
		t.Errorf("duplicate taps %v, want 3", got)
	}
	if got := counter(t, reg, "transit_clearing_batches_quarantined_total", ingest.ReasonMalformed); got != 1 {
		t.Errorf("malformed batches %v, want 1", got)
	}
	if got := counter(t, reg, "transit_clearing_batches_quarantined_total", ingest.ReasonInvalidTap); got != 1 {
		t.Errorf("batches with a tap before 1970: %v, want 1 quarantined as invalid", got)
	}
}

// metricByName returns the collector-free metric of name in reg, for
// testutil.ToFloat64.
func metricByName(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			var v float64
			switch {
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			}
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return v })
		}
	}
	t.Fatalf("no single series %s", name)
	return nil
}

// counter returns the value of the series of counter name with one
// label of value label.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

// orderStore records the order in which each device's batches were
// stored, and slows every call so that workers overlap.
type orderStore struct {
	*memStore
	mu      sync.Mutex
	order   map[string][]uint64
	active  int
	overlap bool
}

func (o *orderStore) AddBatch(ctx context.Context, b ingest.Batch) (int, int, error) {
	taps := b.Taps
	o.mu.Lock()
	o.active++
	if o.active > 1 {
		o.overlap = true
	}
	o.order[taps[0].Device] = append(o.order[taps[0].Device], taps[0].Seq)
	o.mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	defer func() { o.mu.Lock(); o.active--; o.mu.Unlock() }()
	return o.memStore.AddBatch(ctx, b)
}

func TestRunnerWorkers(t *testing.T) {
	ks := keystore(t)
	b := inproc.New(4)
	prod := b.Producer()
	devices := []string{"bus-1", "bus-2", "bus-3", "bus-4", "bus-5", "bus-6"}
	const per = 8
	for i := range per {
		for _, d := range devices {
			if err := prod.Publish(context.Background(), bus.Message{Key: []byte(d), Value: seal(t, ks, d, uint64(1+i*10), 3)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := &orderStore{memStore: newMemStore(), order: map[string][]uint64{}}
	cons, err := b.Consumer("clearing")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	reg := prometheus.NewRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := &ingest.Runner{Consumer: cons, Workers: 3, Linger: 5 * time.Millisecond, CommitEvery: 5,
		Processor: &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Metrics: m, Now: func() time.Time { return clock }},
		OnBatch: func(_ ingest.Outcome, tot ingest.Totals) {
			if tot.Batches == per*len(devices) {
				cancel()
			}
		}}
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if len(st.taps) != per*len(devices)*3 {
		t.Fatalf("%d taps stored, want %d", len(st.taps), per*len(devices)*3)
	}
	if !st.overlap {
		t.Errorf("three workers never stored two batches at once")
	}
	for d, seqs := range st.order {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] < seqs[i-1] {
				t.Errorf("%s: batches stored out of order: %v", d, seqs)
			}
		}
	}
	// Everything was committed: a new member gets nothing.
	cons.Close()
	cons2, err := b.Consumer("clearing")
	if err != nil {
		t.Fatal(err)
	}
	defer cons2.Close()
	fctx, fcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer fcancel()
	if msg, err := cons2.Fetch(fctx); err == nil {
		t.Errorf("after Run, partition %d offset %d was not committed", msg.Partition, msg.Offset)
	}
	if n := testutil.CollectAndCount(reg, "transit_clearing_consumer_lag_messages"); n == 0 {
		t.Errorf("no consumer lag reported")
	}
}

// TestBadInputQuarantinedAndReported sends a malformed batch, one from an
// unknown device, one with a tampered MAC and one with a tap far in the
// future between good ones: each bad one is quarantined with its reason
// and shows in the reconciliation report, and every good tap is stored.
func TestBadInputQuarantinedAndReported(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	good1, good2 := seal(t, ks, "bus-1", 1, 4), seal(t, ks, "bus-1", 5, 4)
	tampered := append([]byte(nil), good2...)
	tampered[10] ^= 0x40
	future := sealBatch(t, ks, tap.Batch{Device: "bus-1", KeyVersion: 1, Created: clock,
		Taps: []tap.Tap{{Device: "bus-1", Seq: 9, Time: clock.Add(72 * time.Hour), Result: tap.Accepted}}})
	p := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks, Devices: map[string]bool{"bus-1": true}}, Store: st,
		Now: func() time.Time { return clock }}
	for _, w := range [][]byte{good1, good1[:20], seal(t, ks, "bus-99", 1, 2), tampered, future, good2} {
		if _, err := p.Process(ctx, w); err != nil {
			t.Fatalf("Process: %v", err)
		}
	}
	rec, err := report.BuildReconciliation(ctx, st, "2026-11", time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{ingest.ReasonMalformed: 1, ingest.ReasonUnknownDevice: 1, ingest.ReasonBadMAC: 1, ingest.ReasonFutureTap: 1}
	if fmt.Sprint(rec.ByReason) != fmt.Sprint(want) {
		t.Errorf("quarantined by reason %v, want %v", rec.ByReason, want)
	}
	if rec.Taps != 8 || rec.OpenGaps != 0 {
		t.Errorf("reconciliation: %d taps, %d open gaps; want all 8 good taps and no gap", rec.Taps, rec.OpenGaps)
	}
	var b strings.Builder
	if err := report.WriteReconciliation(&b, "table", rec); err != nil {
		t.Fatal(err)
	}
	for r := range want {
		if !strings.Contains(b.String(), r) {
			t.Errorf("the report does not show %s:\n%s", r, b.String())
		}
	}
	lines, err := st.Compensation(ctx, store.Query{Period: "2026-11"})
	if err != nil || len(lines) != 1 || lines[0].Rides != 8 {
		t.Errorf("compensation %+v, %v; want the 8 good rides", lines, err)
	}
}
