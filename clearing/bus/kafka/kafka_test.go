package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/bustest"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/simulator/testenv"
)

var topicSeq atomic.Int64

type topic struct{ cfg kafka.Config }

func (tp topic) Producer(t testing.TB) bus.Producer {
	p, err := kafka.NewProducer(context.Background(), tp.cfg)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (tp topic) Consumer(t testing.TB, group string) bus.Consumer {
	// Group names are per topic so runs never see each other's offsets.
	c, err := kafka.NewConsumer(context.Background(), tp.cfg, tp.cfg.Topic+"-"+group)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func open(t testing.TB, partitions int) bustest.Topic {
	addr := testenv.Kafka(t)
	cfg := kafka.Config{
		Brokers: strings.Split(addr, ","),
		Topic:   fmt.Sprintf("taps-%d-%d", time.Now().UnixNano(), topicSeq.Add(1)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.CreateTopic(ctx, cfg, partitions); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	n, err := kafka.Partitions(ctx, cfg)
	if err != nil || n != partitions {
		t.Fatalf("topic %s has %d partitions (err %v), want %d", cfg.Topic, n, err, partitions)
	}
	return topic{cfg}
}

func TestContract(t *testing.T) { bustest.Run(t, open) }

func BenchmarkPublishConsume(b *testing.B) { bustest.Benchmark(b, open, 1000, 200) }

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUnreachableBrokerIsOneClearError(t *testing.T) {
	addr := deadAddr(t)
	cfg := kafka.Config{Brokers: []string{addr}, Topic: "taps"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, bus.ErrUnreachable) {
			t.Fatalf("%s against a dead broker: %v, want bus.ErrUnreachable", what, err)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "start the broker") {
			t.Fatalf("%s: error %q should name %s and say what to do", what, err, addr)
		}
	}
	_, err := kafka.NewProducer(ctx, cfg)
	check("NewProducer", err)
	_, err = kafka.NewConsumer(ctx, cfg, "g")
	check("NewConsumer", err)
	check("CreateTopic", kafka.CreateTopic(ctx, cfg, 1))
}

func TestMissingTopic(t *testing.T) {
	addr := testenv.Kafka(t)
	cfg := kafka.Config{Brokers: []string{addr}, Topic: fmt.Sprintf("absent-%d", time.Now().UnixNano())}
	_, err := kafka.NewProducer(context.Background(), cfg)
	if err == nil || errors.Is(err, bus.ErrUnreachable) || !strings.Contains(err.Error(), cfg.Topic) {
		t.Fatalf("producer for a missing topic: %v, want an error naming the topic", err)
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []kafka.Config{{Topic: "t"}, {Brokers: []string{"127.0.0.1:1"}}} {
		if _, err := kafka.NewProducer(ctx, cfg); err == nil {
			t.Errorf("NewProducer(%+v) succeeded, want a config error", cfg)
		}
	}
	if _, err := kafka.NewConsumer(ctx, kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t"}, ""); err == nil {
		t.Error("NewConsumer with no group succeeded")
	}
	if err := kafka.CreateTopic(ctx, kafka.Config{Brokers: []string{"127.0.0.1:1"}, Topic: "t"}, 0); err == nil {
		t.Error("CreateTopic with 0 partitions succeeded")
	}
}

// TestFetchSaysBrokerWentAway: whether kafka-go gives up on a lost broker
// or retries until the caller's deadline, the error must say the broker
// was unreachable and where, not only "deadline exceeded".
func TestFetchSaysBrokerWentAway(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "taps"))
	if err != nil {
		t.Fatal(err)
	}
	addr := cluster.ListenAddrs()[0]
	cfg := kafka.Config{Brokers: []string{addr}, Topic: "taps", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	c, err := kafka.NewConsumer(context.Background(), cfg, "g")
	if err != nil {
		cluster.Close()
		t.Fatal(err)
	}
	defer c.Close()
	cluster.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = c.Fetch(ctx)
	if !errors.Is(err, bus.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("fetch from a stopped broker: %v, want bus.ErrUnreachable naming %s", err, addr)
	}
}
