package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/clearing/pdf/pdftest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

// month stores a month shaped like a city's: the register's carriers,
// every category, both funding sources, routes with long and short
// names, a ride on most days, and late rides of October booked into
// November as an adjustment. It closes October first.
func month(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	carriers := []string{"ATP-1", "ELEKTROTRANS", "PRIVAT-7"}
	cats := []string{"11", "12", "21", "31", "41", "42"}
	routes := []string{"1", "24", "115Е", "7К-нічний"}
	var taps []tap.Tap
	add := func(at time.Time, i int) {
		c := i % len(carriers)
		// Claims clearing's re-rating proves (storetest.Prove): a close
		// pays only what it proves.
		cat := cats[(i/12)%len(cats)]
		fare, charged, comp, funding := storetest.Claim(carriers[c], cat)
		taps = append(taps, tap.Tap{Device: carriers[c] + "-BUS-0417-front", Seq: uint64(len(taps)/len(carriers) + 1), Time: at, Card: uint64(i%500 + 1),
			Carrier: carriers[c], Route: routes[(i/3)%len(routes)], Result: tap.Accepted, CardCommitted: true, FareKop: fare, ChargedKop: charged,
			Product: "benefit", Category: cat, Funding: funding, CompensationKop: comp, TariffVersion: storetest.TariffVersion})
	}
	for i := range 20 {
		add(time.Date(2026, 10, 20, 8, i, 0, 0, kyiv), i)
	}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseStatements(ctx, "2026-10", time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC), seal); err != nil {
		t.Fatal(err)
	}
	taps = nil
	for i := range 20 {
		add(time.Date(2026, 10, 31, 22, i, 0, 0, kyiv), i) // late: booked into November
	}
	start := time.Date(2026, 11, 1, 6, 0, 0, 0, kyiv)
	for i := range 1000 {
		add(start.Add(time.Duration(i)*41*time.Minute+time.Duration(i%5)*time.Second), i)
	}
	seq := map[string]uint64{}
	for i := range taps {
		taps[i].Device = taps[i].Carrier + "-BUS-0417-rear"
		seq[taps[i].Device]++
		taps[i].Seq = seq[taps[i].Device]
	}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
}

// seal seals a statement as the HSM would, with values of real length.
func seal(_ context.Context, s *store.Statement) error {
	h := sha256.Sum256([]byte(s.Period + "/" + s.Adjusts))
	fp := sha256.Sum256(h[:])
	s.Hash, s.Signature, s.KeyRef = h[:], bytes.Repeat(h[:], 2), "sign-statement@3"
	s.KeyFingerprint, s.ClosedBy, s.Form = fmt.Sprintf("sha256:%x", fp), "Олександра Коваль-Підгірна (фінансовий відділ)", 2
	return nil
}

// TestPDFLayouts renders every PDF the reports write, a month of lines
// split by route and day among them, and checks the pages for overflow:
// dates and amounts whole on one line, heads unbroken, text inside its
// cell and the page.
func TestPDFLayouts(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	month(t, st)
	reg, err := register.Load("../../testdata/finance")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CloseStatements(ctx, "2026-11", time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC), seal); err != nil {
		t.Fatal(err)
	}
	sts, err := st.Statements(ctx, "2026-11")
	if err != nil || len(sts) != 2 {
		t.Fatalf("November's statements: %d, %v; want its own and the adjustment of October", len(sts), err)
	}
	check := func(t *testing.T, d pdf.Document) int {
		t.Helper()
		var buf bytes.Buffer
		l, err := pdf.WriteLayout(&buf, d)
		if err != nil {
			t.Fatal(err)
		}
		pdftest.CheckLayout(t, buf.Bytes(), l)
		return l.Pages
	}
	for _, c := range []struct {
		name       string
		q          report.Query
		perCarrier bool
		names      bool
	}{
		{name: "carriers", q: report.Query{}, names: true},
		{name: "categories", q: report.Query{Detail: report.Detail{Category: true}}, names: true},
		{name: "categories without register", q: report.Query{Detail: report.Detail{Category: true}}},
		{name: "route,day", q: report.Query{Detail: report.Detail{Route: true, Day: true}}, names: true},
		{name: "route", q: report.Query{Detail: report.Detail{Route: true}}, names: true},
		{name: "carrier's route,day", q: report.Query{Carrier: "ELEKTROTRANS", Detail: report.Detail{Route: true, Day: true}}, names: true},
		{name: "carrier's copy", q: report.Query{Carrier: "ATP-1", Detail: report.Detail{Category: true}}, names: true},
		{name: "per carrier", q: report.Query{Detail: report.Detail{Category: true}}, perCarrier: true, names: true},
		{name: "category", q: report.Query{Category: "21", Detail: report.Detail{Category: true}}, names: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := c.q
			q.Period = "2026-11"
			if c.names {
				q.Names = reg
			}
			comp, err := report.BuildCompensation(ctx, st, q)
			if err != nil {
				t.Fatal(err)
			}
			comp.Location, comp.PerCarrier = kyiv, c.perCarrier
			d, err := report.CompensationDocument(comp, sts)
			if err != nil {
				t.Fatal(err)
			}
			pages := check(t, d)
			if c.q.Detail.Day && pages > len(comp.Lines)/25+3 {
				t.Errorf("%d lines on %d pages: rows are taller than a line", len(comp.Lines), pages)
			}
		})
	}
	t.Run("draft", func(t *testing.T) {
		comp, err := report.BuildCompensation(ctx, st, report.Query{Period: "2026-12", Names: reg})
		if err != nil {
			t.Fatal(err)
		}
		d, err := report.CompensationDocument(comp, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, d)
	})
	t.Run("reconciliation", func(t *testing.T) {
		r, err := report.BuildReconciliation(ctx, st, "2026-11", kyiv)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 11, 14, 10, 0, 0, 0, time.UTC)
		long := strings.Repeat("9", 20)
		r.Gaps = append(r.Gaps, recon.Gap{Device: "ATP-1-BUS-0417-front-door-validator-" + long, First: 100, Last: 2_000_000_000, Period: "2026-11", Opened: at, Closed: at.Add(time.Hour)})
		r.Quarantined = append(r.Quarantined, ingest.Rejected{Device: "BUS-9", Reason: "bad-mac", Received: at,
			Detail: "the batch MAC does not verify with the device key bus-9@1 diversified for this device; check the device's key or its clock"})
		r.Anomalies = append(r.Anomalies, recon.Anomaly{Kind: recon.ClonedCard, Device: "BUS-0417-front", Seq: 1234567, OtherDevice: "TRAM-9-rear",
			OtherSeq: 7654321, Period: "2026-11", At: at, Card: 18446744073709551615, Detail: "two taps 3 km apart within 2 minutes on different vehicles"})
		r.PendingCloneChecks = 3
		check(t, report.ReconciliationDocument(r))
	})
}
