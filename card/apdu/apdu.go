// Package apdu defines how card code talks to a card: one ISO/IEC 7816-4
// command APDU in, one response APDU out. The PC/SC reader, the vpcd-backed
// virtual card and the in-process virtual card all satisfy Transport, so the
// same card code runs against each of them.
package apdu

import (
	"errors"
	"fmt"
)

// Transport exchanges one command APDU for one response APDU (data
// followed by SW1 SW2). Implementations are not required to be safe for
// concurrent use: one card, one conversation.
type Transport interface {
	Transmit(cmd []byte) ([]byte, error)
}

// TransportFunc adapts a function to Transport.
type TransportFunc func(cmd []byte) ([]byte, error)

// Transmit calls f(cmd).
func (f TransportFunc) Transmit(cmd []byte) ([]byte, error) { return f(cmd) }

// ErrCardRemoved is returned (wrapped) by a transport when the card left the
// field during or before the exchange. Callers treat the card write as not
// committed.
var ErrCardRemoved = errors.New("card removed")

// Response is a decoded response APDU.
type Response struct {
	Data []byte
	SW1  byte
	SW2  byte
}

// SW returns the status word as one number, e.g. 0x9000.
func (r Response) SW() uint16 { return uint16(r.SW1)<<8 | uint16(r.SW2) }

// ParseResponse splits a raw response APDU into data and status word.
func ParseResponse(raw []byte) (Response, error) {
	if len(raw) < 2 {
		return Response{}, fmt.Errorf("apdu: response of %d bytes has no status word", len(raw))
	}
	n := len(raw) - 2
	return Response{Data: raw[:n:n], SW1: raw[n], SW2: raw[n+1]}, nil
}
