package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/tap"
)

// memStore is an in-memory ingest.Store; the real stores have their own
// contract suite (clearing/store/storetest).
type memStore struct {
	mu         sync.Mutex
	taps       map[string]tap.Tap
	quarantine []ingest.Rejected
	anomalies  map[string]recon.Anomaly
	failAfter  int // fail AddBatch calls after this many (0 = never)
	failFor    int // ... for this many calls (0 = for ever)
	calls      int
	batches    []ingest.Batch
}

func (m *memStore) AddAnomalies(_ context.Context, as []recon.Anomaly) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.anomalies == nil {
		m.anomalies = map[string]recon.Anomaly{}
	}
	for _, a := range as {
		m.anomalies[fmt.Sprint(a.Kind, a.Device, a.Seq, a.OtherDevice, a.OtherSeq)] = a
	}
	return nil
}

func newMemStore() *memStore { return &memStore{taps: map[string]tap.Tap{}} }

func (m *memStore) AddBatch(_ context.Context, b ingest.Batch) (int, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.failAfter > 0 && m.calls > m.failAfter && (m.failFor == 0 || m.calls <= m.failAfter+m.failFor) {
		return 0, 0, errors.New("disk full")
	}
	m.batches = append(m.batches, b)
	added, dup := 0, 0
	for _, t := range b.Taps {
		k := fmt.Sprint(t.Device, "/", t.Seq)
		if _, ok := m.taps[k]; ok {
			dup++
			continue
		}
		m.taps[k] = t
		added++
	}
	return added, dup, nil
}

func (m *memStore) Quarantine(_ context.Context, q ingest.Rejected) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.quarantine {
		if o.Key() == q.Key() {
			return nil
		}
	}
	m.quarantine = append(m.quarantine, q)
	return nil
}

var clock = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func keystore(t testing.TB) *hsm.Keystore {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "k"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate(context.Background(), hsm.LabelBatchMaster, hsm.KindBatchMaster); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

// seal builds a wire batch of n taps from device, first sequence first,
// MACed with the device key derived from ks's batch master.
func seal(t testing.TB, ks *hsm.Keystore, device string, first uint64, n int) []byte {
	t.Helper()
	b := tap.Batch{Device: device, KeyVersion: 1, Created: clock}
	for i := range n {
		b.Taps = append(b.Taps, tap.Tap{Device: device, Seq: first + uint64(i), Time: clock.Add(-time.Hour),
			Card: 1001, Carrier: "ATP-1", Result: tap.Accepted, Reason: "ok", FareKop: 1500, CompensationKop: 1500, CardCommitted: true})
	}
	return sealBatch(t, ks, b)
}

// sealBatch MACs b with its device's key, derived from ks's batch master
// as clearing derives it.
func sealBatch(t testing.TB, ks *hsm.Keystore, b tap.Batch) []byte {
	t.Helper()
	key, err := hsm.DeviceKey(context.Background(), ks, hsm.Ref{Label: hsm.LabelBatchMaster, Version: 1}, b.Device)
	if err != nil {
		t.Fatal(err)
	}
	dk := hsm.Ref{Label: "dev-" + b.Device, Version: 1}
	if err := ks.Import(context.Background(), dk, hsm.KindMAC, key[:]); err != nil && !errors.Is(err, hsm.ErrExists) {
		t.Fatal(err)
	}
	mac, err := ks.MAC(context.Background(), dk, b.Body())
	if err != nil {
		t.Fatal(err)
	}
	b.MAC = mac[:]
	wire, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func TestProcess(t *testing.T) {
	ks := keystore(t)
	good := seal(t, ks, "bus-1", 1, 3)
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 1
	future := tap.Batch{Device: "bus-1", KeyVersion: 1, Created: clock,
		Taps: []tap.Tap{{Device: "bus-1", Seq: 9, Time: clock.Add(48 * time.Hour), Result: tap.Accepted}}}
	futureWire := sealBatch(t, ks, future)

	st := newMemStore()
	p := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks, Devices: map[string]bool{"bus-1": true}}, Store: st,
		Now: func() time.Time { return clock }}
	for _, tc := range []struct {
		name       string
		wire       []byte
		added, dup int
		reason     string
	}{
		{"new batch", good, 3, 0, ""},
		{"the same batch again", good, 0, 3, ""},
		{"tampered MAC", tampered, 0, 0, ingest.ReasonBadMAC},
		{"unknown device", seal(t, ks, "bus-666", 1, 1), 0, 0, ingest.ReasonUnknownDevice},
		{"garbage", []byte("not a batch at all, clearly"), 0, 0, ingest.ReasonMalformed},
		{"tap in the future", futureWire, 0, 0, ingest.ReasonFutureTap},
	} {
		out, err := p.Process(context.Background(), tc.wire)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if out.Added != tc.added || out.Duplicates != tc.dup || out.Quarantined != tc.reason {
			t.Errorf("%s: outcome %+v, want added %d dup %d quarantined %q", tc.name, out, tc.added, tc.dup, tc.reason)
		}
	}
	if len(st.quarantine) != 4 || len(st.taps) != 3 {
		t.Fatalf("store holds %d taps and %d quarantined batches, want 3 and 4", len(st.taps), len(st.quarantine))
	}
	for _, q := range st.quarantine {
		if q.Reason == "" || q.Detail == "" || len(q.Raw) == 0 {
			t.Errorf("quarantined batch lacks its reason, detail or bytes: %+v", q)
		}
	}
}

