// Package bus is the message bus between validators and clearing.
//
// Validators publish sealed tap batches (validator/tap) keyed by device id,
// so one device's batches stay in order on one partition. Clearing reads
// them in a consumer group and commits a message only after it stored the
// batch durably; anything not committed is delivered again after a restart
// or a rebalance, so consumers must be idempotent (clearing is, on device
// and sequence).
//
// Two implementations satisfy the interfaces: bus/kafka over a Kafka
// cluster and bus/inproc inside one process (for `transit demo`). Both pass
// the contract suite in bus/bustest.
package bus

import (
	"context"
	"errors"
	"time"
)

// Message is one record on the bus.
type Message struct {
	// Key chooses the partition: equal keys land on the same partition and
	// keep their order. A nil key spreads messages round-robin.
	Key []byte
	// Value is the payload, a sealed tap batch.
	Value []byte
	// Partition, Offset and Time are set by the bus on messages a
	// Consumer returns; a Producer ignores them.
	Partition int
	Offset    int64
	Time      time.Time
	// HighWaterMark is, as of the fetch, the offset the partition's next
	// message will get; the consumer is HighWaterMark-Offset-1 messages
	// behind (its lag). 0 when the bus does not say.
	HighWaterMark int64
}

// Producer publishes messages.
type Producer interface {
	// Publish returns nil only once the bus has stored every message (on
	// Kafka: acknowledged by all in-sync replicas). On error, any subset
	// may have been stored; publishing again may duplicate, never lose.
	Publish(ctx context.Context, msgs ...Message) error
	// Close releases the producer; Publish fails afterwards.
	Close() error
}

// Consumer reads messages as a member of a consumer group.
type Consumer interface {
	// Fetch blocks until a message is available or ctx is done. Messages
	// of one partition come in offset order.
	Fetch(ctx context.Context) (Message, error)
	// Commit records that msgs are durably handled: for each partition,
	// everything up to the highest offset among msgs will not be delivered
	// to the group again. Commit once per handled batch of messages, not
	// per message.
	Commit(ctx context.Context, msgs ...Message) error
	// Close leaves the group; uncommitted messages go to the next member.
	Close() error
}

// Errors common to the implementations; test with errors.Is.
var (
	// ErrClosed is returned by calls on a closed Producer or Consumer.
	ErrClosed = errors.New("bus: closed")
	// ErrUnreachable means the broker could not be reached; the wrapping
	// error names the address.
	ErrUnreachable = errors.New("bus: broker unreachable")
)

// KeyValuePublisher adapts a Producer to callers that publish one keyed
// value at a time, such as validator/upload's Publisher.
type KeyValuePublisher struct {
	Producer Producer
}

// Publish publishes value under key and returns once it is stored.
func (p KeyValuePublisher) Publish(ctx context.Context, key, value []byte) error {
	return p.Producer.Publish(ctx, Message{Key: key, Value: value})
}
