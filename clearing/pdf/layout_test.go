package pdf_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"codeberg.org/go-pdf/fpdf"

	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/clearing/pdf/pdftest"
)

// layout writes d and checks the rendered pages for overflow.
func layout(t *testing.T, d pdf.Document) ([]byte, pdf.Layout) {
	t.Helper()
	var buf bytes.Buffer
	l, err := pdf.WriteLayout(&buf, d)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), l
}

// wide is a table with more and longer columns than a portrait page
// holds: long names, dates, codes and amounts.
func wide(rows int) pdf.Table {
	t := pdf.Table{Columns: []pdf.Column{
		{Title: "Перевізник / carrier"}, {Title: "Категорія / category"}, {Title: "Джерело фінансування / funding"},
		{Title: "Маршрут / route"}, {Title: "День / day", NoWrap: true}, {Title: "Коригує період / adjusts", NoWrap: true},
		{Title: "Пільгові поїздки / benefit rides", Right: true}, {Title: "Тариф, грн / fare, UAH", Right: true},
		{Title: "Компенсація, грн / compensation, UAH", Right: true},
	}}
	for i := range rows {
		t.Rows = append(t.Rows, []string{
			fmt.Sprintf("Комунальне підприємство «Автотранспортне підприємство № %d» (ATP-%d)", i%7, i%7),
			"Особи з інвалідністю I і II груп / Persons with a disability of group I or II (21)",
			"державний бюджет / state budget", fmt.Sprint(100 + i%40), fmt.Sprintf("%02d.11.2026", 1+i%30), "10.2026",
			fmt.Sprint(1000 + i*37), "1\u00a0234\u00a0567,89", "12\u00a0345\u00a0678,90",
		})
	}
	t.Foot = []string{"РАЗОМ / TOTAL", "", "", "", "", "", "999999", "99\u00a0999\u00a0999,99", "99\u00a0999\u00a0999,99"}
	return t
}

// TestLayoutHolds renders documents that push the layout (a long table
// over many pages, more columns than fit, long words, Ukrainian text)
// and checks that nothing overflows.
func TestLayoutHolds(t *testing.T) {
	for name, d := range map[string]pdf.Document{
		"long": sample(150),
		"wide portrait": {Title: "Компенсація за пільгові поїздки / Compensation for benefit rides, 2026-11", Lang: "uk",
			Blocks: []pdf.Block{pdf.Heading("Рядки / Lines"), wide(60)}},
		"wide landscape": {Title: "Компенсація / Compensation", Landscape: true,
			Blocks: []pdf.Block{pdf.Paragraph("Ключ / key: sha256:abab abab abab abab abab abab abab abab abab abab abab abab abab abab abab abab"), wide(80)}},
		"long code": {Title: "Пристрої / devices", Blocks: []pdf.Block{pdf.Table{
			Columns: []pdf.Column{{Title: "Пристрій / device"}, {Title: "Подробиці / detail"}, {Title: "Поїздки / taps", Right: true}},
			Rows:    [][]string{{"ATP-1-BUS-0417-front-door-validator-with-a-very-long-identifier-0001", strings.Repeat("довгий опис ", 40), "123456"}},
		}}},
	} {
		t.Run(name, func(t *testing.T) {
			doc, l := layout(t, d)
			if len(l.Cells) == 0 {
				t.Fatal("the layout has no cells")
			}
			pdftest.CheckLayout(t, doc, l)
		})
	}
}

// TestTooWideIsRefused: numbers and dates are never broken, so a table
// whose numbers alone do not fit the page is an error, not a drawing off
// the page.
func TestTooWideIsRefused(t *testing.T) {
	var cols []pdf.Column
	row := []string{}
	for i := range 30 {
		cols = append(cols, pdf.Column{Title: fmt.Sprint("n", i), Right: true})
		row = append(row, "1\u00a0234\u00a0567,89")
	}
	err := pdf.Write(&bytes.Buffer{}, pdf.Document{Title: "t", Blocks: []pdf.Block{pdf.Table{Columns: cols, Rows: [][]string{row}}}})
	if err == nil || !strings.Contains(err.Error(), "Landscape") {
		t.Fatalf("a table of 30 amounts: %v; want an error saying to turn the page", err)
	}
}

