package pdftest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/simulator/testenv"
)

// Word is one word as poppler finds it on a page, its box in millimetres
// from the page's top left corner.
type Word struct {
	Text                   string
	XMin, YMin, XMax, YMax float64
}

// Page is one page's size and words.
type Page struct {
	Width, Height float64
	Words         []Word
}

const ptToMM = 25.4 / 72

// Words returns the words of each page of the PDF doc with their boxes,
// read by `pdftotext -bbox`.
func Words(t testing.TB, doc []byte) []Page {
	t.Helper()
	out := run(t, doc, "pdftotext", "-bbox", "-enc", "UTF-8", "{}", "-")
	var x struct {
		Pages []struct {
			Width  float64 `xml:"width,attr"`
			Height float64 `xml:"height,attr"`
			Words  []struct {
				XMin float64 `xml:"xMin,attr"`
				YMin float64 `xml:"yMin,attr"`
				XMax float64 `xml:"xMax,attr"`
				YMax float64 `xml:"yMax,attr"`
				Text string  `xml:",chardata"`
			} `xml:"word"`
		} `xml:"body>doc>page"`
	}
	if err := xml.Unmarshal(out, &x); err != nil {
		t.Fatalf("pdftotext -bbox gave what is not XHTML: %v", err)
	}
	pages := make([]Page, len(x.Pages))
	for i, p := range x.Pages {
		pages[i] = Page{Width: p.Width * ptToMM, Height: p.Height * ptToMM}
		for _, w := range p.Words {
			pages[i].Words = append(pages[i].Words, Word{Text: w.Text,
				XMin: w.XMin * ptToMM, YMin: w.YMin * ptToMM, XMax: w.XMax * ptToMM, YMax: w.YMax * ptToMM})
		}
	}
	return pages
}

// Render returns each page of doc rendered in grey at dpi dots per inch
// by pdftoppm.
func Render(t testing.TB, doc []byte, dpi int) []*image.Gray {
	t.Helper()
	dir := t.TempDir()
	run(t, doc, "pdftoppm", "-r", strconv.Itoa(dpi), "-gray", "{}", filepath.Join(dir, "page"))
	files, err := filepath.Glob(filepath.Join(dir, "page-*.pgm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("pdftoppm wrote no pages (%v)", err)
	}
	// page-1.pgm ... page-10.pgm are padded to one width, so they sort.
	slices.Sort(files)
	var out []*image.Gray
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := readPGM(data)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		out = append(out, img)
	}
	return out
}

// readPGM reads a binary 8-bit PGM image ("P5"), what pdftoppm -gray
// writes.
func readPGM(data []byte) (*image.Gray, error) {
	var w, h, maxv int
	var magic string
	n, err := fmt.Sscan(string(data[:min(len(data), 64)]), &magic, &w, &h, &maxv)
	if err != nil || n != 4 || magic != "P5" || maxv != 255 || w <= 0 || h <= 0 {
		return nil, fmt.Errorf("not an 8-bit binary PGM (%q %dx%d max %d): %v", magic, w, h, maxv, err)
	}
	// The header is four fields, each followed by one white-space byte.
	off, fields := 0, 0
	for fields < 4 && off < len(data) {
		for off < len(data) && isSpace(data[off]) {
			off++
		}
		for off < len(data) && !isSpace(data[off]) {
			off++
		}
		fields++
	}
	off++
	if len(data)-off != w*h {
		return nil, fmt.Errorf("PGM of %dx%d has %d bytes of pixels", w, h, len(data)-off)
	}
	return &image.Gray{Pix: data[off:], Stride: w, Rect: image.Rect(0, 0, w, h)}, nil
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\r' || b == '\t' }

// run writes doc to a file, runs tool with args ("{}" is the file) and
// returns its standard output. Without the tool the test is skipped, or
// failed where CI must not skip (see Text).
func run(t testing.TB, doc []byte, tool string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		msg := tool + " is not installed (apt-get install poppler-utils)"
		if testenv.Required() {
			t.Fatal(msg + "; CI must not skip this test")
		}
		t.Skip(msg)
	}
	file := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	for i, a := range args {
		if a == "{}" {
			args[i] = file
		}
	}
	var stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s cannot read the PDF: %v\n%s", tool, err, stderr.Bytes())
	}
	return out
}

