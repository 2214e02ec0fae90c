package storetest

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
)

// RunOps runs the contract of what keeps clearing running and the fleet
// visible: idempotent, bounded quarantine, and the devices' fleet state.
// Each implementation's tests call it beside Run.
func RunOps(t *testing.T, open Open) {
	t.Run("QuarantineIdempotent", func(t *testing.T) { testQuarantineIdempotent(t, open) })
	t.Run("QuarantineBounded", func(t *testing.T) { testQuarantineBounded(t, open) })
	t.Run("FleetState", func(t *testing.T) { testFleetState(t, open) })
	t.Run("FleetStateAnyOrder", func(t *testing.T) { testFleetStateAnyOrder(t, open) })
	t.Run("FleetReopen", func(t *testing.T) { testFleetReopen(t, open) })
	t.Run("Ping", func(t *testing.T) {
		s, _ := openStore(t, open)
		if err := s.Ping(ctxFor(t)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

func testQuarantineIdempotent(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	ctx := ctxFor(t)
	t0 := time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)
	wire := []byte("TB\x01 a batch nobody could read")
	q := ingest.NewRejected(wire, 2, 41, "", ingest.ReasonMalformed, "malformed tap batch", t0)
	for i := range 3 {
		// The bus delivers the message again (a restart before the
		// commit, the topic read again): received later, same position.
		again := q
		again.Received = t0.Add(time.Duration(i) * time.Hour)
		if err := s.Quarantine(ctx, again); err != nil {
			t.Fatalf("Quarantine, delivery %d: %v", i+1, err)
		}
	}
	got, err := s.Quarantined(ctx, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	checkRejected(t, got, []ingest.Rejected{q})
	if len(got) == 1 && (got[0].Partition != 2 || got[0].Offset != 41 || got[0].Size != len(wire) || !bytes.Equal(got[0].SHA256, q.SHA256)) {
		t.Errorf("quarantined %+v: want partition 2, offset 41, the size and the hash", got[0])
	}
	// The same bytes published twice are two messages, kept twice.
	other := ingest.NewRejected(wire, 2, 42, "", ingest.ReasonMalformed, "malformed tap batch", t0.Add(time.Minute))
	if err := s.Quarantine(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Quarantined(ctx, time.Time{}, time.Time{}); err != nil || len(got) != 2 {
		t.Errorf("after the same bytes at another offset: %d rows (%v), want 2", len(got), err)
	}
}

func testQuarantineBounded(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	ctx := ctxFor(t)
	wire := bytes.Repeat([]byte{'T', 'B', 0xff, 0x00}, 1<<18) // 1 MiB
	sum := sha256.Sum256(wire)
	// A store gets whatever a caller builds, unbounded and with texts no
	// database column takes, and must keep it bounded and storable.
	q := ingest.Rejected{Device: "bus\x00\xff\xfe", Reason: ingest.ReasonBadMAC, Detail: "bad \x00 mac \xff",
		Raw: wire, Partition: 0, Offset: 7, Received: time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)}
	if err := s.Quarantine(ctx, q); err != nil {
		t.Fatalf("Quarantine of an unbounded rejection with bad texts: %v", err)
	}
	got, err := s.Quarantined(ctx, time.Time{}, time.Time{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Quarantined: %d rows, %v", len(got), err)
	}
	g := got[0]
	if len(g.Raw) != ingest.MaxRawKept || !bytes.Equal(g.Raw, wire[:ingest.MaxRawKept]) || g.Size != len(wire) || !bytes.Equal(g.SHA256, sum[:]) {
		t.Errorf("kept %d bytes, size %d, hash %x; want the first %d bytes, size %d and the hash of all", len(g.Raw), g.Size, g.SHA256,
			ingest.MaxRawKept, len(wire))
	}
	if want := q.Bounded(); g.Device != want.Device || g.Detail != want.Detail {
		t.Errorf("device %q detail %q, want %q %q", g.Device, g.Detail, want.Device, want.Detail)
	}
}

// batchOf returns a batch of device's taps first..last, sealed at created
// and received by clearing at received, with versions that grow with the
// sequence so that the state shows which tap they came from.
func batchOf(device string, first, last uint64, created, received time.Time) ingest.Batch {
	b := ingest.Batch{Device: device, Created: created, Received: received}
	for s := first; s <= last; s++ {
		r := ride(device, s, created.Add(-time.Duration(last-s+1)*time.Minute))
		r.TariffVersion, r.HotlistVersion = uint32(s/10+1), s*100
		b.Taps = append(b.Taps, r)
	}
	return b
}

func addBatch(t *testing.T, s store.Store, b ingest.Batch, wantAdded, wantDup int) {
	t.Helper()
	added, dup, err := s.AddBatch(ctxFor(t), b)
	if err != nil {
		t.Fatalf("AddBatch(%s, %d taps): %v", b.Device, len(b.Taps), err)
	}
	if added != wantAdded || dup != wantDup {
		t.Errorf("AddBatch(%s, %d taps) = %d added, %d duplicates; want %d, %d", b.Device, len(b.Taps), added, dup, wantAdded, wantDup)
	}
}

// expectState folds batches with store.UpdateState and adds the sequence
// state, as a store's Fleet must report it.
func expectState(batches []ingest.Batch) map[string]store.DeviceState {
	want := map[string]store.DeviceState{}
	for _, b := range batches {
		d := store.UpdateState(want[b.Device], store.NewStateUpdate(b))
		for _, tp := range b.Taps {
			if tp.Seq > d.LastSeq {
				d.LastSeq, d.LastTap = tp.Seq, tp.Time.UTC().Truncate(time.Microsecond)
			}
		}
		want[b.Device] = d
	}
	return want
}

func checkFleet(t *testing.T, s store.Store, want map[string]store.DeviceState) {
	t.Helper()
	got, err := s.Fleet(ctxFor(t))
	if err != nil {
		t.Fatalf("Fleet: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("Fleet has %d devices, want %d: %+v", len(got), len(want), got)
	}
	for i, g := range got {
		if i > 0 && got[i-1].Device >= g.Device {
			t.Errorf("Fleet not sorted by device: %q before %q", got[i-1].Device, g.Device)
		}
		w := want[g.Device]
		if !g.LastBatch.Equal(w.LastBatch) || !g.BatchCreated.Equal(w.BatchCreated) || !g.LastTap.Equal(w.LastTap) ||
			g.LastBatch.Location() != time.UTC || g.ClockOffset != w.ClockOffset || g.LastSeq != w.LastSeq ||
			g.TariffVersion != w.TariffVersion || g.HotlistVersion != w.HotlistVersion || g.VersionSeq != w.VersionSeq {
			t.Errorf("device %s:\n got %+v\nwant %+v", g.Device, g, w)
		}
	}
}

func testFleetState(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	now := time.Date(2026, 11, 20, 10, 0, 0, 123_456_789, time.UTC)
	// bus-1's clock runs 90 s ahead; bus-2's 2 s behind.
	b1 := batchOf("bus-1", 1, 5, now.Add(90*time.Second), now)
	b2 := batchOf("bus-2", 1, 3, now.Add(-2*time.Second), now.Add(time.Second))
	b3 := batchOf("bus-1", 6, 12, now.Add(time.Hour+90*time.Second), now.Add(time.Hour))
	addBatch(t, s, b1, 5, 0)
	addBatch(t, s, b2, 3, 0)
	addBatch(t, s, b3, 7, 0)
	want := expectState([]ingest.Batch{b1, b2, b3})
	if w := want["bus-1"]; w.ClockOffset != 90*time.Second || w.LastSeq != 12 || w.HotlistVersion != 1200 || w.TariffVersion != 2 {
		t.Fatalf("expected state of bus-1 %+v: the test's own arithmetic is off", w)
	}
	checkFleet(t, s, want)
	// The first batch read again from the bus, hours later: nothing
	// changes, neither the taps nor the state.
	again := b1
	again.Received = now.Add(5 * time.Hour)
	addBatch(t, s, again, 0, 5)
	checkFleet(t, s, want)
	// Taps stored without a batch (AddTaps) show in the fleet with their
	// sequence state and no batch yet.
	addTaps(t, s, seqRange("tram-7", 1, 2, now), 2, 0)
	want["tram-7"] = store.DeviceState{Device: "tram-7", LastSeq: 2, LastTap: now.Add(2 * time.Minute).Truncate(time.Microsecond)}
	checkFleet(t, s, want)
	// A batch without taps still tells when the device was heard from.
	empty := ingest.Batch{Device: "tram-7", Created: now.Add(2 * time.Hour), Received: now.Add(2 * time.Hour)}
	addBatch(t, s, empty, 0, 0)
	w := want["tram-7"]
	w.LastBatch, w.BatchCreated = empty.Received.Truncate(time.Microsecond), empty.Created.Truncate(time.Microsecond)
	want["tram-7"] = w
	checkFleet(t, s, want)
}

// testFleetStateAnyOrder delivers a device's batches in random orders
// with repeats, as rebalances do: the state is that of the rules, not of
// the order of arrival.
func testFleetStateAnyOrder(t *testing.T, open Open) {
	r := rand.New(rand.NewPCG(19, 19))
	s, _ := openStore(t, open)
	now := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	var batches []ingest.Batch
	for i := range 12 {
		dev := []string{"bus-1", "bus-2", "bus-3"}[i%3]
		first := uint64(i/3*10 + 1)
		created := now.Add(time.Duration(i) * time.Minute)
		batches = append(batches, batchOf(dev, first, first+9, created, created.Add(time.Duration(r.IntN(5000))*time.Millisecond)))
	}
	order := r.Perm(len(batches))
	order = append(order, r.Perm(len(batches))[:5]...)
	seen := map[int]bool{}
	for _, i := range order {
		added, dup := 10, 0
		if seen[i] {
			added, dup = 0, 10
		}
		seen[i] = true
		addBatch(t, s, batches[i], added, dup)
	}
	checkFleet(t, s, expectState(batches))
}

func testFleetReopen(t *testing.T, open Open) {
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	b := batchOf("bus-9", 1, 4, now, now.Add(300*time.Millisecond))
	s, closeNow := openStore(t, open)
	addBatch(t, s, b, 4, 0)
	closeNow()
	s, _ = openStore(t, open)
	checkFleet(t, s, expectState([]ingest.Batch{b}))
}
