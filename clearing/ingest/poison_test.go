package ingest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/validator/tap"
)

// poison is the 67-byte batch that stopped clearing for good: a well-formed
// batch whose device name is empty. No key can be derived for it, and
// clearing took the failure for a broken key token, exited, and met the
// same message again at every restart.
func poison(t *testing.T) []byte {
	t.Helper()
	b := tap.Batch{Device: "", KeyVersion: 1, Created: clock, Taps: []tap.Tap{{Seq: 1, Time: clock.Add(-time.Minute),
		Card: 1001_0000_0000_0017, Carrier: "ATP-1", Result: tap.Accepted, Reason: "ok", FareKop: 1500, TariffVersion: 1, HotlistVersion: 1}}}
	b.MAC = bytes.Repeat([]byte{0x5a}, tap.MACSize)
	wire, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(wire) != 67 {
		t.Fatalf("the poison batch is %d bytes, want the 67 of the report", len(wire))
	}
	return wire
}

// TestPoisonMessageIsQuarantinedAndIngestGoesOn publishes the poison batch
// between good ones to a running ingest on the embedded store: it is
// quarantined and committed, every good tap is stored, and ingest is still
// running; consumed again from the start, nothing is quarantined twice.
func TestPoisonMessageIsQuarantinedAndIngestGoesOn(t *testing.T) {
	ks := keystore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := inproc.New(2)
	prod := b.Producer()
	msgs := []bus.Message{
		{Key: []byte("bus-1"), Value: seal(t, ks, "bus-1", 1, 3)},
		{Key: []byte(""), Value: poison(t)},
		{Key: []byte("bus-2"), Value: seal(t, ks, "bus-2", 1, 2)},
		{Key: []byte("bus-1"), Value: seal(t, ks, "bus-1", 4, 3)},
	}
	if err := prod.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	proc := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: st, Now: func() time.Time { return clock }}
	run := func(group string, want int) ingest.Totals {
		t.Helper()
		cons, err := b.Consumer(group)
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		rctx, stop := context.WithCancel(ctx)
		var got ingest.Totals
		r := &ingest.Runner{Consumer: cons, Processor: proc, Linger: 5 * time.Millisecond,
			OnBatch: func(_ ingest.Outcome, tot ingest.Totals) {
				if got = tot; tot.Batches == want {
					stop()
				}
			}}
		if err := r.Run(rctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run with the poison batch: %v, want ingest to go on until stopped", err)
		}
		return got
	}
	got := run("clearing", len(msgs))
	if got.Added != 8 || got.Quarantined != 1 {
		t.Fatalf("totals %+v, want 8 taps added and the poison batch quarantined", got)
	}
	// A later message still flows: ingest did not stop at the poison.
	if err := prod.Publish(ctx, bus.Message{Key: []byte("bus-2"), Value: seal(t, ks, "bus-2", 3, 1)}); err != nil {
		t.Fatal(err)
	}
	if got := run("clearing", 1); got.Added != 1 || got.Quarantined != 0 {
		t.Fatalf("after the poison: %+v, want only the new batch (the poison was committed)", got)
	}
	q, err := st.Quarantined(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(msgs[1].Value)
	if len(q) != 1 || q[0].Reason != ingest.ReasonMalformed || q[0].Size != 67 || !bytes.Equal(q[0].SHA256, sum[:]) ||
		!bytes.Equal(q[0].Raw, msgs[1].Value) || q[0].Offset < 0 {
		t.Fatalf("quarantine %+v, want the poison batch, whole, with its hash and bus position", q)
	}
	// Reading the topic again from the start (a new group, or offsets
	// lost) quarantines nothing twice.
	if got := run("clearing-again", len(msgs)+1); got.Quarantined != 1 || got.Added != 0 {
		t.Fatalf("consumed again: %+v, want only repeats", got)
	}
	if q, err := st.Quarantined(ctx, time.Time{}, time.Time{}); err != nil || len(q) != 1 {
		t.Fatalf("after consuming again, quarantine holds %d batches (%v), want still 1", len(q), err)
	}
}

