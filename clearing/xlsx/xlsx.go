// Package xlsx writes the platform's spreadsheets (.xlsx) with
// github.com/xuri/excelize/v2: sheets of typed columns with widths, a
// bold frozen header with an autofilter, whole numbers, money and dates
// stored as numbers and dates with their formats, so that a spreadsheet
// sorts, filters and sums them.
//
// Money is written as hryvnias with exactly two decimals (kopiyky / 100),
// which a spreadsheet reads as the nearest binary number, as it reads
// anything it is given; the exact kopiyky are in the CSV and JSON. Every
// text cell is passed through spreadsheet.Defuse (formula injection).
package xlsx

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/citycard/transit/clearing/report/spreadsheet"
)

// Kind is what a column holds.
type Kind uint8

// Kinds of columns.
const (
	KindText Kind = iota
	KindInt
	KindMoney
	KindDate
	KindTime
)

// Cell is one cell's value.
type Cell struct {
	kind Kind
	s    string
	n    int64
	t    time.Time
}

// Text is a text cell.
func Text(s string) Cell { return Cell{kind: KindText, s: s} }

// Int is a whole-number cell.
func Int(n int64) Cell { return Cell{kind: KindInt, n: n} }

// Money is a cell of kop kopiyky shown as hryvnias with two decimals.
func Money(kop int64) Cell { return Cell{kind: KindMoney, n: kop} }

// Date is a date cell (DD.MM.YYYY) of t's calendar day in t's location.
func Date(t time.Time) Cell { return Cell{kind: KindDate, t: t} }

// Time is a date and time cell (DD.MM.YYYY HH:MM:SS), in t's location.
func Time(t time.Time) Cell { return Cell{kind: KindTime, t: t} }

// Empty is a cell left blank.
func Empty() Cell { return Cell{kind: KindText} }

// Column is a column's header and width (in characters; 0 fits the
// header and the cells).
type Column struct {
	Title string
	Width float64
}

// Sheet is one worksheet: a header row of Columns, frozen and filtered,
// then Rows, and a bold Foot row (totals) when Foot is not nil.
type Sheet struct {
	Name    string
	Columns []Column
	Rows    [][]Cell
	Foot    []Cell
}

// Number formats.
const (
	fmtMoney = "#,##0.00"
	fmtInt   = "#,##0"
	fmtDate  = "dd.mm.yyyy"
	fmtTime  = "dd.mm.yyyy hh:mm:ss"
)

// Write writes a workbook of sheets to w.
func Write(w io.Writer, sheets ...Sheet) error {
	if len(sheets) == 0 {
		return errors.New("xlsx: a workbook needs at least one sheet")
	}
	seen := map[string]bool{}
	for _, s := range sheets {
		if err := checkName(s.Name); err != nil {
			return err
		}
		if seen[strings.ToLower(s.Name)] {
			return fmt.Errorf("xlsx: two sheets named %q", s.Name)
		}
		seen[strings.ToLower(s.Name)] = true
		for i, r := range s.Rows {
			if len(r) > len(s.Columns) {
				return fmt.Errorf("xlsx: sheet %q row %d has %d cells for %d columns", s.Name, i+1, len(r), len(s.Columns))
			}
		}
	}
	f := excelize.NewFile()
	defer f.Close()
	st, err := newStyles(f)
	if err != nil {
		return err
	}
	for i, s := range sheets {
		if i == 0 {
			err = f.SetSheetName("Sheet1", s.Name)
		} else {
			_, err = f.NewSheet(s.Name)
		}
		if err == nil {
			err = writeSheet(f, st, s)
		}
		if err != nil {
			return fmt.Errorf("xlsx: sheet %q: %w", s.Name, err)
		}
	}
	f.SetActiveSheet(0)
	if err := f.Write(w); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

// styles are the style ids of a workbook, plain and bold (foot).
type styles struct {
	head       int
	cell, bold [5]int // by Kind
}

func newStyles(f *excelize.File) (styles, error) {
	var st styles
	var err error
	mk := func(s *excelize.Style) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = f.NewStyle(s)
		return id
	}
	formats := [5]string{"", fmtInt, fmtMoney, fmtDate, fmtTime}
	for k, nf := range formats {
		var p *string
		if nf != "" {
			p = &nf
		}
		st.cell[k] = mk(&excelize.Style{CustomNumFmt: p, Alignment: &excelize.Alignment{Vertical: "top"}})
		st.bold[k] = mk(&excelize.Style{CustomNumFmt: p, Font: &excelize.Font{Bold: true},
			Border: []excelize.Border{{Type: "top", Color: "000000", Style: 1}}})
	}
	st.head = mk(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"F2F4F7"}},
		Alignment: &excelize.Alignment{Vertical: "top", WrapText: true}, Border: []excelize.Border{{Type: "bottom", Color: "6B6B6B", Style: 1}}})
	return st, err
}

