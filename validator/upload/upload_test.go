package upload

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/hsm/cmac"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
)

type cmacSealer struct{ m *cmac.MAC }

func (s cmacSealer) BatchKeyVersion() uint32 { return 4 }
func (s cmacSealer) MACBatch(_ context.Context, _ string, _ uint32, body []byte) ([]byte, error) {
	sum := s.m.Sum(body)
	return sum[:], nil
}

type flakyBus struct {
	failures int
	got      [][]byte
}

func (f *flakyBus) Publish(_ context.Context, key, value []byte) error {
	if f.failures > 0 {
		f.failures--
		return errors.New("broker unreachable")
	}
	f.got = append(f.got, value)
	return nil
}

func TestFlushSendsEverythingOnceAcknowledged(t *testing.T) {
	ctx := context.Background()
	j, err := journal.Open(ctx, filepath.Join(t.TempDir(), "j.db"), "V-7")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	t0 := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	for i := range 7 {
		tp := &tap.Tap{Time: t0.Add(time.Duration(i) * time.Minute), Card: 42, Carrier: "KTE", Result: tap.Accepted,
			Reason: "ok", FareKop: 1500, ChargedKop: 1500}
		if err := j.Append(ctx, tp); err != nil {
			t.Fatal(err)
		}
		if err := j.Settle(ctx, tp.Seq, true); err != nil {
			t.Fatal(err)
		}
	}
	m, _ := cmac.New(make([]byte, 16))
	bus := &flakyBus{failures: 1}
	u := &Uploader{Journal: j, Sealer: cmacSealer{m}, Publisher: bus, MaxTaps: 3, Now: func() time.Time { return t0 }}

	if n, err := u.Flush(ctx); err == nil || n != 0 {
		t.Fatalf("first flush against a failing bus: n=%d err=%v", n, err)
	}
	if st, _ := j.Stats(ctx); st.Backlog != 7 {
		t.Fatalf("a failed publish marked taps sent: %+v", st)
	}
	n, err := u.Flush(ctx)
	if err != nil || n != 7 {
		t.Fatalf("flush: n=%d err=%v", n, err)
	}
	if len(bus.got) != 3 {
		t.Fatalf("%d batches, want 3 (3+3+1)", len(bus.got))
	}
	var seqs []uint64
	for _, wire := range bus.got {
		b, err := tap.Unmarshal(wire)
		if err != nil {
			t.Fatal(err)
		}
		if b.KeyVersion != 4 || !m.Verify(b.Body(), b.MAC) {
			t.Fatal("batch not sealed with the device key")
		}
		for _, tp := range b.Taps {
			seqs = append(seqs, tp.Seq)
		}
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("sequences sent %v: want 1..7 in order", seqs)
		}
	}
	if st, _ := j.Stats(ctx); st.Backlog != 0 || st.Sent != 7 {
		t.Fatalf("after flush: %+v", st)
	}
}

func TestPruneKeepsOnlyRecentSentTaps(t *testing.T) {
	ctx := context.Background()
	j, err := journal.Open(ctx, filepath.Join(t.TempDir(), "j.db"), "V-8")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	t0 := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	appendTaps := func(n int) {
		for i := range n {
			tp := &tap.Tap{Time: t0.Add(time.Duration(i) * time.Minute), Card: 42, Result: tap.Accepted, Reason: "ok"}
			if err := j.Append(ctx, tp); err != nil {
				t.Fatal(err)
			}
			if err := j.Settle(ctx, tp.Seq, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendTaps(9)
	m, _ := cmac.New(make([]byte, 16))
	reg := prometheus.NewRegistry()
	u := &Uploader{Journal: j, Sealer: cmacSealer{m}, Publisher: &flakyBus{}, MaxTaps: 4, KeepSent: 2, Metrics: NewMetrics(reg)}
	if got := testutil.ToFloat64(u.Metrics.last); got != 0 {
		t.Fatalf("last upload before any: %v, want 0", got)
	}
	before := time.Now()
	if n, err := u.Flush(ctx); err != nil || n != 9 {
		t.Fatalf("flush: %d, %v", n, err)
	}
	st, _ := j.Stats(ctx)
	if st.Sent != 2 || st.Backlog != 0 || st.LastSeq != 9 {
		t.Fatalf("after pruning: %+v; want 2 sent taps kept and the sequence at 9", st)
	}
	appendTaps(1)
	if st, _ := j.Stats(ctx); st.LastSeq != 10 {
		t.Fatalf("a sequence was reused after pruning: %+v", st)
	}
	if got := testutil.ToFloat64(u.Metrics.taps); got != 9 {
		t.Fatalf("uploaded taps metric %v, want 9", got)
	}
	if got := testutil.ToFloat64(u.Metrics.batches); got != 3 {
		t.Fatalf("batches metric %v, want 3", got)
	}
	if got := testutil.ToFloat64(u.Metrics.pruned); got != 7 {
		t.Fatalf("pruned metric %v, want 7", got)
	}
	if got := testutil.ToFloat64(u.Metrics.last); got < float64(before.Unix()) {
		t.Fatalf("last upload %v, want a time after %v", got, before.Unix())
	}
}
