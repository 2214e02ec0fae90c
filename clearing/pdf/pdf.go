// Package pdf writes plain PDF documents, headings, paragraphs and tables
// of text on A4 pages, which is all a compensation statement needs.
//
// Text is set in the Go fonts (golang.org/x/image/font/gofont), embedded
// as subsets with a ToUnicode map: Ukrainian and Latin text render in any
// reader, and can be searched, copied and read aloud, without a font file
// shipping with the program or being looked up on the machine. The
// drawing is done by codeberg.org/go-pdf/fpdf.
//
// The same Document with the same Created date is byte for byte the same
// file, so a report can be compared and archived like the CSV and XLSX
// exports. Tables hold on long and wide data: a table too wide for the
// page is set in a smaller type (down to 6 pt) before any word is broken,
// numbers and columns marked NoWrap (dates) are never wrapped nor broken
// (a table whose numbers alone do not fit is refused, not drawn off the
// page), and the head repeats on every page. WriteLayout says where each
// piece of text went, so that a test can check the drawing against what
// a PDF reader finds on the page (clearing/pdf/pdftest).
package pdf

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
)

// Document is what Write draws.
type Document struct {
	// Title is the first heading and the document's title in its
	// metadata (what a reader's window and a screen reader announce).
	Title string
	// Lang is the main language of the text, a BCP 47 tag such as "uk".
	Lang string
	// Created is the date the document states in its metadata; zero
	// means now.
	Created time.Time
	// Landscape turns the pages, for wide tables.
	Landscape bool
	// Blocks follow the title, top to bottom, onto as many pages as
	// they need.
	Blocks []Block
}

// Block is one part of a document: a Heading, a Paragraph, a Table or a
// PageBreak.
type Block interface {
	draw(*writer)
}

// Heading is a bold line that opens a section.
type Heading string

// PageBreak starts a new page.
type PageBreak struct{}

func (PageBreak) draw(w *writer) { w.f.AddPage() }

// Paragraph is text wrapped to the page width. A word too long for a
// line (a hash) is broken where the line ends.
type Paragraph string

// Column is the head of one column of a Table.
type Column struct {
	Title string
	// Right aligns the column's cells to the right, for numbers. Right
	// aligned cells are never wrapped.
	Right bool
	// NoWrap keeps the column's cells on one line (dates, codes).
	NoWrap bool
}

// Table is a grid of text with a bold head, repeated on each page the
// table runs onto, and an optional bold closing row (totals).
type Table struct {
	// Title, when set, is a bold line above the head, repeated with it:
	// what the rows are of (a carrier's name), on every page.
	Title   string
	Columns []Column
	Rows    [][]string
	// Foot is the closing row; nil for none.
	Foot []string
	// Bold lists rows (indices into Rows) drawn bold: subtotals.
	Bold []int
}

// Page geometry in millimetres and type sizes in points.
const (
	margin       = 15.0
	cellPad      = 1.5
	bodySize     = 10.0
	tableSize    = 9.0
	titleSize    = 15.0
	headSize     = 12.0
	lineFactor   = 1.35 // line height as a multiple of the type size
	footerHeight = 5.0
	ptToMM       = 25.4 / 72
	fontFamily   = "go"
)

// Layout is where Write put a document's text: each table cell's box and
// text, and the text of every heading and paragraph. Lengths are in
// millimetres from the top left corner of the page. It is what a test
// checks a rendered document against (pdftest.CheckLayout).
type Layout struct {
	// PageWidth and PageHeight are the size of every page; Margin is the
	// margin on each side, which no text enters except the page number,
	// centred in the box from FooterY down FooterHeight.
	PageWidth, PageHeight, Margin float64
	FooterY, FooterHeight         float64
	// Pages is the number of pages.
	Pages int
	// Cells are the table cells drawn, heads and closing rows included,
	// in the order drawn.
	Cells []Cell
	// Texts are the title, headings and paragraphs, as given: each word
	// of them must be found whole on the page.
	Texts []string
}

