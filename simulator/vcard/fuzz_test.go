package vcard_test

import (
	"bytes"
	"testing"

	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

// cardIn returns a personalised card in one of several states.
func cardIn(t *testing.T, state byte) *vcard.Card {
	card := vcard.New(testUID)
	switch state % 5 {
	case 0: // factory fresh
		return card
	}
	personalise(t, card)
	c := desfire.New(card)
	switch state % 5 {
	case 1: // PICC level, personalised
	case 2: // application selected
		must(t, "select", c.SelectApplication(transportAID))
	case 3: // validator session with a transaction pending
		must(t, "select", c.SelectApplication(transportAID))
		must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
		must(t, "debit", c.Debit(filePurse, 1, desfire.CommMAC))
	case 4: // mid-authentication
		must(t, "select", c.SelectApplication(transportAID))
		card.Respond([]byte{0x90, 0xAA, 0, 0, 1, keyIssuer, 0})
	}
	return card
}

// FuzzRespond: any APDU sequence, in any card state, gets an answer that
// ends in a status word, and never panics.
func FuzzRespond(f *testing.F) {
	f.Add(byte(0), h("9060000000"), h("90AF000000"))
	f.Add(byte(1), h("FFCA000000"), h("905A000003"))
	f.Add(byte(2), h("90BD0000070100000000000000"), h("90AF000000"))
	f.Add(byte(3), h("90DC0000050201000000"), h("90C7000000"))
	f.Add(byte(3), h("903D000027030000001800000000"), h("90AF00000100"))
	f.Add(byte(1), h("00A4040C07D2760000850100"), h("906D000000"))
	f.Add(byte(2), h("00A4020C020104"), h("9061000000"))
	f.Add(byte(2), h("90C100000A0601E0EE10000004000000"), h("903B0000170600000010000000"+"00112233445566778899AABBCCDDEEFF"+"00"))
	f.Add(byte(4), h("90AF000020"+"00000000000000000000000000000000"+"00000000000000000000000000000000"+"00"), h("9051000000"))
	f.Fuzz(func(t *testing.T, state byte, a, b []byte) {
		card := cardIn(t, state)
		for _, cmd := range [][]byte{a, b, a} {
			resp := card.Respond(cmd)
			if len(resp) < 2 {
				t.Fatalf("Respond(%X) = %X: no status word", cmd, resp)
			}
			sw1 := resp[len(resp)-2]
			if sw1 != 0x91 && sw1 != 0x90 && sw1 != 0x67 && sw1 != 0x6A && sw1 != 0x6D && sw1 != 0x6E {
				t.Fatalf("Respond(%X) = %X: unexpected SW1", cmd, resp)
			}
		}
		// The card stays usable: a fresh session still works.
		card.Reset()
		if state%5 != 0 {
			c := desfire.New(card)
			must(t, "select after fuzz", c.SelectApplication(transportAID))
		}
	})
}

// FuzzUnmarshalBinary: arbitrary state bytes are rejected or loaded, never
// panic, and what loads saves back to the same bytes (a version 2 state,
// which has no ISO identifiers, as the version 3 state that loads the
// same).
func FuzzUnmarshalBinary(f *testing.F) {
	fresh, _ := vcard.New(testUID).MarshalBinary()
	f.Add(fresh)
	card := vcard.New(testUID)
	personalise(f, card)
	full, _ := card.MarshalBinary()
	f.Add(full)
	iso, _ := isoCard(f, vcard.EV2).MarshalBinary()
	f.Add(iso)
	f.Fuzz(func(t *testing.T, data []byte) {
		c := vcard.New(nil)
		if err := c.UnmarshalBinary(data); err != nil {
			return
		}
		out, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if data[4] == 2 {
			c2 := vcard.New(nil)
			if err := c2.UnmarshalBinary(out); err != nil {
				t.Fatalf("a version 2 state saves as one that does not load: %v", err)
			}
			data, _ = c2.MarshalBinary()
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("loaded state does not save back")
		}
		c.Respond(h("9060000000"))
	})
}
