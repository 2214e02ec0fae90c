package storetest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/cardmac/cardmactest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/rerate"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// runProof runs the contract of store.Proof.
func runProof(t *testing.T, open Open) {
	t.Run("Tariffs", func(t *testing.T) { testTariffs(t, open) })
	t.Run("CardRecords", func(t *testing.T) { testCardRecords(t, open) })
	t.Run("Rerate", func(t *testing.T) { testRerate(t, open) })
	t.Run("Evidence", func(t *testing.T) { testEvidence(t, open) })
	t.Run("CardMAC", func(t *testing.T) { testCardMAC(t, open) })
	t.Run("WaitingAfterClose", func(t *testing.T) { testWaitingAfterClose(t, open) })
	t.Run("RoutesAndRevoked", func(t *testing.T) { testRoutesAndRevoked(t, open) })
	t.Run("RerateConcurrent", func(t *testing.T) { testRerateConcurrent(t, open) })
}

// drainRerate re-rates everything queued, as the re-rater beside ingest
// does.
func drainRerate(t *testing.T, s store.Store) {
	t.Helper()
	for range 1000 {
		st, err := s.Rerate(ctxFor(t), 7)
		if err != nil {
			t.Fatalf("Rerate: %v", err)
		}
		if st.Runs == 0 && st.Cards == 0 {
			if n, err := s.PendingRerate(ctxFor(t)); err != nil || n != 0 {
				t.Fatalf("PendingRerate after draining = %d, %v", n, err)
			}
			return
		}
	}
	t.Fatal("re-rating never drained its queue")
}

// consistent checks that the roll-up and the taps with their judgements
// agree on every statement of period.
func consistent(t *testing.T, s store.Store, period string) {
	t.Helper()
	sts := statements(t, s, period)
	for _, st := range sts {
		if st.Closed {
			continue
		}
		checkTapLines(t, s, period, st.Adjusts, st.Lines)
	}
}

// retariffed returns the suite's tariff under another version.
func retariffed(t testing.TB, version uint32) store.TariffFile {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zr, err := zip.NewReader(bytes.NewReader(TariffZip(t)), int64(len(TariffZip(t))))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "x_tariff.txt" {
			b = []byte(strings.Replace(string(b), "\n3,", fmt.Sprintf("\n%d,", version), 1))
		}
		w, err := zw.Create(f.Name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b) //nolint:errcheck // a bytes.Buffer
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	tf := tariffFile(t)
	tf.Version, tf.Zip, tf.Digest = version, buf.Bytes(), sha256.Sum256(buf.Bytes())
	return tf
}

func testTariffs(t *testing.T, open Open) {
	s, closeNow := openStore(t, open)
	tf := tariffFile(t)
	if added, err := s.AddTariff(ctxFor(t), tf); err != nil || !added {
		t.Fatalf("AddTariff = %v, %v; want added", added, err)
	}
	if added, err := s.AddTariff(ctxFor(t), tf); err != nil || added {
		t.Errorf("AddTariff again = %v, %v; want kept, not added", added, err)
	}
	other := tf
	other.Zip = append(slices.Clone(tf.Zip), 0)
	other.Digest = sha256.Sum256(other.Zip)
	if _, err := s.AddTariff(ctxFor(t), other); !errors.Is(err, store.ErrTariffConflict) {
		t.Errorf("another tariff of version %d: %v, want ErrTariffConflict", tf.Version, err)
	}
	for _, bad := range []store.TariffFile{{}, {Version: 4, KeyRef: "k", Added: tf.Added}} {
		if _, err := s.AddTariff(ctxFor(t), bad); err == nil {
			t.Errorf("AddTariff(%+v) passed", bad)
		}
	}
	v9 := retariffed(t, 9)
	if _, err := s.AddTariff(ctxFor(t), v9); err != nil {
		t.Fatal(err)
	}
	closeNow()
	s, _ = openStore(t, open)
	got, err := s.Tariffs(ctxFor(t), false)
	if err != nil || len(got) != 2 || got[0].Version != 3 || got[1].Version != 9 || got[0].Digest != tf.Digest ||
		got[0].KeyRef != tf.KeyRef || got[0].Source != tf.Source || !got[0].Added.Equal(tf.Added) || got[0].Zip != nil {
		t.Fatalf("Tariffs(false) = %+v, %v", got, err)
	}
	got, err = s.Tariffs(ctxFor(t), true)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0].Zip, tf.Zip) || !bytes.Equal(got[1].Zip, v9.Zip) {
		t.Fatalf("Tariffs(true): %d tariffs, %v", len(got), err)
	}
}