// TestRunnerRetriesAFailingStore: a store that fails for a while (a
// database restarting) holds ingest up, but ends nothing: the batch is
// tried again until stored, later ones wait behind it, and nothing is
// lost or stored twice.
func TestRunnerRetriesAFailingStore(t *testing.T) {
	ks := keystore(t)
	b := inproc.New(1)
	prod := b.Producer()
	for i := range 3 {
		if err := prod.Publish(context.Background(), bus.Message{Key: []byte("bus-1"), Value: seal(t, ks, "bus-1", uint64(1+10*i), 2)}); err != nil {
			t.Fatal(err)
		}
	}
	st := newMemStore()
	st.failAfter, st.failFor = 1, 4
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	var got ingest.Totals
	r := &ingest.Runner{Consumer: cons, Linger: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
		Processor: &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Metrics: m, Now: func() time.Time { return clock }},
		OnBatch: func(_ ingest.Outcome, tot ingest.Totals) {
			got = tot
			if tot.Batches == 3 {
				stop()
			}
		}}
	if err := r.Run(rctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a store failing for a while: %v, want it to ride it out until stopped", err)
	}
	if got.Added != 6 || got.Duplicates != 0 || len(st.taps) != 6 {
		t.Fatalf("after the store recovered: %+v, %d taps stored; want all 6, once", got, len(st.taps))
	}
	if n := testutil.ToFloat64(metricByName(t, reg, "transit_clearing_batch_retries_total")); n != 4 {
		t.Errorf("retries counted %v, want 4", n)
	}
	// Everything was committed.
	cons.Close()
	cons2, err := b.Consumer("clearing")
	if err != nil {
		t.Fatal(err)
	}
	defer cons2.Close()
	fctx, fcancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer fcancel()
	if msg, err := cons2.Fetch(fctx); err == nil {
		t.Errorf("offset %d was not committed", msg.Offset)
	}
}

// TestRunnerStoppedWhileRetrying: a batch still failing when ingest stops
// is not committed, nor is anything after it in its partition, so after a
// restart it comes again and is stored.
func TestRunnerStoppedWhileRetrying(t *testing.T) {
	ks := keystore(t)
	b := inproc.New(1)
	prod := b.Producer()
	for i := range 3 {
		if err := prod.Publish(context.Background(), bus.Message{Key: []byte("bus-1"), Value: seal(t, ks, "bus-1", uint64(1+10*i), 2)}); err != nil {
			t.Fatal(err)
		}
	}
	st := newMemStore()
	st.failAfter = 2 // the third batch fails until the store is fixed
	cons, err := b.Consumer("clearing")
	if err != nil {
		t.Fatal(err)
	}
	proc := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Now: func() time.Time { return clock }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	r := &ingest.Runner{Consumer: cons, Processor: proc, Linger: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: 2 * time.Millisecond}
	go func() {
		for {
			st.mu.Lock()
			n := st.calls
			st.mu.Unlock()
			if n > 6 { // the third batch failed a few times
				stop()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if err := r.Run(rctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	cons.Close()

	// After a restart only the batch that was not stored comes again.
	st.mu.Lock()
	st.failAfter = 0
	st.mu.Unlock()
	cons2, err := b.Consumer("clearing")
	if err != nil {
		t.Fatal(err)
	}
	defer cons2.Close()
	var got ingest.Totals
	rctx2, stop2 := context.WithCancel(ctx)
	r2 := &ingest.Runner{Consumer: cons2, Processor: proc, Linger: 10 * time.Millisecond,
		OnBatch: func(_ ingest.Outcome, t ingest.Totals) {
			got = t
			if t.Batches == 1 {
				stop2()
			}
		}}
	if err := r2.Run(rctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Run: %v", err)
	}
	if got.Added != 2 || got.Duplicates != 0 || len(st.taps) != 6 {
		t.Fatalf("after restart: %+v, %d taps stored; want the third batch's 2 new taps and 6 in all", got, len(st.taps))
	}
}
