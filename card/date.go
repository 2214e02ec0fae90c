package card

import (
	"fmt"
	"time"
)

var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Date is a calendar day stored as days since 2000-01-01 (day 0); it spans
// 2000-01-01 to 2179-06-06 in two bytes. It is a civil date, with no time
// zone: the validator compares it with the local date of the tap.
type Date uint16

// DateOf returns the Date of t's calendar day (in t's location).
func DateOf(t time.Time) (Date, error) {
	y, m, d := t.Date()
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(epoch).Hours() / 24
	if days < 0 || days > 0xFFFF {
		return 0, fmt.Errorf("date %04d-%02d-%02d: %w: outside 2000-01-01..2179-06-06", y, m, d, ErrDate)
	}
	return Date(days), nil
}

// MustDate is DateOf(time.Date(y, m, d)) for literals in tests and examples;
// it panics on a date outside the range.
func MustDate(y int, m time.Month, d int) Date {
	dt, err := DateOf(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
	if err != nil {
		panic(err)
	}
	return dt
}

// Time returns midnight UTC of the day.
func (d Date) Time() time.Time { return epoch.AddDate(0, 0, int(d)) }

// String returns the date as YYYY-MM-DD.
func (d Date) String() string { return d.Time().Format(time.DateOnly) }

// Month is a calendar month stored in two bytes, year-2000 then month, so
// that a hex dump reads naturally (0x1A0B is 2026-11). The zero Month means
// "none" (a counter never used).
type Month uint16

// MonthOf returns the month of t (in t's location).
func MonthOf(t time.Time) (Month, error) {
	y, m, _ := t.Date()
	return NewMonth(y, m)
}

// NewMonth returns the Month for year y (2000..2255) and month m.
func NewMonth(y int, m time.Month) (Month, error) {
	if y < 2000 || y > 2255 || m < time.January || m > time.December {
		return 0, fmt.Errorf("month %04d-%02d: %w: outside 2000-01..2255-12", y, int(m), ErrDate)
	}
	return Month(uint16(y-2000)<<8 | uint16(m)), nil
}

// Valid reports whether m is zero ("none") or a real month.
func (m Month) Valid() bool {
	mm := m & 0xFF
	return m == 0 || (mm >= 1 && mm <= 12)
}

// Year returns the year, e.g. 2026.
func (m Month) Year() int { return 2000 + int(m>>8) }

// Month returns the month of the year.
func (m Month) Month() time.Month { return time.Month(m & 0xFF) }

// YYYYMM returns the month as a number like 202611, the form used in
// statements.
func (m Month) YYYYMM() int { return m.Year()*100 + int(m.Month()) }

// String returns YYYY-MM, or "none" for the zero Month.
func (m Month) String() string {
	if m == 0 {
		return "none"
	}
	return fmt.Sprintf("%04d-%02d", m.Year(), int(m.Month()))
}

// Stamp is an instant stored as whole seconds since 2000-01-01T00:00:00Z in
// four bytes (good until 2136).
type Stamp uint32

// StampOf returns t truncated to the second.
func StampOf(t time.Time) (Stamp, error) {
	s := t.Unix() - epoch.Unix()
	if s < 0 || s > 0xFFFFFFFF {
		return 0, fmt.Errorf("time %s: %w: outside 2000..2136", t.UTC().Format(time.RFC3339), ErrDate)
	}
	return Stamp(s), nil
}

// Time returns the instant in UTC.
func (s Stamp) Time() time.Time { return time.Unix(epoch.Unix()+int64(s), 0).UTC() }

// String returns the instant in RFC 3339, UTC.
func (s Stamp) String() string { return s.Time().Format(time.RFC3339) }

// Money is an amount in kopiyky (1/100 UAH). It is 32-bit because DESFire
// value files hold signed 32-bit integers.
type Money int32

// String returns the amount as hryvni with two decimals, e.g. "12.50 UAH".
func (m Money) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d UAH", sign, v/100, v%100)
}
