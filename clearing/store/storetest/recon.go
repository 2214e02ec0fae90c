package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

func gapsOf(t *testing.T, s store.Store, period string) string {
	t.Helper()
	gs, err := s.Gaps(ctxFor(t), period)
	if err != nil {
		t.Fatalf("Gaps(%s): %v", period, err)
	}
	var parts []string
	for _, g := range gs {
		state := "open"
		if !g.IsOpen() {
			state = "closed"
			if g.Closed.Before(g.Opened) {
				t.Errorf("gap %+v closed before it opened", g)
			}
		}
		if g.Opened.IsZero() || g.Period != period {
			t.Errorf("gap %+v: no opening time or another period", g)
		}
		parts = append(parts, fmt.Sprintf("%s:%d-%d:%s", g.Device, g.First, g.Last, state))
	}
	return strings.Join(parts, " ")
}

func checkOpenGaps(t *testing.T, s store.Store, gaps, missing int64) {
	t.Helper()
	g, m, err := s.OpenGaps(ctxFor(t))
	if err != nil {
		t.Fatalf("OpenGaps: %v", err)
	}
	if g != gaps || m != missing {
		t.Errorf("OpenGaps = %d gaps, %d missing; want %d, %d", g, m, gaps, missing)
	}
}

// testGaps follows one device's gaps as batches go missing and arrive
// late, across a restart, and its counts per period.
func testGaps(t *testing.T, open Open) {
	nov := time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC)
	all := seqRange("V-001", 1, 20, nov)
	all[19].Time = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC) // the last one in December
	s, closeNow := openStore(t, open)
	addTaps(t, s, concat(all[0:5], all[9:12]), 8, 0) // 1-5, 10-12
	addTaps(t, s, all[14:15], 1, 0)                  // 15
	if got, want := gapsOf(t, s, "2026-11"), "V-001:6-9:open V-001:13-14:open"; got != want {
		t.Errorf("gaps %q, want %q", got, want)
	}
	checkOpenGaps(t, s, 2, 6)

	closeNow()
	s, _ = openStore(t, open)
	addTaps(t, s, concat(all[6:8], all[12:13], all[2:3]), 3, 1) // 7-8, 13 and 3 again
	if got, want := gapsOf(t, s, "2026-11"), "V-001:6-6:open V-001:7-8:closed V-001:9-9:open V-001:13-13:closed V-001:14-14:open"; got != want {
		t.Errorf("after late taps: gaps %q, want %q", got, want)
	}
	checkOpenGaps(t, s, 3, 3)
	addTaps(t, s, all, 8, 12) // everything; 6, 9, 14 and 16-20 are new
	checkOpenGaps(t, s, 0, 0)
	if got := gapsOf(t, s, "2026-12"); got != "" {
		t.Errorf("December gaps %q: the December tap followed 19 directly", got)
	}

	devs, err := s.Devices(ctxFor(t), "2026-11")
	if err != nil {
		t.Fatalf("Devices: %v", err)
	}
	want := []store.DeviceStats{{Device: "V-001", Taps: 19, Duplicates: 13, FirstSeq: 1, LastSeq: 19}}
	if !slices.Equal(devs, want) {
		t.Errorf("Devices(2026-11) = %+v, want %+v", devs, want)
	}
	devs, err = s.Devices(ctxFor(t), "2026-12")
	if err != nil || !slices.Equal(devs, []store.DeviceStats{{Device: "V-001", Taps: 1, FirstSeq: 20, LastSeq: 20}}) {
		t.Errorf("Devices(2026-12) = %+v, %v", devs, err)
	}
}

func anomaliesOf(t *testing.T, s store.Store, period string) []recon.Anomaly {
	t.Helper()
	as, err := s.Anomalies(ctxFor(t), period)
	if err != nil {
		t.Fatalf("Anomalies(%s): %v", period, err)
	}
	return as
}