// Cell is one table cell as drawn.
type Cell struct {
	// Page is the page it is on, from 1.
	Page int
	// X, Y, W and H are its box; its text stays inside.
	X, Y, W, H float64
	// Text is what it holds; Lines is that text as wrapped into it.
	Text  string
	Lines []string
	// OneLine is set for a number or a NoWrap column's cell, which must
	// be on one line.
	OneLine bool
}

// Write draws d onto A4 pages and writes the PDF file to w.
func Write(w io.Writer, d Document) error {
	_, err := WriteLayout(w, d)
	return err
}

// WriteLayout is Write, and says where the text went.
func WriteLayout(w io.Writer, d Document) (Layout, error) {
	if strings.TrimSpace(d.Title) == "" {
		return Layout{}, errors.New("pdf: a document needs a title")
	}
	for i, b := range d.Blocks {
		if t, ok := b.(Table); ok {
			if err := t.check(); err != nil {
				return Layout{}, fmt.Errorf("pdf: block %d: %w", i, err)
			}
		}
	}
	orientation := "P"
	if d.Landscape {
		orientation = "L"
	}
	f := fpdf.New(orientation, "mm", "A4", "")
	f.SetMargins(margin, margin, margin)
	f.SetAutoPageBreak(true, margin+5)
	f.SetCellMargin(cellPad)
	// The fonts are parsed per document: fpdf keeps per-document subset
	// state in them, and this keeps Write safe to call concurrently.
	f.AddUTF8FontFromBytes(fontFamily, "", goregular.TTF)
	f.AddUTF8FontFromBytes(fontFamily, "B", gobold.TTF)
	created := d.Created
	if created.IsZero() {
		created = time.Now()
	}
	f.SetCreationDate(created.UTC())
	f.SetModificationDate(created.UTC())
	f.SetCatalogSort(true)
	f.SetTitle(d.Title, true)
	f.SetCreator("citycard transit", true)
	if d.Lang != "" {
		f.SetLang(d.Lang)
	}
	pw, ph := f.GetPageSize()
	wr := &writer{f: f, size: tableSize, layout: Layout{PageWidth: pw, PageHeight: ph, Margin: margin,
		FooterY: ph - margin, FooterHeight: footerHeight}}
	f.SetFooterFunc(func() {
		f.SetY(-margin)
		f.SetFont(fontFamily, "", 8)
		f.CellFormat(0, footerHeight, fmt.Sprint(f.PageNo()), "", 0, "C", false, 0, "")
	})
	f.AddPage()
	wr.text(d.Title, "B", titleSize)
	wr.f.Ln(2)
	for _, b := range d.Blocks {
		b.draw(wr)
		if err := f.Error(); err != nil {
			return Layout{}, fmt.Errorf("pdf: %w", err)
		}
	}
	wr.layout.Pages = f.PageNo()
	if err := f.Output(w); err != nil {
		return Layout{}, fmt.Errorf("pdf: write the document: %w", err)
	}
	return wr.layout, nil
}

// writer draws blocks onto an fpdf document.
type writer struct {
	f *fpdf.Fpdf
	// size is the type size of the table being drawn.
	size   float64
	layout Layout
}

// lineHeight is the height of a line of text of size points, in mm.
func lineHeight(size float64) float64 { return size * lineFactor * ptToMM }

// text writes s wrapped to the page width.
func (w *writer) text(s, style string, size float64) {
	w.layout.Texts = append(w.layout.Texts, s)
	w.f.SetFont(fontFamily, style, size)
	w.f.MultiCell(0, lineHeight(size), s, "", "L", false)
}

func (h Heading) draw(w *writer) {
	// A heading is kept with at least two lines of what follows it.
	if w.f.GetY()+lineHeight(headSize)+2*lineHeight(bodySize) > w.bottom() {
		w.f.AddPage()
	}
	w.f.Ln(3)
	w.text(string(h), "B", headSize)
	w.f.Ln(1)
}

func (p Paragraph) draw(w *writer) {
	w.text(string(p), "", bodySize)
	w.f.Ln(1)
}

// bottom is where the page's text must end.
func (w *writer) bottom() float64 {
	_, h := w.f.GetPageSize()
	_, bm := w.f.GetAutoPageBreak()
	return h - bm
}

