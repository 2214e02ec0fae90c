package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/citycard/transit/clearing/bus"
)

// Totals counts what a Run has handled so far.
type Totals struct {
	Batches     int
	Added       int
	Duplicates  int
	Quarantined int
	Anomalies   int
}

// Runner consumes batches from the bus and hands them to a Processor,
// committing the bus offsets only after the store has taken the batches.
//
// A Runner rides out faults rather than stop: a batch the store could not
// take (the database restarting, a lost connection) is tried again with
// backoff until it is stored, while later batches of its partition wait
// behind it; a fetch or a commit that fails (a broker away, a rebalance
// under way) is tried again too. Each retry is logged and counted. Only
// the end of ctx, or a consumer closed under it, ends Run.
type Runner struct {
	Consumer  bus.Consumer
	Processor *Processor
	// Workers is how many batches are stored at once (default 1). Batches
	// of one bus partition always go to the same worker, one after the
	// other, so a device's batches keep their order; batches of
	// different partitions are stored concurrently, which is how ingest
	// uses more than one core of the database.
	Workers int
	// CommitEvery is the most messages handled between two commits
	// (default 64): a Kafka commit is a round trip, so one per message
	// would cap throughput.
	CommitEvery int
	// Linger is how long to wait for another message before committing
	// what was handled (default 200 ms).
	Linger time.Duration
	// RetryMin and RetryMax bound the backoff between attempts at a batch,
	// a fetch or a commit that failed (defaults 100 ms and 10 s).
	RetryMin, RetryMax time.Duration
	// Log receives a line per retry and at stop; nil means the
	// Processor's log, or slog.Default().
	Log *slog.Logger
	// OnBatch, when set, is called after each batch is handled, with the
	// running totals (for logs and tests). Calls come one at a time.
	OnBatch func(Outcome, Totals)
}

type result struct {
	msg  bus.Message
	out  Outcome
	err  error
	took time.Duration
}

func (r *Runner) log() *slog.Logger {
	switch {
	case r.Log != nil:
		return r.Log
	case r.Processor != nil && r.Processor.Log != nil:
		return r.Processor.Log
	}
	return slog.Default()
}

// retry is a doubling wait with jitter between RetryMin and RetryMax.
type retry struct {
	min, max, cur time.Duration
}

func (r *Runner) newRetry() *retry {
	lo, hi := r.RetryMin, r.RetryMax
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = max(10*time.Second, lo)
	}
	return &retry{min: lo, max: hi}
}

func (b *retry) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// Up to a quarter less, so that instances failing together do not
	// come back together.
	return b.cur - time.Duration(rand.Int64N(int64(b.cur)/4+1))
}

func (b *retry) reset() { b.cur = 0 }

// wait sleeps d or until ctx ends, and reports whether it slept d.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// process hands m to the Processor until it is handled or ctx ends.
func (r *Runner) process(ctx context.Context, m bus.Message) (Outcome, error) {
	var backoff *retry
	for attempt := 1; ; attempt++ {
		out, err := r.Processor.ProcessMessage(ctx, m)
		if err == nil {
			if attempt > 1 {
				r.log().Info("batch stored after retrying", "partition", m.Partition, "offset", m.Offset, "attempts", attempt)
			}
			return out, nil
		}
		if ctx.Err() != nil {
			return out, stopped(ctx, m, err)
		}
		if backoff == nil {
			backoff = r.newRetry()
		}
		d := backoff.next()
		r.Processor.Metrics.retried()
		r.log().Warn("batch not stored; retrying", "partition", m.Partition, "offset", m.Offset, "attempt", attempt,
			"retry_in", d.Round(time.Millisecond), "err", err)
		if !wait(ctx, d) {
			return out, stopped(ctx, m, err)
		}
	}
}

// stopped is the error of a batch still not stored when ctx ended: ctx's
// error (Run's callers test for it), with the store's in the text.
func stopped(ctx context.Context, m bus.Message, err error) error {
	return fmt.Errorf("stopped while batch at partition %d offset %d was not stored (%v): %w", m.Partition, m.Offset, err, context.Cause(ctx))
}

