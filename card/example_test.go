package card_test

import (
	"fmt"
	"log"
	"time"

	"github.com/citycard/transit/card"
)

// Build a card's transport data at the desk and encode each file as
// personalisation writes it.
func Example() {
	num, err := card.ParseNumber("9804 0000 0123 4565")
	if err != nil {
		log.Fatal(err)
	}
	contract := card.Contract{
		KeyVersion: 1,
		Status:     card.StatusActive,
		Number:     num,
		Expires:    card.MustDate(2031, time.December, 31),
		Entitlements: [card.MaxEntitlements]card.Entitlement{{
			Category:  101, // pensioner, from the registry's category table
			ValidFrom: card.MustDate(2026, time.January, 1),
			ValidTo:   card.MustDate(2026, time.December, 31),
			Limit:     50,
			Funding:   card.FundingState,
		}},
	}
	contractBytes, err := contract.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}

	// The first ride on that entitlement in November 2026, as the
	// validator logs it: the record carries the month's ride counts.
	nov, _ := card.NewMonth(2026, time.November)
	counts, err := card.CountsAfter(nil, nov, 0, 101)
	if err != nil {
		log.Fatal(err)
	}
	ride := card.TapRecord{Time: 848_000_000, Device: 70_001, Seq: 1, Carrier: 1, Route: 47,
		Product: card.ProductBenefit, Result: card.ResultAccepted, Slot: 0, Counts: counts}
	rideBytes, err := ride.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}

	layout := card.CityCard()
	app, _ := layout.App(card.AIDTransport)
	for _, f := range app.Files {
		fmt.Printf("file %d %-8s %-13s %-10s rights % x\n", f.No, f.Name, f.Type, f.Comm, f.Rights.Bytes())
	}
	fmt.Printf("contract % x\n", contractBytes)
	fmt.Printf("ride % x\n", rideBytes)

	var back card.Contract
	if err := back.UnmarshalBinary(contractBytes); err != nil {
		log.Fatal(err)
	}
	fmt.Println(back.Number.Grouped(), back.Status, back.Entitlements[0].Funding, back.Entitlements[0].ValidTo)
	// Output:
	// file 1 contract std           enciphered rights 30 12
	// file 2 purse    value         MAC        rights 20 1f
	// file 4 taplog   cyclic-record enciphered rights 10 4f
	// contract 01 01 01 22 d4 af a1 73 96 85 2d a7 00 65 25 19 26 85 32 02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
	// ride 02 32 8b 74 00 00 01 11 71 00 00 00 01 00 01 00 2f 00 00 00 00 03 01 00 00 65 1a 0b 01 00 00 00 00 00
	// 9804 0000 0123 4565 active state 2026-12-31
}
