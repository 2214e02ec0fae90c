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
	c, err := report.BuildCompensation(ctx, st, period, "", report.Detail{Category: true})
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
	if c, err = report.BuildCompensation(ctx, st, period, "", report.Detail{Category: true}); err != nil {
		t.Fatal(err)
	}
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
		"закрито / closed 2026-12-03T10:00:00Z",
		fmt.Sprintf("content hash: %x", sts[0].Hash),
		"signing key: sign-statement@3",
		"Електротранс",
	} {
		if !strings.Contains(flat(text), want) {
			t.Errorf("closed PDF lacks %q:\n%s", want, text)
		}
	}
	var sum int64
	for _, l := range c.Lines {
		if !pdfRow(l.Carrier, l.Category, l.Funding, fmt.Sprint(l.Rides), report.UAH(l.FareKop), report.UAH(l.CompensationKop)).MatchString(text) {
			t.Errorf("no row for %+v in:\n%s", l, text)
		}
		sum += l.CompensationKop
	}
	if sum != c.Total.CompensationKop {
		t.Fatalf("lines sum to %d, total %d", sum, c.Total.CompensationKop)
	}
	if !pdfRow("РАЗОМ / TOTAL", fmt.Sprint(c.Total.Rides), report.UAH(c.Total.FareKop), report.UAH(c.Total.CompensationKop)).MatchString(text) {
		t.Errorf("no total row %s in:\n%s", report.UAH(c.Total.CompensationKop), text)
	}
	// The amounts as printed add up to the printed total.
	amount := regexp.MustCompile(`(?m)\s(\d+)\.(\d\d)\s*$`)
	var printed, total int64
	for _, line := range strings.Split(text, "\n") {
		m := amount.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var hr, kop int64
		fmt.Sscan(m[1], &hr)
		fmt.Sscan(m[2], &kop)
		if strings.Contains(line, "TOTAL") {
			total = hr*100 + kop
		} else {
			printed += hr*100 + kop
		}
	}
	if printed != total || total != c.Total.CompensationKop {
		t.Errorf("printed lines sum to %d kop, printed total %d, want %d", printed, total, c.Total.CompensationKop)
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