// Run consumes until ctx ends and returns ctx's error, or the consumer's
// when it was closed. Handled batches are committed first; a batch still
// being retried when ctx ends, and everything after it in its partition,
// is left uncommitted, so it comes again after a restart.
func (r *Runner) Run(ctx context.Context) error {
	every := r.CommitEvery
	if every <= 0 {
		every = 64
	}
	linger := r.Linger
	if linger <= 0 {
		linger = 200 * time.Millisecond
	}
	workers := max(r.Workers, 1)
	log := r.log()

	// Workers stop when their queues close; the fetcher stops with wctx.
	wctx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	fetched := make(chan bus.Message)
	fetchErr := make(chan error, 1)
	fetcherDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		backoff := r.newRetry()
		for {
			m, err := r.Consumer.Fetch(wctx)
			if err != nil {
				if wctx.Err() != nil || errors.Is(err, bus.ErrClosed) {
					fetchErr <- err
					return
				}
				d := backoff.next()
				r.Processor.Metrics.busError("fetch")
				log.Warn("fetch from the bus failed; retrying", "retry_in", d.Round(time.Millisecond), "err", err)
				if !wait(wctx, d) {
					fetchErr <- wctx.Err()
					return
				}
				continue
			}
			backoff.reset()
			select {
			case fetched <- m:
			case <-wctx.Done():
				fetchErr <- wctx.Err()
				return
			}
		}
	}()
	done := make(chan result, workers)
	queues := make([]chan bus.Message, workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan bus.Message, 1)
		wg.Go(func() {
			for m := range queues[i] {
				start := time.Now()
				// Store calls get ctx, not wctx: a batch under way when
				// the fetcher stops still finishes and is committed.
				out, err := r.process(ctx, m)
				done <- result{m, out, err, time.Since(start)}
			}
		})
	}

	var (
		// pending is, per partition, the last handled message not yet
		// committed: committing it commits all before it.
		pending     = map[int]bus.Message{}
		totals      Totals
		inFlight    int
		runErr      error
		fetching    = true
		timer       = time.NewTimer(linger)
		commitRetry = r.newRetry()
		sinceCommit int
		// commitHeld is set after a failed commit: the next attempt
		// waits for the retry timer, not for the next batch.
		commitHeld bool
	)
	timer.Stop()
	commit := func(final bool) {
		if len(pending) == 0 {
			return
		}
		msgs := make([]bus.Message, 0, len(pending))
		for _, m := range pending {
			msgs = append(msgs, m)
		}
		// A commit must happen even when ctx just ended: the batches are
		// stored, and committing spares clearing re-reading them.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		err := r.Consumer.Commit(cctx, msgs...)
		if err == nil {
			clear(pending)
			sinceCommit = 0
			commitHeld = false
			commitRetry.reset()
			return
		}
		r.Processor.Metrics.busError("commit")
		if final {
			// Not committed means delivered again, and stored again
			// without effect.
			log.Warn("could not commit the last handled batches at stop; they will be read again", "partitions", len(msgs), "err", err)
			return
		}
		d := commitRetry.next()
		log.Warn("commit to the bus failed; retrying", "partitions", len(msgs), "retry_in", d.Round(time.Millisecond), "err", err)
		commitHeld = true
		timer.Reset(d)
	}
	// failed marks partitions whose batch was left unhandled at stop:
	// nothing later of them may be committed, or that batch would be
	// skipped.
	failed := make(map[int]bool)
	stop := func(err error) {
		if runErr == nil {
			runErr = err
		}
		fetching = false
		stopWork()
	}
	var backlog []bus.Message // fetched, waiting for a worker's queue
	for fetching || inFlight > 0 || len(backlog) > 0 {
		var (
			next  bus.Message
			queue chan bus.Message
			in    = fetched
		)
		if len(backlog) > 0 {
			next = backlog[0]
			queue = queues[next.Partition%workers]
			in = nil // one waiting message at a time keeps memory bounded
		}
		if !fetching {
			in, queue = nil, nil
			backlog = nil
		}
		select {
		case m := <-in:
			backlog = append(backlog, m)
		case queue <- next:
			backlog = backlog[1:]
			inFlight++
		case err := <-fetchErr:
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			stop(err)
		case res := <-done:
			inFlight--
			if res.err != nil {
				// Only when ctx ended while the batch was retried.
				failed[res.msg.Partition] = true
				stop(res.err)
				continue
			}
			if failed[res.msg.Partition] {
				continue
			}
			totals.Batches++
			totals.Added += res.out.Added
			totals.Duplicates += res.out.Duplicates
			totals.Anomalies += res.out.Anomalies
			if res.out.Quarantined != "" {
				totals.Quarantined++
			}
			r.Processor.Metrics.handled(res.msg, res.took, time.Now())
			pending[res.msg.Partition] = res.msg
			sinceCommit++
			if r.OnBatch != nil {
				r.OnBatch(res.out, totals)
			}
			switch {
			case commitHeld:
			case sinceCommit >= every:
				commit(false)
			case sinceCommit == 1:
				// The first uncommitted batch waits at most linger.
				timer.Reset(linger)
			}
		case <-timer.C:
			commitHeld = false
			commit(false)
		}
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	timer.Stop()
	stopWork()
	<-fetcherDone
	// Commit only what precedes a failure in its partition: pending holds
	// no message of a failed partition received after the failure, and
	// the ones before it were stored.
	commit(true)
	log.Info("ingest stopped", "batches", totals.Batches, "taps_added", totals.Added, "duplicates", totals.Duplicates,
		"quarantined", totals.Quarantined)
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		return ctx.Err()
	}
	if runErr != nil && ctx.Err() != nil && errors.Is(runErr, ctx.Err()) {
		return ctx.Err()
	}
	return runErr
}

// String names a Totals for logs.
func (t Totals) String() string {
	return fmt.Sprintf("%d batches, %d taps added, %d duplicates, %d quarantined", t.Batches, t.Added, t.Duplicates, t.Quarantined)
}
