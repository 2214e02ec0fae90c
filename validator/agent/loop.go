package agent

import (
	"context"
	"errors"
	"time"

	"github.com/citycard/transit/card/apdu"
)

// Presented is a card in the reader's field.
type Presented interface {
	apdu.Transport
	// UID asks the reader for the card's UID.
	UID() ([]byte, error)
}

// Reader is the validator's card reader.
type Reader interface {
	// WaitCard blocks until a card is in the field and returns it.
	WaitCard(ctx context.Context) (Presented, error)
	// WaitRemoval blocks until the field is empty and releases card.
	WaitRemoval(ctx context.Context, card Presented) error
}

// Loop runs the reader loop: wait for a card, tap it, show the result,
// wait for the card to leave, repeat. A reader that fails (unplugged,
// pcscd restarting) is retried with backoff; a bad card never stops the
// loop. Run returns ctx's error, or the journal's, after which the
// validator must not take taps.
type Loop struct {
	Agent  *Agent
	Reader Reader
	// Show presents each event (terminal line, display, buzzer).
	Show func(Event)
	// MaxBackoff caps the wait between reader retries (default 5 s).
	MaxBackoff time.Duration
	// Health, when set, learns that the loop runs and of every reader
	// failure it sees.
	Health *Health
}

// Run runs the loop until ctx ends.
func (l *Loop) Run(ctx context.Context) error {
	maxWait := l.MaxBackoff
	if maxWait <= 0 {
		maxWait = 5 * time.Second
	}
	l.Health.setRunning(true)
	defer l.Health.setRunning(false)
	wait := 100 * time.Millisecond
	backoff := func(err error) error {
		l.Health.loopFailed()
		l.Agent.log().Warn("card reader failed, retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, maxWait)
		return nil
	}
	for {
		card, err := l.Reader.WaitCard(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if err := backoff(err); err != nil {
				return err
			}
			continue
		}
		wait = 100 * time.Millisecond
		uid, err := card.UID()
		var ev Event
		if err != nil {
			ev = Event{Time: l.Agent.now().UTC(), Result: "error", Reason: ReasonUnreadable, Err: err.Error()}
		} else if ev, err = l.Agent.Tap(ctx, card, uid); err != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			l.Reader.WaitRemoval(rctx, card) // release the card; the error below matters more
			cancel()
			return err
		}
		if l.Show != nil {
			l.Show(ev)
		}
		if err := l.Reader.WaitRemoval(ctx, card); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, context.DeadlineExceeded) {
				continue
			}
			if err := backoff(err); err != nil {
				return err
			}
		}
	}
}
