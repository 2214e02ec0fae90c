package city

import (
	"context"
	"testing"
	"time"
)

// BenchmarkFullTap is one tap through the full-fidelity path on one
// validator, one after another: the virtual card's APDUs, validator/cardtx
// and the agent's decision, and the journal's two durable writes. The
// cards are presented in turn, so every tap is a real ride (no
// anti-passback).
func BenchmarkFullTap(b *testing.B) {
	cfg := smallCity(200, 4, 1)
	cfg.Riding.PurseMinKop, cfg.Riding.PurseMaxKop = 400_000, 400_000
	cfg.Faults = Faults{}
	s := newSim(b, cfg, Options{Fidelity: Full})
	dev := s.w.devices[0]
	var cards []*cardState
	for _, r := range s.w.riders {
		cards = append(cards, r.card)
	}
	ctx := context.Background()
	var counts dayCounts
	t0 := s.w.start.Add(6 * time.Hour)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		e := &event{at: t0.Add(time.Duration(i) * 2 * time.Second), card: cards[i%len(cards)], dev: dev, kind: evRide}
		if _, _, err := s.present(ctx, e, &counts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "taps/s")
	if s.divergences > 0 {
		b.Fatalf("%d taps differ from the model: %v", s.divergences, s.samples)
	}
}

// BenchmarkFullDay rides one weekday of a 2,000-card city on 20 real
// validators at full fidelity, the validators working at once as in the
// demo; taps/s is the day's throughput.
func BenchmarkFullDay(b *testing.B) {
	benchDays(b, smallCity(2000, 20, b.N), Full)
}

// BenchmarkFastDay rides days of a city of a million people (385,000
// cardholders, 1,140 validators) at fast fidelity: decided with the card
// model, journalled in memory and sealed into batches with the devices'
// keys, without clearing. taps/s is what the fast path generates.
func BenchmarkFastDay(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Scale = 1.43
	cfg.Days = b.N
	benchDays(b, cfg, Fast)
}

func benchDays(b *testing.B, cfg Config, f Fidelity) {
	cfg.Start = "2026-11-23" // a Monday: b.N <= 5 days are working days
	s := newSim(b, cfg, Options{Fidelity: f})
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var taps int64
	for range b.N {
		d, err := s.RideDay(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.EndDay(ctx); err != nil {
			b.Fatal(err)
		}
		taps += d.Taps
	}
	b.ReportMetric(float64(taps)/time.Since(start).Seconds(), "taps/s")
	b.ReportMetric(float64(taps)/float64(b.N), "taps/day")
}
