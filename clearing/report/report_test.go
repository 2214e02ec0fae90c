package report_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/validator/tap"
)

var kyiv, _ = time.LoadLocation("Europe/Kyiv")

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"), store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fill stores random taps of November (and a few around it) from a few
// devices and returns the devices.
func fill(t *testing.T, st store.Store, n int) []string {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 11))
	devices := []string{"BUS-1", "BUS-2", "TRAM-9"}
	carriers := []string{"ATP-1", "ATP-2", "Електротранс"}
	start := time.Date(2026, 10, 31, 12, 0, 0, 0, kyiv)
	var taps []tap.Tap
	for i := range n {
		d := i % len(devices)
		t := tap.Tap{Device: devices[d], Seq: uint64(i/len(devices) + 1), Time: start.Add(time.Duration(i) * 40 * time.Minute),
			Card: r.Uint64N(1000), Carrier: carriers[d], Route: fmt.Sprint(1 + r.IntN(3)), Vehicle: devices[d],
			Result: tap.Accepted, Reason: "ok", FareKop: int64(700 + r.IntN(900)), CardCommitted: r.IntN(10) > 0}
		switch r.IntN(3) {
		case 0:
			t.Product, t.ChargedKop = "purse", t.FareKop
		case 1:
			t.Product, t.Category, t.Funding, t.CompensationKop = "benefit", "pensioner", "state", t.FareKop
		default:
			t.Product, t.Category, t.Funding = "benefit", "student", "city"
			t.ChargedKop = t.FareKop / 2
			t.CompensationKop = t.FareKop - t.ChargedKop
		}
		if r.IntN(12) == 0 {
			t.Result = tap.Denied
		}
		taps = append(taps, t)
	}
	if _, _, err := st.AddTaps(context.Background(), taps); err != nil {
		t.Fatal(err)
	}
	return devices
}