func testCardRecords(t *testing.T, open Open) {
	s, closeNow := openStore(t, open)
	if f, err := s.Feed(ctxFor(t)); err != nil || f != (store.Feed{}) {
		t.Errorf("Feed of a new store = %+v, %v", f, err)
	}
	at := time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC)
	recs := []store.CardRecord{
		{Card: 7, Entitlements: []store.RecordEntitlement{{Category: 11, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", MonthlyLimit: 40, Funding: "city"}}},
		{Card: 8, Revoked: []store.RecordSpan{{From: at, To: at.Add(time.Hour)}}},
	}
	if n, err := s.SetCardRecords(ctxFor(t), recs, store.Feed{Next: 5, AsOf: at}); err != nil || n != 2 {
		t.Fatalf("SetCardRecords = %d, %v; want 2 changed", n, err)
	}
	if n, err := s.SetCardRecords(ctxFor(t), recs[:1], store.Feed{Next: 6}); err != nil || n != 0 {
		t.Errorf("the same record again = %d changed, %v", n, err)
	}
	if _, err := s.SetCardRecords(ctxFor(t), nil, store.Feed{Next: 4}); err == nil {
		t.Error("the feed went back without an error")
	}
	for _, bad := range []store.CardRecord{
		{Card: 0},
		{Card: 9, Entitlements: []store.RecordEntitlement{{Category: 0, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", Funding: "city"}}},
		{Card: 9, Entitlements: []store.RecordEntitlement{{Category: 11, ValidFrom: "2026-12-31", ValidTo: "2026-01-01", Funding: "city"}}},
		{Card: 9, Entitlements: []store.RecordEntitlement{{Category: 11, ValidFrom: "2026-01-01", ValidTo: "2026-12-31", Funding: "nobody"}}},
	} {
		if _, err := s.SetCardRecords(ctxFor(t), []store.CardRecord{bad}, store.Feed{Next: 7}); err == nil {
			t.Errorf("SetCardRecords(%+v) passed", bad)
		}
	}
	closeNow()
	s, _ = openStore(t, open)
	if f, err := s.Feed(ctxFor(t)); err != nil || f.Next != 6 || !f.AsOf.Equal(at) {
		t.Errorf("Feed after restart = %+v, %v; want next 6, as of %s (kept when not given)", f, err, at)
	}
	got, ok, err := s.CardRecord(ctxFor(t), 7)
	if err != nil || !ok || got.Card != 7 || len(got.Entitlements) != 1 || got.Entitlements[0] != recs[0].Entitlements[0] {
		t.Errorf("CardRecord(7) = %+v, %v, %v", got, ok, err)
	}
	got, ok, err = s.CardRecord(ctxFor(t), 8)
	if err != nil || !ok || len(got.Revoked) != 1 || !got.Revoked[0].From.Equal(at) || !got.Revoked[0].To.Equal(at.Add(time.Hour)) {
		t.Errorf("CardRecord(8) = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.CardRecord(ctxFor(t), 99); ok || err != nil {
		t.Errorf("CardRecord of an unknown card = %v, %v", ok, err)
	}
}

// heldBy returns the held rides of period by key.
func heldBy(t *testing.T, s store.Store, period string, decided bool) map[rerate.Key]store.HeldRide {
	t.Helper()
	out := map[rerate.Key]store.HeldRide{}
	q := store.HeldQuery{Period: period, Decided: decided, Limit: 2}
	for {
		page, err := s.Held(ctxFor(t), q)
		if err != nil {
			t.Fatalf("Held(%+v): %v", q, err)
		}
		for _, h := range page {
			out[rerate.KeyOf(&h.Tap)] = h
		}
		if len(page) < q.Limit {
			return out
		}
		last := page[len(page)-1].Tap
		q.After = store.Ride{Device: last.Device, Seq: last.Seq}
	}
}

func wantHeld(t *testing.T, held map[rerate.Key]store.HeldRide, tp tap.Tap, state rerate.State, reason string) store.HeldRide {
	t.Helper()
	h, ok := held[rerate.KeyOf(&tp)]
	if !ok {
		t.Errorf("%s/%d is not listed; want %s %s", tp.Device, tp.Seq, state, reason)
		return h
	}
	if h.State != string(state) || h.Reason != reason {
		t.Errorf("%s/%d is %s %s (%s); want %s %s", tp.Device, tp.Seq, h.State, h.Reason, h.Detail, state, reason)
	}
	if h.Detail == "" {
		t.Errorf("%s/%d: no detail", tp.Device, tp.Seq)
	}
	return h
}

func oneLine(carrier, category, funding, kind string, rides, fare, charged, comp int64) store.Line {
	return store.Line{Carrier: carrier, Category: category, Funding: funding, Kind: kind, Rides: rides, FareKop: fare, ChargedKop: charged, CompensationKop: comp}
}

// testRerate is the life of claims that cannot be paid as sent: held with
// the reason, never paid silently, decided by people on the record.
func testRerate(t *testing.T, open Open) {
	loc := Options(t).Location
	at := time.Date(2026, 11, 12, 9, 0, 0, 0, loc)
	s, closeNow := openStore(t, open)
	n := uint64(0)
	mk := func(card uint64, change func(*tap.Tap)) tap.Tap {
		n++
		tp := ride("BUS-7", n, at.Add(time.Duration(n)*time.Minute))
		tp.Card = card
		if change != nil {
			change(&tp)
		}
		return tp
	}
	honest := mk(1, nil)
	huge := mk(2, func(t *tap.Tap) { t.CompensationKop = 1 << 40 })
	inflated := mk(3, func(t *tap.Tap) { t.Carrier, t.Route = "ELEKTROTRANS", "T1" }) // a tram ride claiming the bus fare
	unknownCat := mk(4, func(t *tap.Tap) { t.Category = "99" })
	unknownTariff := mk(5, func(t *tap.Tap) { t.TariffVersion = 9 })
	notEntitled := mk(6, nil)
	negative := mk(7, func(t *tap.Tap) { t.ChargedKop = -500 })
	all := []tap.Tap{honest, huge, inflated, unknownCat, unknownTariff, notEntitled, negative}
	// Records for every card but 6, which holds category 31 instead.
	recs := records(all[:5])
	recs = append(recs, store.CardRecord{Card: 6, Entitlements: []store.RecordEntitlement{{Category: 31, ValidFrom: "2020-01-01", ValidTo: "2030-12-31", Funding: "city"}}})
	if _, err := s.AddTariff(ctxFor(t), tariffFile(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetCardRecords(ctxFor(t), recs, store.Feed{Next: 1, AsOf: at.AddDate(0, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	// The batch is stored whole; impossible amounts never reach the
	// roll-up, the rest wait for re-rating as claimed.
	addTaps(t, s, all, len(all), 0)
	checkCount(t, s, len(all))
	claimed := expectLines([]tap.Tap{honest, inflated, unknownCat, unknownTariff, notEntitled}, loc, "2026-11", "")
	checkLines(t, s, store.Query{Period: "2026-11"}, claimed)
	if n, err := s.PendingRerate(ctxFor(t)); err != nil || n == 0 {
		t.Errorf("PendingRerate after ingest = %d, %v; want queued runs", n, err)
	}

	drainRerate(t, s)
	checkLines(t, s, store.Query{Period: "2026-11"}, []store.Line{oneLine("ATP-1", "11", "city", "", 1, 1500, 0, 1500)})
	consistent(t, s, "2026-11")
	held := heldBy(t, s, "2026-11", false)
	if len(held) != 6 {
		t.Errorf("%d rides held or waiting, want 6: %v", len(held), held)
	}
	h := wantHeld(t, held, huge, rerate.Held, rerate.ReasonAmountInvalid)
	if !h.Priced || h.Release.CompensationKop != 1500 {
		t.Errorf("the 2^40 ride would be released at %+v (priced %v); want the tariff's 15.00", h.Release, h.Priced)
	}
	wantHeld(t, held, inflated, rerate.Held, rerate.ReasonDiffers)
	wantHeld(t, held, unknownCat, rerate.Held, rerate.ReasonCategoryUnknown)
	wantHeld(t, held, unknownTariff, rerate.Waiting, rerate.ReasonTariffUnknown)
	wantHeld(t, held, notEntitled, rerate.Held, rerate.ReasonNotEntitled)
	wantHeld(t, held, negative, rerate.Held, rerate.ReasonAmountInvalid)
	// Re-rating again changes nothing.
	if st, err := s.Rerate(ctxFor(t), 10); err != nil || st.Runs != 0 {
		t.Errorf("Rerate with nothing queued = %+v, %v", st, err)
	}

	// The version the tap names arrives: its waiting ride is re-rated.
	if _, err := s.AddTariff(ctxFor(t), retariffed(t, 9)); err != nil {
		t.Fatal(err)
	}
	drainRerate(t, s)
	checkLines(t, s, store.Query{Period: "2026-11"}, []store.Line{oneLine("ATP-1", "11", "city", "", 2, 3000, 0, 3000)})
	consistent(t, s, "2026-11")

	// Proof per carrier: 2 paid, none confirmed (no evidence), 5 held.
	pl, err := s.Proof(ctxFor(t), "2026-11")
	if err != nil || len(pl) != 2 {
		t.Fatalf("Proof = %+v, %v", pl, err)
	}
	if pl[0].Carrier != "ATP-1" || pl[0].Paid != 2 || pl[0].Confirmed != 0 || pl[0].Held != 4 || pl[0].Unconfirmed() != 2 {
		t.Errorf("Proof of ATP-1 = %+v", pl[0])
	}
	if pl[1].Carrier != "ELEKTROTRANS" || pl[1].Held != 1 || pl[1].HeldKop != 1500 {
		t.Errorf("Proof of ELEKTROTRANS = %+v", pl[1])
	}

	// Decisions: on the record, all or nothing, final.
	dec := func(release bool, note string, rides ...tap.Tap) ([]store.HeldRide, error) {
		d := store.HeldDecision{Release: release, By: "finance:olena", Note: note, At: at.AddDate(0, 0, 20)}
		for _, r := range rides {
			d.Rides = append(d.Rides, store.Ride{Device: r.Device, Seq: r.Seq})
		}
		return s.Decide(ctxFor(t), d)
	}
	if _, err := dec(true, "", inflated); !errors.Is(err, store.ErrInvalidDecision) {
		t.Errorf("a decision without a reason: %v", err)
	}
	if _, err := s.Decide(ctxFor(t), store.HeldDecision{Rides: []store.Ride{{Device: inflated.Device, Seq: inflated.Seq}}, Note: "x", At: at}); !errors.Is(err, store.ErrInvalidDecision) {
		t.Errorf("a decision without a person: %v", err)
	}
	if _, err := dec(false, "all of them", inflated, honest); !errors.Is(err, store.ErrNotHeld) {
		t.Errorf("deciding a paid ride: %v, want ErrNotHeld", err)
	}
	if h := heldBy(t, s, "2026-11", false); h[rerate.KeyOf(&inflated)].State != string(rerate.Held) {
		t.Error("a failed decision decided part of its rides")
	}
	if got, err := dec(false, "absurd amount", huge, negative); err != nil || len(got) != 2 || got[0].State != string(rerate.Rejected) || got[0].DecidedBy != "finance:olena" {
		t.Fatalf("rejecting = %+v, %v", got, err)
	}
	if _, err := dec(true, "again", huge); !errors.Is(err, store.ErrNotHeld) {
		t.Errorf("deciding a rejected ride again: %v, want ErrNotHeld", err)
	}

	// November closes: what it holds back is in the statement, by
	// carrier and reason.
	closed := closePeriod(t, s, "2026-11", time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	if len(closed) != 1 {
		t.Fatalf("closing November: %d statements", len(closed))
	}
	checkStatement(t, closed[0], "2026-11", "", true, []store.Line{oneLine("ATP-1", "11", "city", "", 2, 3000, 0, 3000)})
	wantHeldLines := []store.HeldLine{
		{Carrier: "ATP-1", Reason: rerate.ReasonCategoryUnknown, Rides: 1, ClaimedKop: 1500},
		{Carrier: "ATP-1", Reason: rerate.ReasonNotEntitled, Rides: 1, ClaimedKop: 1500},
		{Carrier: "ELEKTROTRANS", Reason: rerate.ReasonDiffers, Rides: 1, ClaimedKop: 1500},
	}
	if !slices.Equal(closed[0].Held, wantHeldLines) {
		t.Errorf("November holds back %+v, want %+v", closed[0].Held, wantHeldLines)
	}
	sameStatements(t, "November as closed", statements(t, s, "2026-11"), closed)

	// Released after the close: a line of its own in December's
	// adjustment of November, at the tariff's amount.
	rel, err := dec(true, "the tram's tariff was misconfigured; the ride took place", inflated)
	if err != nil || len(rel) != 1 || rel[0].State != string(rerate.Released) || rel[0].Into != "2026-12" || rel[0].Adjusts != "2026-11" {
		t.Fatalf("release after close = %+v, %v", rel, err)
	}
	dec2 := statements(t, s, "2026-12")
	if len(dec2) != 2 {
		t.Fatalf("December: %d statements, want its own and the adjustment of November", len(dec2))
	}
	released := oneLine("ELEKTROTRANS", "11", "city", rerate.KindReleased, 1, 800, 0, 800)
	released.Adjusts = "2026-11"
	checkStatement(t, dec2[1], "2026-12", "2026-11", false, []store.Line{released})
	checkTapLines(t, s, "2026-12", "2026-11", dec2[1].Lines)
	sameStatements(t, "November after a release", statements(t, s, "2026-11"), closed)

	closeNow()
	s, _ = openStore(t, open)
	all2 := heldBy(t, s, "2026-11", true)
	if h := all2[rerate.KeyOf(&inflated)]; h.State != string(rerate.Released) || h.Note == "" || h.DecidedAt.IsZero() {
		t.Errorf("after restart the release reads %+v", h)
	}
	if len(heldBy(t, s, "2026-11", false)) != 2 {
		t.Errorf("after restart: %v", heldBy(t, s, "2026-11", false))
	}
}

// evidenceRide is a ride with the card evidence a validator sends: its
// own device number and the card's previous ride.
func evidenceRide(device string, number uint32, seq uint64, card uint64, at time.Time, prev *tap.Tap) tap.Tap {
	tp := ride(device, seq, at)
	tp.Card, tp.DeviceNumber = card, number
	if prev != nil {
		tp.Prev = tap.CardRide{Device: prev.DeviceNumber, Seq: uint32(prev.Seq), Time: prev.Time.Truncate(time.Second),
			Carrier: 1, Product: prev.Product, ChargedKop: prev.ChargedKop}
	}
	return tp
}

// testEvidence: the card's own log confirms rides, settles a
// commit-unknown one and contradicts an invented one, whatever order the
// rides arrive in.
func testEvidence(t *testing.T, open Open) {
	loc := Options(t).Location
	at := time.Date(2026, 11, 12, 7, 0, 0, 0, loc)
	s, _ := openStore(t, open)
	r1 := evidenceRide("BUS-1", 101, 1, 50, at, nil)
	unknown := evidenceRide("BUS-2", 102, 1, 50, at.Add(2*time.Hour), &r1)
	unknown.CardCommitted, unknown.CommitUnknown = false, true
	r3 := evidenceRide("BUS-1", 101, 2, 50, at.Add(5*time.Hour), &unknown)
	invented := evidenceRide("BUS-9", 109, 1, 50, at.Add(4*time.Hour), nil)
	r4 := evidenceRide("BUS-2", 102, 2, 50, at.Add(8*time.Hour), &r3)
	all := []tap.Tap{r1, unknown, r3, invented, r4}
	proven(t, s, all)
	// The later rides first; the commit-unknown ride last.
	addTaps(t, s, []tap.Tap{r4, r3}, 2, 0)
	addTaps(t, s, []tap.Tap{r1, invented}, 2, 0)
	drainRerate(t, s)
	addTaps(t, s, []tap.Tap{unknown}, 1, 0)
	drainRerate(t, s)

	checkLines(t, s, store.Query{Period: "2026-11"}, []store.Line{oneLine("ATP-1", "11", "city", "", 4, 6000, 0, 6000)})
	consistent(t, s, "2026-11")
	held := heldBy(t, s, "2026-11", false)
	if len(held) != 1 {
		t.Errorf("held: %v, want the invented ride only", held)
	}
	wantHeld(t, held, invented, rerate.Held, rerate.ReasonContradicted)
	pl, err := s.Proof(ctxFor(t), "2026-11")
	if err != nil || len(pl) != 1 || pl[0].Paid != 4 || pl[0].Confirmed != 3 || pl[0].Held != 1 {
		t.Errorf("Proof = %+v, %v; want 4 paid (3 confirmed: all but the card's newest), 1 held", pl, err)
	}
	// The hotlist-free card is not flagged, and nothing else is.
	for _, a := range anomaliesOf(t, s, "2026-11") {
		if a.Kind == recon.HotlistedCard {
			t.Errorf("anomaly %+v", a)
		}
	}
}

// testWaitingAfterClose: a ride that waits for its tariff when its month
// closes is held in the statement, and paid as an adjustment once the
// tariff arrives.
func testWaitingAfterClose(t *testing.T, open Open) {
	loc := Options(t).Location
	s, _ := openStore(t, open)
	a := ride("BUS-3", 1, time.Date(2026, 11, 20, 12, 0, 0, 0, loc))
	a.TariffVersion = 9
	b := ride("BUS-3", 2, time.Date(2026, 11, 20, 13, 0, 0, 0, loc))
	proven(t, s, []tap.Tap{a, b})
	addTaps(t, s, []tap.Tap{a, b}, 2, 0)
	closed := closePeriod(t, s, "2026-11", time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	checkStatement(t, closed[0], "2026-11", "", true, []store.Line{oneLine("ATP-1", "11", "city", "", 1, 1500, 0, 1500)})
	if want := []store.HeldLine{{Carrier: "ATP-1", Reason: rerate.ReasonTariffUnknown, Rides: 1, ClaimedKop: 1500}}; !slices.Equal(closed[0].Held, want) {
		t.Errorf("November holds back %+v, want %+v", closed[0].Held, want)
	}
	if _, err := s.AddTariff(ctxFor(t), retariffed(t, 9)); err != nil {
		t.Fatal(err)
	}
	drainRerate(t, s)
	dec := statements(t, s, "2026-12")
	if len(dec) != 2 {
		t.Fatalf("December: %+v", dec)
	}
	late := oneLine("ATP-1", "11", "city", "", 1, 1500, 0, 1500)
	late.Adjusts = "2026-11"
	checkStatement(t, dec[1], "2026-12", "2026-11", false, []store.Line{late})
	checkTapLines(t, s, "2026-12", "2026-11", dec[1].Lines)
	checkTapLines(t, s, "2026-11", "", closed[0].Lines)
	sameStatements(t, "November after the tariff arrived", statements(t, s, "2026-11"), closed)
}

// testRoutesAndRevoked: a route the carrier does not run, and a card whose
// benefits were revoked, are held; lifting them re-rates.
func testRoutesAndRevoked(t *testing.T, open Open) {
	loc := Options(t).Location
	s, _ := openStore(t, open)
	at := time.Date(2026, 11, 5, 12, 0, 0, 0, loc)
	a := ride("BUS-4", 1, at)
	a.Card = 70
	b := ride("BUS-4", 2, at.Add(time.Hour))
	b.Card, b.Route = 71, "99"
	proven(t, s, []tap.Tap{a, b})
	addTaps(t, s, []tap.Tap{a, b}, 2, 0)
	if err := s.SetRoutes(ctxFor(t), "ATP-1", []string{"12", "21", "12"}); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Routes(ctxFor(t)); err != nil || !slices.Equal(rs["ATP-1"], []string{"12", "21"}) {
		t.Errorf("Routes = %v, %v", rs, err)
	}
	if _, err := s.AddHotlist(ctxFor(t), []store.HotlistEntry{{Card: 70, From: at.Add(-time.Minute), Reason: store.ReasonBenefitRevoked}}); err != nil {
		t.Fatal(err)
	}
	drainRerate(t, s)
	held := heldBy(t, s, "2026-11", false)
	wantHeld(t, held, a, rerate.Held, rerate.ReasonBenefitRevoked)
	wantHeld(t, held, b, rerate.Held, rerate.ReasonRouteNotRun)
	checkLines(t, s, store.Query{Period: "2026-11"}, nil)
	for _, an := range anomaliesOf(t, s, "2026-11") {
		if an.Kind == recon.HotlistedCard {
			t.Errorf("a benefit-revoked card is flagged as hotlisted: %+v", an)
		}
	}
	// The list is withdrawn: the open month's rides move back.
	if err := s.SetRoutes(ctxFor(t), "ATP-1", nil); err != nil {
		t.Fatal(err)
	}
	drainRerate(t, s)
	checkLines(t, s, store.Query{Period: "2026-11"}, []store.Line{oneLine("ATP-1", "11", "city", "", 1, 1500, 0, 1500)})
	consistent(t, s, "2026-11")
}

// testRerateConcurrent: re-raters running beside ingest and each other
// leave the roll-up equal to what the taps and judgements say.
func testRerateConcurrent(t *testing.T, open Open) {
	loc := Options(t).Location
	s, _ := openStore(t, open)
	base := time.Date(2026, 11, 10, 8, 0, 0, 0, loc)
	const devices, batches, size = 3, 12, 15
	var all []tap.Tap
	for d := range devices {
		for i := range batches * size {
			tp := ride(fmt.Sprintf("K-%d", d), uint64(i+1), base.Add(time.Duration(i)*time.Minute))
			tp.Card = uint64(1 + (i*7+d)%40)
			if i%5 == 0 {
				tp.CompensationKop = 2000 // inflated: held
			}
			all = append(all, tp)
		}
	}
	proven(t, s, all)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				if _, err := s.Rerate(ctxFor(t), 2); err != nil {
					t.Errorf("Rerate: %v", err)
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	var ing sync.WaitGroup
	for d := range devices {
		mine := all[d*batches*size : (d+1)*batches*size]
		ing.Go(func() {
			for b := range batches {
				if _, _, err := s.AddTaps(ctxFor(t), mine[b*size:(b+1)*size]); err != nil {
					t.Errorf("AddTaps: %v", err)
					return
				}
			}
		})
	}
	ing.Wait()
	close(stop)
	wg.Wait()
	drainRerate(t, s)
	good := int64(devices * batches * size * 4 / 5)
	checkLines(t, s, store.Query{Period: "2026-11"}, []store.Line{oneLine("ATP-1", "11", "city", "", good, 1500*good, 0, 1500*good)})
	consistent(t, s, "2026-11")
	if h := heldBy(t, s, "2026-11", false); len(h) != devices*batches*size/5 {
		t.Errorf("%d held, want %d", len(h), devices*batches*size/5)
	}
}

// testCardMAC: the rides of an EV3 card are paid on the card's own
// Transaction MAC; a ride a device invented without one, or changed under
// it, is held with the reason, and one whose key version clearing's HSM
// lacks waits.
func testCardMAC(t *testing.T, open Open) {
	loc := Options(t).Location
	at := time.Date(2026, 11, 12, 7, 0, 0, 0, loc)
	s, _ := openStore(t, open)
	num, err := card.NewNumber(1001, 77)
	if err != nil {
		t.Fatal(err)
	}
	uid := []byte{0x04, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60}
	key, err := MACKeys{}.CardMACKey(ctxFor(t), uid, 1)
	if err != nil {
		t.Fatal(err)
	}
	var honest []tap.Tap
	var prev *tap.Tap
	for i := range 4 {
		r := evidenceRide("BUS-1", 101, uint64(i+1), uint64(num), at.Add(time.Duration(i)*3*time.Hour), prev)
		if err := cardmactest.Sign(&r, key, uid, uint32(i+1)); err != nil {
			t.Fatal(err)
		}
		honest = append(honest, r)
		prev = &honest[i]
	}
	// A device with a valid batch key invents a ride of the card, and
	// moves a real one to another carrier's route under its MAC.
	invented := evidenceRide("BUS-9", 109, 1, uint64(num), at.Add(4*time.Hour), &honest[1])
	changed := honest[3]
	changed.Seq, changed.Time = 7, changed.Time.Add(30*time.Minute)
	stale := evidenceRide("BUS-9", 109, 2, uint64(num), at.Add(13*time.Hour), &honest[3])
	if err := cardmactest.Sign(&stale, key, uid, 9); err != nil {
		t.Fatal(err)
	}
	stale.CardMAC.KeyVersion = 9 // a tmac-master version the HSM does not hold
	all := append(slices.Clone(honest), invented, changed, stale)
	proven(t, s, all)
	addTaps(t, s, all, len(all), 0)
	drainRerate(t, s)

	checkLines(t, s, store.Query{Period: "2026-11"}, []store.Line{oneLine("ATP-1", "11", "city", "", 4, 6000, 0, 6000)})
	consistent(t, s, "2026-11")
	held := heldBy(t, s, "2026-11", false)
	if len(held) != 3 {
		t.Errorf("held: %v, want the invented, the changed and the unverifiable ride", held)
	}
	wantHeld(t, held, invented, rerate.Held, rerate.ReasonCardMACMissing)
	wantHeld(t, held, changed, rerate.Held, rerate.ReasonCardMACInvalid)
	wantHeld(t, held, stale, rerate.Waiting, rerate.ReasonCardMACUnchecked)
}
