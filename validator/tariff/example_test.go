package tariff_test

import (
	"fmt"
	"os"
	"time"

	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tariff"
)

// Price a minibus ride of the sample city at the weekday peak and at
// midday, then a transfer to a tram.
func ExampleParse() {
	tf, err := tariff.Parse(os.DirFS("../../testdata/tariff"))
	if err != nil {
		fmt.Println(err)
		return
	}
	card := fare.Card{Number: 1001_0000_0042, PurseKop: 200_00}
	minibus := fare.Device{ID: "pr7-0212", Carrier: "PRIVAT-7", Route: "45", Vehicle: "0212"}
	tram := fare.Device{ID: "et-0093", Carrier: "ELEKTROTRANS", Route: "T3", Vehicle: "0093"}
	peak := time.Date(2026, time.November, 3, 8, 15, 0, 0, tf.Location) // a Tuesday

	for _, at := range []time.Time{peak, peak.Add(4 * time.Hour)} {
		d := fare.Decide(card, tf, nil, minibus, at)
		fmt.Printf("%s minibus: %s, %d kop\n", at.Format("Mon 15:04"), d.Product, d.ChargedKop)
	}
	card.LastTap = &fare.LastTap{Time: peak, Vehicle: "0212", Carrier: 7, Route: 45, Product: fare.ProductPurse}
	d := fare.Decide(card, tf, nil, tram, peak.Add(25*time.Minute))
	fmt.Printf("then the tram: %s, %d kop of a %d kop fare\n", d.Product, d.ChargedKop, d.FareKop)
	// Output:
	// Tue 08:15 minibus: purse, 1500 kop
	// Tue 12:15 minibus: purse, 1200 kop
	// then the tram: transfer, 400 kop of a 800 kop fare
}
