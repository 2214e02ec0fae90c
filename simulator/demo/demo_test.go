package demo

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDefaultTariffIsTheSample(t *testing.T) {
	sampleDir := filepath.Join("..", "..", "testdata", "tariff")
	sample, err := os.ReadDir(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := fs.ReadDir(DefaultTariff(), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(sample) == 0 || len(sample) != len(embedded) {
		t.Fatalf("testdata/tariff has %d files, simulator/demo/tariff %d: keep them equal", len(sample), len(embedded))
	}
	for i, e := range sample {
		want, err := os.ReadFile(filepath.Join(sampleDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(DefaultTariff(), e.Name())
		if err != nil || embedded[i].Name() != e.Name() {
			t.Fatalf("simulator/demo/tariff lacks %s (%v): keep it equal to testdata/tariff", e.Name(), err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("simulator/demo/tariff/%s and testdata/tariff/%s differ: keep them equal", e.Name(), e.Name())
		}
	}
}

func TestRunReportsWhatTheValidatorsDecided(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Day: time.Date(2026, 11, 30, 12, 0, 0, 0, loc),
		Location: loc, Cards: 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var kop, rides int64
	for _, l := range res.Lines {
		kop += l.CompensationKop
		rides += l.Rides
	}
	if res.Period != "2026-11" || kop != res.ExpectedKop || rides != int64(res.Rides) || res.Rides == 0 {
		t.Fatalf("period %s: report %d kop over %d rides; validators decided %d kop over %d rides",
			res.Period, kop, rides, res.ExpectedKop, res.Rides)
	}
	if res.Stored.Added != res.Taps || res.Stored.Duplicates != 0 || res.Stored.Quarantined != 0 {
		t.Fatalf("clearing stored %+v of %d journalled taps", res.Stored, res.Taps)
	}
}