// check reports a table whose rows do not fit its columns.
func (t Table) check() error {
	if len(t.Columns) == 0 {
		return errors.New("a table needs columns")
	}
	for i, r := range t.Rows {
		if len(r) != len(t.Columns) {
			return fmt.Errorf("table row %d has %d cells for %d columns", i, len(r), len(t.Columns))
		}
	}
	if t.Foot != nil && len(t.Foot) != len(t.Columns) {
		return fmt.Errorf("table foot has %d cells for %d columns", len(t.Foot), len(t.Columns))
	}
	return nil
}

func (t Table) draw(w *writer) {
	f := w.f
	// The largest type, from tableSize down, at which no word must be
	// broken; at 6 pt words break rather than run off the page.
	var widths []float64
	for w.size = tableSize; ; w.size -= 0.5 {
		var fits bool
		widths, fits = t.widths(w)
		if fits || w.size <= 6 {
			break
		}
	}
	defer func() { w.size = tableSize }()
	pw, _ := f.GetPageSize()
	if total := sumOf(widths); total > pw-2*margin+0.01 {
		f.SetError(fmt.Errorf("a table of %d columns needs %.0f mm for its numbers and dates at %.0f pt, and the page has %.0f mm: turn the page (Landscape) or give it fewer columns",
			len(t.Columns), total, w.size, pw-2*margin))
		return
	}
	head := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		head[i] = c.Title
	}
	titleHeight := 0.0
	if t.Title != "" {
		f.SetFont(fontFamily, "B", w.size+1)
		titleHeight = float64(len(f.SplitText(t.Title, sumOf(widths))))*lineHeight(w.size+1) + 0.5
	}
	drawHead := func() {
		if t.Title != "" {
			w.layout.Texts = append(w.layout.Texts, t.Title)
			f.SetFont(fontFamily, "B", w.size+1)
			f.MultiCell(sumOf(widths), lineHeight(w.size+1), t.Title, "", "L", false)
			f.Ln(0.5)
		}
		w.row(widths, t.Columns, head, "B", true)
	}
	bold := map[int]bool{}
	for _, i := range t.Bold {
		bold[i] = true
	}
	// The title, the head and the first row go on one page.
	if f.GetY()+titleHeight+2*w.rowHeight(widths, head, "B") > w.bottom() {
		f.AddPage()
	}
	drawHead()
	rows := t.Rows
	if t.Foot != nil {
		rows = append(rows[:len(rows):len(rows)], t.Foot)
	}
	for i, r := range rows {
		style := ""
		if t.Foot != nil && i == len(rows)-1 || bold[i] {
			style = "B"
		}
		if f.GetY()+w.rowHeight(widths, r, style) > w.bottom() {
			f.AddPage()
			drawHead()
		}
		w.row(widths, t.Columns, r, style, false)
	}
	f.Ln(3)
}

