package report_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

// fillProven is fill with claims that re-rating proves (the store suite's
// tariff and registry records), for tests that close a period: a close
// judges every claim first and pays only what it proves.
func fillProven(t *testing.T, st store.Store, n int) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 11))
	start := time.Date(2026, 10, 31, 12, 0, 0, 0, kyiv)
	var taps []tap.Tap
	for i := range n {
		tp := storetest.Ride(fmt.Sprintf("BUS-%d", i%3), uint64(i/3+1), start.Add(time.Duration(i)*40*time.Minute))
		tp.Card = 1 + r.Uint64N(300)
		switch tp.Card % 3 {
		case 1: // a student: half price
			tp.Category, tp.ChargedKop, tp.CompensationKop = "31", 750, 750
		case 2: // a veteran: a flat 7.50 from the state
			tp.Category, tp.Funding, tp.CompensationKop = "12", "state", 750
		}
		if i%4 == 0 { // a tram
			tp.Carrier, tp.Route, tp.FareKop = "Електротранс", "T1", 800
			switch tp.Category {
			case "11":
				tp.CompensationKop = 800
			case "31":
				tp.ChargedKop, tp.CompensationKop = 400, 400
			}
		}
		taps = append(taps, tp)
	}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(t.Context(), taps); err != nil {
		t.Fatal(err)
	}
}
