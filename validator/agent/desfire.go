package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

// DESFireCards reads city cards with the validator's card transaction
// (validator/cardtx).
type DESFireCards struct {
	Keys *cardkey.Source
	// Device is the device number written into the card's tap log;
	// Carrier and Route are the numeric codes written beside it.
	Device         uint32
	Carrier, Route uint16
	// Fleet maps device numbers to vehicles for anti-passback across the
	// doors of one vehicle; it should at least map Device to this
	// validator's vehicle.
	Fleet cardtx.Fleet
	// Location is the city's time zone: card dates are civil dates there.
	Location *time.Location
	// EV1 tells the UIDs of DESFire EV1 cards, which skip the
	// AuthenticateEV2First attempt (cardtx.Options); nil: none known.
	EV1 func(uid []byte) bool
}

// DESFire returns a CardReader for city cards on the validator with
// device number dev mounted on vehicle.
func DESFire(keys *cardkey.Source, dev uint32, vehicle string, loc *time.Location) *DESFireCards {
	return &DESFireCards{Keys: keys, Device: dev, Fleet: cardtx.Fleet{dev: vehicle}, Location: loc}
}

// Begin implements CardReader.
func (d *DESFireCards) Begin(ctx context.Context, tr apdu.Transport, uid []byte, now time.Time) (Session, error) {
	loc := d.Location
	if loc == nil {
		loc = time.UTC
	}
	s, err := cardtx.ReadWith(ctx, desfire.New(tr), d.Keys, uid, now, loc, cardtx.Options{EV1: d.EV1})
	if err != nil {
		return nil, err
	}
	return &desfireSession{d: d, s: s}, nil
}

type desfireSession struct {
	d *DESFireCards
	s *cardtx.Session
}

func (s *desfireSession) Card() fare.Card { return s.s.Fare(s.d.Fleet) }

func (s *desfireSession) Evidence() Evidence {
	e := Evidence{DeviceNumber: s.d.Device}
	if r, ok := s.s.LastTap(); ok {
		e.Prev = CardRide(r)
	}
	return e
}

// CardRide is a tap log record as a tap carries it (tap.Tap.Prev).
func CardRide(r card.TapRecord) tap.CardRide {
	return tap.CardRide{Device: r.Device, Seq: r.Seq, Time: r.Time.Time().UTC(), Carrier: r.Carrier, Route: r.Route,
		Product: r.Product.String(), ChargedKop: int64(r.Charged)}
}

func (s *desfireSession) Commit(ctx context.Context, dec fare.Decision, rec *tap.Tap) error {
	at, err := card.StampOf(rec.Time)
	if err != nil {
		return fmt.Errorf("tap time %s: %w", rec.Time, err)
	}
	err = s.s.Commit(ctx, dec, card.TapRecord{Time: at, Device: s.d.Device, Seq: uint32(rec.Seq),
		Carrier: s.d.Carrier, Route: s.d.Route})
	if errors.Is(err, cardtx.ErrInsufficientFunds) {
		return &Refusal{Reason: fare.ReasonInsufficientFunds, Err: err}
	}
	if m, ok := s.s.CardMAC(); ok && err == nil {
		// The journal's settled record replaces the pending one, so the
		// card's signature travels with the tap.
		rec.CardMAC = TapCardMAC(m)
	}
	return err
}

// TapCardMAC is a card's Transaction MAC as a tap carries it.
func TapCardMAC(m cardtx.CardMAC) *tap.CardMAC {
	return &tap.CardMAC{TMC: m.TMC, TMV: m.TMV, UID: m.UID, KeyVersion: m.KeyVersion,
		Contract: m.Contract, Prev: m.Prev, DebitKop: int64(m.Debit), Record: m.Record}
}
