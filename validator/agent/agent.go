// Package agent is the validator on a vehicle: for each card presented it
// reads the card, decides with fare.Decide, journals the tap durably,
// writes the decision to the card and shows the result. The decision is
// pure (validator/fare); this package is the shell of I/O around it.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/tap"
)

// Session is one card in the field, read and waiting for the decision.
type Session interface {
	// Card is the card's state as the decision needs it.
	Card() fare.Card
	// Evidence is what the card's own log showed, for clearing.
	Evidence() Evidence
	// Commit writes what d says to the card and commits the card
	// transaction; rec is the journalled tap (its sequence is set). A
	// *Refusal means the card refused the writes and is unchanged; an
	// error wrapping ErrCommitUnknown means the card may or may not hold
	// the tap (its answer to the commit was lost); any other error means
	// the card does not hold it (it left the field before the commit).
	Commit(ctx context.Context, d fare.Decision, rec *tap.Tap) error
}

// Evidence is what a tap records of the card's own log (tap.Tap's
// DeviceNumber and Prev), so that clearing can link a card's rides.
type Evidence struct {
	// DeviceNumber is this device as the card's log records it.
	DeviceNumber uint32
	// Prev is the card's previous ride, the zero CardRide when its log was
	// empty or not read.
	Prev tap.CardRide
}

// ErrCommitUnknown is wrapped by a Commit error after which the card may
// or may not hold the tap.
var ErrCommitUnknown = cardtx.ErrCommitUnknown

// Refusal is a Commit error for a card that refused the decision's writes
// and is unchanged, such as a purse below the fare (the card's own debit
// is the funds check). The tap is recorded as denied with Reason.
type Refusal struct {
	Reason string
	Err    error
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Err.Error() }

// Unwrap returns the card's error.
func (r *Refusal) Unwrap() error { return r.Err }

// CardReader opens a session on a card in the field.
type CardReader interface {
	// Begin reads the card whose UID is uid through tr for a tap at now.
	// An error means the card is not one of ours or could not be read;
	// nothing was written to it.
	Begin(ctx context.Context, tr apdu.Transport, uid []byte, now time.Time) (Session, error)
}

// Hotlists is where the agent finds the hotlist in force
// (*hotlist.Holder).
type Hotlists interface {
	Current() *hotlist.List
}

// Journal is the part of validator/journal the agent writes.
type Journal interface {
	Append(ctx context.Context, t *tap.Tap) error
	// SettleAs replaces the pending record of t.Seq with t and makes it
	// ready to send.
	SettleAs(ctx context.Context, t *tap.Tap) error
}

// Event is what the validator shows for one presentation; a display or
// buzzer driver reads it as JSON.
type Event struct {
	Time       time.Time `json:"time"`
	Seq        uint64    `json:"seq,omitempty"`
	Card       uint64    `json:"card,omitempty"`
	Result     string    `json:"result"` // accepted, denied, already-paid, error
	Reason     string    `json:"reason"`
	Product    string    `json:"product,omitempty"`
	Category   string    `json:"category,omitempty"`
	FareKop    int64     `json:"fare_kop"`
	ChargedKop int64     `json:"charged_kop"`
	Committed  bool      `json:"committed"`
	Green      bool      `json:"green"`
	TookMS     float64   `json:"took_ms"` // from card in the field to result
	Err        string    `json:"error,omitempty"`
	tap        *tap.Tap  // the journalled tap, nil when nothing was journalled
}

// Tap returns the journalled tap of the event, if any.
func (e Event) Tap() (tap.Tap, bool) {
	if e.tap == nil {
		return tap.Tap{}, false
	}
	return *e.tap, true
}

// Reasons of events that are not decisions.
const (
	ReasonUnreadable = "card-unreadable" // not our card, or it could not be read
	ReasonTorn       = "card-removed"    // the card left before the commit: tap again
	ReasonWriteFail  = "card-write-failed"
)

// Agent decides and records taps on one device.
type Agent struct {
	Device fare.Device
	// Tariff is the tariff at start; SetTariff replaces it while running.
	Tariff *fare.Tariff
	tariff atomic.Pointer[fare.Tariff]
	// Hotlist gives the hotlist in force (nil: none). Each tap takes the
	// current list once, so the version it records is the one that decided.
	Hotlist Hotlists
	Cards   CardReader
	Journal Journal
	Log     *slog.Logger
	// Now is the clock (default time.Now); taps are stamped in UTC to the
	// millisecond.
	Now func() time.Time
	// Metrics, when set, counts taps and times decisions and card
	// transactions.
	Metrics *Metrics
}