// TestTotalsEqualRawTaps checks that every report's totals equal the
// sums over the raw taps as stored, read back tap by tap.
func TestTotalsEqualRawTaps(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	devices := fill(t, st, 1500)
	want := map[string]store.Line{} // by carrier, November
	var all store.Line
	for _, d := range devices {
		taps, err := st.Taps(ctx, d, 0, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range taps {
			if !store.Compensable(&tp) || tp.Period(kyiv) != "2026-11" {
				continue
			}
			l := want[tp.Carrier]
			l.Carrier = tp.Carrier
			l.Add(store.Line{Rides: 1, FareKop: tp.FareKop, ChargedKop: tp.ChargedKop, CompensationKop: tp.CompensationKop})
			want[tp.Carrier] = l
			all.Add(store.Line{Rides: 1, FareKop: tp.FareKop, ChargedKop: tp.ChargedKop, CompensationKop: tp.CompensationKop})
		}
	}
	if all.Rides < 300 {
		t.Fatalf("only %d compensable November rides generated", all.Rides)
	}
	for _, d := range []report.Detail{{}, {Category: true}, {Route: true}, {Day: true}, {Route: true, Day: true}} {
		c, err := report.BuildCompensation(ctx, st, report.Query{Period: "2026-11", Carrier: "", Detail: d})
		if err != nil {
			t.Fatal(err)
		}
		if c.Total != all {
			t.Errorf("detail %+v: total %+v, raw taps %+v", d, c.Total, all)
		}
		for carrier, w := range want {
			one, err := report.BuildCompensation(ctx, st, report.Query{Period: "2026-11", Carrier: carrier, Detail: d})
			if err != nil {
				t.Fatal(err)
			}
			w.Carrier = ""
			if one.Total != w {
				t.Errorf("detail %+v, carrier %s: total %+v, raw taps %+v", d, carrier, one.Total, w)
			}
		}
	}
	c, err := report.BuildCompensation(ctx, st, report.Query{Period: "2026-11", Carrier: "", Detail: report.Detail{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.Lines {
		if l != want[l.Carrier] {
			t.Errorf("line %+v, raw taps %+v", l, want[l.Carrier])
		}
	}
}

func TestWriteCompensation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	fill(t, st, 300)
	c, err := report.BuildCompensation(ctx, st, report.Query{Period: "2026-11", Carrier: "", Detail: report.Detail{Category: true}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := report.WriteCompensation(&out, "json", c); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Lines []struct {
			Carrier         string `json:"carrier"`
			Rides           int64  `json:"rides"`
			CompensationKop int64  `json:"compensation_kop"`
		} `json:"lines"`
		CompensationKop int64 `json:"compensation_kop"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Lines) != len(c.Lines) || doc.CompensationKop != c.Total.CompensationKop {
		t.Fatalf("json %v: %s", err, out.String())
	}
	out.Reset()
	if err := report.WriteCompensation(&out, "csv", c); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&out).ReadAll()
	if err != nil || len(rows) != len(c.Lines)+1 || strings.Join(rows[0], ",") != "period,carrier,carrier_name,adjusts,category,category_name,funding,funding_name,rides,fare_uah,compensation_uah" {
		t.Fatalf("csv %v: %q", err, rows)
	}
	var sum int64
	for _, r := range rows[1:] {
		var hr, k int64
		if _, err := fmt.Sscanf(r[10], "%d.%d", &hr, &k); err != nil {
			t.Fatal(err)
		}
		sum += hr*100 + k
	}
	if sum != c.Total.CompensationKop {
		t.Errorf("csv amounts sum to %d kop, total %d", sum, c.Total.CompensationKop)
	}
	out.Reset()
	if err := report.WriteCompensation(&out, "table", c); err != nil || !strings.Contains(out.String(), "TOTAL") ||
		!strings.Contains(out.String(), report.UAH(c.Total.CompensationKop)) {
		t.Fatalf("table %v:\n%s", err, out.String())
	}
	out.Reset()
	if err := report.WriteCompensation(&out, "xlsx", c); err != nil {
		t.Fatal(err)
	}
	z, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatalf("xlsx is not a zip: %v", err)
	}
	f, err := z.Open("xl/worksheets/sheet1.xml")
	if err != nil {
		t.Fatal(err)
	}
	sheet, _ := io.ReadAll(f)
	if !strings.Contains(string(sheet), "<v>"+report.UAH(c.Total.CompensationKop)+"</v>") {
		t.Errorf("the sheet lacks the total %s", report.UAH(c.Total.CompensationKop))
	}
	if err := report.WriteCompensation(io.Discard, "docx", c); err == nil {
		t.Error("format docx accepted")
	}
}

func TestReconciliation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	base := time.Date(2026, 11, 5, 9, 0, 0, 0, kyiv)
	mk := func(seqs ...uint64) []tap.Tap {
		var out []tap.Tap
		for _, s := range seqs {
			out = append(out, tap.Tap{Device: "BUS-7", Seq: s, Time: base.Add(time.Duration(s) * time.Minute), Result: tap.Accepted})
		}
		return out
	}
	for _, b := range [][]tap.Tap{mk(1, 2, 3), mk(7, 8), mk(2, 3)} {
		if _, _, err := st.AddTaps(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []ingest.Rejected{
		{Device: "BUS-7", Reason: ingest.ReasonBadMAC, Detail: "MAC", Raw: []byte{1}, Received: base},
		{Reason: ingest.ReasonMalformed, Detail: "junk", Raw: []byte{2}, Received: base.Add(time.Hour)},
		{Reason: ingest.ReasonMalformed, Detail: "October", Raw: []byte{3}, Received: time.Date(2026, 10, 31, 23, 0, 0, 0, kyiv)},
	} {
		if err := st.Quarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := report.BuildReconciliation(ctx, st, "2026-11", kyiv)
	if err != nil {
		t.Fatal(err)
	}
	if r.Taps != 5 || r.Duplicates != 2 || r.OpenGaps != 1 || r.MissingTaps != 3 || len(r.Quarantined) != 2 ||
		r.ByReason[ingest.ReasonMalformed] != 1 || r.ByReason[ingest.ReasonBadMAC] != 1 {
		t.Fatalf("reconciliation %+v", r)
	}
	var out bytes.Buffer
	if err := report.WriteReconciliation(&out, "table", r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BUS-7 4-6 (3 taps)", "bad-mac: 1", "repeats received and ignored: 2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := report.WriteReconciliation(&out, "json", r); err != nil {
		t.Fatal(err)
	}
	var doc report.ReconciliationDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Gaps) != 1 || !doc.Gaps[0].Open || doc.Gaps[0].Missing != 3 {
		t.Fatalf("json %v: %s", err, out.String())
	}
}

// TestReconciliationPendingCloneChecks: until the cloned-card check has
// run, the report says suspicions may be missing; afterwards it lists
// them.
func TestReconciliationPendingCloneChecks(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	at := time.Date(2026, 11, 6, 9, 0, 0, 0, kyiv)
	ride := func(dev, vehicle string, lat, lon int32, at time.Time) []tap.Tap {
		return []tap.Tap{{Device: dev, Seq: 1, Time: at, Card: 77, Carrier: "ATP-1", Route: "1", Vehicle: vehicle,
			Lat: lat, Lon: lon, Result: tap.Accepted, Reason: "ok", Product: "benefit", Category: "pensioner",
			Funding: "state", FareKop: 1000, CompensationKop: 1000, CardCommitted: true}}
	}
	for _, b := range [][]tap.Tap{ride("BUS-1", "B-1", 50450100, 30523400, at), ride("TRAM-1", "T-1", 50345000, 30894700, at.Add(5*time.Minute))} {
		if _, _, err := st.AddTaps(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	write := func() (string, report.ReconciliationDoc) {
		r, err := report.BuildReconciliation(ctx, st, "2026-11", kyiv)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := report.WriteReconciliation(&out, "table", r); err != nil {
			t.Fatal(err)
		}
		return out.String(), report.ReconciliationJSON(r)
	}
	text, doc := write()
	if !strings.Contains(text, "2 batches of rides still wait for the cloned-card check") || doc.PendingCloneChecks != 2 || len(doc.Anomalies) != 0 {
		t.Fatalf("before the check: pending %d, anomalies %d, table:\n%s", doc.PendingCloneChecks, len(doc.Anomalies), text)
	}
	if _, _, err := st.CheckClones(ctx, 10); err != nil {
		t.Fatal(err)
	}
	text, doc = write()
	if strings.Contains(text, "wait for the cloned-card check") || doc.PendingCloneChecks != 0 || doc.ByKind["cloned-card"] != 1 {
		t.Fatalf("after the check: pending %d, by kind %v, table:\n%s", doc.PendingCloneChecks, doc.ByKind, text)
	}
}
