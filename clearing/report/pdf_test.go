package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/pdf/pdftest"
	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
)

// pdfRow finds a line's row in pdftotext's layout: its cells in order,
// separated by at least one space.
func pdfRow(cells ...string) *regexp.Regexp {
	for i, c := range cells {
		cells[i] = regexp.QuoteMeta(c)
	}
	return regexp.MustCompile(`(?m)^\s*` + strings.Join(cells, `\s+`) + `\s*$`)
}

// spaced is an amount as pdftotext gives it: no-break spaces as spaces.
func spaced(s string) string { return strings.ReplaceAll(s, "\u00a0", " ") }

// flat folds all white space to single spaces, so that a phrase is found
// where the page wrapped it.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestCompensationPDF writes a closed period's compensation as a PDF and
// reads it back with pdftotext: every line of the CSV is there, the total
// is the sum of the lines as printed, and each statement's seal is shown.
func TestCompensationPDF(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	fillProven(t, st, 600)
	const period = "2026-11"
	closedAt := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	seal := func(_ context.Context, s *store.Statement) error {
		h := sha256.Sum256([]byte(s.Period + "/" + s.Adjusts))
		s.Hash, s.Signature, s.KeyRef = h[:], bytes.Repeat([]byte{0xab}, 64), "sign-statement@3"
		return nil
	}

	// Open: a draft, no seal.
	c, err := report.BuildCompensation(ctx, st, report.Query{Period: period, Carrier: "", Detail: report.Detail{Category: true}})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := st.Statements(ctx, period)
	if err != nil {
		t.Fatal(err)
	}
	var draft bytes.Buffer
	if err := report.WriteCompensationPDF(&draft, c, sts); err != nil {
		t.Fatal(err)
	}
	text := pdftest.Text(t, draft.Bytes())
	for _, want := range []string{"чернетка / draft", "Період відкритий"} {
		if !strings.Contains(flat(text), want) {
			t.Errorf("draft PDF lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "content hash") {
		t.Errorf("a draft shows a content hash:\n%s", text)
	}

	// Closed: final, sealed.
	if _, err := st.CloseStatements(ctx, period, closedAt, seal); err != nil {
		t.Fatal(err)
	}
	if c, err = report.BuildCompensation(ctx, st, report.Query{Period: period, Carrier: "", Detail: report.Detail{Category: true}}); err != nil {
		t.Fatal(err)
	}
	c.Location = kyiv
	if sts, err = st.Statements(ctx, period); err != nil {
		t.Fatal(err)
	}
	if len(c.Lines) < 4 {
		t.Fatalf("only %d lines: the fixture is too small to test with", len(c.Lines))
	}
	var buf bytes.Buffer
	if err := report.WriteCompensationPDF(&buf, c, sts); err != nil {
		t.Fatal(err)
	}
	text = pdftest.Text(t, buf.Bytes())
	for _, want := range []string{
		"Компенсація за пільгові поїздки / Compensation for benefit rides, 2026-11",
		"Період закрито, суми остаточні.",
		"закрито й підписано / closed and signed 03.12.2026 12:00 EET (Europe/Kyiv)",
		fmt.Sprintf("content hash: %x", sts[0].Hash),
		"signing key: sign-statement@3",
		"Електротранс",
	} {
		if !strings.Contains(flat(text), want) {
			t.Errorf("closed PDF lacks %q:\n%s", want, text)
		}
	}
	// Each carrier's lines are a table of their own, named above it and
	// closed by the carrier's subtotal.
	var sum int64
	for _, l := range c.Lines {
		row := pdfRow(l.Category, register.FundingName("uk", l.Funding), fmt.Sprint(l.Rides), spaced(report.UAHComma(l.FareKop)), spaced(report.UAHComma(l.CompensationKop)))
		if !row.MatchString(text) {
			t.Errorf("no row for %+v in:\n%s", l, text)
		}
		sum += l.CompensationKop
	}
	if sum != c.Total.CompensationKop {
		t.Fatalf("lines sum to %d, total %d", sum, c.Total.CompensationKop)
	}
	for _, p := range report.PerCarrier(c.Lines) {
		if !strings.Contains(text, "Перевізник / carrier: "+p.Carrier) {
			t.Errorf("no table named for carrier %s", p.Carrier)
		}
		if !pdfRow("Разом / subtotal "+p.Carrier, fmt.Sprint(p.Rides), spaced(report.UAHComma(p.FareKop)), spaced(report.UAHComma(p.CompensationKop))).MatchString(text) {
			t.Errorf("no subtotal row for %+v in:\n%s", p, text)
		}
	}
	if !pdfRow("РАЗОМ / TOTAL", fmt.Sprint(c.Total.Rides), spaced(report.UAHComma(c.Total.FareKop)), spaced(report.UAHComma(c.Total.CompensationKop))).MatchString(text) {
		t.Errorf("no total row %s in:\n%s", report.UAH(c.Total.CompensationKop), text)
	}
	// The amounts as printed add up: the lines to their carrier's
	// subtotal, the subtotals to the printed total.
	section := text[strings.Index(text, "Рядки / Lines"):strings.Index(text, "За перевізниками / Per carrier")]
	amount := regexp.MustCompile(`(?m)\s(\d{1,3}(?:[ \x{a0}]\d{3})*),(\d\d)\s*$`)
	kop := func(line string) (int64, bool) {
		m := amount.FindStringSubmatch(line)
		if m == nil {
			return 0, false
		}
		var hr, k int64
		fmt.Sscan(strings.NewReplacer("\u00a0", "", " ", "").Replace(m[1]), &hr)
		fmt.Sscan(m[2], &k)
		return hr*100 + k, true
	}
	var printed, subtotals int64
	for _, line := range strings.Split(section, "\n") {
		v, ok := kop(line)
		switch {
		case !ok:
		case strings.Contains(line, "subtotal"):
			if v != printed {
				t.Errorf("%s: the lines above it sum to %d kop", strings.TrimSpace(line), printed)
			}
			subtotals += v
			printed = 0
		default:
			printed += v
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := kop(line); ok && strings.Contains(line, "РАЗОМ / TOTAL") && v != subtotals {
			t.Errorf("printed total %d kop, the printed subtotals sum to %d", v, subtotals)
		}
	}
	if subtotals != c.Total.CompensationKop {
		t.Errorf("printed subtotals sum to %d kop, want %d", subtotals, c.Total.CompensationKop)
	}

	// The same as the one format switch writes, less the seals.
	var plain bytes.Buffer
	if err := report.WriteCompensation(&plain, "pdf", c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pdftest.Text(t, plain.Bytes()), "content hash") {
		t.Error("WriteCompensation's PDF shows a seal it was not given")
	}
	if err := report.WriteCompensationPDF(&plain, c, []store.Statement{{Period: "2026-10"}}); err == nil {
		t.Error("a statement of another period went into the PDF")
	}
}
