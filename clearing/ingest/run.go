package ingest

import (
	"context"
	"errors"
	"fmt"
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

// Run consumes until ctx ends and returns ctx's error, or the first error
// of the bus or the store. On a store error nothing after the last
// message handled in order is committed, so the batches come again after
// a restart.
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

	// Workers stop when their queues close; a store error stops the
	// fetcher through wctx so that nothing new is started.
	wctx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	fetched := make(chan bus.Message)
	fetchErr := make(chan error, 1)
	fetcherDone := make(chan struct{})
	go func() {
		defer close(fetcherDone)
		for {
			m, err := r.Consumer.Fetch(wctx)
			if err != nil {
				fetchErr <- err
				return
			}
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
				// another worker fails still finishes and is committed.
				out, err := r.Processor.Process(ctx, m.Value)
				done <- result{m, out, err, time.Since(start)}
			}
		})
	}

	var (
		pending  []bus.Message
		totals   Totals
		inFlight int
		runErr   error
		fetching = true
		timer    = time.NewTimer(linger)
	)
	timer.Stop()
	commit := func() error {
		if len(pending) == 0 {
			return nil
		}
		// A commit must happen even when ctx just ended: the batches are
		// stored, and committing spares clearing re-reading them.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.Consumer.Commit(cctx, pending...); err != nil {
			return fmt.Errorf("commit %d handled batches: %w", len(pending), err)
		}
		pending = pending[:0]
		return nil
	}
	// failed marks partitions whose batch could not be stored: nothing
	// later of them may be committed, or that batch would be skipped.
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
			pending = append(pending, res.msg)
			if r.OnBatch != nil {
				r.OnBatch(res.out, totals)
			}
			switch {
			case len(pending) >= every:
				if err := commit(); err != nil {
					stop(err)
				}
			case len(pending) == 1:
				// The first uncommitted batch waits at most linger.
				timer.Reset(linger)
			}
		case <-timer.C:
			if err := commit(); err != nil {
				stop(err)
			}
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
	cerr := commit()
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		return errors.Join(ctx.Err(), cerr)
	}
	return errors.Join(runErr, cerr)
}
