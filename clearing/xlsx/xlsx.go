// Package xlsx writes minimal Office Open XML spreadsheets (.xlsx) with
// the standard library only: text, whole numbers and money cells, a bold
// header row, one or more sheets. That is all a compensation export
// needs, and it keeps a spreadsheet library and its dependencies out of
// the clearing service.
//
// Strings are written inline (no shared-strings part) and money as the
// exact decimal text of kopiyky / 100 with the "0.00" number format, so
// the file holds no binary floating-point rounding of its own.
package xlsx

import (
	"archive/zip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

type kind uint8

const (
	text kind = iota
	integer
	money
)

// Cell is one cell's value.
type Cell struct {
	kind kind
	s    string
	n    int64
}

// Text is a text cell.
func Text(s string) Cell { return Cell{kind: text, s: s} }

// Int is a whole-number cell.
func Int(n int64) Cell { return Cell{kind: integer, n: n} }

// Money is a cell of kop kopiyky shown as hryvnias with two decimals.
func Money(kop int64) Cell { return Cell{kind: money, n: kop} }

// Sheet is one worksheet. The first row is drawn bold as the header.
type Sheet struct {
	Name string
	Rows [][]Cell
}

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
	}
	z := zip.NewWriter(w)
	// A fixed time keeps the same report byte for byte the same file.
	stamp := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	part := func(name, body string) error {
		f, err := z.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: stamp})
		if err != nil {
			return err
		}
		_, err = io.WriteString(f, xml.Header+body)
		return err
	}
	var types, rels, list strings.Builder
	for i, s := range sheets {
		n := i + 1
		fmt.Fprintf(&types, `<Override PartName="/xl/worksheets/sheet%d.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>`, n)
		fmt.Fprintf(&rels, `<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet%d.xml"/>`, n, n)
		fmt.Fprintf(&list, `<sheet name="%s" sheetId="%d" r:id="rId%d"/>`, escape(s.Name), n, n)
	}
	stylesID := len(sheets) + 1
	parts := []struct{ name, body string }{
		{"[Content_Types].xml", `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>` +
			`<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>` +
			types.String() + `</Types>`},
		{"_rels/.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>` +
			`</Relationships>`},
		{"xl/workbook.xml", `<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ` +
			`xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>` + list.String() + `</sheets></workbook>`},
		{"xl/_rels/workbook.xml.rels", `<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` + rels.String() +
			fmt.Sprintf(`<Relationship Id="rId%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>`, stylesID) +
			`</Relationships>`},
		// Cell styles: 0 plain, 1 bold (header), 2 "0.00" (money), 3 "0"
		// (whole numbers). Number format 2 is built in: "0.00".
		{"xl/styles.xml", `<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">` +
			`<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font><font><b/><sz val="11"/><name val="Calibri"/></font></fonts>` +
			`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
			`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
			`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
			`<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>` +
			`<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>` +
			`<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
			`<xf numFmtId="1" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>` +
			`</styleSheet>`},
	}
	for _, p := range parts {
		if err := part(p.name, p.body); err != nil {
			return fmt.Errorf("xlsx: write %s: %w", p.name, err)
		}
	}
	for i, s := range sheets {
		if err := part(fmt.Sprintf("xl/worksheets/sheet%d.xml", i+1), sheetXML(s)); err != nil {
			return fmt.Errorf("xlsx: write sheet %q: %w", s.Name, err)
		}
	}
	if err := z.Close(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

func sheetXML(s Sheet) string {
	var b strings.Builder
	b.WriteString(`<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
	for r, row := range s.Rows {
		fmt.Fprintf(&b, `<row r="%d">`, r+1)
		for c, cell := range row {
			ref := Column(c) + strconv.Itoa(r+1)
			style := 0
			if r == 0 {
				style = 1
			}
			switch cell.kind {
			case text:
				fmt.Fprintf(&b, `<c r="%s" t="inlineStr" s="%d"><is><t xml:space="preserve">%s</t></is></c>`, ref, style, escape(cell.s))
			case integer:
				fmt.Fprintf(&b, `<c r="%s" s="%d"><v>%d</v></c>`, ref, max(style, 3), cell.n)
			case money:
				fmt.Fprintf(&b, `<c r="%s" s="%d"><v>%s</v></c>`, ref, max(style, 2), Decimal(cell.n))
			}
		}
		b.WriteString(`</row>`)
	}
	b.WriteString(`</sheetData></worksheet>`)
	return b.String()
}

// Column returns the letters of the zero-based column c: A, B, ..., Z,
// AA, AB...
func Column(c int) string {
	var out []byte
	for c++; c > 0; c = (c - 1) / 26 {
		out = append([]byte{byte('A' + (c-1)%26)}, out...)
	}
	return string(out)
}

// Decimal writes kopiyky as exact hryvnias: 123456 -> "1234.56".
func Decimal(kop int64) string {
	sign := ""
	u := uint64(kop)
	if kop < 0 {
		sign, u = "-", uint64(-kop) // two's complement: right for MinInt64 too
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}

// escape makes s safe as XML character data; characters XML cannot hold
// (most control characters, invalid UTF-8) become U+FFFD.
func escape(s string) string {
	var b strings.Builder
	if err := xml.EscapeText(&b, []byte(s)); err != nil {
		return ""
	}
	return b.String()
}

func checkName(name string) error {
	if name == "" || len([]rune(name)) > 31 || strings.ContainsAny(name, `[]:*?/\`) || strings.HasPrefix(name, "'") {
		return fmt.Errorf("xlsx: sheet name %q: 1 to 31 characters, none of []:*?/\\, not starting with '", name)
	}
	return nil
}
