package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/citycard/transit/clearing/bus"
)

// Consumer reads a topic as a member of a consumer group. It is safe for
// concurrent use.
//
// Each generation of the group (each rebalance) gives the member its
// partitions; the Consumer reads each of them from the group's committed
// offset until the generation ends, then waits for the next one. Nothing
// the brokers or the group do ends the Consumer: failed joins, sync and
// heartbeat errors, fetch errors and unreachable brokers are logged and
// retried with backoff until Close.
type Consumer struct {
	cfg    Config
	group  string
	log    *slog.Logger
	dialer *kafkago.Dialer
	cg     *kafkago.ConsumerGroup

	msgs    chan fetched   // from the partition readers of the current generation
	commits chan commitReq // taken by the current generation's committer
	closed  chan struct{}
	done    chan struct{} // the group loop has returned
	once    sync.Once

	mu      sync.Mutex
	lastErr error // the latest complaint of kafka-go or the brokers, nil once a fetch works
	gen     int   // the current generation, 0 between generations
}

// fetched is a message and the generation whose reader fetched it.
type fetched struct {
	gen context.Context // ends with the generation
	m   kafkago.Message
}

type commitReq struct {
	offsets map[int]int64 // partition -> next offset to deliver
	errc    chan error
}

// NewConsumer checks that the broker answers and the topic exists, and
// joins group in the background. A new group starts at the oldest
// message.
func NewConsumer(ctx context.Context, cfg Config, group string) (*Consumer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, errors.New("kafka: consumer group name is empty: give the group a name, e.g. \"clearing\"")
	}
	if _, err := Partitions(ctx, cfg); err != nil {
		return nil, err
	}
	session := cfg.SessionTimeout
	if session <= 0 {
		session = 10 * time.Second
	}
	c := &Consumer{
		cfg: cfg, group: group, log: cfg.log().With("group", group, "topic", cfg.Topic),
		dialer:  &kafkago.Dialer{ClientID: cfg.clientID(), Timeout: 10 * time.Second, DualStack: true},
		msgs:    make(chan fetched),
		commits: make(chan commitReq),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	cg, err := kafkago.NewConsumerGroup(kafkago.ConsumerGroupConfig{
		ID:                    group,
		Brokers:               cfg.Brokers,
		Dialer:                c.dialer,
		Topics:                []string{cfg.Topic},
		HeartbeatInterval:     session / 5,
		SessionTimeout:        session,
		RebalanceTimeout:      session,
		JoinGroupBackoff:      500 * time.Millisecond,
		WatchPartitionChanges: true,
		StartOffset:           kafkago.FirstOffset,
		// kafka-go waits Timeout+RebalanceTimeout for a JoinGroup answer,
		// then leaves and joins again as a new member. A coordinator
		// that restarts its rebalance timer on every join (kfake does)
		// never completes a rebalance if members give up that early
		// while others keep arriving: give the join three sessions.
		Timeout: 2 * session,
		// The group loop below logs what Next reports; kafka-go's own
		// lines only add detail.
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			c.log.Debug("kafka group", "msg", fmt.Sprintf(format, args...))
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: consumer group %q: %w", group, err)
	}
	c.cg = cg
	go c.run()
	return c, nil
}

// run takes one generation after the other until Close.
func (c *Consumer) run() {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.closed
		cancel()
	}()
	wait := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		gen, err := c.cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafkago.ErrGroupClosed) {
				return
			}
			// A join that timed out or a coordinator that moved: the
			// group loop tries again, and so do we, for ever.
			c.note(err)
			d := wait.next()
			c.log.Warn("kafka group join failed; retrying", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		wait.reset()
		c.serve(gen)
	}
}

// serve reads gen's partitions until the generation ends.
func (c *Consumer) serve(gen *kafkago.Generation) {
	var parts []int
	for _, a := range gen.Assignments[c.cfg.Topic] {
		parts = append(parts, a.ID)
	}
	slices.Sort(parts)
	id := int(gen.ID)
	c.mu.Lock()
	c.gen = id
	c.mu.Unlock()
	c.log.Info("kafka partitions assigned", "generation", id, "member", gen.MemberID, "partitions", parts)
	if c.cfg.OnAssigned != nil {
		c.cfg.OnAssigned(id, slices.Clone(parts))
	}
	ended := make(chan struct{})
	// A function started on gen ends the generation when it returns, so
	// each of these returns only once gen's context is done.
	for _, a := range gen.Assignments[c.cfg.Topic] {
		gen.Start(func(ctx context.Context) { c.read(ctx, a) })
	}
	gen.Start(func(ctx context.Context) { c.commitLoop(ctx, gen) })
	gen.Start(func(ctx context.Context) {
		<-ctx.Done()
		close(ended)
	})
	<-ended
	c.mu.Lock()
	c.gen = 0
	c.mu.Unlock()
	c.log.Info("kafka partitions revoked", "generation", id, "partitions", parts)
	if c.cfg.OnRevoked != nil {
		c.cfg.OnRevoked(id, slices.Clone(parts))
	}
}

