package registry

import (
	"fmt"
	"time"

	"github.com/citycard/transit/card"
)

// Date is a civil date with no time zone: a birth date or the first or
// last day of an entitlement. The zero Date means "not given".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads a date as YYYY-MM-DD and refuses dates that do not
// exist (2026-02-30). The error is a *FieldError for field "date".
func ParseDate(s string) (Date, error) { return ParseDateField("date", s) }

// ParseDateField is ParseDate for a named field: the error, a
// *FieldError, names it.
func ParseDateField(field, s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return Date{}, fieldErr(field, "%q is not an existing date; write it as YYYY-MM-DD, e.g. 2026-11-30", s)
	}
	return DateOf(t), nil
}

// DateOf returns the calendar day of t in t's location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// Today returns the current date in loc (nil means UTC).
func Today(now time.Time, loc *time.Location) Date {
	if loc == nil {
		loc = time.UTC
	}
	return DateOf(now.In(loc))
}

// IsZero reports whether d is the zero Date.
func (d Date) IsZero() bool { return d == Date{} }

// Time returns midnight UTC of d.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDays returns the date n days after d (before, for negative n).
func (d Date) AddDays(n int) Date { return DateOf(d.Time().AddDate(0, 0, n)) }

// AddYears returns the same day n years later; 29 February becomes
// 1 March in a year without it.
func (d Date) AddYears(n int) Date { return DateOf(d.Time().AddDate(n, 0, 0)) }

// Compare returns -1, 0 or +1 as d is before, equal to or after e.
func (d Date) Compare(e Date) int { return d.Time().Compare(e.Time()) }

// Before reports whether d is before e.
func (d Date) Before(e Date) bool { return d.Compare(e) < 0 }

// After reports whether d is after e.
func (d Date) After(e Date) bool { return d.Compare(e) > 0 }

// String returns YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// MarshalText writes YYYY-MM-DD (empty for the zero Date).
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads YYYY-MM-DD; empty text gives the zero Date.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Card returns d as the card stores it; it fails outside the card's range
// (2000-01-01..2179-06-06).
func (d Date) Card() (card.Date, error) { return card.DateOf(d.Time()) }

// BirthDate returns d as the card's holder file stores it.
func (d Date) BirthDate() card.BirthDate {
	return card.BirthDate{Year: d.Year, Month: d.Month, Day: d.Day}
}

// Card date range: an entitlement or card validity must fit on the card.
var (
	cardFirstDay = Date{2000, time.January, 1}
	cardLastDay  = Date{2179, time.June, 6}
)
