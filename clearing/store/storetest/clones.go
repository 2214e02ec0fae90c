package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// pendingClones returns s.PendingCloneChecks, failing t on an error.
func pendingClones(t *testing.T, s store.Store) int64 {
	t.Helper()
	n, err := s.PendingCloneChecks(ctxFor(t))
	if err != nil {
		t.Fatalf("PendingCloneChecks: %v", err)
	}
	return n
}

// drainClones runs the cloned-card check until nothing is queued and
// returns how many anomalies it recorded.
func drainClones(t *testing.T, s store.Store) (found int) {
	t.Helper()
	for {
		checked, n, err := s.CheckClones(ctxFor(t), 2)
		if err != nil {
			t.Fatalf("CheckClones: %v", err)
		}
		found += n
		if checked == 0 {
			return found
		}
	}
}

// cloneRide is a compensable ride of card on vehicle at a place.
func cloneRide(device string, seq, card uint64, vehicle string, at time.Time, lat, lon int32) tap.Tap {
	r := ride(device, seq, at)
	r.Card, r.Vehicle, r.Lat, r.Lon = card, vehicle, lat, lon
	return r
}

// The centre of the city and its airport, 29 km apart.
const (
	centreLat, centreLon   = 50450100, 30523400
	airportLat, airportLon = 50345000, 30894700
)

// testCloneChecks covers the queue of cloned-card checks: what is
// queued, that a pair is found in whichever order its rides arrive and
// are checked, and recorded once.
func testCloneChecks(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	ctx := ctxFor(t)
	at := time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC)
	if checked, found, err := s.CheckClones(ctx, 10); err != nil || checked != 0 || found != 0 {
		t.Fatalf("CheckClones on an empty queue = %d, %d, %v; want 0, 0, nil", checked, found, err)
	}
	if _, _, err := s.CheckClones(ctx, 0); err == nil {
		t.Error("CheckClones with limit 0: no error")
	}

	// Rides the check cannot judge are not queued: a purse ride, a
	// refused tap, a benefit ride without a position.
	purse := cloneRide("BUS-P", 1, 500, "P-1", at, centreLat, centreLon)
	purse.Product, purse.Category, purse.Funding, purse.ChargedKop, purse.CompensationKop = "purse", "", "", 1500, 0
	refused := cloneRide("BUS-P", 2, 501, "P-1", at.Add(time.Minute), centreLat, centreLon)
	refused.Result, refused.Reason, refused.CompensationKop, refused.CardCommitted = tap.Denied, "hotlisted", 0, false
	nowhere := cloneRide("BUS-P", 3, 502, "P-1", at.Add(2*time.Minute), 0, 0)
	addTaps(t, s, []tap.Tap{purse, refused, nowhere}, 3, 0)
	if n := pendingClones(t, s); n != 0 {
		t.Fatalf("after rides the check cannot judge: %d runs queued, want 0", n)
	}

	// Card 10: the later ride arrives first and is checked alone before
	// the earlier one arrives; the earlier one's check finds the pair.
	addTaps(t, s, []tap.Tap{cloneRide("TRAM-1", 1, 10, "T-1", at.Add(5*time.Minute), airportLat, airportLon)}, 1, 0)
	if checked, found, err := s.CheckClones(ctx, 10); err != nil || checked != 1 || found != 0 {
		t.Fatalf("CheckClones of a lone ride = %d, %d, %v; want 1 run, 0 found", checked, found, err)
	}
	addTaps(t, s, []tap.Tap{cloneRide("BUS-1", 1, 10, "B-1", at, centreLat, centreLon)}, 1, 0)
	if found := drainClones(t, s); found != 1 {
		t.Errorf("card 10: found %d, want 1", found)
	}

	// Card 20: both rides queued, then checked in one call. Each finds
	// the other; the pair is recorded once.
	addTaps(t, s, []tap.Tap{cloneRide("BUS-1", 2, 20, "B-1", at.Add(time.Hour), centreLat, centreLon)}, 1, 0)
	addTaps(t, s, []tap.Tap{cloneRide("TRAM-1", 2, 20, "T-1", at.Add(time.Hour+3*time.Minute), airportLat, airportLon)}, 1, 0)
	// Card 30: the same in two calls of one run each.
	addTaps(t, s, []tap.Tap{cloneRide("BUS-1", 3, 30, "B-1", at.Add(2*time.Hour), centreLat, centreLon)}, 1, 0)
	addTaps(t, s, []tap.Tap{cloneRide("TRAM-1", 3, 30, "T-1", at.Add(2*time.Hour+3*time.Minute), airportLat, airportLon)}, 1, 0)
	if n := pendingClones(t, s); n != 4 {
		t.Fatalf("PendingCloneChecks = %d, want 4", n)
	}
	if checked, found, err := s.CheckClones(ctx, 2); err != nil || checked != 2 || found != 1 {
		t.Fatalf("CheckClones(2) = %d, %d, %v; want 2 runs, card 20 found once", checked, found, err)
	}
	if n := pendingClones(t, s); n != 2 {
		t.Errorf("PendingCloneChecks after taking 2 of 4 = %d, want 2", n)
	}
	if found := drainClones(t, s); found != 1 {
		t.Errorf("card 30: found %d, want 1", found)
	}
	if n := pendingClones(t, s); n != 0 {
		t.Errorf("PendingCloneChecks after draining = %d, want 0", n)
	}

	var cards []uint64
	for _, a := range anomaliesOf(t, s, "2026-11") {
		if a.Kind != recon.ClonedCard {
			t.Errorf("unexpected anomaly %+v", a)
			continue
		}
		if a.Device != "BUS-1" || a.OtherDevice != "TRAM-1" {
			t.Errorf("clone pair named %s/%d~%s/%d, want the BUS-1 ride first (recon.CloneAnomaly's order)",
				a.Device, a.Seq, a.OtherDevice, a.OtherSeq)
		}
		cards = append(cards, a.Card)
	}
	if fmt.Sprint(cards) != "[10 20 30]" {
		t.Errorf("cloned cards %v, want [10 20 30]", cards)
	}
	// Storing the rides again queues nothing and finds nothing new.
	addTaps(t, s, []tap.Tap{cloneRide("BUS-1", 1, 10, "B-1", at, centreLat, centreLon)}, 0, 1)
	if n := pendingClones(t, s); n != 0 {
		t.Errorf("a repeat queued %d runs", n)
	}
}

