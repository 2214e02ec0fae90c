package city

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/clonecheck"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
)

// clearingSide runs clearing's ingest on the simulation's bus and lets
// the simulation wait until every batch it published has been handled, so
// that the days and the period closes happen in a known order.
type clearingSide struct {
	st   store.Store
	prod bus.Producer

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced when handled or err change
	published int
	handled   int
	totals    ingest.Totals
	err       error

	stop func()
	done chan struct{}
}

// startClearing starts ingest.Runner on cons with proc until Close.
func startClearing(ctx context.Context, st store.Store, prod bus.Producer, cons bus.Consumer, proc *ingest.Processor, workers int, log *slog.Logger) *clearingSide {
	c := &clearingSide{st: st, prod: prod, changed: make(chan struct{}), done: make(chan struct{})}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	c.stop = stop
	r := &ingest.Runner{Consumer: cons, Processor: proc, Workers: workers, Linger: 20 * time.Millisecond,
		OnBatch: func(_ ingest.Outcome, t ingest.Totals) {
			c.mu.Lock()
			c.handled, c.totals = t.Batches, t
			c.signalLocked()
			c.mu.Unlock()
		}}
	go func() {
		defer close(c.done)
		err := r.Run(rctx)
		if errors.Is(err, context.Canceled) && rctx.Err() != nil {
			err = nil
		}
		if err != nil {
			log.Error("clearing ingest stopped", "err", err)
		}
		c.mu.Lock()
		c.err = err
		if c.err == nil {
			c.err = errors.New("clearing ingest stopped")
		}
		c.signalLocked()
		c.mu.Unlock()
	}()
	return c
}

func (c *clearingSide) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// publish sends messages to the bus and counts them as awaiting ingest.
func (c *clearingSide) publish(ctx context.Context, msgs ...bus.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	// Counted first: a message the bus stored before an error still
	// arrives, and is awaited.
	c.mu.Lock()
	c.published += len(msgs)
	c.mu.Unlock()
	if err := c.prod.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("publish %d batches: %w", len(msgs), err)
	}
	return nil
}

// sync waits until clearing has handled every batch published so far
// and stored at least taps new taps (the distinct taps delivered), and has
// run the cloned-card check on what they queued, as clearing serve does
// beside ingest. Handled batches alone can reach the published count
// early: a bus delivers some batches twice after a consumer's error.
func (c *clearingSide) sync(ctx context.Context, taps int64, progress func(done, total int)) error {
	for {
		c.mu.Lock()
		handled, published, added, err, changed := c.handled, c.published, int64(c.totals.Added), c.err, c.changed
		c.mu.Unlock()
		if progress != nil {
			progress(min(handled, published), published)
		}
		if handled >= published && added >= taps {
			if _, _, err := (&clonecheck.Checker{Store: c.st}).Drain(ctx); err != nil {
				return fmt.Errorf("clearing's cloned-card check: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("clearing handled %d of %d batches: %w", handled, published, err)
		}
		// Every batch handled but fewer new taps than delivered: wait for
		// the redelivered ones, not for ever (a store left from an earlier
		// run already holds them).
		var stuck <-chan time.Time
		if handled >= published {
			stuck = time.After(time.Minute)
		}
		select {
		case <-changed:
		case <-stuck:
			return fmt.Errorf("clearing handled all %d batches but stored %d new taps of the %d delivered: does --db hold an earlier run's taps? Use a new database", published, added, taps)
		case <-ctx.Done():
			return fmt.Errorf("waiting for clearing (%d of %d batches handled): %w", handled, published, ctx.Err())
		}
	}
}

// Totals returns what ingest has counted.
func (c *clearingSide) Totals() ingest.Totals {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.totals
}

// close stops ingest; the runner commits what it handled.
func (c *clearingSide) close() {
	c.stop()
	<-c.done
}
