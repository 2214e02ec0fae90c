package pdf_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/clearing/pdf/pdftest"
)

func sample(rows int) pdf.Document {
	t := pdf.Table{
		Columns: []pdf.Column{{Title: "Перевізник / carrier"}, {Title: "Пільгові поїздки / benefit rides", Right: true}, {Title: "Компенсація, грн / compensation, UAH", Right: true}},
		Foot:    []string{"РАЗОМ / TOTAL", fmt.Sprint(rows), fmt.Sprintf("%d.00", rows*15)},
	}
	for i := range rows {
		t.Rows = append(t.Rows, []string{fmt.Sprintf("КП «Київпастранс» %03d", i), "1", "15.00"})
	}
	return pdf.Document{Title: "Компенсація за пільгові поїздки, 2026-11", Lang: "uk", Created: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Blocks: []pdf.Block{
		pdf.Paragraph("Стан / status: закритий / closed. Хеш вмісту / content hash " + strings.Repeat("0123456789abcdef", 4)),
		pdf.Heading("Звіт 2026-11"),
		t,
	}}
}

func TestWriteRendersUkrainianText(t *testing.T) {
	var buf bytes.Buffer
	if err := pdf.Write(&buf, sample(3)); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
		t.Fatalf("not a PDF: %q", buf.Bytes()[:min(20, buf.Len())])
	}
	text := pdftest.Text(t, buf.Bytes())
	for _, want := range []string{"Компенсація за пільгові поїздки, 2026-11", "КП «Київпастранс» 000", "КП «Київпастранс» 002",
		"РАЗОМ / TOTAL", "45.00", "Звіт 2026-11", strings.Repeat("0123456789abcdef", 2)} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text lacks %q:\n%s", want, text)
		}
	}
}

// TestLongTableRunsOntoPages: a table longer than a page goes on, with its
// head repeated, and no row is lost.
func TestLongTableRunsOntoPages(t *testing.T) {
	var buf bytes.Buffer
	if err := pdf.Write(&buf, sample(150)); err != nil {
		t.Fatal(err)
	}
	text := pdftest.Text(t, buf.Bytes())
	pages := strings.Split(text, "\f")
	if len(pages) < 3 {
		t.Fatalf("150 rows on %d pages; want them to run onto more", len(pages))
	}
	for i := range 150 {
		if want := fmt.Sprintf("КП «Київпастранс» %03d", i); !strings.Contains(text, want) {
			t.Errorf("row %q is missing", want)
		}
	}
	for i, p := range pages {
		if strings.TrimSpace(p) == "" {
			continue
		}
		if !strings.Contains(p, "Перевізник") {
			t.Errorf("page %d has no table head:\n%s", i+1, p)
		}
	}
	if !strings.Contains(pages[len(pages)-1]+pages[max(0, len(pages)-2)], "2250.00") {
		t.Error("the total is not at the end")
	}
}

// TestWriteIsReproducible: the same document is the same file, also when
// documents are written at once from several goroutines (the fonts are
// shared package data).
func TestWriteIsReproducible(t *testing.T) {
	var first bytes.Buffer
	if err := pdf.Write(&first, sample(5)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			var b bytes.Buffer
			if err := pdf.Write(&b, sample(5)); err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(b.Bytes(), first.Bytes()) {
				t.Error("the same document made a different file")
			}
		})
	}
	wg.Wait()
}

func TestWriteRefusesBadTables(t *testing.T) {
	for name, d := range map[string]pdf.Document{
		"no title":   {Blocks: []pdf.Block{pdf.Paragraph("x")}},
		"short row":  {Title: "t", Blocks: []pdf.Block{pdf.Table{Columns: []pdf.Column{{Title: "a"}, {Title: "b"}}, Rows: [][]string{{"1"}}}}},
		"long foot":  {Title: "t", Blocks: []pdf.Block{pdf.Table{Columns: []pdf.Column{{Title: "a"}}, Foot: []string{"1", "2"}}}},
		"no columns": {Title: "t", Blocks: []pdf.Block{pdf.Table{}}},
	} {
		if err := pdf.Write(&bytes.Buffer{}, d); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
