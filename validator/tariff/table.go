package tariff

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a tariff file may hold, so that a damaged or hostile
// directory cannot make a validator allocate without bound. A city's
// tariff is a few kilobytes.
const (
	maxFileBytes = 1 << 20
	maxFiles     = 32
	maxRows      = 10_000
	maxIDBytes   = 64
)

// Error is a content error in one file of a tariff: what is wrong, where.
// It wraps ErrInvalid. Error() reads "file:line: field: message", the line
// and field left out when the error is about the whole file or row.
type Error struct {
	File  string
	Line  int    // 1-based; 0 for the file as a whole
	Field string // column name; "" for the whole row or file
	Msg   string
}

// Error returns "file:line: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

func fileErr(file, format string, args ...any) error {
	return &Error{File: file, Msg: fmt.Sprintf(format, args...)}
}

// column is one column a file may have.
type column struct {
	name     string
	required bool
}

// unsupportedColumns are GTFS-Fares v2 columns this format leaves out on
// purpose, with the reason a publisher is told.
var unsupportedColumns = map[string]string{
	"from_area_id":          "not supported: a validator prices a boarding and knows no stops",
	"to_area_id":            "not supported: a validator prices a boarding and knows no stops",
	"to_timeframe_group_id": "not supported: a validator knows when a ride starts, not when it ends",
	"fare_media_id":         "not supported: every product of this tariff is on the city card (fare_media.txt is not read)",
}

// table is one CSV file, read whole.
type table struct {
	file string
	cols map[string]int
	rows []row
}

// row is one data record of a table.
type row struct {
	t      *table
	line   int
	fields []string
}

// get returns the trimmed value of column col, "" if the file has no such
// column.
func (r row) get(col string) string {
	if i, ok := r.t.cols[col]; ok {
		return r.fields[i]
	}
	return ""
}

// bad is an error about column field of this row.
func (r row) bad(field, format string, args ...any) error {
	return &Error{File: r.t.file, Line: r.line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// readTable parses data as the CSV file name with the given columns: a
// header naming each column once, only columns of cols, every required
// one; then records with as many fields as the header.
func readTable(name string, data []byte, cols []column) (*table, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff")) // GTFS allows a byte order mark
	for i := 0; i < len(data); {
		c, n := utf8.DecodeRune(data[i:])
		if c == utf8.RuneError && n == 1 {
			return nil, &Error{File: name, Line: 1 + bytes.Count(data[:i], []byte("\n")), Msg: "not UTF-8 text"}
		}
		i += n
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1 // counted below, with a clearer message
	t := &table{file: name, cols: map[string]int{}}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fileErr(name, "empty: the first line must name the columns")
	}
	if err != nil {
		return nil, csvErr(name, err)
	}
	known := make(map[string]bool, len(cols))
	for _, c := range cols {
		known[c.name] = true
	}
	for i, h := range header {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
			return nil, &Error{File: name, Line: 1, Msg: fmt.Sprintf("column %d has no name", i+1)}
		case !known[h]:
			msg := unsupportedColumns[h]
			if msg == "" {
				msg = "unknown column; validator/tariff/FORMAT.md lists the columns of " + name
			}
			return nil, &Error{File: name, Line: 1, Field: h, Msg: msg}
		}
		if _, dup := t.cols[h]; dup {
			return nil, &Error{File: name, Line: 1, Field: h, Msg: "column named twice"}
		}
		t.cols[h] = i
	}
	for _, c := range cols {
		if _, ok := t.cols[c.name]; c.required && !ok {
			return nil, &Error{File: name, Line: 1, Field: c.name, Msg: "missing: a required column"}
		}
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvErr(name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			return nil, &Error{File: name, Line: line, Msg: fmt.Sprintf("%d fields, the header names %d", len(rec), len(header))}
		}
		if len(t.rows) == maxRows {
			return nil, &Error{File: name, Line: line, Msg: fmt.Sprintf("more than %d rows", maxRows)}
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		t.rows = append(t.rows, row{t: t, line: line, fields: rec})
	}
	return t, nil
}

func csvErr(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Line, Msg: pe.Err.Error()}
	}
	return &Error{File: name, Msg: err.Error()}
}

// Field parsers. Each returns a row error naming the column and the value.

