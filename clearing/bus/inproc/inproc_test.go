package inproc_test

import (
	"context"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/bustest"
	"github.com/citycard/transit/clearing/bus/inproc"
)

type topic struct{ b *inproc.Bus }

func (tp topic) Producer(t testing.TB) bus.Producer {
	p := tp.b.Producer()
	t.Cleanup(func() { p.Close() })
	return p
}

func (tp topic) Consumer(t testing.TB, group string) bus.Consumer {
	c, err := tp.b.Consumer(group)
	if err != nil {
		t.Fatalf("join group %q: %v", group, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func open(_ testing.TB, partitions int) bustest.Topic { return topic{inproc.New(partitions)} }

func TestContract(t *testing.T) { bustest.Run(t, open) }

func BenchmarkPublishConsume(b *testing.B) { bustest.Benchmark(b, open, 100, 200) }

// TestRebalanceSharesPartitions checks what the contract cannot see from
// outside on Kafka quickly: two members split the partitions, and when one
// leaves without committing, the other gets its messages again.
func TestRebalanceSharesPartitions(t *testing.T) {
	ctx := context.Background()
	b := inproc.New(4)
	p := b.Producer()
	var msgs []bus.Message
	for i := range 40 {
		msgs = append(msgs, bus.Message{Key: []byte{byte(i)}, Value: []byte{byte(i)}})
	}
	if err := p.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	c1, _ := b.Consumer("g")
	c2, _ := b.Consumer("g")
	parts := map[*inproc.Consumer]map[int]bool{c1: {}, c2: {}}
	seen := map[byte]int{}
	for _, c := range []*inproc.Consumer{c1, c2} {
		for {
			fctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
			m, err := c.Fetch(fctx)
			cancel()
			if err != nil {
				break
			}
			parts[c][m.Partition] = true
			seen[m.Value[0]]++
		}
	}
	if len(seen) != 40 {
		t.Fatalf("two members saw %d distinct messages, want 40", len(seen))
	}
	for part := range parts[c1] {
		if parts[c2][part] {
			t.Fatalf("partition %d read by both members", part)
		}
	}
	if len(parts[c1]) == 0 || len(parts[c2]) == 0 {
		t.Fatalf("partitions per member %d and %d: both members must get some", len(parts[c1]), len(parts[c2]))
	}
	// c2 leaves without committing: c1 now owns everything and gets all 40
	// again, since c1 did not commit either.
	c2.Close()
	n := 0
	for {
		fctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		_, err := c1.Fetch(fctx)
		cancel()
		if err != nil {
			break
		}
		n++
	}
	if n != 40 {
		t.Fatalf("after the other member left, got %d messages, want all 40 re-delivered", n)
	}
}

func TestBadCommit(t *testing.T) {
	b := inproc.New(2)
	c, err := b.Consumer("g")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []bus.Message{{Partition: 5}, {Partition: -1}, {Partition: 0, Offset: 3}} {
		if err := c.Commit(context.Background(), m); err == nil {
			t.Errorf("commit of partition %d offset %d on an empty 2-partition bus succeeded, want an error", m.Partition, m.Offset)
		}
	}
	if _, err := b.Consumer(""); err == nil {
		t.Error("empty group name accepted")
	}
}

func TestSamePartitionAsKafkaHash(t *testing.T) {
	// kafka-go's Hash balancer: FNV-1a 32, as int32, modulo, absolute.
	// Values computed with kafka-go v0.4.51 for 8 partitions.
	b := inproc.New(8)
	p := b.Producer()
	c, _ := b.Consumer("g")
	for key, want := range wantPartition {
		if err := p.Publish(context.Background(), bus.Message{Key: []byte(key)}); err != nil {
			t.Fatal(err)
		}
		m, err := c.Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if m.Partition != want {
			t.Errorf("key %q on partition %d, kafka-go puts it on %d", key, m.Partition, want)
		}
	}
}

var wantPartition = map[string]int{
	"validator-0001": 1,
	"validator-0002": 6,
	"bus-1142":       0,
	"tram-07":        1,
	"":               3,
	"x":              1,
}
