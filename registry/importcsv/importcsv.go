// Package importcsv reads the CSV export of the national social-benefits
// register: one row per benefit recipient and entitlement, as IMPORT.md
// in the registry directory describes. It validates every row and
// reports every problem by line and field, so that a file is fixed in one
// pass; it applies nothing (see store.Store.Import).
package importcsv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/citycard/transit/registry"
)

// Limits on one file.
const (
	// MaxRows is the most data rows a file may have; a mid-size city has
	// about 180,000 benefit recipients.
	MaxRows = 2_000_000
	// MaxErrors is how many problems Parse collects before it stops.
	MaxErrors = registry.MaxImportErrors
)

// Columns are the column names of the format, in the order the register
// exports them. Order in a file is free; names are matched exactly, in
// lower case.
var Columns = []string{"rnokpp", "last_name", "first_name", "patronymic", "birth_date", "contact",
	"category", "legal_basis", "evidence", "valid_from", "valid_to", "funding", "monthly_limit",
	"decision_id", "status"}

// optional columns may be left out of the header.
var optional = map[string]bool{"patronymic": true, "contact": true, "monthly_limit": true, "status": true}

// Errors is every problem found in a file, in line order; each wraps
// registry.ErrInvalid.
type Errors = registry.ImportErrors

// Parse reads a whole export and returns its rows, or Errors naming every
// bad line and field (up to MaxErrors). today is the city's current date
// (no birth date may be after it).
func Parse(r io.Reader, today registry.Date) ([]registry.ImportRow, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xEF\xBB\xBF")) {
		br.Discard(3) //nolint:errcheck // peeked
	}
	tail := &recent{r: br}
	cr := csv.NewReader(tail)
	cr.Comma = separator(br)
	cr.FieldsPerRecord = -1 // counted here, to name the line
	cr.ReuseRecord = true

	var errs Errors
	fail := func(line int, field string, format string, args ...any) bool {
		errs = append(errs, &registry.ImportLineError{Line: line, Field: field,
			Err: fmt.Errorf("%w: "+format, append([]any{registry.ErrInvalid}, args...)...)})
		return len(errs) >= MaxErrors
	}

	header, err := cr.Read()
	header = slices.Clone(header) // ReuseRecord: later reads overwrite it
	if errors.Is(err, io.EOF) {
		fail(1, "", "the file is empty; export the register with its header line")
		return nil, errs
	}
	if err != nil {
		fail(csvLine(err, 1), "", "%v", csvProblem(err))
		return nil, errs
	}
	col, ok := columns(header, fail)
	if !ok {
		return nil, errs
	}

	var (
		rows     []registry.ImportRow
		seen     = make(map[string]int)      // decision id -> line
		persons  = make(map[string]personAt) // registry number -> first row's person
		dataRows = 0
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// After a quoting error the reader cannot tell where the
			// next record starts; stop here.
			line, field, where := tail.locate(err, header, cr.Comma)
			fail(line, field, "%v%s; check the quotes: a field that holds a quote is put in quotes, and its quotes doubled", csvProblem(err), where)
			return nil, errs
		}
		line, _ := cr.FieldPos(0)
		dataRows++
		if dataRows > MaxRows {
			fail(line, "", "more than %d rows; split the file", MaxRows)
			return nil, errs
		}
		if len(rec) != len(header) {
			if fail(line, "", "%d fields, the header has %d; check the separators on this line", len(rec), len(header)) {
				return nil, errs
			}
			continue
		}
		row, err := parseRow(line, rec, col, today)
		if err != nil {
			var le *registry.ImportLineError
			errors.As(err, &le)
			errs = append(errs, le)
			if len(errs) >= MaxErrors {
				return nil, errs
			}
			continue
		}
		if prev, dup := seen[row.Entitlement.SourceRef]; dup {
			if fail(line, "decision_id", "the same decision is on line %d; a decision appears once", prev) {
				return nil, errs
			}
			continue
		}
		seen[row.Entitlement.SourceRef] = line
		p := personAt{line, row.Resident.Name, row.Resident.BirthDate}
		if first, ok := persons[row.Resident.RegistryNumber]; !ok {
			persons[row.Resident.RegistryNumber] = p
		} else if first.birth != p.birth {
			if fail(line, "birth_date", "differs from line %d for the same rnokpp; one person has one birth date", first.line) {
				return nil, errs
			}
			continue
		} else if first.name != p.name {
			if fail(line, "last_name", "the name differs from line %d for the same rnokpp; correct one of them", first.line) {
				return nil, errs
			}
			continue
		}
		rows = append(rows, row)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return rows, nil
}

