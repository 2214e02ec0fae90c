package statement_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
)

func sample() store.Statement {
	return store.Statement{
		Period: "2026-12", Adjusts: "2026-11", Closed: true,
		ClosedAt: time.Date(2027, 1, 5, 10, 0, 0, 123456000, time.UTC),
		Lines: []store.Line{
			{Adjusts: "2026-11", Carrier: "ATP-1", Category: "pensioner", Funding: "city", Rides: 12, FareKop: 18000, CompensationKop: 18000},
			{Adjusts: "2026-11", Carrier: "bad\xff\n\\", Category: "", Funding: "", Rides: 1, FareKop: 1, CompensationKop: 1},
			{Adjusts: "2026-11", Carrier: "ТОВ \"Маршрут\"", Category: "student", Funding: "state", Rides: 3, FareKop: 4500, ChargedKop: 2250, CompensationKop: 2250},
		},
	}
}

// TestCanonicalGolden pins the canonical form: a change to it changes
// every hash, so it must be deliberate (and change the header).
func TestCanonicalGolden(t *testing.T) {
	st := sample()
	want := `citycard-transit-statement/1
period "2026-12"
adjusts "2026-11"
closed 2027-01-05T10:00:00.123456Z
lines 3
line "ATP-1" "pensioner" "city" 12 18000 0 18000
line "bad\xff\x0a\\" "" "" 1 1 0 1
line "ТОВ \"Маршрут\"" "student" "state" 3 4500 2250 2250
total 16 22501 2250 20251
`
	got := statement.Canonical(&st)
	if string(got) != want {
		t.Fatalf("canonical form:\n%s\nwant:\n%s", got, want)
	}
	if h := sha256.Sum256([]byte(want)); !bytes.Equal(statement.Hash(&st), h[:]) {
		t.Fatalf("Hash is not the SHA-256 of the canonical form")
	}
	back, err := statement.Parse(got)
	if err != nil {
		t.Fatalf("Parse(Canonical): %v", err)
	}
	if !sameStatement(back, st) {
		t.Fatalf("Parse(Canonical) = %+v, want %+v", back, st)
	}
}

func sameStatement(a, b store.Statement) bool {
	return a.Period == b.Period && a.Adjusts == b.Adjusts && a.Closed == b.Closed && a.ClosedAt.Equal(b.ClosedAt) &&
		slices.Equal(a.Lines, b.Lines)
}

func TestHashChangesWithEveryField(t *testing.T) {
	base := sample()
	h := statement.Hash(&base)
	for name, change := range map[string]func(*store.Statement){
		"period":       func(s *store.Statement) { s.Period = "2027-01" },
		"adjusts":      func(s *store.Statement) { s.Adjusts = "" },
		"closed at":    func(s *store.Statement) { s.ClosedAt = s.ClosedAt.Add(time.Microsecond) },
		"a line":       func(s *store.Statement) { s.Lines[2].CompensationKop++ },
		"a carrier":    func(s *store.Statement) { s.Lines[0].Carrier = "ATP-2" },
		"a line less":  func(s *store.Statement) { s.Lines = s.Lines[:2] },
		"moved quotes": func(s *store.Statement) { s.Lines[0].Carrier, s.Lines[0].Category = "ATP-1\" \"pensioner", "" },
	} {
		st := sample()
		st.Lines = slices.Clone(st.Lines)
		change(&st)
		if bytes.Equal(statement.Hash(&st), h) {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := string(statement.Canonical(ptr(sample())))
	for name, in := range map[string]string{
		"empty":               "",
		"no final newline":    strings.TrimSuffix(good, "\n"),
		"other header":        strings.Replace(good, "statement/1", "statement/2", 1),
		"wrong total":         strings.Replace(good, "total 16", "total 17", 1),
		"wrong line count":    strings.Replace(good, "lines 3", "lines 2", 1),
		"escaped plain byte":  strings.Replace(good, `"ATP-1"`, `"\x41TP-1"`, 1),
		"raw control byte":    strings.Replace(good, `"city"`, "\"ci\tty\"", 1),
		"lines out of order":  strings.Replace(good, `"ATP-1"`, `"zzz"`, 1),
		"bad period":          strings.Replace(good, `period "2026-12"`, `period "2026-13"`, 1),
		"seconds only":        strings.Replace(good, "10:00:00.123456Z", "10:00:00Z", 1),
		"crlf":                strings.ReplaceAll(good, "\n", "\r\n"),
		"trailing space":      strings.Replace(good, "18000\n", "18000 \n", 1),
		"unterminated string": strings.Replace(good, `"pensioner" "city"`, `"pensioner "city"`, 1),
	} {
		if _, err := statement.Parse([]byte(in)); !errors.Is(err, statement.ErrCanonical) {
			t.Errorf("%s: Parse = %v, want ErrCanonical", name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, and what
// it accepts must be canonical.
func FuzzParse(f *testing.F) {
	f.Add(statement.Canonical(ptr(sample())))
	empty := store.Statement{Period: "2031-02", ClosedAt: time.Unix(0, 0)}
	f.Add(statement.Canonical(&empty))
	f.Add([]byte("citycard-transit-statement/1\nperiod \"\\x\"\n"))
	v2 := sample()
	v2.Form, v2.ClosedBy, v2.KeyRef, v2.KeyFingerprint = 2, "o.koval", "sign-statement@1", "sha256:00"
	f.Add(statement.Canonical(&v2))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := statement.Parse(b)
		if err != nil {
			return
		}
		if again := statement.Canonical(&st); !bytes.Equal(again, b) {
			t.Fatalf("Parse accepted a non-canonical form:\n%q\ncanonical:\n%q", b, again)
		}
	})
}

// FuzzCanonical builds statements with arbitrary strings and amounts:
// Parse must give each back.
func FuzzCanonical(f *testing.F) {
	f.Add("ATP-1", "pensioner", "city", "b\x00\"\\\xc3", int64(3), int64(-5), int64(1<<62))
	f.Fuzz(func(t *testing.T, carrier, category, funding, other string, rides, fare, comp int64) {
		st := store.Statement{Period: "2026-11", Closed: true, ClosedAt: time.Date(2026, 12, 1, 0, 0, 0, 1000, time.UTC)}
		lines := []store.Line{
			{Carrier: carrier, Category: category, Funding: funding, Rides: rides, FareKop: fare, CompensationKop: comp},
			{Carrier: other, Rides: 1},
		}
		slices.SortFunc(lines, store.CompareLines)
		if store.CompareLines(lines[0], lines[1]) == 0 {
			lines = lines[:1]
		}
		st.Lines = lines
		back, err := statement.Parse(statement.Canonical(&st))
		if err != nil {
			t.Fatalf("Parse(Canonical(%+v)): %v", st, err)
		}
		if !sameStatement(back, st) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", back, st)
		}
	})
}
