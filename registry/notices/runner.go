package notices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/store"
)

// Defaults of a Runner.
const (
	DefaultMaxAttempts = 8
	DefaultBatch       = 100
	// DefaultFirstRetry is the wait after a first failed attempt; each
	// further one doubles it, up to MaxRetry. It is also how long a
	// claimed notice is another runner's to leave alone, so it must
	// exceed one send (the SMTP sender's 30 s at most).
	DefaultFirstRetry = 5 * time.Minute
	MaxRetry          = 6 * time.Hour
)

// Runner queues and sends notices.
type Runner struct {
	Store  store.Notices
	Sender notify.Sender
	Rule   Rule
	// MaxAttempts bounds the attempts at one notice; 0 means
	// DefaultMaxAttempts.
	MaxAttempts int
	// Batch is how many notices one claim takes; 0 means DefaultBatch.
	Batch int
	// FirstRetry is the first wait after a failure; 0 means
	// DefaultFirstRetry.
	FirstRetry time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Report is what one pass did.
type Report struct {
	Queued, Sent, Failed, Dropped int
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// Retry is the wait before attempt attempts+1: FirstRetry doubled for
// each attempt after the first, at most MaxRetry.
func (r *Runner) Retry(attempts int) time.Duration {
	d := r.FirstRetry
	if d <= 0 {
		d = DefaultFirstRetry
	}
	for i := 1; i < attempts && d < MaxRetry; i++ {
		d *= 2
	}
	return min(d, MaxRetry)
}

// Once queues the notices due now and sends every queued notice whose
// attempt is due. A failure to send one notice is recorded on it and
// does not stop the pass; a failure of the store does.
func (r *Runner) Once(ctx context.Context) (Report, error) {
	var rep Report
	now := r.now()
	from, to := r.Rule.Window(now)
	queued, err := r.Store.QueueNotices(ctx, from, to, func(cs []registry.NoticeCandidate) []registry.Notice { return r.Rule.Due(now, cs) })
	if err != nil {
		return rep, fmt.Errorf("notices: queue: %w", err)
	}
	for _, n := range queued {
		if n.Pending() {
			rep.Queued++
		} else {
			rep.Dropped++
		}
	}
	maxAttempts := r.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	for {
		claims, err := r.Store.ClaimNotices(ctx, batch, maxAttempts, r.Retry)
		if err != nil {
			return rep, fmt.Errorf("notices: claim: %w", err)
		}
		for _, c := range claims {
			if err := r.attempt(ctx, c, maxAttempts, &rep); err != nil {
				return rep, err
			}
		}
		// A claim moves each notice's next attempt past now, so a full
		// batch means there may be more, never the same ones again.
		if len(claims) < batch {
			break
		}
	}
	if rep != (Report{}) {
		r.log().Info("notices", "queued", rep.Queued, "sent", rep.Sent, "failed", rep.Failed, "dropped", rep.Dropped)
	}
	return rep, nil
}

func (r *Runner) attempt(ctx context.Context, c registry.NoticeClaim, maxAttempts int, rep *Report) error {
	log := r.log().With("notice", c.ID, "resident", c.Resident, "attempt", c.Attempts)
	var o registry.NoticeOutcome
	if drop := r.Rule.Judge(r.now(), c); drop != "" {
		o.Drop = drop
	} else {
		contact := c.CurrentContact
		err := r.Sender.Send(ctx, Message(c.Notice, contact))
		switch {
		case err == nil:
			o.SentTo, o.Sender = contact, senderName(r.Sender, contact)
		case errors.Is(err, notify.ErrRefused):
			o.Drop = registry.NoticeRefused
		case errors.Is(err, notify.ErrUnreachable):
			o.Drop = registry.NoticeUnreachable
		case ctx.Err() != nil:
			// Stopping is not the notice's failure; its claim makes it
			// due again after the retry wait.
			return ctx.Err()
		default:
			o.Error = err.Error()
			if c.Attempts >= maxAttempts {
				o.Error = ""
				o.Drop = fmt.Sprintf("%s%d attempts: %v", registry.NoticeGaveUp, c.Attempts, err)
			}
		}
	}
	// Record even when ctx has ended: the message may have gone.
	if err := r.Store.FinishNotice(context.WithoutCancel(ctx), c.ID, o); err != nil {
		return fmt.Errorf("notices: record notice %d: %w", c.ID, err)
	}
	switch {
	case o.SentTo != "":
		rep.Sent++
		log.Info("notice sent", "sender", o.Sender)
	case o.Drop != "":
		rep.Dropped++
		log.Info("notice dropped", "reason", o.Drop)
	default:
		rep.Failed++
		log.Warn("notice not sent; it is tried again", "err", o.Error, "next", c.NextAttempt)
	}
	return nil
}

func senderName(s notify.Sender, contact string) string {
	if b, ok := s.(*notify.ByContact); ok {
		if n := b.For(contact); n != "" {
			return n
		}
	}
	return notify.NameOf(s)
}

// Run runs a pass now and then every interval until ctx ends. A pass
// that fails is logged and the next one tries again.
func (r *Runner) Run(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("notices: the interval must be positive, not %s", every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := r.Once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log().Error("notices: the pass failed; the next one tries again", "err", err, "every", every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