type personAt struct {
	line  int
	name  string
	birth registry.Date
}

// separator picks ';' or ',' by which the header line has more of; the
// register's exports use ';' and spreadsheets ','.
func separator(br *bufio.Reader) rune {
	head, _ := br.Peek(4096)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	if bytes.Count(head, []byte(";")) > bytes.Count(head, []byte(",")) {
		return ';'
	}
	return ','
}

// columns maps each known column name to its index in the header.
func columns(header []string, fail func(int, string, string, ...any) bool) (map[string]int, bool) {
	col := make(map[string]int, len(header))
	known := make(map[string]bool, len(Columns))
	for _, c := range Columns {
		known[c] = true
	}
	ok := true
	for i, h := range header {
		h = strings.TrimSpace(h)
		if !known[h] {
			fail(1, "", "unknown column %q; the columns are %s", clip(h), strings.Join(Columns, ", "))
			ok = false
			continue
		}
		if _, dup := col[h]; dup {
			fail(1, "", "column %q appears twice", h)
			ok = false
			continue
		}
		col[h] = i
	}
	for _, c := range Columns {
		if _, present := col[c]; !present && !optional[c] {
			fail(1, "", "column %q is missing; the header must name %s", c, strings.Join(required(), ", "))
			ok = false
		}
	}
	return col, ok
}

func required() []string {
	var out []string
	for _, c := range Columns {
		if !optional[c] {
			out = append(out, c)
		}
	}
	return out
}

