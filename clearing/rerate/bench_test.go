package rerate_test

import (
	"testing"
	"time"

	citycard "github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/cardmac/cardmactest"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/validator/tap"
)

// BenchmarkCard measures re-rating alone, without a database: a month of
// a student's rides (two a day, a quota of 50, on buses and trams, each
// tap with the card's evidence naming the ride before) judged in one
// window, as a store's pass judges a card whose rides all arrived.
// rides/s is the rides judged.
func BenchmarkCard(b *testing.B) { benchCard(b, false) }

// BenchmarkCardSigned is BenchmarkCard on an EV3: every ride's
// Transaction MAC is verified as well (the key comes from the HSM once
// per card and pass, outside this loop).
func BenchmarkCardSigned(b *testing.B) { benchCard(b, true) }

func benchCard(b *testing.B, signed bool) {
	w := newWorld(b)
	num, _ := citycard.NewNumber(1001, 9001)
	c := newCard(uint64(num), ent("31", 50))
	start := time.Date(2026, 11, 1, 8, 0, 0, 0, kyiv)
	var taps []tap.Tap
	for d := range 30 {
		day := start.AddDate(0, 0, d)
		taps = append(taps, w.tap("BUS-1", c, day), w.tap("TRAM-1", c, day.Add(9*time.Hour)))
	}
	facts := w.worldFacts(start.AddDate(0, 1, 0))
	if signed {
		for i := range taps {
			if err := cardmactest.Sign(&taps[i], ev3Key, ev3UID, uint32(i+1)); err != nil {
				b.Fatal(err)
			}
		}
		facts.CardMACKeys = macKeys()
	}
	cf := &rerate.CardFacts{Records: records(c)}
	rs := rides(taps...)
	months := map[string]bool{"2026-11": true}
	judged := 0
	b.ResetTimer()
	for range b.N {
		res := rerate.Card(facts, cf, rs, months)
		judged += len(res.Verdicts)
	}
	b.ReportMetric(float64(judged)/b.Elapsed().Seconds(), "rides/s")
	if judged == 0 {
		b.Fatal("nothing judged")
	}
	if res := rerate.Card(facts, cf, rs, months); res.Verdicts[0].State != rerate.Paid {
		b.Fatalf("first ride %s %s: the benchmark judges honest rides", res.Verdicts[0].State, res.Verdicts[0].Reason)
	}
}
