package monitor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/clearing/monitor"
)

type counter struct {
	gaps, missing int64
	err           error
}

func (c *counter) OpenGaps(context.Context) (int64, int64, error) { return c.gaps, c.missing, c.err }

func TestGaps(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := monitor.NewGaps(reg)
	if err != nil {
		t.Fatal(err)
	}
	src := &counter{gaps: 3, missing: 41}
	if err := g.Update(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	src.err = errors.New("database down")
	if err := g.Update(context.Background(), src); err == nil {
		t.Fatal("Update hid the store's error")
	}
	for name, want := range map[string]float64{
		"transit_clearing_open_gaps": 3, "transit_clearing_missing_taps": 41, "transit_clearing_gap_count_errors_total": 1,
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() == name {
				found = true
				m := mf.GetMetric()[0]
				got := m.GetGauge().GetValue() + m.GetCounter().GetValue()
				if got != want {
					t.Errorf("%s = %v, want %v (the last good count stays)", name, got, want)
				}
			}
		}
		if !found {
			t.Errorf("%s not registered", name)
		}
	}
	if n := testutil.CollectAndCount(reg); n != 3 {
		t.Errorf("%d metrics, want 3", n)
	}
	if _, err := monitor.NewGaps(reg); err == nil {
		t.Error("registering twice on one registry succeeded")
	}
}
