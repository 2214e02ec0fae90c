// Package cardmac checks the Transaction MAC that a DESFire EV2 or EV3
// card computes over every committed tap (card/desfire, "Transaction
// MAC"): the proof that a ride happened on a genuine card, not merely that
// a device with a valid batch key says so.
//
// The tap carries the card's counter (TMC) and MAC (TMV) and the plain
// bytes of every command the card MACed (tap.CardMAC). Check, a pure
// function, rebuilds the Transaction MAC Input from those bytes, computes
// the TMV with the card's AppTransactionMACKey, and checks that what the
// card MACed agrees with the tap: the card number of the contract read,
// the record written (time, device number, sequence, charge, product,
// result), the purse debit and the previous record. Verifier adds the one
// HSM call: the card's key, diversified from the tmac-master by UID
// (cardkey.TMACKey), which only clearing's HSM (and the issuer's keystore
// that writes it onto cards) holds.
//
// What clearing does with a verdict (clearing/rerate, the rule): a ride is
// card-signed when Signed; an Invalid one is held (card-mac-invalid), and
// so is a ride without a MAC of a card that signs its other rides
// (card-mac-missing). Unproven (a first tap's MAC, which names no card
// number) is taken as the card's when it is of the UID the card signs its
// other rides with, and held otherwise. Re-rating calls Check with keys
// from clearing's HSM (HSMKeys, store.Options.CardMACKeys).
package cardmac

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/validator/tap"
)

// Verdict is what a tap's Transaction MAC proves.
type Verdict uint8

// Verdicts.
const (
	// None: the tap carries no Transaction MAC. Right for an EV1, wrong
	// for an EV2 or EV3 (the caller knows the card's generation).
	None Verdict = iota
	// Signed: the MAC verifies and everything the card MACed agrees with
	// the tap.
	Signed
	// Invalid: the MAC does not verify, or the card MACed something other
	// than what the tap says.
	Invalid
	// Unproven: the MAC verifies but the MACed bytes hold no contract (a
	// card's first tap, whose empty log restarted the session), so they
	// do not name the card: the caller binds UID to card number.
	Unproven
)

func (v Verdict) String() string {
	switch v {
	case None:
		return "no card MAC"
	case Signed:
		return "card-signed"
	case Invalid:
		return "card MAC invalid"
	case Unproven:
		return "card MAC without the card number"
	}
	return fmt.Sprintf("Verdict(%d)", uint8(v))
}

// Held reports whether a ride of an EV2 or EV3 card with this verdict
// must be held rather than paid.
func (v Verdict) Held() bool { return v != Signed }

// TMI rebuilds the Transaction MAC Input of the tap's card transaction,
// in the order the validator sends the commands (validator/cardtx):
// ReadData of the contract, ReadRecords of the newest tap record, Debit,
// WriteRecord, each present only when it was MACed.
func TMI(m *tap.CardMAC) desfire.TMI {
	var t desfire.TMI
	if len(m.Contract) > 0 {
		t = t.ReadData(card.FileContract, 0, m.Contract)
	}
	if len(m.Prev) > 0 {
		t = t.ReadRecords(card.FileTapLog, 0, 1, m.Prev)
	}
	if m.DebitKop > 0 {
		t = t.Value(desfire.InsDebit, card.FilePurse, int32(m.DebitKop))
	}
	return t.WriteRecord(card.FileTapLog, 0, m.Record)
}

// Check is the pure verification of tap t with the card's Transaction MAC
// key; err says why a verdict is Invalid.
func Check(t *tap.Tap, key [16]byte) (Verdict, error) {
	m := t.CardMAC
	if m == nil {
		return None, nil
	}
	if m.DebitKop < 0 || m.DebitKop > int64(card.PurseUpper) {
		return Invalid, fmt.Errorf("debit %d kop outside the purse", m.DebitKop)
	}
	want, err := desfire.TransactionMAC(key[:], m.TMC, m.UID, TMI(m))
	if err != nil {
		return Invalid, err
	}
	if subtle.ConstantTimeCompare(want[:], m.TMV[:]) != 1 {
		return Invalid, errors.New("the Transaction MAC does not verify: not what the card computed")
	}
	if err := agrees(t, m); err != nil {
		return Invalid, err
	}
	if len(m.Contract) == 0 {
		return Unproven, nil
	}
	return Signed, nil
}