// read fetches one assigned partition from its starting offset until ctx
// (the generation) ends.
func (c *Consumer) read(ctx context.Context, a kafkago.PartitionAssignment) {
	log := c.log.With("partition", a.ID)
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:         c.cfg.Brokers,
		Topic:           c.cfg.Topic,
		Partition:       a.ID,
		Dialer:          c.dialer,
		MinBytes:        1,
		MaxBytes:        16 << 20,
		MaxWait:         500 * time.Millisecond,
		ReadBackoffMin:  50 * time.Millisecond,
		ReadBackoffMax:  time.Second,
		ReadLagInterval: -1,
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			c.note(errors.New(msg))
			log.Warn("kafka partition reader", "msg", msg)
		}),
	})
	defer r.Close()
	if err := r.SetOffset(a.Offset); err != nil {
		log.Error("kafka: cannot start reading the partition", "offset", a.Offset, "err", err)
		<-ctx.Done()
		return
	}
	wait := newBackoff(50*time.Millisecond, 5*time.Second)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.note(err)
			d := wait.next()
			log.Warn("kafka fetch failed; retrying", "err", err, "retry_in", d)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		wait.reset()
		c.note(nil)
		select {
		case c.msgs <- fetched{gen: ctx, m: m}:
		case <-ctx.Done():
			return
		}
	}
}

// commitLoop commits offsets in gen until it ends. Commits must go
// through the generation: the coordinator takes them only from a member
// of the current one.
func (c *Consumer) commitLoop(ctx context.Context, gen *kafkago.Generation) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-c.commits:
			req.errc <- gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: req.offsets})
		}
	}
}

// note records the latest error (nil: the broker answers again).
func (c *Consumer) note(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// Joined reports whether the consumer is a member of a current generation
// of its group (it may own no partition when the group has more members
// than the topic has partitions).
func (c *Consumer) Joined() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != 0
}

// Fetch returns the next message of one of this member's partitions.
// When ctx ends first, the error wraps ctx.Err() and, if the broker could
// not be reached meanwhile, bus.ErrUnreachable too.
func (c *Consumer) Fetch(ctx context.Context) (bus.Message, error) {
	op := fmt.Sprintf("fetch from topic %q for group %q", c.cfg.Topic, c.group)
	for {
		select {
		case f := <-c.msgs:
			// A message of a generation that has ended may belong to a
			// partition now read by another member; it comes again.
			if f.gen.Err() != nil {
				continue
			}
			m := f.m
			return bus.Message{Key: m.Key, Value: m.Value, Partition: m.Partition, Offset: m.Offset, Time: m.Time,
				HighWaterMark: m.HighWaterMark}, nil
		case <-c.closed:
			return bus.Message{}, fmt.Errorf("%s: %w", op, bus.ErrClosed)
		case <-ctx.Done():
			c.mu.Lock()
			last := c.lastErr
			c.mu.Unlock()
			if last != nil && unreachable(last) {
				return bus.Message{}, fmt.Errorf("%s: %w; meanwhile %w", op, ctx.Err(), explain("", c.cfg, last))
			}
			return bus.Message{}, fmt.Errorf("%s: %w", op, ctx.Err())
		}
	}
}

// Commit stores, per partition, the offset after the highest one among
// msgs as the group's position. It returns once the coordinator stored
// it. Between generations (during a rebalance) it waits for the next one
// until ctx ends; an error means nothing was committed, and committing
// the same messages again later is right.
func (c *Consumer) Commit(ctx context.Context, msgs ...bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	offsets := make(map[int]int64)
	for _, m := range msgs {
		if o, ok := offsets[m.Partition]; !ok || m.Offset+1 > o {
			offsets[m.Partition] = m.Offset + 1
		}
	}
	op := fmt.Sprintf("commit %d messages of topic %q for group %q", len(msgs), c.cfg.Topic, c.group)
	req := commitReq{offsets: offsets, errc: make(chan error, 1)}
	select {
	case c.commits <- req:
	case <-c.closed:
		return fmt.Errorf("%s: %w", op, bus.ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("%s: no current generation of the group took it (a rebalance under way?): %w", op, ctx.Err())
	}
	select {
	case err := <-req.errc:
		if err == nil {
			return nil
		}
		if errors.Is(err, io.ErrClosedPipe) {
			err = bus.ErrClosed
		}
		return explain(op, c.cfg, err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
}

// Close leaves the group so its partitions move to other members at once.
func (c *Consumer) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		err = c.cg.Close()
		<-c.done
	})
	if err != nil {
		return fmt.Errorf("close consumer of topic %q, group %q: %w", c.cfg.Topic, c.group, err)
	}
	return nil
}

// backoff doubles a wait from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
