// Package kafka is the bus over a Kafka cluster, using
// github.com/segmentio/kafka-go.
//
// A Producer waits for every in-sync replica to acknowledge and hashes the
// key to choose the partition. A Consumer is a consumer-group member that
// commits synchronously, only when told. kafka-go's two traps are handled
// here: a synchronous write waits BatchTimeout (1 s by default) for a batch
// to fill, so the producer flushes after a few milliseconds instead; and a
// commit is one round trip, so callers commit per batch of messages.
//
// The Consumer drives kafka-go's ConsumerGroup itself rather than its
// group Reader, for three reasons: the Reader hides which partitions a
// member owns (an operator needs to see it, and lag gauges of partitions
// given away must go); it reports a group join that failed three times as
// an error of FetchMessage, which callers took for fatal; and its client
// id is the same for every process. Here every error of the group or of
// a partition is logged and retried with backoff for as long as the
// Consumer is open, and Config.ClientID names the process to the brokers.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/citycard/transit/clearing/bus"
)

// Config locates the topic.
type Config struct {
	// Brokers are bootstrap addresses, host:port.
	Brokers []string
	// Topic carries the tap batches; it must exist (see CreateTopic).
	Topic string
	// Log receives kafka-go's errors; nil means slog.Default().
	Log *slog.Logger
	// BatchTimeout is how long the producer waits for more messages to
	// fill a batch. Default 2 ms: Publish is synchronous, so waiting
	// longer only adds latency.
	BatchTimeout time.Duration
	// SessionTimeout is how long the group waits for a silent consumer
	// before giving its partitions to others. Default 10 s.
	SessionTimeout time.Duration
	// ClientID names this process to the brokers, in their logs and
	// quotas; "" means "transit". Characters other than letters, digits,
	// '.', '_' and '-' are replaced by '_'.
	ClientID string
	// OnAssigned, when set, is called by a Consumer each time the group
	// gives it its partitions (a new generation), with the generation
	// number and the partitions, sorted; OnRevoked when that generation
	// ends, before the next OnAssigned. Calls come one at a time.
	// Producers ignore both.
	OnAssigned func(generation int, partitions []int)
	OnRevoked  func(generation int, partitions []int)
}

// clientID is cfg.ClientID made safe for Kafka.
func (c Config) clientID() string {
	if c.ClientID == "" {
		return "transit"
	}
	b := []byte(c.ClientID)
	for i, ch := range b {
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9', ch == '.', ch == '_', ch == '-':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

func (c Config) check() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no broker address given: set the Kafka address, e.g. 127.0.0.1:9092")
	}
	if c.Topic == "" {
		return errors.New("kafka: no topic given: set the topic that carries tap batches")
	}
	return nil
}

func (c Config) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

func (c Config) addrs() string { return strings.Join(c.Brokers, ",") }

// Producer publishes to a Kafka topic. It is safe for concurrent use.
type Producer struct {
	cfg       Config
	w         *kafkago.Writer
	transport *kafkago.Transport
}

// NewProducer checks that the broker answers and the topic exists, and
// returns a producer for it.
func NewProducer(ctx context.Context, cfg Config) (*Producer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if _, err := Partitions(ctx, cfg); err != nil {
		return nil, err
	}
	batchTimeout := cfg.BatchTimeout
	if batchTimeout <= 0 {
		batchTimeout = 2 * time.Millisecond
	}
	t := &kafkago.Transport{ClientID: cfg.clientID()}
	return &Producer{
		cfg:       cfg,
		transport: t,
		w: &kafkago.Writer{
			Addr:         kafkago.TCP(cfg.Brokers...),
			Topic:        cfg.Topic,
			Balancer:     &kafkago.Hash{},
			RequiredAcks: kafkago.RequireAll,
			BatchTimeout: batchTimeout,
			BatchSize:    1000,
			MaxAttempts:  5,
			Transport:    t,
			ErrorLogger:  logFunc(cfg.log(), "kafka producer"),
		},
	}, nil
}