// SetTariff makes t the tariff of the next taps; a tap in progress keeps
// the one it started with.
func (a *Agent) SetTariff(t *fare.Tariff) { a.tariff.Store(t) }

// CurrentTariff returns the tariff in force.
func (a *Agent) CurrentTariff() *fare.Tariff {
	if t := a.tariff.Load(); t != nil {
		return t
	}
	return a.Tariff
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.Default()
}

// Tap handles one presentation of the card uid through tr: read, decide,
// journal, write the card, settle the journal. An error means the journal
// failed (the validator must stop accepting taps); everything about the
// card, including a card that is not ours or is torn away, is an Event.
func (a *Agent) Tap(ctx context.Context, tr apdu.Transport, uid []byte) (Event, error) {
	start := time.Now()
	now := a.now().UTC().Truncate(time.Millisecond)
	ev := Event{Time: now}
	var decided time.Duration
	done := func() Event {
		ev.TookMS = float64(time.Since(start).Microseconds()) / 1000
		a.Metrics.observe(ev, decided)
		return ev
	}
	sess, err := a.Cards.Begin(ctx, tr, uid, now)
	if err != nil {
		ev.Result, ev.Reason, ev.Err = "error", ReasonUnreadable, err.Error()
		a.log().Info("card not read", "uid", fmt.Sprintf("%X", uid), "err", err)
		return done(), nil
	}
	c := sess.Card()
	t0 := time.Now()
	var hl *hotlist.List // nil: the empty list, version 0
	if a.Hotlist != nil {
		hl = a.Hotlist.Current()
	}
	tf := a.CurrentTariff()
	d := fare.Decide(c, tf, hl, a.Device, now)
	decided = time.Since(t0)
	ev0 := sess.Evidence()
	t := &tap.Tap{
		Time: now, Card: c.Number,
		Carrier: a.Device.Carrier, Route: a.Device.Route, Vehicle: a.Device.Vehicle,
		Result: d.Result, Reason: d.Reason, Product: d.Product, Category: d.Category, Funding: d.Funding,
		FareKop: d.FareKop, ChargedKop: d.ChargedKop, CompensationKop: d.CompensationKop,
		TariffVersion: tf.Version, HotlistVersion: hl.Version(),
		ClockAnomaly: d.ClockAnomaly, BenefitRevoked: d.BenefitRevoked,
		Counted:      d.Result == tap.Accepted && d.CountRide,
		DeviceNumber: ev0.DeviceNumber, Prev: ev0.Prev,
	}
	// Journalled before the card is written and before the light: a power
	// cut from here on leaves a record, settled as not committed.
	if err := a.Journal.Append(ctx, t); err != nil {
		return done(), fmt.Errorf("journal tap of card %d: %w", c.Number, err)
	}
	ev.tap = t
	ev.Seq, ev.Card = t.Seq, c.Number
	ev.Result, ev.Reason = d.Result.String(), d.Reason
	ev.Product, ev.Category, ev.FareKop, ev.ChargedKop = d.Product, d.Category, d.FareKop, d.ChargedKop

	committed := true // a decision that writes nothing leaves the card as it was
	if d.Result == tap.Accepted {
		var refusal *Refusal
		switch err := sess.Commit(ctx, d, t); {
		case err == nil:
		case errors.As(err, &refusal):
			// The card overruled the decision and holds nothing new.
			t.Result, t.Reason, t.Product = tap.Denied, refusal.Reason, ""
			t.ChargedKop, t.CompensationKop, t.Counted = 0, 0, false
			ev.Result, ev.Reason, ev.Product, ev.ChargedKop = t.Result.String(), t.Reason, "", 0
		default:
			committed = false
			t.CommitUnknown = errors.Is(err, ErrCommitUnknown)
			ev.Err = err.Error()
			ev.Result, ev.Reason = "error", ReasonWriteFail
			if errors.Is(err, apdu.ErrCardRemoved) {
				ev.Reason = ReasonTorn
			}
			a.log().Warn("card write failed", "card", c.Number, "seq", t.Seq, "err", err)
		}
	}
	t.CardCommitted = committed
	// Settling must not be skipped because the caller's ctx ended: the
	// card transaction is over either way.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := a.Journal.SettleAs(sctx, t); err != nil {
		return done(), fmt.Errorf("settle tap %d: %w", t.Seq, err)
	}
	ev.Committed = committed
	ev.Green = committed && (t.Result == tap.Accepted || t.Result == tap.AlreadyPaid)
	return done(), nil
}
