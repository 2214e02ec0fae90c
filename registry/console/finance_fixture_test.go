package console_test

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	cstore "github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// Carriers of seedYear besides the fixture's ATP-1 and ATP-2: one named in
// Cyrillic, as a city's own carrier is.
const kyivCarrier = "Київпастранс"

// yearMonths are the twelve months the finance chart shows for period.
var yearMonths = []string{"2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05",
	"2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"}

// seedYear adds benefit rides on device TRAM-4 to the eleven months before
// the fixture's November, pensioners' rides that re-rating proves,
// different each month: ATP-1 in every month but
// June, 2026-06 has none at all, Київпастранс in every other month, ATP-2
// every third. September 2026 is closed (with a stand-in seal: the chart
// needs a closed month, not a verifiable one).
func (f *fixture) seedYear() {
	t, ctx := f.t, f.ctx
	var taps []tap.Tap
	var recs []cstore.CardRecord
	add := func(at time.Time, carrier string, kop int64) {
		card := 9000 + uint64(len(taps))
		taps = append(taps, tap.Tap{Device: "TRAM-4", Seq: uint64(len(taps) + 1), Time: at.Add(time.Duration(len(taps)) * time.Minute),
			Card: card, Carrier: carrier, Route: "14", Result: tap.Accepted, Product: "benefit",
			Category: "11", Funding: "city", FareKop: kop, CompensationKop: kop, TariffVersion: fixtureTariff, CardCommitted: true})
		recs = append(recs, cstore.CardRecord{Card: card, Entitlements: []cstore.RecordEntitlement{entitled(11, "2020-01-01", "2030-12-31", "city")}})
	}
	for i, m := range yearMonths[:11] {
		if m == "2026-06" {
			continue
		}
		p, err := cstore.ParsePeriod(m)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(p.Year(), p.Month(), 10, 12, 0, 0, 0, f.kyiv)
		for range i + 1 {
			add(at, "ATP-1", 1500)
		}
		if i%2 == 0 {
			add(at.Add(time.Hour), kyivCarrier, 800)
			add(at.Add(time.Hour), kyivCarrier, 800)
		}
		if i%3 == 0 {
			add(at.Add(2*time.Hour), "ATP-2", 1500)
		}
	}
	// Claims clearing's re-rating proves: the close judges them first.
	f.prove(recs)
	if _, _, err := f.clr.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	seal := func(_ context.Context, s *cstore.Statement) error {
		h := sha256.Sum256([]byte("fixture " + s.Period))
		s.Hash, s.Signature, s.KeyRef = h[:], make([]byte, 64), "sign-statement@fixture"
		return nil
	}
	if _, err := f.clr.CloseStatements(ctx, "2026-09", time.Date(2026, 10, 2, 9, 0, 0, 0, f.kyiv), seal); err != nil {
		t.Fatal(err)
	}
}

// Cards and devices of seedReconciliation.
const (
	hotCard    = 424242 // hotlisted, then accepted on BUS-21
	clonedCard = 515151 // on BUS-21 and BUS-22, 11 km apart in 4 minutes
)

// seedReconciliation gives November what reconciliation looks for: a
// sequence gap on BUS-21 (4–6) of which a late batch fills 5, a repeated
// tap, two quarantined batches, a tap of a hotlisted card, a card seen on
// two buses too far apart (a suspected clone, booked to ATP-3) and a
// clock that ran backwards on BUS-22.
func (f *fixture) seedReconciliation() {
	t, ctx := f.t, f.ctx
	at := time.Date(2026, 11, 12, 8, 0, 0, 0, f.kyiv)
	purse := func(dev string, seq uint64, when time.Time, card uint64) tap.Tap {
		return tap.Tap{Device: dev, Seq: seq, Time: when, Card: card, Carrier: "ATP-3", Route: "21", Vehicle: "V-" + dev,
			Result: tap.Accepted, Reason: "ok", Product: "purse", FareKop: 1500, ChargedKop: 1500, CardCommitted: true}
	}
	benefit := func(dev string, seq uint64, when time.Time, lat, lon int32) tap.Tap {
		tp := purse(dev, seq, when, clonedCard)
		tp.Product, tp.ChargedKop, tp.Category, tp.Funding, tp.CompensationKop = "benefit", 0, "veteran", "state", 1500
		tp.Lat, tp.Lon = lat, lon
		return tp
	}
	if _, err := f.clr.AddHotlist(ctx, []cstore.HotlistEntry{{Card: hotCard, From: at.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]tap.Tap{
		{purse("BUS-21", 1, at, hotCard), benefit("BUS-21", 2, at.Add(time.Minute), 50_450_000, 30_523_000), purse("BUS-21", 3, at.Add(2*time.Minute), 7)},
		{purse("BUS-21", 7, at.Add(10*time.Minute), 7), purse("BUS-21", 8, at.Add(11*time.Minute), 7)},
		{purse("BUS-21", 5, at.Add(6*time.Minute), 7), purse("BUS-21", 2, at.Add(time.Minute), clonedCard)}, // late 5, and 2 again
		{benefit("BUS-22", 1, at.Add(5*time.Minute), 50_520_000, 30_400_000), purse("BUS-22", 2, at.Add(-time.Hour), 8)},
	} {
		if _, _, err := f.clr.AddTaps(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// The cloned-card check runs beside ingest (clearing/clonecheck);
	// here, once, by hand.
	if _, _, err := f.clr.CheckClones(ctx, 100); err != nil {
		t.Fatal(err)
	}
	for _, q := range []ingest.Rejected{
		{Device: "BUS-21", Reason: ingest.ReasonBadMAC, Detail: "batch MAC does not verify", Raw: []byte{1}, Received: at.Add(3 * time.Hour)},
		{Reason: ingest.ReasonMalformed, Detail: "truncated batch", Raw: []byte{2}, Received: at.Add(4 * time.Hour)},
	} {
		if err := f.clr.Quarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
}
