package statement_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
)

// heldSample is a statement with a released line and rides held back.
func heldSample() store.Statement {
	return store.Statement{
		Period: "2026-12", Closed: true, ClosedAt: time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC),
		Lines: []store.Line{
			{Carrier: "ATP-1", Category: "11", Funding: "city", Rides: 4, FareKop: 6000, CompensationKop: 6000},
			{Carrier: "ATP-1", Category: "11", Funding: "city", Kind: "released", Rides: 1, FareKop: 1500, CompensationKop: 1500},
		},
		Held: []store.HeldLine{
			{Carrier: "ATP-1", Reason: "amount-invalid", Rides: 1, ClaimedKop: 1 << 40},
			{Carrier: "ATP-1", Reason: "differs", Rides: 2, ClaimedKop: 3000},
		},
	}
}

// TestCanonicalHeld pins how released lines and held rides are signed.
func TestCanonicalHeld(t *testing.T) {
	st := heldSample()
	want := `citycard-transit-statement/1
period "2026-12"
adjusts ""
closed 2027-01-05T10:00:00.000000Z
lines 2
line "ATP-1" "11" "city" 4 6000 0 6000
line "ATP-1" "11" "city" "released" 1 1500 0 1500
total 5 7500 0 7500
held 2
held-line "ATP-1" "amount-invalid" 1 1099511627776
held-line "ATP-1" "differs" 2 3000
held-total 3 1099511630776
`
	got := statement.Canonical(&st)
	if string(got) != want {
		t.Fatalf("canonical form:\n%s\nwant:\n%s", got, want)
	}
	back, err := statement.Parse(got)
	if err != nil {
		t.Fatalf("Parse(Canonical): %v", err)
	}
	if !sameStatement(back, st) || !slices.Equal(back.Held, st.Held) {
		t.Fatalf("Parse(Canonical) = %+v, want %+v", back, st)
	}
	for name, change := range map[string]func(*store.Statement){
		"a held ride less":  func(s *store.Statement) { s.Held[1].Rides-- },
		"another reason":    func(s *store.Statement) { s.Held[0].Reason = "differs " },
		"a kind dropped":    func(s *store.Statement) { s.Lines[1].Kind = "" },
		"nothing held back": func(s *store.Statement) { s.Held = nil },
	} {
		st := heldSample()
		st.Lines, st.Held = slices.Clone(st.Lines), slices.Clone(st.Held)
		change(&st)
		if bytes.Equal(statement.Hash(&st), statement.Hash(ptr(heldSample()))) {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestParseRejectsHeld(t *testing.T) {
	good := string(statement.Canonical(ptr(heldSample())))
	for name, in := range map[string]string{
		"held total off": strings.Replace(good, "held-total 3 ", "held-total 4 ", 1),
		"held count off": strings.Replace(good, "held 2\n", "held 3\n", 1),
		"held out of order": strings.Replace(strings.Replace(good, `"amount-invalid" 1 1099511627776`, `"zz" 1 1099511627776`, 1),
			"held-total", "held-total", 1),
		"empty kind":        strings.Replace(good, `"released"`, `""`, 1),
		"held without rows": strings.Replace(good, "held 2\n", "held 0\n", 1),
	} {
		if _, err := statement.Parse([]byte(in)); !errors.Is(err, statement.ErrCanonical) {
			t.Errorf("%s: Parse = %v, want ErrCanonical", name, err)
		}
	}
}

// FuzzParseHeld is FuzzParse from a statement that holds rides back.
func FuzzParseHeld(f *testing.F) {
	f.Add(statement.Canonical(ptr(heldSample())))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := statement.Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(statement.Canonical(&st), b) {
			t.Fatalf("Parse accepted a form Canonical does not write:\n%s", b)
		}
	})
}
