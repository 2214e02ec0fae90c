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
	"strconv"
	"strings"

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
	cr := csv.NewReader(br)
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
			fail(csvLine(err, 0), "", "%v; check the quotes on this line", csvProblem(err))
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
