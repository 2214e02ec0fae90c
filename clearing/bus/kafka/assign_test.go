package kafka_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/kafka"
)

// owner records the partitions a consumer was last assigned.
type owner struct {
	mu      sync.Mutex
	parts   []int
	assigns int
	revokes int
}

func (o *owner) assigned(_ int, p []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.parts, o.assigns = p, o.assigns+1
}

func (o *owner) revoked(int, []int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.parts, o.revokes = nil, o.revokes+1
}

func (o *owner) owned() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.parts)
}

// TestAssignmentsAreReported: two members of a group are told disjoint
// partitions that cover the topic; when one leaves, the other is told it
// owns them all, and reads what the first left uncommitted.
func TestAssignmentsAreReported(t *testing.T) {
	tp := open(t, 4)
	base := tp.(topic).cfg
	group := base.Topic + "-assign"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var a, b owner
	newMember := func(o *owner, id string) *kafka.Consumer {
		cfg := base
		cfg.ClientID, cfg.OnAssigned, cfg.OnRevoked = id, o.assigned, o.revoked
		cfg.SessionTimeout = 6 * time.Second
		c, err := kafka.NewConsumer(ctx, cfg, group)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca := newMember(&a, "clearing-a")
	defer ca.Close()
	waitFor(t, ctx, "the first member to own all 4 partitions", func() bool { return len(a.owned()) == 4 })
	if !ca.Joined() {
		t.Error("a member with partitions says it has not joined")
	}
	cb := newMember(&b, "clearing b/2") // not a valid client id as given: sanitised
	defer cb.Close()
	waitFor(t, ctx, "the partitions to be shared", func() bool {
		pa, pb := a.owned(), b.owned()
		all := slices.Sorted(slices.Values(append(pa, pb...)))
		return len(pa) > 0 && len(pb) > 0 && slices.Equal(all, []int{0, 1, 2, 3})
	})
	a.mu.Lock()
	if a.revokes == 0 {
		t.Error("the first member was never told its first assignment ended")
	}
	a.mu.Unlock()

	// Messages for every partition; b reads and commits nothing, then leaves.
	prod := tp.Producer(t)
	var msgs []bus.Message
	for i := range 40 {
		msgs = append(msgs, bus.Message{Key: []byte(fmt.Sprintf("bus-%d", i)), Value: []byte(fmt.Sprint(i))})
	}
	if err := prod.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	cb.Close()
	waitFor(t, ctx, "the remaining member to own all partitions again", func() bool { return len(a.owned()) == 4 })
	seen := map[string]bool{}
	for len(seen) < 40 {
		m, err := ca.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch after %d of 40: %v", len(seen), err)
		}
		seen[string(m.Value)] = true
		if err := ca.Commit(ctx, m); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