// widths fits the columns to the page at w.size, trying in turn: each
// column as wide as its widest cell and its head on one line; the body's
// rows on one line and the heads wrapped at their spaces (what is left
// goes to the heads); text columns wrapped at spaces, while numbers,
// NoWrap columns and bold rows (subtotals, the foot) keep their width.
// fits is false when even that is too wide, and words must break.
func (t Table) widths(w *writer) (out []float64, fits bool) {
	f := w.f
	pw, _ := f.GetPageSize()
	avail := pw - 2*margin
	// full: head and cells on one line; body: cells on one line, heads
	// wrapped; least: only what must not break.
	full := make([]float64, len(t.Columns))
	body := make([]float64, len(t.Columns))
	least := make([]float64, len(t.Columns))
	width := func(s string) float64 { return f.GetStringWidth(s) + 2*cellPad + 0.5 }
	measure := func(i int, s, style string) {
		f.SetFont(fontFamily, style, w.size)
		body[i] = max(body[i], width(s))
		if t.Columns[i].Right || t.Columns[i].NoWrap || style == "B" {
			// Numbers and the closing row's labels are never broken.
			least[i] = max(least[i], width(s))
			return
		}
		for word := range strings.FieldsSeq(s) {
			least[i] = max(least[i], width(word))
		}
	}
	for i, c := range t.Columns {
		f.SetFont(fontFamily, "B", w.size)
		// A head may wrap at its spaces, even over a number column.
		for word := range strings.FieldsSeq(c.Title) {
			least[i] = max(least[i], width(word))
		}
		full[i] = width(c.Title)
		for j, r := range t.Rows {
			style := ""
			if slices.Contains(t.Bold, j) {
				style = "B"
			}
			measure(i, r[i], style)
		}
		if t.Foot != nil {
			measure(i, t.Foot[i], "B")
		}
		body[i] = max(body[i], least[i])
		full[i] = max(full[i], body[i])
	}
	// share gives each column lo[i] and what is left of avail in
	// proportion to what it would like beyond that, up to hi[i].
	share := func(lo, hi []float64) []float64 {
		k := (avail - sumOf(lo)) / (sumOf(hi) - sumOf(lo))
		out := make([]float64, len(lo))
		for i := range lo {
			out[i] = lo[i] + (hi[i]-lo[i])*k
		}
		return out
	}
	switch {
	case sumOf(full) <= avail:
		return full, true
	case sumOf(body) <= avail:
		return share(body, full), true
	}
	switch sl := sumOf(least); {
	case sl <= avail:
		return share(least, body), true
	default:
		// Even the least is too wide: text columns shrink below their
		// longest word, which then breaks mid-way, but numbers and
		// NoWrap columns keep their width: a broken date or amount
		// would be misread. A table whose numbers alone are too wide
		// is refused (see draw).
		var fixed, text float64
		for i, c := range t.Columns {
			if c.Right || c.NoWrap {
				fixed += least[i]
			} else {
				text += least[i]
			}
		}
		out := slices.Clone(least)
		if fixed >= avail || text == 0 {
			return out, false
		}
		for i, c := range t.Columns {
			if !c.Right && !c.NoWrap {
				out[i] = least[i] * (avail - fixed) / text
			}
		}
		return out, false
	}
}

func sumOf(xs []float64) (s float64) {
	for _, x := range xs {
		s += x
	}
	return s
}

// lines wraps each cell of r to its column.
func (w *writer) lines(widths []float64, r []string, style string) [][]string {
	w.f.SetFont(fontFamily, style, w.size)
	out := make([][]string, len(r))
	for i, s := range r {
		// Numbers fit their columns (see widths), so only text and
		// heads wrap.
		out[i] = w.f.SplitText(s, widths[i])
		if len(out[i]) == 0 {
			out[i] = []string{""}
		}
	}
	return out
}

func (w *writer) rowHeight(widths []float64, r []string, style string) float64 {
	n := 1
	for _, l := range w.lines(widths, r, style) {
		n = max(n, len(l))
	}
	return float64(n)*lineHeight(w.size) + 1
}

// row draws one row of a table: each cell bordered, its lines top
// aligned, all cells as tall as the tallest.
func (w *writer) row(widths []float64, cols []Column, r []string, style string, shaded bool) {
	f := w.f
	lines := w.lines(widths, r, style)
	h := w.rowHeight(widths, r, style)
	x0, y0 := f.GetX(), f.GetY()
	f.SetFont(fontFamily, style, w.size)
	f.SetDrawColor(107, 107, 107)
	x := x0
	for i, cell := range lines {
		w.layout.Cells = append(w.layout.Cells, Cell{Page: f.PageNo(), X: x, Y: y0, W: widths[i], H: h, Text: r[i], Lines: cell,
			OneLine: !shaded && (cols[i].Right || cols[i].NoWrap)})
		if shaded {
			f.SetFillColor(242, 244, 247)
			f.Rect(x, y0, widths[i], h, "FD")
		} else {
			f.Rect(x, y0, widths[i], h, "D")
		}
		align := "L"
		if cols[i].Right {
			align = "R"
		}
		for j, l := range cell {
			f.SetXY(x, y0+0.5+float64(j)*lineHeight(w.size))
			f.CellFormat(widths[i], lineHeight(w.size), l, "", 0, align, false, 0, "")
		}
		x += widths[i]
	}
	f.SetXY(x0, y0+h)
}
