// Package register reads the finance register: what the finance
// department keeps beside the tariff so that a statement is a document a
// carrier accepts. carriers.csv holds each carrier's legal details (legal
// name, EDRPOU, address, IBAN, contract), categories.csv the names of the
// benefit categories in the document's languages; the funding sources are
// named here. FORMAT.md in this directory describes the files.
//
// Every problem is refused with the file, line and column, like the
// tariff: a mistyped IBAN must not reach a payment order.
package register

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Files of a register directory.
const (
	CarriersFile   = "carriers.csv"
	CategoriesFile = "categories.csv"
)

// Limits of a register file.
const (
	MaxFileBytes = 1 << 20
	MaxRows      = 10000
	MaxText      = 300 // bytes of a name or an address
)

// ErrInvalid is wrapped by every error about a register's content.
var ErrInvalid = errors.New("invalid finance register")

// Carrier is one carrier's legal details.
type Carrier struct {
	// ID is the carrier id of the tariff and of taps and statements.
	ID string
	// LegalName is the name in the state register, e.g. "КП «АТП-1»".
	LegalName string
	// EDRPOU is the code in the Unified State Register (8 digits).
	EDRPOU  string
	Address string
	// IBAN is without spaces.
	IBAN string
	// Contract and ContractDate name the compensation contract.
	Contract     string
	ContractDate time.Time
}

// Category is a benefit category's names.
type Category struct {
	Code string // the card category, "11"
	UK   string
	EN   string
}

// Register is a finance register. The zero value is an empty register:
// carriers and categories unknown, named by their codes.
type Register struct {
	carriers   map[string]Carrier
	categories map[string]Category
}

// Load reads the register directory at dir.
func Load(dir string) (*Register, error) {
	r, err := Parse(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("finance register %s: %w", dir, err)
	}
	return r, nil
}

// Parse reads a register from the root of fsys: carriers.csv is
// required, categories.csv optional.
func Parse(fsys fs.FS) (*Register, error) {
	r := &Register{carriers: map[string]Carrier{}, categories: map[string]Category{}}
	rows, err := readCSV(fsys, CarriersFile, true, []string{"carrier_id", "legal_name", "edrpou", "address", "iban", "contract_number", "contract_date"})
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		c, err := row.carrier()
		if err != nil {
			return nil, err
		}
		if _, dup := r.carriers[c.ID]; dup {
			return nil, row.errf("carrier_id", "%q is listed twice", c.ID)
		}
		r.carriers[c.ID] = c
	}
	rows, err = readCSV(fsys, CategoriesFile, false, []string{"card_category", "name_uk", "name_en"})
	if err != nil {
		return nil, err
	}
	for _, row := range rows {
		code := row.get("card_category")
		if n, err := strconv.ParseUint(code, 10, 16); err != nil || n == 0 || strconv.FormatUint(n, 10) != code {
			return nil, row.errf("card_category", "%q: want 1 to 65535, written plainly (as in the tariff's x_benefits.txt)", code)
		}
		if _, dup := r.categories[code]; dup {
			return nil, row.errf("card_category", "%s is listed twice", code)
		}
		c := Category{Code: code, UK: row.get("name_uk"), EN: row.get("name_en")}
		for col, v := range map[string]string{"name_uk": c.UK, "name_en": c.EN} {
			if err := text(v); err != nil {
				return nil, row.errf(col, "%v", err)
			}
		}
		r.categories[code] = c
	}
	return r, nil
}

// Carrier returns a carrier's details.
func (r *Register) Carrier(id string) (Carrier, bool) {
	if r == nil {
		return Carrier{}, false
	}
	c, ok := r.carriers[id]
	return c, ok
}

// Carriers returns the carrier ids, sorted.
func (r *Register) Carriers() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.carriers))
	for id := range r.carriers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// HasCategory reports whether the register names a category.
func (r *Register) HasCategory(code string) bool {
	if r == nil {
		return false
	}
	_, ok := r.categories[code]
	return ok
}