// TestQuarantinedBatchIsBounded: a huge rejected batch is kept as its
// first bytes, its size and its hash, and its texts are made storable.
func TestQuarantinedBatchIsBounded(t *testing.T) {
	wire := append([]byte("TB\x01\x03\xff\x00x"), bytes.Repeat([]byte{0}, 1<<20)...)
	q := ingest.NewRejected(wire, 3, 99, "bus\x00\xff", ingest.ReasonMalformed, strings.Repeat("e", 5000), clock)
	sum := sha256.Sum256(wire)
	if len(q.Raw) != ingest.MaxRawKept || q.Size != len(wire) || !bytes.Equal(q.SHA256, sum[:]) {
		t.Errorf("kept %d bytes of %d (size %d), hash %x; want the first %d, the size and the whole hash", len(q.Raw), len(wire), q.Size, q.SHA256, ingest.MaxRawKept)
	}
	if len(q.Detail) > ingest.MaxDetailKept || strings.ContainsRune(q.Device, 0) || q.Device != `"bus\x00\xff"` {
		t.Errorf("device %q, detail of %d bytes: want the device quoted and the detail cut", q.Device, len(q.Detail))
	}
	// Bounded is idempotent, and a Rejected without a hash gets one.
	if again := q.Bounded(); again.Key() != q.Key() || len(again.Raw) != len(q.Raw) {
		t.Errorf("Bounded twice changed the rejection")
	}
	r := ingest.Rejected{Raw: []byte("abc")}.Bounded()
	if sum := sha256.Sum256([]byte("abc")); !bytes.Equal(r.SHA256, sum[:]) || r.Size != 3 {
		t.Errorf("Bounded of a rejection without a hash: %+v", r)
	}
}

// failingStore answers AddBatch with err; the rest is memStore's.
type failingStore struct {
	*memStore
	err error
}

func (f *failingStore) AddBatch(context.Context, ingest.Batch) (int, int, error) { return 0, 0, f.err }

func TestUnstorableBatchIsQuarantinedOtherStoreErrorsAreNot(t *testing.T) {
	ks := keystore(t)
	wire := seal(t, ks, "bus-1", 1, 2)
	mem := newMemStore()
	p := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Now: func() time.Time { return clock }}

	p.Store = &failingStore{mem, fmt.Errorf("copy: value out of range: %w", ingest.ErrUnstorable)}
	out, err := p.Process(context.Background(), wire)
	if err != nil || out.Quarantined != ingest.ReasonUnstorable || len(mem.quarantine) != 1 {
		t.Fatalf("a batch the store refuses for its content: %+v, %v; want it quarantined as %s", out, err, ingest.ReasonUnstorable)
	}
	p.Store = &failingStore{mem, errors.New("unexpected EOF")}
	if _, err := p.Process(context.Background(), wire); err == nil {
		t.Fatal("a store that lost its connection: the batch was taken as handled; want an error, so it is tried again")
	}
	if len(mem.quarantine) != 1 {
		t.Errorf("a store failure quarantined the batch")
	}
}

func TestTextThatNoDatabaseTakesIsInvalid(t *testing.T) {
	ks := keystore(t)
	mem := newMemStore()
	p := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: mem, Now: func() time.Time { return clock }}
	for _, route := range []string{"12\x00", "\xff\xfe"} {
		b := tap.Batch{Device: "bus-1", KeyVersion: 1, Created: clock, Taps: []tap.Tap{{Device: "bus-1", Seq: 1,
			Time: clock.Add(-time.Minute), Route: route, Result: tap.Accepted}}}
		out, err := p.Process(context.Background(), sealBatch(t, ks, b))
		if err != nil || out.Quarantined != ingest.ReasonInvalidTap {
			t.Errorf("route %q: %+v, %v; want quarantined as %s", route, out, err, ingest.ReasonInvalidTap)
		}
	}
	if len(mem.taps) != 0 {
		t.Errorf("%d taps stored", len(mem.taps))
	}
}

// TestKeyCacheBoundedAndOnlyAfterAVerifiedMAC: forged batches under made-up
// device names leave no key behind, and the cache never holds more than
// its size.
func TestKeyCacheBoundedAndOnlyAfterAVerifiedMAC(t *testing.T) {
	ks := keystore(t)
	v := &ingest.KeyVerifier{Keys: ks, CacheSize: 3}
	ctx := context.Background()
	for i := range 200 {
		b := tap.Batch{Device: fmt.Sprintf("forged-%d", i), KeyVersion: 1, Created: clock, MAC: make([]byte, tap.MACSize)}
		if err := v.VerifyBatch(ctx, b.Device, 1, b.Body(), b.MAC); !errors.Is(err, ingest.ErrBadMAC) {
			t.Fatalf("forged batch: %v, want ErrBadMAC", err)
		}
	}
	if n := v.Cached(); n != 0 {
		t.Fatalf("%d keys cached after 200 forged batches, want none", n)
	}
	verify := func(device string) {
		t.Helper()
		b, err := tap.Unmarshal(seal(t, ks, device, 1, 1))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyBatch(ctx, b.Device, b.KeyVersion, b.Body(), b.MAC); err != nil {
			t.Fatalf("%s: %v", device, err)
		}
	}
	for i := range 10 {
		verify(fmt.Sprintf("bus-%d", i))
	}
	if n := v.Cached(); n != 3 {
		t.Fatalf("%d keys cached, want the bound of 3", n)
	}
	// A cached key still refuses a tampered batch.
	b, _ := tap.Unmarshal(seal(t, ks, "bus-9", 1, 1))
	b.MAC[0] ^= 1
	if err := v.VerifyBatch(ctx, b.Device, b.KeyVersion, b.Body(), b.MAC); !errors.Is(err, ingest.ErrBadMAC) {
		t.Fatalf("tampered batch with a cached key: %v", err)
	}
	if err := v.VerifyBatch(ctx, "", 1, nil, make([]byte, 16)); !errors.Is(err, ingest.ErrUnknownDevice) {
		t.Fatalf("empty device: %v, want ErrUnknownDevice", err)
	}
}