// Publish writes msgs and returns once all in-sync replicas have them.
func (p *Producer) Publish(ctx context.Context, msgs ...bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	km := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafkago.Message{Key: m.Key, Value: m.Value}
	}
	err := p.w.WriteMessages(ctx, km...)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.ErrClosedPipe) {
		err = bus.ErrClosed
	}
	var werr kafkago.WriteErrors
	if errors.As(err, &werr) {
		// One cause is enough; the count says how much failed.
		for _, e := range werr {
			if e != nil {
				err = fmt.Errorf("%d of %d messages not stored: %w", werr.Count(), len(werr), e)
				break
			}
		}
	}
	return explain(fmt.Sprintf("publish %d messages to topic %q", len(msgs), p.cfg.Topic), p.cfg, err)
}

// Close flushes nothing (Publish is synchronous) and releases connections.
func (p *Producer) Close() error {
	err := p.w.Close()
	p.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("close producer of topic %q: %w", p.cfg.Topic, err)
	}
	return nil
}

// Partitions returns the number of partitions of cfg.Topic.
func Partitions(ctx context.Context, cfg Config) (int, error) {
	if err := cfg.check(); err != nil {
		return 0, err
	}
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: &kafkago.Transport{}}
	defer client.Transport.(*kafkago.Transport).CloseIdleConnections()
	res, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil {
		return 0, explain("look up topic "+cfg.Topic, cfg, err)
	}
	for _, t := range res.Topics {
		if t.Name != cfg.Topic {
			continue
		}
		if t.Error != nil {
			return 0, fmt.Errorf("look up topic %q on kafka %s: %w (create it first, e.g. localkafka -topic %s:8)", cfg.Topic, cfg.addrs(), t.Error, cfg.Topic)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("look up topic %q on kafka %s: not in the broker's answer (create it first, e.g. localkafka -topic %s:8)", cfg.Topic, cfg.addrs(), cfg.Topic)
}

// CreateTopic creates cfg.Topic with the given number of partitions and
// replication factor 1; a topic that already exists is fine.
func CreateTopic(ctx context.Context, cfg Config, partitions int) error {
	if err := cfg.check(); err != nil {
		return err
	}
	if partitions < 1 {
		return fmt.Errorf("create topic %q: %d partitions: want at least 1", cfg.Topic, partitions)
	}
	client := &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Transport: &kafkago.Transport{}}
	defer client.Transport.(*kafkago.Transport).CloseIdleConnections()
	res, err := client.CreateTopics(ctx, &kafkago.CreateTopicsRequest{
		Topics: []kafkago.TopicConfig{{Topic: cfg.Topic, NumPartitions: partitions, ReplicationFactor: 1}},
	})
	if err != nil {
		return explain("create topic "+cfg.Topic, cfg, err)
	}
	if err := res.Errors[cfg.Topic]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q on kafka %s: %w", cfg.Topic, cfg.addrs(), err)
	}
	return nil
}

// explain wraps err with what was being done and, when the broker could
// not be reached, with bus.ErrUnreachable and what to do about it.
func explain(op string, cfg Config, err error) error {
	prefix := ""
	if op != "" {
		prefix = op + ": "
	}
	if unreachable(err) {
		return fmt.Errorf("%s%w: kafka at %s did not answer (%w); start the broker (for a local one: go run ./cmd/localkafka -topic %s:8) or fix the broker address",
			prefix, bus.ErrUnreachable, cfg.addrs(), err, cfg.Topic)
	}
	return fmt.Errorf("%son kafka %s: %w", prefix, cfg.addrs(), err)
}

// unreachable reports whether err means no broker could be talked to, as
// opposed to a broker that answered with an error.
func unreachable(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		return true
	case errors.As(err, &op) && op.Op == "dial":
		return true
	case errors.Is(err, kafkago.BrokerNotAvailable), // kafka-go's answer when it could not dial
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNRESET):
		return true
	}
	// kafka-go's logger hands us text, not error values.
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "no such host") ||
		strings.Contains(s, "i/o timeout") && strings.Contains(s, "dial")
}

func logFunc(log *slog.Logger, what string) kafkago.LoggerFunc {
	return func(format string, args ...any) {
		log.Warn(what, "msg", fmt.Sprintf(format, args...))
	}
}