// Categories returns the category codes the register names, sorted.
func (r *Register) Categories() []string {
	if r == nil {
		return nil
	}
	out := make([]string, 0, len(r.categories))
	for c := range r.categories {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// CategoryName names a category in lang ("uk" or "en"): the register's
// name, the Ukrainian one when it has none in lang, and the code itself
// for a category it does not know.
func (r *Register) CategoryName(lang, code string) string {
	if r == nil {
		return code
	}
	c, ok := r.categories[code]
	switch {
	case !ok:
		return code
	case lang == "en" && c.EN != "":
		return c.EN
	case c.UK != "":
		return c.UK
	}
	return code
}

// CarrierName is a carrier's legal name, or its id when the register
// does not know it.
func (r *Register) CarrierName(id string) string {
	if c, ok := r.Carrier(id); ok {
		return c.LegalName
	}
	return id
}

// FundingName names a funding source of the tariff (city, state) in
// lang; an unknown one is its code.
func FundingName(lang, code string) string {
	names := map[string][2]string{
		"city":  {"міський бюджет", "city budget"},
		"state": {"державний бюджет", "state budget"},
	}
	n, ok := names[code]
	switch {
	case !ok:
		return code
	case lang == "en":
		return n[1]
	}
	return n[0]
}

// row is one record of a register file.
type row struct {
	file   string
	line   int
	fields map[string]string
}

func (r row) get(col string) string { return r.fields[col] }

func (r row) errf(col, format string, args ...any) error {
	return fmt.Errorf("%w: %s:%d: %s: %s", ErrInvalid, r.file, r.line, col, fmt.Sprintf(format, args...))
}

func (r row) carrier() (Carrier, error) {
	c := Carrier{ID: r.get("carrier_id"), LegalName: r.get("legal_name"), EDRPOU: r.get("edrpou"),
		Address: r.get("address"), Contract: r.get("contract_number")}
	if c.ID == "" || len(c.ID) > 64 || strings.ContainsFunc(c.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return c, r.errf("carrier_id", "%q: 1 to 64 bytes without spaces, as in the tariff's x_carriers.txt", c.ID)
	}
	for col, v := range map[string]string{"legal_name": c.LegalName, "address": c.Address, "contract_number": c.Contract} {
		if v == "" {
			return c, r.errf(col, "required")
		}
		if err := text(v); err != nil {
			return c, r.errf(col, "%v", err)
		}
	}
	if err := CheckEDRPOU(c.EDRPOU); err != nil {
		return c, r.errf("edrpou", "%v", err)
	}
	iban, err := CheckIBAN(r.get("iban"))
	if err != nil {
		return c, r.errf("iban", "%v", err)
	}
	c.IBAN = iban
	d := r.get("contract_date")
	if c.ContractDate, err = time.Parse("2006-01-02", d); err != nil {
		return c, r.errf("contract_date", "%q: want YYYY-MM-DD", d)
	}
	return c, nil
}

// text checks a name or an address.
func text(s string) error {
	switch {
	case len(s) > MaxText:
		return fmt.Errorf("longer than %d bytes", MaxText)
	case !utf8.ValidString(s):
		return errors.New("not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("control or format character U+%04X", r)
		}
	}
	return nil
}

// readCSV reads one register file with exactly the columns cols.
func readCSV(fsys fs.FS, name string, required bool, cols []string) ([]row, error) {
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, name, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrInvalid, name, MaxFileBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s:1: no header line: %v", ErrInvalid, name, err)
	}
	idx := map[string]int{}
	for i, h := range head {
		h = strings.TrimSpace(h)
		if !slices.Contains(cols, h) {
			return nil, fmt.Errorf("%w: %s:1: unknown column %q; the columns are %s", ErrInvalid, name, h, strings.Join(cols, ", "))
		}
		if _, dup := idx[h]; dup {
			return nil, fmt.Errorf("%w: %s:1: column %q twice", ErrInvalid, name, h)
		}
		idx[h] = i
	}
	for _, c := range cols {
		if _, ok := idx[c]; !ok {
			return nil, fmt.Errorf("%w: %s:1: column %q is missing", ErrInvalid, name, c)
		}
	}
	var out []row
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %v", ErrInvalid, name, line, err)
		}
		if len(out) == MaxRows {
			return nil, fmt.Errorf("%w: %s: more than %d rows", ErrInvalid, name, MaxRows)
		}
		r := row{file: name, line: line, fields: map[string]string{}}
		for c, i := range idx {
			r.fields[c] = strings.TrimSpace(rec[i])
		}
		out = append(out, r)
	}
	return out, nil
}
