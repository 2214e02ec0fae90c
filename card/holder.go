package card

import (
	"encoding/binary"
	"fmt"
	"time"
	"unicode/utf8"
)

// HolderVersion is the holder layout this code writes and reads.
const HolderVersion = 1

// HolderSize is the size of the holder file.
const HolderSize = 128

// MaxNameBytes is the longest holder name, in UTF-8 bytes (57 Cyrillic
// letters).
const MaxNameBytes = HolderSize - 14

// BirthDate is a calendar date stored as year, month, day; birth dates
// predate the Date epoch.
type BirthDate struct {
	Year  int
	Month time.Month
	Day   int
}

// Valid reports whether the date exists (1900..2199).
func (d BirthDate) Valid() bool {
	if d.Year < 1900 || d.Year > 2199 || d.Month < time.January || d.Month > time.December || d.Day < 1 {
		return false
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Day() == d.Day
}

// String returns the date as YYYY-MM-DD.
func (d BirthDate) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Holder is the personal data on the card, in the holder application. Only
// the desk key reads or writes it; validators never select that
// application. It carries a reference to the registry's record, never a
// social or tax number.
//
//	0      version
//	1..2   birth year (uint16), 3 month, 4 day
//	5..12  registry reference (uint64, big-endian, non-zero)
//	13     name length n
//	14..   name, UTF-8, n bytes, then zeros to the end
type Holder struct {
	Name        string
	BirthDate   BirthDate
	RegistryRef uint64
}

// Validate reports the first field that cannot be right.
func (h *Holder) Validate() error {
	const file = "holder"
	switch {
	case h.Name == "":
		return fieldErr(file, "name", ErrValue, "empty")
	case len(h.Name) > MaxNameBytes:
		return fieldErr(file, "name", ErrLength, "%d bytes, at most %d", len(h.Name), MaxNameBytes)
	case !utf8.ValidString(h.Name):
		return fieldErr(file, "name", ErrValue, "not UTF-8")
	case !h.BirthDate.Valid():
		return fieldErr(file, "birthDate", ErrDate, "%s", h.BirthDate)
	case h.RegistryRef == 0:
		return fieldErr(file, "registryRef", ErrValue, "zero")
	}
	for _, r := range h.Name {
		if r == 0 {
			return fieldErr(file, "name", ErrValue, "contains NUL")
		}
	}
	return nil
}

// MarshalBinary encodes the holder file content.
func (h *Holder) MarshalBinary() ([]byte, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, HolderSize)
	b[0] = HolderVersion
	binary.BigEndian.PutUint16(b[1:], uint16(h.BirthDate.Year))
	b[3] = byte(h.BirthDate.Month)
	b[4] = byte(h.BirthDate.Day)
	binary.BigEndian.PutUint64(b[5:], h.RegistryRef)
	b[13] = byte(len(h.Name))
	copy(b[14:], h.Name)
	return b, nil
}

// UnmarshalBinary decodes and validates the holder file content.
func (h *Holder) UnmarshalBinary(b []byte) error {
	const file = "holder"
	if len(b) != HolderSize {
		return lengthErr(file, len(b), HolderSize)
	}
	if b[0] != HolderVersion {
		return versionErr(file, b[0], HolderVersion)
	}
	n := int(b[13])
	if n > MaxNameBytes {
		return fieldErr(file, "name", ErrLength, "length byte %d, at most %d", n, MaxNameBytes)
	}
	for i, c := range b[14+n:] {
		if c != 0 {
			return fieldErr(file, "name", ErrValue, "byte %d after the name is %#02x, want 0", 14+n+i, c)
		}
	}
	v := Holder{
		Name:        string(b[14 : 14+n]),
		BirthDate:   BirthDate{Year: int(binary.BigEndian.Uint16(b[1:])), Month: time.Month(b[3]), Day: int(b[4])},
		RegistryRef: binary.BigEndian.Uint64(b[5:]),
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*h = v
	return nil
}

// String hides the personal data so that a Holder logged by mistake leaks
// nothing.
func (h Holder) String() string { return fmt.Sprintf("holder(ref %d)", h.RegistryRef) }

// GoString hides the personal data from %#v as well.
func (h Holder) GoString() string { return h.String() }
