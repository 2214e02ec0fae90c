package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestDefaultTariffIsTheSample(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tariff.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sample, DefaultTariff) {
		t.Fatal("simulator/demo/tariff.json and testdata/tariff.json differ: keep them equal")
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