// recorder is a testing.TB that keeps what CheckLayout reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckLayoutFinds: the check finds overflow where there is some,
// so that a pass means something.
func TestCheckLayoutFinds(t *testing.T) {
	doc, l := layout(t, pdf.Document{Title: "Звіт / report", Blocks: []pdf.Block{
		pdf.Paragraph("Підпис / signature: " + strings.Repeat("ab", 64)),
		pdf.Table{Columns: []pdf.Column{{Title: "Перевізник / carrier"}, {Title: "День / day", NoWrap: true}, {Title: "Сума / amount", Right: true}},
			Rows: [][]string{{"ATP-1", "03.11.2026", "1\u00a0234,56"}}},
	}})
	check := func(l pdf.Layout, doc []byte, want string) {
		t.Helper()
		r := &recorder{TB: t}
		pdftest.CheckLayout(r, doc, l)
		if !strings.Contains(strings.Join(r.errs, "\n"), want) {
			t.Errorf("CheckLayout reported %q; want it to say %q", r.errs, want)
		}
	}
	// The paragraph's 128-digit signature is broken where the line ends.
	check(l, doc, "is not whole on any line")

	narrow := l
	narrow.Cells = append([]pdf.Cell(nil), l.Cells...)
	for i, c := range narrow.Cells {
		if c.Text == "03.11.2026" {
			narrow.Cells[i].W = c.W * 0.7
		}
	}
	check(narrow, doc, "runs out of its cell")

	oneLine := l
	oneLine.Cells = append([]pdf.Cell(nil), l.Cells...)
	for i, c := range oneLine.Cells {
		if c.Text == "Перевізник / carrier" {
			oneLine.Cells[i].OneLine = true
			oneLine.Cells[i].W = 10 // and narrower than its words
		}
	}
	check(oneLine, doc, "Перевізник")

	// A page drawn by hand with text off its edge.
	f := fpdf.New("P", "mm", "A4", "")
	f.AddPage()
	f.SetFont("Helvetica", "", 12)
	f.Text(200, 150, "overflowing")
	var off bytes.Buffer
	if err := f.Output(&off); err != nil {
		t.Fatal(err)
	}
	pw, ph := f.GetPageSize()
	hand := pdf.Layout{PageWidth: pw, PageHeight: ph, Margin: 15, FooterY: ph - 15, FooterHeight: 5, Pages: 1}
	check(hand, off.Bytes(), "is outside the text area")
	check(hand, off.Bytes(), "ink at")
}

// TestOnlyTextBreaks: when even a table's least widths do not fit, the
// words of its text columns break, never a date or an amount.
func TestOnlyTextBreaks(t *testing.T) {
	const id = "ATP-1-BUS-0417-front-door-validator-with-a-very-long-identifier-0001"
	cols := []pdf.Column{{Title: "Пристрій / device"}, {Title: "День / day", NoWrap: true}}
	row := []string{id, "03.11.2026"}
	for i := range 6 {
		cols = append(cols, pdf.Column{Title: fmt.Sprint("Сума ", i+1), Right: true})
		row = append(row, "12\u00a0345\u00a0678,90")
	}
	doc, l := layout(t, pdf.Document{Title: "Пристрої / devices", Blocks: []pdf.Block{pdf.Table{Columns: cols, Rows: [][]string{row}}}})
	r := &recorder{TB: t}
	pdftest.CheckLayout(r, doc, l)
	if len(r.errs) != 1 {
		t.Fatalf("CheckLayout reported %q; want the long identifier broken, and only that", r.errs)
	}
	for _, line := range strings.Split(r.errs[0], "\n")[1:] {
		if !strings.Contains(line, id) {
			t.Errorf("unexpected problem: %s", line)
		}
	}
}
