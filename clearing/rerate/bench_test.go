package rerate_test

import (
	"testing"
	"time"

	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/validator/tap"
)

// BenchmarkCard measures re-rating alone, without a database: a month of
// a student's rides (two a day, a quota of 50, on buses and trams, each
// tap with the card's evidence naming the ride before) judged in one
// window, as a store's pass judges a card whose rides all arrived.
// rides/s is the rides judged.
func BenchmarkCard(b *testing.B) {
	w := newWorld(b)
	c := newCard(9001, ent("31", 50))
	start := time.Date(2026, 11, 1, 8, 0, 0, 0, kyiv)
	var taps []tap.Tap
	for d := range 30 {
		day := start.AddDate(0, 0, d)
		taps = append(taps, w.tap("BUS-1", c, day), w.tap("TRAM-1", c, day.Add(9*time.Hour)))
	}
	facts := w.worldFacts(start.AddDate(0, 1, 0))
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
}
