package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/bus"
)

// Totals counts what a Run has handled so far.
type Totals struct {
	Batches     int
	Added       int
	Duplicates  int
	Quarantined int
}

// Runner consumes batches from the bus and hands them to a Processor,
// committing the bus offsets only after the store has taken the batches.
type Runner struct {
	Consumer  bus.Consumer
	Processor *Processor
	// CommitEvery is the most messages handled between two commits
	// (default 64): a Kafka commit is a round trip, so one per message
	// would cap throughput.
	CommitEvery int
	// Linger is how long to wait for another message before committing
	// what was handled (default 200 ms).
	Linger time.Duration
	// OnBatch, when set, is called after each batch is handled, with the
	// running totals (for metrics and tests).
	OnBatch func(Outcome, Totals)
}

// Run consumes until ctx ends and returns ctx's error, or the first error
// of the bus or the store. On a store error nothing after the last commit
// is committed, so the batches come again after a restart.
func (r *Runner) Run(ctx context.Context) error {
	every := r.CommitEvery
	if every <= 0 {
		every = 64
	}
	linger := r.Linger
	if linger <= 0 {
		linger = 200 * time.Millisecond
	}
	var (
		pending []bus.Message
		totals  Totals
	)
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
	for {
		fctx := ctx
		var cancel context.CancelFunc = func() {}
		if len(pending) > 0 {
			fctx, cancel = context.WithTimeout(ctx, linger)
		}
		msg, err := r.Consumer.Fetch(fctx)
		timedOut := err != nil && fctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case timedOut:
			if err := commit(); err != nil {
				return err
			}
			continue
		case err != nil:
			cerr := commit()
			if ctx.Err() != nil {
				return errors.Join(ctx.Err(), cerr)
			}
			return errors.Join(err, cerr)
		}
		out, err := r.Processor.Process(ctx, msg.Value)
		if err != nil {
			// Not committing this message: it comes again. What was
			// handled before it is committed.
			return errors.Join(err, commit())
		}
		totals.Batches++
		totals.Added += out.Added
		totals.Duplicates += out.Duplicates
		if out.Quarantined != "" {
			totals.Quarantined++
		}
		pending = append(pending, msg)
		if r.OnBatch != nil {
			r.OnBatch(out, totals)
		}
		if len(pending) >= every {
			if err := commit(); err != nil {
				return err
			}
		}
	}
}
