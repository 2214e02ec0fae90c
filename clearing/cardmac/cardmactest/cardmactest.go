// Package cardmactest signs taps as an EV2/EV3 card signs its committed
// transactions, for tests of what clearing does with a card's Transaction
// MAC without a virtual card and a validator in the loop. The bytes the
// real card MACs are checked against the virtual card in clearing/cardmac's
// own tests; here they are rebuilt from the tap's fields.
package cardmactest

import (
	"fmt"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/clearing/cardmac"
	"github.com/citycard/transit/validator/tap"
)

// Sign gives tp the Transaction MAC the card with real UID uid and
// AppTransactionMACKey key (at key version 1) computes over the tap's
// card transaction with counter tmc: the contract read (the tap's card
// number), the previous record (tp.Prev), the debit and the record
// written.
func Sign(tp *tap.Tap, key [16]byte, uid []byte, tmc uint32) error {
	ct := card.Contract{Status: card.StatusActive, Number: card.Number(tp.Card), Expires: card.MustDate(2030, time.December, 31)}
	cb, err := ct.MarshalBinary()
	if err != nil {
		return fmt.Errorf("cardmactest: contract of card %d: %w", tp.Card, err)
	}
	rb, err := record(tp.Time, tp.DeviceNumber, uint32(tp.Seq), 0, 0, tp.ChargedKop, tp.Product)
	if err != nil {
		return err
	}
	m := &tap.CardMAC{TMC: tmc, UID: uid, KeyVersion: 1, Contract: cb, DebitKop: tp.ChargedKop, Record: rb}
	if p := tp.Prev; p.Device != 0 {
		if m.Prev, err = record(p.Time, p.Device, p.Seq, p.Carrier, p.Route, p.ChargedKop, p.Product); err != nil {
			return err
		}
	}
	if m.TMV, err = desfire.TransactionMAC(key[:], tmc, uid, cardmac.TMI(m)); err != nil {
		return fmt.Errorf("cardmactest: %w", err)
	}
	tp.CardMAC = m
	return nil
}

func record(at time.Time, device, seq uint32, carrier, route uint16, charged int64, product string) ([]byte, error) {
	s, err := card.StampOf(at)
	if err != nil {
		return nil, fmt.Errorf("cardmactest: time %s: %w", at, err)
	}
	r := card.TapRecord{Time: s, Device: device, Seq: seq, Carrier: carrier, Route: route, Charged: card.Money(charged),
		Result: card.ResultAccepted, Slot: card.NoSlot}
	for _, p := range []card.Product{card.ProductPurse, card.ProductPass, card.ProductBenefit, card.ProductTransfer} {
		if p.String() == product {
			r.Product = p
		}
	}
	b, err := r.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("cardmactest: record of device %d sequence %d: %w", device, seq, err)
	}
	return b, nil
}
