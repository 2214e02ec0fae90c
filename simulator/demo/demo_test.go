package demo

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
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

// TestTourStatementEqualsTheTruth runs the tour on the last day of a
// month and checks what it promises: a closed, signed statement whose
// lines add up to what the simulator knows is owed, every tap stored once,
// the forged batch quarantined, and the blocked card refused.
func TestTourStatementEqualsTheTruth(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	var narration bytes.Buffer
	steps := map[string]bool{}
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Out: &narration, Day: time.Date(2026, 11, 30, 12, 0, 0, 0, loc),
		Location: loc, Cards: 300, Validators: 12, Seed: 3, Progress: func(step string, _, _ int) { steps[step] = true }})
	if err != nil {
		t.Fatalf("%v\n%s", err, narration.String())
	}
	var kop, rides int64
	for _, l := range res.Lines {
		kop += l.CompensationKop
		rides += l.Rides
	}
	if res.Period != "2026-11" || !res.Statement.Closed || len(res.Statement.Signature) == 0 {
		t.Fatalf("period %s closed %v: want 2026-11 closed and signed", res.Period, res.Statement.Closed)
	}
	if kop != res.ExpectedKop || rides != res.Rides || res.Rides == 0 {
		t.Fatalf("statement %d kop over %d rides; the truth is %d kop over %d rides", kop, rides, res.ExpectedKop, res.Rides)
	}
	if int64(res.Stored.Added) != res.Taps || res.Stored.Quarantined == 0 {
		t.Fatalf("clearing stored %+v of %d journalled taps; the forged batch must be quarantined", res.Stored, res.Taps)
	}
	if p := res.Refused.Tap; p.Card != res.Blocked || p.Result != tap.Denied || p.Reason != fare.ReasonHotlisted {
		t.Fatalf("the blocked card %d's next tap: %+v; want denied as hotlisted", res.Blocked, p)
	}
	if !steps["issuing cards"] || !steps["setting up validators"] {
		t.Fatalf("progress reported only %v", steps)
	}
	if len(PerCarrier(res.Carriers, nil)) != 3 {
		t.Fatalf("the statement per carrier must name the city's three carriers")
	}
}