// testCloneChecksConcurrent drains one queue with checkers running at
// once: every run is checked once, every pair recorded once.
func testCloneChecksConcurrent(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	at := time.Date(2026, 11, 13, 9, 0, 0, 0, time.UTC)
	const pairs = 40
	for i := range uint64(pairs) {
		card := 100 + i
		ts := at.Add(time.Duration(i) * 10 * time.Minute)
		addTaps(t, s, []tap.Tap{cloneRide("BUS-C", i+1, card, "B-C", ts, centreLat, centreLon)}, 1, 0)
		addTaps(t, s, []tap.Tap{cloneRide("TRAM-C", i+1, card, "T-C", ts.Add(4*time.Minute), airportLat, airportLon)}, 1, 0)
	}
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		checked, found int
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, f, err := s.CheckClones(ctxFor(t), 3)
				if err != nil {
					t.Errorf("CheckClones: %v", err)
					return
				}
				mu.Lock()
				checked, found = checked+c, found+f
				mu.Unlock()
				if c == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	if checked != 2*pairs || found != pairs {
		t.Errorf("checkers at once took %d runs and found %d; want %d and %d", checked, found, 2*pairs, pairs)
	}
	if n := len(anomaliesOf(t, s, "2026-11")); n != pairs {
		t.Errorf("%d anomalies recorded, want %d", n, pairs)
	}
}
