// Package bustest is the contract every bus implementation passes: order
// per key, explicit commits, re-delivery of what was not committed, and
// cancellation. Each implementation's tests call Run with a way to open a
// fresh topic.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/bus"
)

// Topic is a fresh, empty topic of one bus implementation.
type Topic interface {
	// Producer returns a new producer of the topic.
	Producer(t testing.TB) bus.Producer
	// Consumer returns a new member of the named consumer group.
	Consumer(t testing.TB, group string) bus.Consumer
}

// NewTopic opens a fresh topic with the given number of partitions; it
// must not share messages or groups with any topic opened before.
type NewTopic func(t testing.TB, partitions int) Topic

// Timeout bounds each blocking step of the suite. A Kafka consumer joining
// a group takes a few seconds; nothing should take this long.
const Timeout = 30 * time.Second

// Run runs the contract suite against the implementation behind open.
func Run(t *testing.T, open NewTopic) {
	t.Run("OrderPerKey", func(t *testing.T) { testOrderPerKey(t, open) })
	t.Run("CommitThenReopen", func(t *testing.T) { testCommitThenReopen(t, open) })
	t.Run("NoCommitRedelivers", func(t *testing.T) { testNoCommitRedelivers(t, open) })
	t.Run("GroupsAreIndependent", func(t *testing.T) { testGroupsAreIndependent(t, open) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, open) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open) })
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// fetchN fetches n messages or fails the test.
func fetchN(t testing.TB, c bus.Consumer, n int) []bus.Message {
	t.Helper()
	ctx := ctxFor(t)
	var got []bus.Message
	for len(got) < n {
		m, err := c.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch message %d of %d: %v", len(got)+1, n, err)
		}
		got = append(got, m)
	}
	return got
}

// publishAll publishes values under the given keys in one call.
func publishAll(t testing.TB, p bus.Producer, key func(i int) string, values ...string) {
	t.Helper()
	msgs := make([]bus.Message, len(values))
	for i, v := range values {
		msgs[i] = bus.Message{Key: []byte(key(i)), Value: []byte(v)}
	}
	if err := p.Publish(ctxFor(t), msgs...); err != nil {
		t.Fatalf("publish %d messages: %v", len(msgs), err)
	}
}

func values(msgs []bus.Message) []string {
	var s []string
	for _, m := range msgs {
		s = append(s, string(m.Value))
	}
	return s
}