// parseRow turns one record into a row, or an *ImportLineError naming the
// first bad field.
func parseRow(line int, rec []string, col map[string]int, today registry.Date) (registry.ImportRow, error) {
	get := func(name string) string {
		i, ok := col[name]
		if !ok {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	lineErr := func(field, format string, args ...any) error {
		return registry.LineError(line, &registry.FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	row := registry.ImportRow{Line: line}

	var name []string
	for _, part := range []string{"last_name", "first_name", "patronymic"} {
		v := get(part)
		if v == "" && part != "patronymic" {
			return row, lineErr(part, "empty; it is required")
		}
		if v != "" {
			name = append(name, v)
		}
	}
	birth, err := parseDate("birth_date", get("birth_date"))
	if err != nil {
		return row, registry.LineError(line, err)
	}
	row.Resident = registry.Resident{
		RegistryNumber: get("rnokpp"),
		Name:           strings.Join(name, " "),
		BirthDate:      birth,
		Contact:        get("contact"),
	}
	if err := row.Resident.Validate(today); err != nil {
		le := registry.LineError(line, err)
		// The file names two fields differently from the API.
		switch le.Field {
		case "registry_number":
			le.Field = "rnokpp"
		case "name":
			le.Field = "last_name"
		}
		return row, le
	}

	category, err := strconv.ParseUint(get("category"), 10, 16)
	if err != nil || category == 0 {
		return row, lineErr("category", "%q; want the tariff's category code, 1 to 65535 (11 pensioner, 12 veteran, 21 disability, 31 student)", clip(get("category")))
	}
	limit := 0
	if s := get("monthly_limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > registry.MaxMonthlyLimit {
			return row, lineErr("monthly_limit", "%q; want 0 (unlimited) to %d rides", clip(s), registry.MaxMonthlyLimit)
		}
		limit = n
	}
	from, err := parseDate("valid_from", get("valid_from"))
	if err != nil {
		return row, registry.LineError(line, err)
	}
	to, err := parseDate("valid_to", get("valid_to"))
	if err != nil {
		return row, registry.LineError(line, err)
	}
	funding := registry.Funding(strings.ToLower(get("funding")))
	row.Entitlement = registry.Entitlement{
		Category:     uint16(category),
		LegalBasis:   get("legal_basis"),
		Evidence:     get("evidence"),
		ValidFrom:    from,
		ValidTo:      to,
		Funding:      funding,
		MonthlyLimit: limit,
		Source:       registry.SourceImport,
		SourceRef:    get("decision_id"),
	}
	if err := row.Entitlement.Validate(); err != nil {
		return row, registry.LineError(line, err)
	}
	switch strings.ToLower(get("status")) {
	case "", "active":
	case "ended":
		row.Ended = true
	default:
		return row, lineErr("status", "%q; want active or ended (empty means active)", clip(get("status")))
	}
	return row, nil
}

// parseDate reads YYYY-MM-DD, or DD.MM.YYYY as the register writes dates.
func parseDate(field, s string) (registry.Date, error) {
	if s == "" {
		return registry.Date{}, &registry.FieldError{Field: field, Problem: "empty; give the date as YYYY-MM-DD or DD.MM.YYYY"}
	}
	if len(s) == 10 && s[2] == '.' && s[5] == '.' {
		s = s[6:] + "-" + s[3:5] + "-" + s[:2]
	}
	return registry.ParseDateField(field, s)
}

// clip shortens a value quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func csvLine(err error, fallback int) int {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.StartLine
	}
	return fallback
}

func csvProblem(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// recentSize is how much of the file recent keeps: the csv reader reads
// 4 KiB ahead, and a register's line is well under 1 KiB.
const recentSize = 64 << 10

// recent is the reader under the csv reader. It keeps the last bytes
// read, so that a quoting error, for which encoding/csv gives only a line
// and a byte offset, can name the column and the character.
type recent struct {
	r       io.Reader
	buf     []byte
	dropped int // newlines in the bytes dropped from buf's front
	cut     bool
}

func (t *recent) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	if over := len(t.buf) - recentSize; over > 0 {
		t.dropped += bytes.Count(t.buf[:over], []byte("\n"))
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return n, err
}

// line returns the text of line n (1-based), if recent still holds all
// of it.
func (t *recent) line(n int) ([]byte, bool) {
	skip := n - 1 - t.dropped
	if skip < 0 || (skip == 0 && t.cut) {
		return nil, false // its start is gone
	}
	b := t.buf
	for ; skip > 0; skip-- {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil, false
		}
		b = b[i+1:]
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimSuffix(b, []byte("\r")), true
}

// locate names where a csv.ParseError is: its record's first line, and,
// when the error is on that line and recent holds it, the header's name
// of the column it falls in and " (character N of the line)".
func (t *recent) locate(err error, header []string, comma rune) (line int, field, where string) {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return 0, "", ""
	}
	if pe.Line != pe.StartLine || pe.Column < 1 {
		return pe.StartLine, "", fmt.Sprintf(" (on line %d)", pe.Line)
	}
	text, ok := t.line(pe.Line)
	if !ok || pe.Column-1 > len(text) {
		return pe.StartLine, "", ""
	}
	before := text[:pe.Column-1]
	// Which field: the separators outside quotes before the error.
	col, quoted := 0, false
	for _, r := range string(before) {
		switch {
		case r == '"':
			quoted = !quoted
		case r == comma && !quoted:
			col++
		}
	}
	if col < len(header) {
		field = strings.TrimSpace(header[col])
	}
	return pe.StartLine, field, fmt.Sprintf(" (character %d of the line)", utf8.RuneCount(before)+1)
}