func kinds(as []recon.Anomaly) string {
	var parts []string
	for _, a := range as {
		p := fmt.Sprintf("%s %s/%d", a.Kind, a.Device, a.Seq)
		if a.OtherDevice != "" {
			p += fmt.Sprintf("~%s/%d", a.OtherDevice, a.OtherSeq)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// testAnomalies covers what AddTaps finds itself (time backwards), what
// the cloned-card check it queues finds, and what it is told
// (AddAnomalies).
func testAnomalies(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	at := time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC)
	a := seqRange("BUS-A", 1, 4, at)
	a[2].Time = a[1].Time.Add(-10 * time.Minute) // tap 3 before tap 2
	addTaps(t, s, a, 4, 0)

	// Card 77 on bus B in the centre, then 8 minutes later on tram T at the
	// airport, 29 km away: 217 km/h. Card 88 does the same ride in 40
	// minutes (43 km/h), card 99 has no position on the tram
	// (5 minutes after card 88's ride).
	b := seqRange("BUS-B", 1, 3, at)
	c := seqRange("TRAM-T", 1, 3, at)
	for i, card := range []uint64{77, 88, 99} {
		b[i].Card, b[i].Vehicle, b[i].Time = card, "B-1", at.Add(time.Hour)
		c[i].Card, c[i].Vehicle = card, "T-9"
		c[i].Lat, c[i].Lon = 50345000, 30894700
	}
	c[0].Time = at.Add(time.Hour + 8*time.Minute)
	c[1].Time = at.Add(time.Hour + 40*time.Minute)
	c[2].Time = at.Add(time.Hour + 45*time.Minute)
	c[2].Lat, c[2].Lon = 0, 0
	addTaps(t, s, b, 3, 0)
	addTaps(t, s, c, 3, 0)
	addTaps(t, s, c, 0, 3) // a repeat finds nothing new
	// One run queued per device and call with checkable rides: BUS-A,
	// BUS-B, and TRAM-T's first two (its third has no position).
	if n := pendingClones(t, s); n != 3 {
		t.Errorf("PendingCloneChecks = %d, want 3", n)
	}
	drainClones(t, s)

	clock := recon.Anomaly{Kind: recon.TapAfterSeal, Device: "BUS-A", Seq: 4, Period: "2026-11", At: a[3].Time, Card: a[3].Card, Detail: "after the seal"}
	for range 2 {
		if err := s.AddAnomalies(ctxFor(t), []recon.Anomaly{clock}); err != nil {
			t.Fatalf("AddAnomalies: %v", err)
		}
	}
	got := anomaliesOf(t, s, "2026-11")
	want := "cloned-card BUS-B/1~TRAM-T/1, tap-after-seal BUS-A/4, time-backwards BUS-A/3"
	if kinds(got) != want {
		t.Fatalf("anomalies: %s\nwant %s", kinds(got), want)
	}
	for _, an := range got {
		if an.Detail == "" || an.At.IsZero() || an.Period != "2026-11" {
			t.Errorf("anomaly without detail, time or period: %+v", an)
		}
	}
	if got[0].Card != 77 || !strings.Contains(got[0].Detail, "km/h") {
		t.Errorf("clone anomaly %+v does not name the card and speed", got[0])
	}
	if g := got[1]; !g.At.Equal(clock.At) || g.At.Location() != time.UTC {
		t.Errorf("recorded anomaly's time %v, want %v in UTC", g.At, clock.At)
	}
	g := got[1]
	g.At = clock.At
	if g != clock {
		t.Errorf("recorded anomaly came back as %+v, want %+v", got[1], clock)
	}
	if n := len(anomaliesOf(t, s, "2026-12")); n != 0 {
		t.Errorf("December has %d anomalies", n)
	}
}

// testHotlist flags accepted taps of a hotlisted card from the entry's
// time on: those stored before the entry and those that come after.
func testHotlist(t *testing.T, open Open) {
	s, _ := openStore(t, open)
	at := time.Date(2026, 11, 10, 8, 0, 0, 0, time.UTC)
	taps := seqRange("V-H", 1, 6, at) // a minute apart from at+1m
	for i := range taps {
		taps[i].Card = 4242
	}
	taps[3].Result, taps[3].Reason = tap.Denied, "hotlisted"
	taps[5].Card = 5151
	addTaps(t, s, taps[:4], 4, 0)

	blocked := at.Add(2*time.Minute + 30*time.Second) // after tap 2
	n, err := s.AddHotlist(ctxFor(t), []store.HotlistEntry{{Card: 4242, From: blocked}, {Card: 9, From: blocked}})
	if err != nil {
		t.Fatalf("AddHotlist: %v", err)
	}
	if n != 1 { // tap 3; tap 4 was denied
		t.Errorf("AddHotlist flagged %d taps, want 1", n)
	}
	if n, err := s.AddHotlist(ctxFor(t), []store.HotlistEntry{{Card: 4242, From: blocked}}); err != nil || n != 0 {
		t.Errorf("the same entry again flagged %d, %v; want 0", n, err)
	}
	if _, err := s.AddHotlist(ctxFor(t), []store.HotlistEntry{{Card: 1}}); err == nil {
		t.Errorf("AddHotlist without a time: want an error")
	}
	addTaps(t, s, taps[4:], 2, 0) // tap 5 of the card, tap 6 of another
	got := anomaliesOf(t, s, "2026-11")
	if want := "hotlisted-card V-H/3, hotlisted-card V-H/5"; kinds(got) != want {
		t.Fatalf("anomalies %s, want %s", kinds(got), want)
	}
	if got[0].Card != 4242 || !strings.Contains(got[0].Detail, "hotlisted") {
		t.Errorf("anomaly %+v", got[0])
	}
}