// Tolerances of CheckLayout, in millimetres: poppler's word boxes are the
// font's whole ascent and descent, a little taller than the glyphs.
const (
	slack     = 0.4
	inkBand   = 8.0 // the outer band of the page that must stay blank
	renderDPI = 20
)

// CheckLayout renders the PDF doc, as WriteLayout wrote it with layout l,
// and fails t for everything that overflows:
//
//   - a page of another size or a page too many or too few;
//   - a word outside the page's text area (the page less its margins),
//     other than the page number in its footer;
//   - a table cell wider than the text area, or a word that lies partly
//     outside the cell it is in, or a cell whose text on the page is not
//     its own (text of a neighbour ran into it, or some of its own ran
//     out);
//   - a number or a NoWrap cell (a date) on more than one line;
//   - a word of a cell, a heading or a paragraph broken across lines (a
//     date split mid-string, a head split mid-word): every word must be
//     found whole on one line;
//   - ink in the outer band of a page rendered by pdftoppm (a table's rule
//     or text drawn off the page).
func CheckLayout(t testing.TB, doc []byte, l pdf.Layout) {
	t.Helper()
	pages := Words(t, doc)
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if len(pages) != l.Pages {
		fail("the PDF has %d pages, the layout %d", len(pages), l.Pages)
	}
	for i, p := range pages {
		if math.Abs(p.Width-l.PageWidth) > 1 || math.Abs(p.Height-l.PageHeight) > 1 {
			fail("page %d is %.0f×%.0f mm, not %.0f×%.0f", i+1, p.Width, p.Height, l.PageWidth, l.PageHeight)
		}
	}
	area := box{l.Margin, l.Margin, l.PageWidth - l.Margin, l.PageHeight - l.Margin}
	footer := box{l.Margin, l.FooterY, l.PageWidth - l.Margin, l.FooterY + l.FooterHeight}
	inCell := make([][]bool, len(pages))
	for i := range pages {
		inCell[i] = make([]bool, len(pages[i].Words))
	}
	for _, c := range l.Cells {
		cb := box{c.X, c.Y, c.X + c.W, c.Y + c.H}
		if !area.holds(cb, 0.01) {
			fail("page %d: the cell %q (%.1f–%.1f mm across) reaches out of the text area (%.1f–%.1f mm)", c.Page, c.Text, cb.x0, cb.x1, area.x0, area.x1)
		}
		if c.Page < 1 || c.Page > len(pages) {
			fail("the cell %q is on page %d of %d", c.Text, c.Page, len(pages))
			continue
		}
		var words []Word
		for j, w := range pages[c.Page-1].Words {
			if cb.centre(w) {
				inCell[c.Page-1][j] = true
				words = append(words, w)
				if !cb.holds(w.box(), slack) {
					fail("page %d: the word %q runs out of its cell %q", c.Page, w.Text, c.Text)
				}
			}
		}
		lines := lineTexts(words)
		if got, want := squeeze(strings.Join(lines, "")), squeeze(c.Text); got != want {
			fail("page %d: the cell %q shows %q", c.Page, c.Text, strings.Join(lines, " / "))
			continue
		}
		if c.OneLine && len(lines) > 1 {
			fail("page %d: the cell %q, a number or a date, is on %d lines: %q", c.Page, c.Text, len(lines), lines)
		}
		for _, tok := range tokens(c.Text) {
			if !anyContains(lines, tok) {
				fail("page %d: in the cell %q the word %q is broken across lines: %q", c.Page, c.Text, tok, lines)
			}
		}
	}
	var all []string
	for i, p := range pages {
		var free []Word
		for j, w := range p.Words {
			if !inCell[i][j] {
				free = append(free, w)
			}
		}
		for _, w := range free {
			if area.holds(w.box(), slack) {
				continue
			}
			if w.Text == strconv.Itoa(i+1) && footer.holds(w.box(), slack+1) {
				continue
			}
			fail("page %d: the word %q (%.1f–%.1f mm across, %.1f–%.1f mm down) is outside the text area", i+1, w.Text, w.XMin, w.XMax, w.YMin, w.YMax)
		}
		all = append(all, lineTexts(free)...)
	}
	for _, s := range l.Texts {
		for _, tok := range tokens(s) {
			if !anyContains(all, tok) {
				fail("the word %q of %q is not whole on any line: broken or lost", tok, short(s))
			}
		}
	}
	for i, img := range Render(t, doc, renderDPI) {
		if x, y, ok := inkInBand(img, l.PageWidth, l.PageHeight); ok {
			fail("page %d: ink at %.0f mm across, %.0f mm down, in the page's outer %.0f mm", i+1, x, y, inkBand)
		}
	}
	if len(problems) > 0 {
		const most = 25
		more := ""
		if len(problems) > most {
			more = fmt.Sprintf("\n... and %d more", len(problems)-most)
			problems = problems[:most]
		}
		t.Errorf("the PDF's layout overflows (%d problems):\n%s%s", len(problems), strings.Join(problems, "\n"), more)
	}
}

