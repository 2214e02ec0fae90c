package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time // zero: an error is wanted
	}{
		{"2026-11", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-01", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"", time.Time{}},
		{"2026-13", time.Time{}},
		{"2026-00", time.Time{}},
		{"2026-1", time.Time{}},
		{"26-11", time.Time{}},
		{"2026/11", time.Time{}},
		{"2026-11-01", time.Time{}},
		{"2026-11 ", time.Time{}},
		{"+2026-11", time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := store.ParsePeriod(tt.in)
			if tt.want.IsZero() {
				if err == nil {
					t.Fatalf("ParsePeriod(%q) = %v, want an error", tt.in, got)
				}
				if want := fmt.Sprintf("period %q: want YYYY-MM, e.g. 2026-11", tt.in); err.Error() != want {
					t.Errorf("error %q, want %q", err, want)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) {
				t.Errorf("ParsePeriod(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCompensable(t *testing.T) {
	base := tap.Tap{Result: tap.Accepted, CardCommitted: true, CompensationKop: 1}
	if !store.Compensable(&base) {
		t.Errorf("accepted, committed, compensated tap does not count")
	}
	for name, change := range map[string]func(*tap.Tap){
		"denied":       func(t *tap.Tap) { t.Result = tap.Denied },
		"already paid": func(t *tap.Tap) { t.Result = tap.AlreadyPaid },
		"uncommitted":  func(t *tap.Tap) { t.CardCommitted = false },
		"nothing owed": func(t *tap.Tap) { t.CompensationKop = 0 },
	} {
		tp := base
		change(&tp)
		if store.Compensable(&tp) {
			t.Errorf("%s tap counts", name)
		}
	}
}

func ExampleParsePeriod() {
	start, err := store.ParsePeriod("2026-11")
	fmt.Println(start, err)
	_, err = store.ParsePeriod("2026-13")
	fmt.Println(strings.TrimSpace(err.Error()))
	// Output:
	// 2026-11-01 00:00:00 +0000 UTC <nil>
	// period "2026-13": want YYYY-MM, e.g. 2026-11
}

func TestBook(t *testing.T) {
	closed := map[string]bool{"2026-10": true, "2026-11": true, "2026-12": true, "2027-02": true}
	tests := []struct{ period, into, adjusts string }{
		{"2026-09", "2026-09", ""},
		{"2026-10", "2027-01", "2026-10"}, // November and December are closed too
		{"2026-12", "2027-01", "2026-12"},
		{"2027-01", "2027-01", ""},
		{"2027-02", "2027-03", "2027-02"},
	}
	for _, tt := range tests {
		into, adjusts := store.Book(tt.period, closed)
		if into != tt.into || adjusts != tt.adjusts {
			t.Errorf("Book(%s) = %s, %q; want %s, %q", tt.period, into, adjusts, tt.into, tt.adjusts)
		}
	}
	if into, adjusts := store.Book("2026-11", nil); into != "2026-11" || adjusts != "" {
		t.Errorf("Book with nothing closed = %s, %q", into, adjusts)
	}
}

func TestDrafts(t *testing.T) {
	lines := []store.Line{
		{Carrier: "A", Rides: 1}, {Carrier: "B", Rides: 2},
		{Adjusts: "2026-09", Carrier: "A", Rides: 3}, {Adjusts: "2026-10", Carrier: "C", Rides: 4},
	}
	sts := store.Drafts("2026-11", lines)
	if len(sts) != 3 || len(sts[0].Lines) != 2 || sts[1].Adjusts != "2026-09" || sts[2].Total().Rides != 4 {
		t.Fatalf("Drafts = %+v", sts)
	}
	if sts := store.Drafts("2026-11", lines[2:]); len(sts) != 3 || sts[0].Adjusts != "" || len(sts[0].Lines) != 0 {
		t.Fatalf("Drafts without own lines = %+v; want an empty own statement first", sts)
	}
}