func writeSheet(f *excelize.File, st styles, s Sheet) error {
	widths := make([]float64, len(s.Columns))
	for c, col := range s.Columns {
		ref, _ := excelize.CoordinatesToCellName(c+1, 1)
		if err := f.SetCellStr(s.Name, ref, col.Title); err != nil {
			return err
		}
		widths[c] = float64(utf8.RuneCountInString(col.Title)) * 0.6 // wrapped over two lines at most
	}
	if len(s.Columns) > 0 {
		last, _ := excelize.CoordinatesToCellName(len(s.Columns), 1)
		if err := f.SetCellStyle(s.Name, "A1", last, st.head); err != nil {
			return err
		}
	}
	put := func(row int, cells []Cell, styleOf func(Kind) int) error {
		for c, cell := range cells {
			ref, _ := excelize.CoordinatesToCellName(c+1, row)
			var err error
			n := 0
			switch cell.kind {
			case KindText:
				v := spreadsheet.Defuse(cell.s)
				n = utf8.RuneCountInString(v)
				err = f.SetCellStr(s.Name, ref, v)
			case KindInt:
				n = len(fmt.Sprint(cell.n)) + 2
				err = f.SetCellInt(s.Name, ref, cell.n)
			case KindMoney:
				n = len(fmt.Sprint(cell.n/100)) + 5
				err = f.SetCellFloat(s.Name, ref, float64(cell.n)/100, 2, 64)
			case KindDate:
				n = 11
				err = f.SetCellValue(s.Name, ref, civil(cell.t, false))
			case KindTime:
				n = 20
				err = f.SetCellValue(s.Name, ref, civil(cell.t, true))
			}
			if err == nil {
				err = f.SetCellStyle(s.Name, ref, ref, styleOf(cell.kind))
			}
			if err != nil {
				return err
			}
			if c < len(widths) {
				widths[c] = max(widths[c], float64(n)+1)
			}
		}
		return nil
	}
	for i, r := range s.Rows {
		if err := put(i+2, r, func(k Kind) int { return st.cell[k] }); err != nil {
			return err
		}
	}
	if s.Foot != nil {
		if err := put(len(s.Rows)+2, s.Foot, func(k Kind) int { return st.bold[k] }); err != nil {
			return err
		}
	}
	for c, col := range s.Columns {
		w := widths[c]
		if col.Width > 0 {
			w = col.Width
		}
		name, _ := excelize.ColumnNumberToName(c + 1)
		if err := f.SetColWidth(s.Name, name, name, min(max(w, 6), 80)); err != nil {
			return err
		}
	}
	if len(s.Columns) == 0 {
		return nil
	}
	if err := f.SetPanes(s.Name, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	last, _ := excelize.CoordinatesToCellName(len(s.Columns), len(s.Rows)+1)
	return f.AutoFilter(s.Name, "A1:"+last, nil)
}

// civil returns t's wall clock in its own location as a zone-less time,
// which is what a spreadsheet date is: Kyiv's 23:40 stays 23:40.
func civil(t time.Time, clock bool) time.Time {
	y, m, d := t.Date()
	if !clock {
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// ColumnName returns the letters of the zero-based column c: A, B, ...,
// Z, AA, AB...
func ColumnName(c int) string {
	s, _ := excelize.ColumnNumberToName(c + 1)
	return s
}

func checkName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 31 || strings.ContainsAny(name, `[]:*?/\`) || strings.HasPrefix(name, "'") {
		return fmt.Errorf("xlsx: sheet name %q: 1 to 31 characters, none of []:*?/\\, not starting with '", name)
	}
	return nil
}
