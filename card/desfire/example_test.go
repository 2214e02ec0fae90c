package desfire_test

import (
	"fmt"

	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

// A purse debit against the in-process virtual card; a PC/SC reader or the
// vpcd-backed card is used the same way.
func Example() {
	card := vcard.New([]byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66})
	key := make([]byte, 16) // a fresh virtual card's keys are AES zero keys
	purse := desfire.AID{0x03, 0xC1, 0xF4}

	c := desfire.New(card)
	_ = c.AuthenticateAES(0, key) // PICC master key
	_ = c.CreateApplication(purse, 0x0F, 2)
	_ = c.SelectApplication(purse)
	_ = c.AuthenticateAES(0, key)
	rights := desfire.AccessRights{Read: 1, Write: 1, ReadWrite: 0, Change: 0}
	_ = c.CreateValueFile(1, desfire.CommMAC, rights, desfire.ValueLimits{Upper: 100000, Value: 1000})

	// The validator's part.
	_ = c.AuthenticateAES(1, key)
	if err := c.Debit(1, 150, desfire.CommMAC); err != nil {
		fmt.Println(err)
		return
	}
	_ = c.CommitTransaction()
	v, err := c.GetValue(1, desfire.CommMAC)
	fmt.Println(v, err)
	// Output: 850 <nil>
}
