package monitor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/fleet"
	"github.com/citycard/transit/clearing/monitor"
	"github.com/citycard/transit/clearing/store"
)

type fakeStore struct {
	counter
	fleet  []store.DeviceState
	closed []string
}

func (f *fakeStore) Fleet(context.Context) ([]store.DeviceState, error) { return f.fleet, nil }
func (f *fakeStore) ClosedPeriods(context.Context) ([]string, error)    { return f.closed, nil }

func TestWatcher(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeStore{counter: counter{gaps: 2, missing: 9}, closed: []string{"2026-09", "2026-10"}, fleet: []store.DeviceState{
		{Device: "bus-1", LastBatch: now.Add(-time.Minute), BatchCreated: now.Add(-time.Minute), HotlistVersion: 12, TariffVersion: 3, VersionSeq: 5, LastSeq: 5},
		{Device: "bus-2", LastBatch: now.Add(-30 * time.Hour), BatchCreated: now.Add(-30 * time.Hour), HotlistVersion: 11, TariffVersion: 3, VersionSeq: 2, LastSeq: 2},
	}}
	reg := prometheus.NewRegistry()
	w, err := monitor.NewWatcher(reg, fleet.Options{}, kyiv)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Update(context.Background(), src, now); err != nil {
		t.Fatal(err)
	}
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, kyiv).Unix()
	want := `
# HELP transit_clearing_devices_outdated Devices whose latest tap used an older hotlist or tariff than the newest any device used.
# TYPE transit_clearing_devices_outdated gauge
transit_clearing_devices_outdated{update="hotlist"} 1
transit_clearing_devices_outdated{update="tariff"} 0
# HELP transit_clearing_devices_silent Devices from which clearing received nothing for longer than the given time.
# TYPE transit_clearing_devices_silent gauge
transit_clearing_devices_silent{over="1h"} 1
transit_clearing_devices_silent{over="24h"} 1
transit_clearing_devices_silent{over="7d"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "transit_clearing_devices_silent", "transit_clearing_devices_outdated"); err != nil {
		t.Error(err)
	}
	for name, v := range map[string]float64{"transit_clearing_devices": 2, "transit_clearing_devices_offline": 1,
		"transit_clearing_open_gaps": 2, "transit_clearing_last_closed_period_end_timestamp_seconds": float64(end)} {
		mfs, _ := reg.Gather()
		found := false
		for _, mf := range mfs {
			if mf.GetName() == name {
				found = true
				if got := mf.GetMetric()[0].GetGauge().GetValue(); got != v {
					t.Errorf("%s = %v, want %v", name, got, v)
				}
			}
		}
		if !found {
			t.Errorf("%s missing", name)
		}
	}
}
