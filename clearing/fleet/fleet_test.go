package fleet_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/fleet"
	"github.com/citycard/transit/clearing/store"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func states() []store.DeviceState {
	at := func(ago time.Duration) time.Time { return now.Add(-ago) }
	return []store.DeviceState{
		// On the road, current.
		{Device: "bus-1", LastBatch: at(10 * time.Second), BatchCreated: at(10 * time.Second), LastSeq: 900, LastTap: at(20 * time.Second),
			TariffVersion: 4, HotlistVersion: 120, VersionSeq: 900},
		// Silent 3 h, old hotlist.
		{Device: "bus-2", LastBatch: at(3 * time.Hour), BatchCreated: at(3 * time.Hour), LastSeq: 50, LastTap: at(3 * time.Hour),
			TariffVersion: 4, HotlistVersion: 118, VersionSeq: 50},
		// Silent 2 days, old tariff, clock 10 minutes fast.
		{Device: "bus-3", LastBatch: at(49 * time.Hour), BatchCreated: at(49*time.Hour - 10*time.Minute), ClockOffset: 10 * time.Minute,
			LastSeq: 7, LastTap: at(49 * time.Hour), TariffVersion: 3, HotlistVersion: 120, VersionSeq: 7},
		// Only taps from before fleet state: heard at its last tap, 8 days ago; versions unknown.
		{Device: "tram-7", LastSeq: 3, LastTap: at(8 * 24 * time.Hour)},
	}
}

func TestBuild(t *testing.T) {
	v := fleet.Build(states(), now, fleet.Options{})
	s := v.Summary
	if s.Devices != 4 || s.Offline != 3 || s.SilentOver[0] != 3 || s.SilentOver[1] != 2 || s.SilentOver[2] != 1 {
		t.Errorf("summary %+v: want 4 devices, 3 offline, silent over 1h/24h/7d 3/2/1", s)
	}
	if v.NewestHotlist != 120 || v.NewestTariff != 4 || s.OldHotlist != 1 || s.OldTariff != 1 || s.ClockSkewed != 1 {
		t.Errorf("versions: newest hotlist %d tariff %d, old %d/%d, skewed %d; want 120, 4, 1, 1, 1",
			v.NewestHotlist, v.NewestTariff, s.OldHotlist, s.OldTariff, s.ClockSkewed)
	}
	want := map[string]string{"bus-1": "", "bus-2": "offline,old-hotlist", "bus-3": "offline,old-tariff,clock", "tram-7": "offline"}
	for _, d := range v.Devices {
		if got := fleet.Flags(d); got != want[d.Device] {
			t.Errorf("%s: flags %q, want %q", d.Device, got, want[d.Device])
		}
	}
	if p := v.Problems(); len(p) != 3 || p[0].Device != "bus-2" {
		t.Errorf("problems %v", p)
	}
	if got := fleet.Ago(v.Devices[2]); got != "2d01h" {
		t.Errorf("Ago(bus-3) = %q", got)
	}
	// A longer offline threshold forgives bus-2.
	if v := fleet.Build(states(), now, fleet.Options{Offline: 4 * time.Hour}); v.Summary.Offline != 2 {
		t.Errorf("with a 4 h threshold %d offline, want 2", v.Summary.Offline)
	}
	// A never-heard device (no batch, no tap) is offline and silent in every bucket.
	v = fleet.Build([]store.DeviceState{{Device: "new"}}, now, fleet.Options{})
	if s := v.Summary; s.Offline != 1 || s.SilentOver[2] != 1 || fleet.Ago(v.Devices[0]) != "never" {
		t.Errorf("never-heard device: %+v", s)
	}
}

func TestWrite(t *testing.T) {
	v := fleet.Build(append(states(), store.DeviceState{Device: "=HYPERLINK(\"x\")", LastTap: now}), now, fleet.Options{})
	kyiv, _ := time.LoadLocation("Europe/Kyiv")
	var b bytes.Buffer
	if err := fleet.Write(&b, "table", v, kyiv, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"5 devices, 3 offline", "Silent over 1h: 3, over 24h: 2, over 7d: 1", "bus-3", "old-tariff,clock",
		"2026-11-20 14:00:00 +02:00"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}
	b.Reset()
	if err := fleet.Write(&b, "csv", v, kyiv, true); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0][0] != "device" || rows[1][0] != "bus-2" || rows[1][9] != "true" {
		t.Errorf("CSV of problems: %v", rows)
	}
	b.Reset()
	if err := fleet.Write(&b, "csv", v, kyiv, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `'=HYPERLINK`) {
		t.Errorf("a device name that reads as a formula was not defused:\n%s", b.String())
	}
	b.Reset()
	if err := fleet.Write(&b, "json", v, kyiv, false); err != nil {
		t.Fatal(err)
	}
	var doc fleet.ViewJSON
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Devices != 5 || doc.SilentOver24h != 2 || len(doc.ListedDevices) != 5 || doc.ListedDevices[3].SilentSeconds == nil ||
		doc.ListedDevices[0].LastBatch == nil || doc.ListedDevices[3].LastBatch != nil {
		t.Errorf("JSON %s", b.String())
	}
	if err := fleet.Write(&b, "xml", v, nil, false); err == nil {
		t.Error("format xml accepted")
	}
}

func TestSilentOver(t *testing.T) {
	names := func(ds []fleet.Device) string {
		var s []string
		for _, d := range ds {
			s = append(s, d.Device)
		}
		return strings.Join(s, ",")
	}
	v := fleet.Build(append(states(), store.DeviceState{Device: "never"},
		// Retired in the summer: not this month's question.
		store.DeviceState{Device: "old", LastBatch: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}), now, fleet.Options{})
	// November runs: silent past the offline hour. tram-7 was last heard
	// on 12 November, within the period.
	nov, dec := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if got := names(v.SilentOver(nov, dec)); got != "bus-2,bus-3,tram-7" {
		t.Errorf("November, running: %q", got)
	}
	// October ended before any of them went silent, except nobody: every
	// device heard since 1 November has sent October's rides.
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	if got := names(v.SilentOver(oct, nov)); got != "" {
		t.Errorf("October: %q", got)
	}
	// Seen from 1 December 00:30 on a closed November, bus-1 (heard at
	// 12:00 on 20 November) and all the others went silent before the end.
	v = fleet.Build(states(), dec.Add(30*time.Minute), fleet.Options{})
	if got := names(v.SilentOver(nov, dec)); got != "bus-1,bus-2,bus-3,tram-7" {
		t.Errorf("November, from December: %q", got)
	}
}
