package card

import (
	"errors"
	"testing"
	"time"
)

func TestDate(t *testing.T) {
	for _, tt := range []struct {
		t    time.Time
		want Date
	}{
		{time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), 0},
		{time.Date(2000, 3, 1, 23, 59, 0, 0, time.UTC), 60}, // 2000 is a leap year
		{time.Date(2179, 6, 6, 12, 0, 0, 0, time.UTC), 0xFFFF},
	} {
		got, err := DateOf(tt.t)
		if err != nil || got != tt.want {
			t.Errorf("DateOf(%v) = %d, %v; want %d", tt.t, got, err, tt.want)
		}
		if y, m, d := got.Time().Date(); y != tt.t.Year() || m != tt.t.Month() || d != tt.t.Day() {
			t.Errorf("Date(%d).Time() = %v", got, got.Time())
		}
	}
	// Local date, not UTC date: 00:30 in Kyiv is still the previous day in UTC.
	kyiv := time.FixedZone("EET", 2*3600)
	if got, _ := DateOf(time.Date(2026, 11, 22, 0, 30, 0, 0, kyiv)); got.String() != "2026-11-22" {
		t.Errorf("DateOf local = %s", got)
	}
	for _, bad := range []time.Time{time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2179, 6, 7, 0, 0, 0, 0, time.UTC)} {
		if _, err := DateOf(bad); !errors.Is(err, ErrDate) {
			t.Errorf("DateOf(%v) error %v, want ErrDate", bad, err)
		}
	}
}

func TestMonth(t *testing.T) {
	m, err := NewMonth(2026, time.November)
	if err != nil || uint16(m) != 0x1A0B || m.YYYYMM() != 202611 || m.String() != "2026-11" {
		t.Errorf("NewMonth = %#x %d %s, %v", uint16(m), m.YYYYMM(), m, err)
	}
	for _, tt := range []struct {
		y int
		m time.Month
	}{{1999, 12}, {2256, 1}, {2026, 0}, {2026, 13}} {
		if _, err := NewMonth(tt.y, tt.m); !errors.Is(err, ErrDate) {
			t.Errorf("NewMonth(%d, %d) error %v", tt.y, tt.m, err)
		}
	}
	if Month(0x1A0D).Valid() || Month(0x1A00).Valid() || !Month(0).Valid() {
		t.Error("Month.Valid wrong")
	}
}

func TestStamp(t *testing.T) {
	at := time.Date(2026, 11, 22, 18, 43, 22, 999, time.UTC)
	s, err := StampOf(at)
	if err != nil || !s.Time().Equal(at.Truncate(time.Second)) {
		t.Errorf("StampOf(%v) = %v, %v", at, s, err)
	}
	if _, err := StampOf(time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrDate) {
		t.Errorf("StampOf(1999) error %v", err)
	}
}

func TestMoney(t *testing.T) {
	for m, want := range map[Money]string{0: "0.00 UAH", 1250: "12.50 UAH", -5: "-0.05 UAH", PurseUpper: "5000.00 UAH"} {
		if got := m.String(); got != want {
			t.Errorf("Money(%d) = %q, want %q", int32(m), got, want)
		}
	}
}