func testOrderPerKey(t *testing.T, open NewTopic) {
	topic := open(t, 4)
	p := topic.Producer(t)
	const devices, rounds, perRound = 6, 4, 5
	want := map[string][]string{}
	before := time.Now().Add(-time.Minute)
	// Several Publish calls, each interleaving all devices, so order must
	// hold both inside a call and across calls.
	for r := range rounds {
		var msgs []bus.Message
		for i := range perRound {
			for d := range devices {
				key := fmt.Sprintf("device-%d", d)
				v := fmt.Sprintf("%s/%03d", key, r*perRound+i)
				want[key] = append(want[key], v)
				msgs = append(msgs, bus.Message{Key: []byte(key), Value: []byte(v)})
			}
		}
		if err := p.Publish(ctxFor(t), msgs...); err != nil {
			t.Fatalf("publish round %d: %v", r, err)
		}
	}
	c := topic.Consumer(t, "order")
	got := fetchN(t, c, devices*rounds*perRound)

	byKey := map[string][]string{}
	partOf := map[string]int{}
	lastOffset := map[int]int64{}
	for _, m := range got {
		key := string(m.Key)
		byKey[key] = append(byKey[key], string(m.Value))
		if p, ok := partOf[key]; ok && p != m.Partition {
			t.Errorf("key %s on partitions %d and %d: one key must stay on one partition", key, p, m.Partition)
		}
		partOf[key] = m.Partition
		if o, ok := lastOffset[m.Partition]; ok && m.Offset <= o {
			t.Errorf("partition %d: offset %d after %d: offsets must increase", m.Partition, m.Offset, o)
		}
		lastOffset[m.Partition] = m.Offset
		if m.Time.Before(before) {
			t.Errorf("message %s has time %v: the bus must stamp messages", m.Value, m.Time)
		}
		// Clearing's lag gauge is the high-water mark minus the offset.
		if m.HighWaterMark <= m.Offset {
			t.Errorf("partition %d offset %d: high-water mark %d, want above the offset", m.Partition, m.Offset, m.HighWaterMark)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		if !slices.Equal(byKey[key], want[key]) {
			t.Errorf("key %s: got %v, want %v", key, byKey[key], want[key])
		}
	}
	if err := c.Commit(ctxFor(t), got...); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func testCommitThenReopen(t *testing.T, open NewTopic) {
	topic := open(t, 3)
	p := topic.Producer(t)
	key := func(i int) string { return fmt.Sprintf("dev-%d", i%5) }
	publishAll(t, p, key, "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9")

	c := topic.Consumer(t, "g")
	got := fetchN(t, c, 10)
	if err := c.Commit(ctxFor(t), got...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close consumer: %v", err)
	}

	// A marker after the committed messages shows the new member started
	// at the commit: anything committed would arrive before it.
	publishAll(t, p, key, "b0", "b1", "b2", "b3", "b4")
	c2 := topic.Consumer(t, "g")
	again := fetchN(t, c2, 5)
	if v := values(again); !sameSet(v, []string{"b0", "b1", "b2", "b3", "b4"}) {
		t.Fatalf("after commit and reopen got %v, want only the 5 new messages b0..b4", v)
	}
}

func testNoCommitRedelivers(t *testing.T, open NewTopic) {
	topic := open(t, 3)
	p := topic.Producer(t)
	var all []string
	for i := range 12 {
		all = append(all, fmt.Sprintf("m%02d", i))
	}
	publishAll(t, p, func(i int) string { return fmt.Sprintf("dev-%d", i%4) }, all...)

	c := topic.Consumer(t, "g")
	got := fetchN(t, c, len(all))
	// Commit only what came first; per partition that is a prefix, so the
	// rest must come again, and exactly the rest.
	const done = 5
	if err := c.Commit(ctxFor(t), got[:done]...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close consumer: %v", err)
	}

	c2 := topic.Consumer(t, "g")
	again := fetchN(t, c2, len(all)-done)
	if v, want := values(again), values(got[done:]); !sameSet(v, want) {
		t.Fatalf("re-delivered %v, want the uncommitted %v", v, want)
	}
	// Nothing beyond: a fresh marker is next.
	publishAll(t, p, func(int) string { return "dev-0" }, "marker")
	if m := fetchN(t, c2, 1)[0]; string(m.Value) != "marker" {
		t.Fatalf("after the re-delivered messages got %q, want marker", m.Value)
	}
}

func testGroupsAreIndependent(t *testing.T, open NewTopic) {
	topic := open(t, 2)
	p := topic.Producer(t)
	publishAll(t, p, func(i int) string { return fmt.Sprint(i) }, "x", "y", "z")
	a := topic.Consumer(t, "clearing")
	if err := a.Commit(ctxFor(t), fetchN(t, a, 3)...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	b := topic.Consumer(t, "audit")
	if v := values(fetchN(t, b, 3)); !sameSet(v, []string{"x", "y", "z"}) {
		t.Fatalf("second group got %v, want all of x y z: a commit in one group must not affect another", v)
	}
}

func testCancel(t *testing.T, open NewTopic) {
	topic := open(t, 1)
	c := topic.Consumer(t, "g")

	// A Fetch waiting on an empty topic returns when its ctx is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Fetch(ctx)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Fetch start waiting
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("fetch after cancel: %v, want an error wrapping context.Canceled", err)
		}
	case <-time.After(Timeout):
		t.Fatal("fetch did not return after its context was cancelled")
	}

	// An expired deadline is reported as such.
	dctx, dcancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer dcancel()
	if _, err := c.Fetch(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fetch past deadline: %v, want context.DeadlineExceeded", err)
	}

	// Publishing with a cancelled ctx fails and says why.
	p := topic.Producer(t)
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := p.Publish(cctx, bus.Message{Key: []byte("k"), Value: []byte("v")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with cancelled context: %v, want context.Canceled", err)
	}

	// The consumer still works after cancelled fetches.
	publishAll(t, p, func(int) string { return "k" }, "after")
	if m := fetchN(t, c, 1)[0]; string(m.Value) != "after" {
		t.Fatalf("fetch after cancellations got %q, want \"after\"", m.Value)
	}
}

func testClosed(t *testing.T, open NewTopic) {
	topic := open(t, 1)
	p := topic.Producer(t)
	if err := p.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}
	if err := p.Publish(ctxFor(t), bus.Message{Value: []byte("v")}); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("publish after close: %v, want bus.ErrClosed", err)
	}
	c := topic.Consumer(t, "g")
	if err := c.Close(); err != nil {
		t.Fatalf("close consumer: %v", err)
	}
	if _, err := c.Fetch(ctxFor(t)); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("fetch after close: %v, want bus.ErrClosed", err)
	}
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// Benchmark measures publish and consume throughput: each iteration
// publishes a batch of batchSize messages of valueSize bytes under 50 keys,
// fetches them in the group and commits once. It reports msgs/s.
func Benchmark(b *testing.B, open NewTopic, batchSize, valueSize int) {
	topic := open(b, 4)
	p := topic.Producer(b)
	c := topic.Consumer(b, "bench")
	msgs := make([]bus.Message, batchSize)
	for i := range msgs {
		msgs[i] = bus.Message{Key: fmt.Appendf(nil, "validator-%04d", i%50), Value: make([]byte, valueSize)}
	}
	ctx := context.Background()
	// Warm up outside the measurement: a Kafka consumer joins its group on
	// the first fetch, which takes seconds.
	if err := p.Publish(ctx, msgs[0]); err != nil {
		b.Fatalf("publish: %v", err)
	}
	if err := c.Commit(ctx, fetchN(b, c, 1)...); err != nil {
		b.Fatalf("commit: %v", err)
	}
	got := make([]bus.Message, 0, batchSize)
	b.SetBytes(int64(batchSize * valueSize))
	for b.Loop() {
		if err := p.Publish(ctx, msgs...); err != nil {
			b.Fatalf("publish: %v", err)
		}
		got = got[:0]
		for range batchSize {
			m, err := c.Fetch(ctx)
			if err != nil {
				b.Fatalf("fetch: %v", err)
			}
			got = append(got, m)
		}
		if err := c.Commit(ctx, got...); err != nil {
			b.Fatalf("commit: %v", err)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "msgs/s")
}
