package auditchain

import (
	"bytes"
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/citycard/transit/registry"
)

// Store is a Source that also keeps checkpoints.
type Store interface {
	Source
	// AddAuditCheckpoint stores a signed checkpoint.
	AddAuditCheckpoint(ctx context.Context, cp registry.AuditCheckpoint) error
}

// DefaultCheckpointEvery is how often the head is signed unless told.
const DefaultCheckpointEvery = time.Minute

// Checkpointer signs the chain's head at intervals.
type Checkpointer struct {
	Store  Store
	Signer crypto.Signer
	// Key names Signer's key, "sign-audit@1".
	Key string
	// Every is the interval (default DefaultCheckpointEvery); a head
	// that has not moved is not signed again.
	Every time.Duration
	Now   func() time.Time
	Log   *slog.Logger
}

// Once signs the head if entries were appended since the newest
// checkpoint, after checking that those entries follow it: a checkpoint
// vouches only for a chain that verified up to it. It returns the new
// checkpoint, or ok false when there was nothing to sign.
func (c *Checkpointer) Once(ctx context.Context) (cp registry.AuditCheckpoint, ok bool, err error) {
	cps, err := c.Store.AuditCheckpoints(ctx)
	if err != nil {
		return cp, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	from, prev := int64(0), Genesis
	if len(cps) > 0 {
		last := cps[len(cps)-1]
		from, prev = last.Seq, last.Hash
	}
	seq := from
	err = c.Store.AuditChain(ctx, from, func(e *registry.AuditEntry) error {
		switch {
		case e.Seq == 0:
			return fmt.Errorf("%w: entry id %d has no place in the chain", ErrBroken, e.ID)
		case e.Seq != seq+1:
			return fmt.Errorf("%w: after entry %d comes entry %d", ErrBroken, seq, e.Seq)
		case !bytes.Equal(e.Prev, prev):
			return fmt.Errorf("%w: entry %d does not follow entry %d", ErrBroken, e.Seq, seq)
		case !bytes.Equal(Hash(e, e.Prev), e.Hash):
			return fmt.Errorf("%w: entry %d does not match its hash", ErrBroken, e.Seq)
		}
		seq, prev = e.Seq, e.Hash
		return nil
	})
	if err != nil {
		return cp, false, fmt.Errorf("audit checkpoint: %w; not signing a broken chain", err)
	}
	if seq == from {
		return cp, false, nil
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if cp, err = Sign(c.Signer, c.Key, seq, prev, now()); err != nil {
		return cp, false, err
	}
	if err := c.Store.AddAuditCheckpoint(ctx, cp); err != nil {
		return cp, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	// The service log keeps a copy outside the database: the one thing
	// that shows entries deleted after the newest checkpoint.
	c.log().Info("audit checkpoint signed", "seq", cp.Seq, "hash", fmt.Sprintf("%x", cp.Hash), "key", cp.Key)
	return cp, true, nil
}

// Run signs checkpoints every interval until ctx ends, and once more as
// it ends. A failure is logged and retried at the next interval.
func (c *Checkpointer) Run(ctx context.Context) error {
	every := c.Every
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// The entries of the last interval get their checkpoint.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_, _, err := c.Once(fctx)
			cancel()
			if err != nil {
				c.log().Error("final audit checkpoint failed", "error", err)
			}
			return ctx.Err()
		case <-t.C:
			if _, _, err := c.Once(ctx); err != nil && ctx.Err() == nil {
				c.log().Error("audit checkpoint failed", "error", err)
			}
		}
	}
}

func (c *Checkpointer) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// DefaultVerifyEvery is how often a Monitor verifies the whole chain
// unless told.
const DefaultVerifyEvery = time.Hour

// Monitor verifies the chain at intervals and keeps the last report.
type Monitor struct {
	Source Source
	Keys   PublicKeys
	// Every is the interval (default DefaultVerifyEvery).
	Every time.Duration
	Now   func() time.Time
	Log   *slog.Logger

	mu   sync.Mutex
	last *Report
}

// Check verifies the chain now and keeps the report.
func (m *Monitor) Check(ctx context.Context) (Report, error) {
	rep, err := Verify(ctx, m.Source, m.Keys, m.Now)
	if err != nil {
		return rep, err
	}
	m.mu.Lock()
	m.last = &rep
	m.mu.Unlock()
	if rep.OK() {
		m.log().Info("audit log verified", "entries", rep.Entries, "head", rep.Head, "checkpoints", rep.Checkpoints, "signed", rep.Signed)
	} else {
		m.log().Error("AUDIT LOG TAMPERED WITH", "error", rep.Err(), "problems", rep.Problems)
	}
	return rep, nil
}

// Last returns the last report, ok false before the first check.
func (m *Monitor) Last() (Report, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		return Report{}, false
	}
	return *m.last, true
}

// Run verifies every interval until ctx ends. With stopOnBroken it
// returns an error wrapping ErrBroken as soon as a check fails, so that
// the service stops serving an altered log; otherwise it logs and goes
// on.
func (m *Monitor) Run(ctx context.Context, stopOnBroken bool) error {
	every := m.Every
	if every <= 0 {
		every = DefaultVerifyEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		rep, err := m.Check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.log().Error("audit log verification failed", "error", err)
			continue
		}
		if !rep.OK() && stopOnBroken {
			return rep.Err()
		}
	}
}

func (m *Monitor) log() *slog.Logger {
	if m.Log != nil {
		return m.Log
	}
	return slog.Default()
}