// countStore takes everything and keeps nothing, so a long fuzz run
// stays small.
type countStore struct{ n atomic.Int64 }

func (c *countStore) AddBatch(_ context.Context, b ingest.Batch) (int, int, error) {
	c.n.Add(1)
	return len(b.Taps), 0, nil
}
func (c *countStore) Quarantine(context.Context, ingest.Rejected) error   { c.n.Add(1); return nil }
func (c *countStore) AddAnomalies(context.Context, []recon.Anomaly) error { return nil }

// FuzzProcess: whatever bytes a producer sends, a healthy store never sees
// ingest fail, and nothing panics.
func FuzzProcess(f *testing.F) {
	ks := keystore(f)
	f.Add(seal(f, ks, "bus-1", 1, 2))
	f.Add([]byte("TB\x01"))
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	b := tap.Batch{Device: "", KeyVersion: 1, Created: clock, Taps: []tap.Tap{{Seq: 1, Time: clock, Result: tap.Accepted}}, MAC: make([]byte, 16)}
	if w, err := b.Marshal(); err == nil {
		f.Add(w)
	}
	p := &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: &countStore{}, Now: func() time.Time { return clock },
		Log: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, wire []byte) {
		if _, err := p.ProcessMessage(context.Background(), bus.Message{Value: wire, Partition: 0, Offset: 1}); err != nil {
			t.Fatalf("ProcessMessage(%x): %v", wire, err)
		}
	})
}

// TestLagOnlyForOwnedPartitions: the lag gauge shows the partitions the
// instance owns, and a partition given away loses its series at once,
// even when a batch of it is handled after the rebalance.
func TestLagOnlyForOwnedPartitions(t *testing.T) {
	ks := keystore(t)
	b := inproc.New(2)
	prod := b.Producer()
	// Keys that land on partitions 0 and 1, chosen as the bus (and
	// kafka-go's Hash balancer) chooses: FNV-1a of the key.
	var keys [2]string
	for i := 0; keys[0] == "" || keys[1] == ""; i++ {
		k := fmt.Sprintf("bus-%d", i)
		h := fnv.New32a()
		h.Write([]byte(k))
		p := int32(h.Sum32()) % 2
		if p < 0 {
			p = -p
		}
		if keys[p] == "" {
			keys[p] = k
		}
	}
	for i, k := range keys {
		for s := range 3 {
			if err := prod.Publish(context.Background(), bus.Message{Key: []byte(k), Value: seal(t, ks, k, uint64(1+s*10), 1)}); err != nil {
				t.Fatalf("partition %d: %v", i, err)
			}
		}
	}
	reg := prometheus.NewRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.Assigned([]int{0}) // partition 1 belongs to another instance
	cons, _ := b.Consumer("clearing")
	defer cons.Close()
	ctx, stop := context.WithCancel(context.Background())
	r := &ingest.Runner{Consumer: cons, Linger: time.Millisecond,
		Processor: &ingest.Processor{Verifier: &ingest.KeyVerifier{Keys: ks}, Store: newMemStore(), Metrics: m, Now: func() time.Time { return clock }},
		OnBatch: func(_ ingest.Outcome, tot ingest.Totals) {
			if tot.Batches == 6 {
				stop()
			}
		}}
	r.Run(ctx) //nolint:errcheck // stopped
	lagOf := func() map[string]bool {
		out := map[string]bool{}
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "transit_clearing_consumer_lag_messages" {
				for _, s := range mf.GetMetric() {
					out[s.GetLabel()[0].GetValue()] = true
				}
			}
		}
		return out
	}
	if got := lagOf(); !got["0"] || got["1"] {
		t.Errorf("lag series %v, want partition 0 only", got)
	}
	m.Assigned([]int{1})
	if got := lagOf(); got["0"] {
		t.Errorf("lag series %v after partition 0 was given away", got)
	}
	m.Revoked()
	if got := lagOf(); len(got) != 0 {
		t.Errorf("lag series %v between generations", got)
	}
	if v := testutil.ToFloat64(metricByName(t, reg, "transit_clearing_rebalances_total")); v != 2 {
		t.Errorf("rebalances %v, want 2", v)
	}
}
