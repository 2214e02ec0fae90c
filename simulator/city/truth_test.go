package city_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/simulator/city"
	"github.com/citycard/transit/simulator/testenv"
)

// tariffDir is the sample city tariff the simulations ride on.
var tariffDir = os.DirFS("../../testdata/tariff")

// TestTruthWeek runs a week of a city across a month's close with every
// fault: a pilot fleet at full fidelity (virtual cards through the real
// validators, journals and uploaders) and the rest of the city fast, over
// the Kafka-protocol broker into clearing on PostgreSQL. November is
// closed on 1 December while some validators are still offline; their
// November rides arrive later and must go into an adjustment statement.
// At the end every validator reconnects, the open months are closed too,
// and every statement must equal, to the kopiyka, what the simulator
// knows is owed; every forged batch must be quarantined; and every
// device's taps must be stored once each, 1 to n, field for field. Some
// of the fast lane's validators are dishonest: each of their lies must be
// held for its reason, and no honest ride held.
func TestTruthWeek(t *testing.T) {
	broker := testenv.Kafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	started := time.Now()

	cfg, err := city.LoadConfig("testdata/week.json")
	if err != nil {
		t.Fatal(err)
	}
	full := fullCards
	if raceDetector {
		cfg.Scale *= raceScale
		full = int(float64(full) * raceScale)
	}
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		t.Fatal(err)
	}
	db := testenv.PostgresSchema(t)
	if _, err := postgres.Migrate(ctx, db, loc); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, db, store.Options{Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kc := kafka.Config{Brokers: []string{broker}, Topic: fmt.Sprintf("citysim-%x", rand.Uint32())}
	if err := kafka.CreateTopic(ctx, kc, 4); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewProducer(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := kafka.NewConsumer(ctx, kc, "clearing")
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()

	sim, err := city.New(ctx, cfg, city.Options{Dir: t.TempDir(), Tariff: tariffDir, Fidelity: city.Mixed,
		FullCards: full, FullVehicles: 1, Store: st, Producer: prod, Consumer: cons, Audit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	var late, offline, forged, replayed int64
	novemberClosed := false
	cmp, err := sim.Run(ctx, true, func(d city.DayReport, e city.EndReport) {
		t.Logf("%s: %d taps (%d accepted, %d already paid, %d denied, %d hotlisted), %d torn, %d power cuts; %d validators offline; %d batches; %d late rides; closed %d statements",
			d.Date.Format("Mon 02 Jan"), d.Taps, d.Accepted, d.AlreadyPaid, d.Denied, d.Hotlisted, d.Torn, d.PowerCuts, e.Offline, e.Batches, e.LateRides, len(e.Closed))
		late += e.LateRides
		offline += int64(e.Offline)
		forged += int64(e.Forged)
		replayed += int64(e.Replayed)
		for _, s := range e.Closed {
			novemberClosed = novemberClosed || s.Period == "2026-11" && e.Date.Format(time.DateOnly) == "2026-12-01"
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := city.WriteComparison(&report, cmp); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", report.String())
	if !cmp.OK() {
		t.Fatalf("clearing differs from the truth")
	}

	// The week must have exercised what it claims to.
	stats := sim.Stats()
	t.Logf("%+v; ingest %+v; took %v", stats, sim.Totals(), time.Since(started))
	for what, n := range map[string]int64{"torn taps": stats.Torn, "power cuts": stats.PowerCuts, "lost cards": stats.Lost,
		"hotlisted taps": stats.Hotlisted, "top-ups": stats.TopUps, "late benefit rides": late, "offline validator-days": offline,
		"replayed batches": replayed, "forged batches": forged, "repeated taps": cmp.Taps.Duplicates, "taps compared field by field": cmp.Taps.Audited} {
		if n == 0 {
			t.Errorf("the week had no %s", what)
		}
	}
	if !novemberClosed {
		t.Errorf("November was not closed at the end of 1 December")
	}
	var adjustment, closedNovember *city.StatementCheck
	for i, s := range cmp.Statements {
		switch {
		case s.Period == "2026-12" && s.Adjusts == "2026-11":
			adjustment = &cmp.Statements[i]
		case s.Period == "2026-11" && s.Adjusts == "":
			closedNovember = &cmp.Statements[i]
		}
	}
	if closedNovember == nil || !closedNovember.Closed || closedNovember.ClearingTotal().CompensationKop == 0 {
		t.Fatalf("no closed November statement with compensation: %+v", closedNovember)
	}
	if adjustment == nil || !adjustment.Closed || adjustment.ClearingTotal().Rides != late {
		t.Fatalf("the adjustment of November in December's statements should hold the %d late rides: %+v", late, adjustment)
	}
	// The dishonest validators' lies are all held, each kind for its
	// reason (Compare fails on any other verdict).
	held := map[string]int{}
	for _, l := range cmp.Dishonest.Lines {
		held[l.Reason] += l.Held
	}
	for _, r := range []string{"differs", "over-tariff", "amount-invalid", "contradicted-by-card"} {
		if held[r] == 0 {
			t.Errorf("the week held no lie for %s: %v", r, held)
		}
	}
	if cmp.Taps.Stored != stats.Taps || cmp.Taps.Pending != 0 {
		t.Fatalf("clearing stored %d taps, the validators journalled %d (%d undelivered)", cmp.Taps.Stored, stats.Taps, cmp.Taps.Pending)
	}
	if took := time.Since(started); took > 2*time.Minute {
		t.Errorf("the truth check took %v; keep it near a minute", took)
	}
}