// agrees checks the tap's fields against what the card MACed.
func agrees(t *tap.Tap, m *tap.CardMAC) error {
	if len(m.Contract) > 0 {
		var ct card.Contract
		if err := ct.UnmarshalBinary(m.Contract); err != nil {
			return fmt.Errorf("MACed contract: %w", err)
		}
		if uint64(ct.Number) != t.Card {
			return fmt.Errorf("the card MACed the contract of card %d, the tap names card %d", uint64(ct.Number), t.Card)
		}
	}
	var r card.TapRecord
	if err := r.UnmarshalBinary(m.Record); err != nil {
		return fmt.Errorf("MACed tap record: %w", err)
	}
	at, err := card.StampOf(t.Time)
	if err != nil {
		return fmt.Errorf("tap time: %w", err)
	}
	switch {
	case r.Time != at:
		return fmt.Errorf("the card recorded the ride at %s, the tap at %s", r.Time.Time().UTC(), t.Time)
	case t.DeviceNumber != 0 && r.Device != t.DeviceNumber:
		return fmt.Errorf("the card recorded device %d, the tap device %d", r.Device, t.DeviceNumber)
	case r.Seq != uint32(t.Seq):
		return fmt.Errorf("the card recorded sequence %d, the tap %d", r.Seq, uint32(t.Seq))
	case int64(r.Charged) != t.ChargedKop:
		return fmt.Errorf("the card recorded a charge of %d kop, the tap %d", int64(r.Charged), t.ChargedKop)
	case r.Product.String() != t.Product:
		return fmt.Errorf("the card recorded product %s, the tap %q", r.Product, t.Product)
	case r.Result != card.Result(tap.Accepted) || t.Result != tap.Accepted:
		return fmt.Errorf("the card recorded result %d for a tap that is %s", r.Result, t.Result)
	case m.DebitKop != t.ChargedKop:
		return fmt.Errorf("the card debited %d kop, the tap charged %d", m.DebitKop, t.ChargedKop)
	}
	if len(m.Prev) > 0 {
		var p card.TapRecord
		if err := p.UnmarshalBinary(m.Prev); err != nil {
			return fmt.Errorf("MACed previous record: %w", err)
		}
		if t.Prev.Device != p.Device || t.Prev.Seq != p.Seq || !t.Prev.Time.Equal(p.Time.Time()) {
			return fmt.Errorf("the tap's previous ride (device %d, sequence %d) is not the one the card read (device %d, sequence %d)",
				t.Prev.Device, t.Prev.Seq, p.Device, p.Seq)
		}
	} else if t.Prev.Device != 0 {
		return errors.New("the tap names a previous ride the card did not read")
	}
	return nil
}

// Keys gives a card's Transaction MAC key: cardkey.Source over clearing's
// HSM implements it.
type Keys interface {
	TMACKey(ctx context.Context, uid []byte, version int) (cardkey.Key, error)
}

// Verifier verifies taps' Transaction MACs with keys from clearing's HSM.
type Verifier struct {
	Keys Keys
}

// Verify is Check with the card's key from the HSM. An error is an HSM
// failure (the verdict is then unknown, and the ride waits); a forged MAC
// or disagreeing bytes are the verdict Invalid, with the reason in why.
func (v *Verifier) Verify(ctx context.Context, t *tap.Tap) (verdict Verdict, why error, err error) {
	m := t.CardMAC
	if m == nil {
		return None, nil, nil
	}
	if len(m.UID) != cardkey.UIDSize || m.KeyVersion == 0 {
		return Invalid, fmt.Errorf("card MAC with a %d-byte UID and key version %d", len(m.UID), m.KeyVersion), nil
	}
	k, err := v.Keys.TMACKey(ctx, m.UID, int(m.KeyVersion))
	if err != nil {
		return None, nil, fmt.Errorf("cardmac: tap %s/%d: %w", t.Device, t.Seq, err)
	}
	verdict, why = Check(t, k.Value)
	return verdict, why, nil
}

// HSMKeys gives re-rating (store.Options.CardMACKeys) the cards'
// Transaction MAC keys from clearing's HSM.
type HSMKeys struct {
	Keys Keys
}

// CardMACKey returns the Transaction MAC key of card uid at version.
func (h HSMKeys) CardMACKey(ctx context.Context, uid []byte, version uint8) ([16]byte, error) {
	k, err := h.Keys.TMACKey(ctx, uid, int(version))
	if err != nil {
		return [16]byte{}, fmt.Errorf("cardmac: key of card %X version %d: %w", uid, version, err)
	}
	return k.Value, nil
}