type box struct{ x0, y0, x1, y1 float64 }

func (w Word) box() box { return box{w.XMin, w.YMin, w.XMax, w.YMax} }

func (b box) holds(o box, tol float64) bool {
	return o.x0 >= b.x0-tol && o.y0 >= b.y0-tol && o.x1 <= b.x1+tol && o.y1 <= b.y1+tol
}

func (b box) centre(w Word) bool {
	x, y := (w.XMin+w.XMax)/2, (w.YMin+w.YMax)/2
	return x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1
}

// lineTexts groups words into lines, top to bottom, by where they sit
// (words of one line share their top), and gives each line's text, its
// words left to right joined by spaces.
func lineTexts(words []Word) []string {
	ws := slices.Clone(words)
	slices.SortStableFunc(ws, func(a, b Word) int {
		if math.Abs(a.YMin-b.YMin) > 0.5 {
			return cmpFloat(a.YMin, b.YMin)
		}
		return cmpFloat(a.XMin, b.XMin)
	})
	var lines []string
	var cur []string
	top := math.Inf(-1)
	for _, w := range ws {
		if math.Abs(w.YMin-top) > 0.5 && len(cur) > 0 {
			lines = append(lines, strings.Join(cur, " "))
			cur = nil
		}
		if len(cur) == 0 {
			top = w.YMin
		}
		cur = append(cur, w.Text)
	}
	if len(cur) > 0 {
		lines = append(lines, strings.Join(cur, " "))
	}
	return lines
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// tokens are the words of s that must not be broken: split at spaces and
// line breaks, not at no-break spaces (which join a number's groups; a
// reader finds them as words of their own, on one line).
func tokens(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' }) {
		out = append(out, strings.ReplaceAll(f, "\u00a0", " "))
	}
	return out
}

// squeeze drops every space, to compare text that wraps differently.
func squeeze(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '\u00a0' }), "")
}

func anyContains(lines []string, tok string) bool {
	for _, l := range lines {
		if strings.Contains(l, tok) {
			return true
		}
	}
	return false
}

func short(s string) string {
	if r := []rune(s); len(r) > 60 {
		return string(r[:60]) + "..."
	}
	return s
}

// inkInBand finds a dark pixel in the outer band of a page image of
// widthMM × heightMM.
func inkInBand(img *image.Gray, widthMM, heightMM float64) (xMM, yMM float64, found bool) {
	b := img.Bounds()
	sx, sy := float64(b.Dx())/widthMM, float64(b.Dy())/heightMM
	bx, by := int(inkBand*sx), int(inkBand*sy)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			inBand := x-b.Min.X < bx || b.Max.X-x <= bx || y-b.Min.Y < by || b.Max.Y-y <= by
			if inBand && img.GrayAt(x, y).Y < 200 {
				return float64(x-b.Min.X) / sx, float64(y-b.Min.Y) / sy, true
			}
		}
	}
	return 0, 0, false
}
