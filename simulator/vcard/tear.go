package vcard

import (
	"fmt"

	"github.com/citycard/transit/card/apdu"
)

// Tear is an apdu.Transport that lets After APDUs through to Card and then
// tears the card out of the field: the card is Reset and every later
// APDU fails with an error wrapping apdu.ErrCardRemoved. With
// LoseResponse the APDU at the tear point still reaches the card, but its
// answer is lost, as when the card leaves just after executing it.
type Tear struct {
	Card         *Card
	After        int
	LoseResponse bool
	n            int
}

// Transmit passes cmd to the card until the tear point.
func (t *Tear) Transmit(cmd []byte) ([]byte, error) {
	t.n++
	if t.n <= t.After {
		return t.Card.Transmit(cmd)
	}
	if t.n == t.After+1 {
		if t.LoseResponse {
			t.Card.Respond(cmd)
		}
		t.Card.Reset()
	}
	return nil, fmt.Errorf("vcard: card torn away after %d APDUs: %w", t.After, apdu.ErrCardRemoved)
}

// Torn reports whether the tear point has been reached.
func (t *Tear) Torn() bool { return t.n > t.After }