// id checks an identifier: 1 to 64 bytes, no spaces (lists of ids are
// space-separated) and no control characters.
func (r row) id(col string, required bool) (string, error) {
	v := r.get(col)
	if v == "" {
		if required {
			return "", r.bad(col, "empty: an id is required")
		}
		return "", nil
	}
	if len(v) > maxIDBytes {
		return "", r.bad(col, "%q is longer than %d bytes", v, maxIDBytes)
	}
	for _, c := range v {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return "", r.bad(col, "%q: an id has no spaces or control characters", v)
		}
	}
	return v, nil
}

// ids splits a space-separated list of ids.
func (r row) ids(col string) ([]string, error) {
	var out []string
	for _, v := range strings.Fields(r.get(col)) {
		if len(v) > maxIDBytes {
			return nil, r.bad(col, "%q is longer than %d bytes", v, maxIDBytes)
		}
		for _, c := range v {
			if unicode.IsControl(c) {
				return nil, r.bad(col, "%q: an id has no control characters", v)
			}
		}
		for _, o := range out {
			if o == v {
				return nil, r.bad(col, "%q listed twice", v)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// integer reads a decimal integer in lo..hi, written without leading zeros
// or sign (other than "-" for negatives); empty gives def when not
// required.
func (r row) integer(col string, lo, hi int64, required bool, def int64) (int64, error) {
	v := r.get(col)
	if v == "" {
		if required {
			return 0, r.bad(col, "empty: a number %d..%d is required", lo, hi)
		}
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != v {
		return 0, r.bad(col, "%q is not a whole number written plainly", v)
	}
	if n < lo || n > hi {
		return 0, r.bad(col, "%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

// maxAmountKop bounds amounts: 1,000,000.00 UAH.
const maxAmountKop = 100_000_000

// amount reads a money amount in the currency's units with at most two
// decimals ("15", "15.5", "-5.00") as kopiyky. Never a float.
func (r row) amount(col string, required bool) (int64, bool, error) {
	v := r.get(col)
	if v == "" {
		if required {
			return 0, false, r.bad(col, "empty: an amount such as 15.00 is required")
		}
		return 0, false, nil
	}
	s, neg := strings.CutPrefix(v, "-")
	whole, frac, dot := strings.Cut(s, ".")
	ok := whole != "" && len(whole) <= 9 && allDigits(whole) && (!dot || frac != "" && len(frac) <= 2 && allDigits(frac))
	if !ok {
		return 0, false, r.bad(col, "%q is not an amount such as 15.00 (at most two decimals)", v)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	kop := w*100 + f
	if kop > maxAmountKop {
		return 0, false, r.bad(col, "%s is above 1000000.00", v)
	}
	if neg {
		kop = -kop
	}
	return kop, true, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// clock reads a GTFS time "HH:MM:SS" (or "H:MM:SS") of at most 24:00:00
// as seconds since midnight.
func (r row) clock(col string) (int32, error) {
	v := r.get(col)
	p := strings.Split(v, ":")
	if len(p) == 3 && len(p[0]) >= 1 && len(p[0]) <= 2 && len(p[1]) == 2 && len(p[2]) == 2 &&
		allDigits(p[0]) && allDigits(p[1]) && allDigits(p[2]) {
		h, _ := strconv.Atoi(p[0])
		m, _ := strconv.Atoi(p[1])
		s, _ := strconv.Atoi(p[2])
		if t := h*3600 + m*60 + s; m < 60 && s < 60 && t <= 24*3600 {
			return int32(t), nil
		}
	}
	return 0, r.bad(col, "%q is not a time of day HH:MM:SS from 00:00:00 to 24:00:00", v)
}

// date reads a GTFS date "YYYYMMDD" as the number yyyymmdd.
func (r row) date(col string) (int32, error) {
	v := r.get(col)
	if len(v) == 8 && allDigits(v) {
		y, _ := strconv.Atoi(v[:4])
		m, _ := strconv.Atoi(v[4:6])
		d, _ := strconv.Atoi(v[6:])
		if y >= 2000 && m >= 1 && m <= 12 && d >= 1 && d <= daysIn(y, m) {
			return int32(y*10000 + m*100 + d), nil
		}
	}
	return 0, r.bad(col, "%q is not a date YYYYMMDD from the year 2000 on", v)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// flag reads a GTFS boolean: "0" or "1", or empty for def when allowed.
func (r row) flag(col string, required bool) (bool, error) {
	switch v := r.get(col); v {
	case "1":
		return true, nil
	case "0":
		return false, nil
	case "":
		if !required {
			return false, nil
		}
	}
	return false, r.bad(col, "%q: want 0 or 1", r.get(col))
}
