// Package inproc is a message bus inside one process, for `transit demo`
// and tests that need no server. It keeps Kafka's semantics where clearing
// relies on them: partitions chosen by key hash (the same hash as kafka-go's
// Hash balancer), per-partition order, consumer groups whose members share
// the partitions, explicit commits, and re-delivery of everything not
// committed whenever the group's membership changes.
//
// Messages live in memory for the life of the Bus and are never trimmed.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/citycard/transit/clearing/bus"
)

// Bus is one topic with its partitions and consumer groups. The zero value
// is not usable; call New.
type Bus struct {
	mu     sync.Mutex
	parts  [][]bus.Message
	groups map[string]*group
	// wake is closed and replaced whenever a waiting Fetch may proceed:
	// a publish, a rebalance or a Close.
	wake chan struct{}
	rr   int
	now  func() time.Time
}

type group struct {
	committed []int64 // next offset to deliver, per partition
	members   []*Consumer
}

// New returns an empty bus with the given number of partitions (at least 1).
func New(partitions int) *Bus {
	partitions = max(partitions, 1)
	return &Bus{
		parts:  make([][]bus.Message, partitions),
		groups: make(map[string]*group),
		wake:   make(chan struct{}),
		now:    time.Now,
	}
}

// Partitions reports the number of partitions.
func (b *Bus) Partitions() int { return len(b.parts) }

// broadcast wakes every waiting Fetch; b.mu must be held.
func (b *Bus) broadcast() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// partition picks the partition for key exactly as kafka-go's Hash balancer
// does, so a device lands on the same partition number as on Kafka.
func (b *Bus) partition(key []byte) int {
	n := len(b.parts)
	if key == nil {
		b.rr++
		return b.rr % n
	}
	h := fnv.New32a()
	h.Write(key)
	p := int32(h.Sum32()) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}

// Producer publishes to a Bus.
type Producer struct {
	b      *Bus
	mu     sync.Mutex
	closed bool
}

// Producer returns a new producer for b.
func (b *Bus) Producer() *Producer { return &Producer{b: b} }

// Publish stores msgs; they are visible to consumers when it returns.
// Either all messages are stored or, when ctx is already done or the
// producer is closed, none.
func (p *Producer) Publish(ctx context.Context, msgs ...bus.Message) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return fmt.Errorf("publish %d messages: %w", len(msgs), bus.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("publish %d messages: %w", len(msgs), err)
	}
	b := p.b
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for _, m := range msgs {
		part := b.partition(m.Key)
		b.parts[part] = append(b.parts[part], bus.Message{
			Key:       clone(m.Key),
			Value:     clone(m.Value),
			Partition: part,
			Offset:    int64(len(b.parts[part])),
			Time:      now,
		})
	}
	if len(msgs) > 0 {
		b.broadcast()
	}
	return nil
}

// Close stops the producer.
func (p *Producer) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// Consumer is a member of a consumer group of a Bus.
type Consumer struct {
	b        *Bus
	name     string
	g        *group
	assigned []int         // partitions this member reads, guarded by b.mu
	pos      map[int]int64 // next offset to fetch per assigned partition
	next     int           // where the round-robin over assigned resumes
	closed   bool
}

// Consumer joins the group called name and returns the new member. Joining rebalances the
// group: every member restarts from the committed offsets, so messages
// fetched but not committed are delivered again.
func (b *Bus) Consumer(name string) (*Consumer, error) {
	if name == "" {
		return nil, errors.New("inproc: consumer group name is empty: give the group a name, e.g. \"clearing\"")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	g := b.groups[name]
	if g == nil {
		g = &group{committed: make([]int64, len(b.parts))}
		b.groups[name] = g
	}
	c := &Consumer{b: b, name: name, g: g}
	g.members = append(g.members, c)
	b.rebalance(g)
	return c, nil
}

// rebalance spreads the partitions over g's members and rewinds every
// member to the committed offsets, as a Kafka group does; b.mu must be held.
func (b *Bus) rebalance(g *group) {
	for _, m := range g.members {
		m.assigned = m.assigned[:0]
		m.pos = make(map[int]int64)
		m.next = 0
	}
	if len(g.members) > 0 {
		for p := range b.parts {
			m := g.members[p%len(g.members)]
			m.assigned = append(m.assigned, p)
			m.pos[p] = g.committed[p]
		}
	}
	b.broadcast()
}

// Fetch returns the next message of one of this member's partitions,
// waiting until one is published or ctx is done.
func (c *Consumer) Fetch(ctx context.Context) (bus.Message, error) {
	b := c.b
	for {
		b.mu.Lock()
		if c.closed {
			b.mu.Unlock()
			return bus.Message{}, fmt.Errorf("fetch from group %q: %w", c.name, bus.ErrClosed)
		}
		// Round-robin over partitions so a busy one does not starve others.
		for i := range c.assigned {
			k := (c.next + i) % len(c.assigned)
			p := c.assigned[k]
			if off := c.pos[p]; off < int64(len(b.parts[p])) {
				m := b.parts[p][off]
				m.HighWaterMark = int64(len(b.parts[p]))
				c.pos[p] = off + 1
				c.next = k + 1
				b.mu.Unlock()
				m.Key, m.Value = clone(m.Key), clone(m.Value)
				return m, nil
			}
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return bus.Message{}, fmt.Errorf("fetch from group %q: %w", c.name, ctx.Err())
		case <-wake:
		}
	}
}

// Commit marks msgs as handled for the group: per partition, the offset
// after the highest one among msgs becomes the group's committed position,
// exactly as kafka-go commits.
func (c *Consumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit %d messages for group %q: %w", len(msgs), c.name, err)
	}
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return fmt.Errorf("commit %d messages for group %q: %w", len(msgs), c.name, bus.ErrClosed)
	}
	next := make(map[int]int64)
	for _, m := range msgs {
		if m.Partition < 0 || m.Partition >= len(b.parts) {
			return fmt.Errorf("commit for group %q: partition %d does not exist (bus has %d): commit only fetched messages", c.name, m.Partition, len(b.parts))
		}
		if m.Offset < 0 || m.Offset >= int64(len(b.parts[m.Partition])) {
			return fmt.Errorf("commit for group %q: offset %d of partition %d was never published: commit only fetched messages", c.name, m.Offset, m.Partition)
		}
		if o, ok := next[m.Partition]; !ok || m.Offset+1 > o {
			next[m.Partition] = m.Offset + 1
		}
	}
	for p, o := range next {
		c.g.committed[p] = o
	}
	return nil
}

// Close leaves the group, which rebalances the remaining members.
func (c *Consumer) Close() error {
	b := c.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for i, m := range c.g.members {
		if m == c {
			c.g.members = append(c.g.members[:i], c.g.members[i+1:]...)
			break
		}
	}
	b.rebalance(c.g)
	return nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
