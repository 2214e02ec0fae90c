// Package tariff reads the tariff file a validator prices rides with and
// turns it into a fare.Tariff.
//
// The file is JSON:
//
//	{
//	  "version": 3,                  // recorded in every tap; must grow
//	  "passback_seconds": 120,       // same card, same vehicle: not charged again
//	  "fares": [{"carrier": "ATP-1", "fare_kop": 1500}],
//	  "categories": [{"code": "11", "name": "pensioner",
//	                  "discount_pct": 100, "funding": "state"}]
//	}
//
// Category codes are the decimal benefit category numbers written on cards.
// This is the walking skeleton's format; GTFS-Fares v2 files replace it
// (see the validator issue).
package tariff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/citycard/transit/validator/fare"
)

// File is the JSON form of a tariff.
type File struct {
	Version         uint32     `json:"version"`
	PassbackSeconds int64      `json:"passback_seconds"`
	Fares           []Fare     `json:"fares"`
	Categories      []Category `json:"categories"`
}

// Fare is the full single fare of one carrier.
type Fare struct {
	Carrier string `json:"carrier"`
	FareKop int64  `json:"fare_kop"`
}

// Category is a benefit category.
type Category struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	DiscountPct int64  `json:"discount_pct"`
	Funding     string `json:"funding"`
}

// ErrInvalid is wrapped by every error about the file's content.
var ErrInvalid = errors.New("invalid tariff")

// Parse decodes and checks a tariff; name (the file name) prefixes errors.
func Parse(data []byte, name string) (*fare.Tariff, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			return nil, fmt.Errorf("%s:%d: %w: %v", name, line, ErrInvalid, err)
		}
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: %w: more than one JSON value", name, ErrInvalid)
	}
	return f.Tariff(name)
}

// Load reads and parses the tariff file at path.
func Load(path string) (*fare.Tariff, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tariff: %w", err)
	}
	return Parse(data, path)
}

// Tariff checks f and converts it; name prefixes errors.
func (f *File) Tariff(name string) (*fare.Tariff, error) {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s: %s: %w: %s", name, field, ErrInvalid, fmt.Sprintf(format, args...))
	}
	if f.Version == 0 {
		return nil, bad("version", "missing or 0; versions start at 1")
	}
	if f.PassbackSeconds < 0 || f.PassbackSeconds > 24*3600 {
		return nil, bad("passback_seconds", "%d is outside 0..86400", f.PassbackSeconds)
	}
	if len(f.Fares) == 0 {
		return nil, bad("fares", "no fare: list at least one carrier")
	}
	t := &fare.Tariff{
		Version:    f.Version,
		Passback:   time.Duration(f.PassbackSeconds) * time.Second,
		FareKop:    make(map[string]int64, len(f.Fares)),
		Categories: make(map[string]fare.Category, len(f.Categories)),
	}
	for i, fr := range f.Fares {
		field := fmt.Sprintf("fares[%d]", i)
		switch {
		case fr.Carrier == "" || len(fr.Carrier) > 32:
			return nil, bad(field+".carrier", "%q: want 1 to 32 characters", fr.Carrier)
		case fr.FareKop <= 0 || fr.FareKop > 100_000_00:
			return nil, bad(field+".fare_kop", "%d: want a fare in kopiyky between 1 and 10000000", fr.FareKop)
		}
		if _, dup := t.FareKop[fr.Carrier]; dup {
			return nil, bad(field+".carrier", "%q listed twice", fr.Carrier)
		}
		t.FareKop[fr.Carrier] = fr.FareKop
	}
	for i, c := range f.Categories {
		field := fmt.Sprintf("categories[%d]", i)
		n, err := strconv.ParseUint(c.Code, 10, 16)
		switch {
		case err != nil || n == 0 || strconv.FormatUint(n, 10) != c.Code:
			return nil, bad(field+".code", "%q: want the card's category number, 1 to 65535, without leading zeros", c.Code)
		case c.DiscountPct < 0 || c.DiscountPct > 100:
			return nil, bad(field+".discount_pct", "%d is outside 0..100", c.DiscountPct)
		case c.Funding != "city" && c.Funding != "state":
			return nil, bad(field+".funding", "%q: want city or state", c.Funding)
		}
		if _, dup := t.Categories[c.Code]; dup {
			return nil, bad(field+".code", "%q listed twice", c.Code)
		}
		t.Categories[c.Code] = fare.Category{Code: c.Code, DiscountPct: c.DiscountPct, Funding: c.Funding}
	}
	return t, nil
}
