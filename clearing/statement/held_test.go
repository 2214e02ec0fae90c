package statement_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
)

// heldSample is a form 4 statement with a released line and rides held
// back, one carrier with held rides only.
func heldSample() store.Statement {
	return store.Statement{
		Period: "2026-12", Closed: true, ClosedAt: time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC), Form: 4,
		ClosedBy: "o.koval", KeyRef: "sign-statement@1", KeyFingerprint: "sha256:" + strings.Repeat("ab", 32), PartSeed: make([]byte, 32),
		Lines: []store.Line{
			{Carrier: "ATP-1", Category: "11", Funding: "city", Rides: 4, FareKop: 6000, CompensationKop: 6000},
			{Carrier: "ATP-1", Category: "11", Funding: "city", Kind: "released", Rides: 1, FareKop: 1500, CompensationKop: 1500},
		},
		Held: []store.HeldLine{
			{Carrier: "ATP-1", Reason: "amount-invalid", Rides: 1, ClaimedKop: 1 << 40},
			{Carrier: "ATP-1", Reason: "differs", Rides: 2, ClaimedKop: 3000},
			{Carrier: "ELEKTROTRANS", Reason: "not-entitled", Rides: 1, ClaimedKop: 800},
		},
	}
}

// TestCanonicalHeld pins how released lines and held rides are signed:
// in each carrier's form 4 part.
func TestCanonicalHeld(t *testing.T) {
	st := heldSample()
	parts := statement.Parts(&st)
	if len(parts) != 2 || parts[1].Carrier != "ELEKTROTRANS" || len(parts[1].Lines) != 0 || len(parts[1].Held) != 1 {
		t.Fatalf("parts %+v: want ATP-1's and ELEKTROTRANS's, which holds held rides only", parts)
	}
	want := `citycard-transit-statement-part/4
period "2026-12"
adjusts ""
carrier "ATP-1"
salt ` + fmt.Sprintf("%x", parts[0].Salt) + `
sections 2
section "benefit-compensation" 2
line "11" "city" "" 4 6000 0 6000
line "11" "city" "released" 1 1500 0 1500
total 5 7500 0 7500
section "held" 2
held "amount-invalid" 1 1099511627776
held "differs" 2 3000
total 3 1099511630776
end
`
	if got := string(parts[0].Canonical()); got != want {
		t.Fatalf("ATP-1's part:\n%s\nwant:\n%s", got, want)
	}
	c := string(statement.Canonical(&st))
	if !strings.HasPrefix(c, statement.Header4+"\n") || !strings.Contains(c, "parts 2\n") {
		t.Fatalf("signed content:\n%s", c)
	}
	for _, p := range parts {
		back, err := statement.ParsePart(p.Canonical())
		if err != nil {
			t.Fatalf("ParsePart(%s): %v\n%s", p.Carrier, err, p.Canonical())
		}
		if back.Digest() != p.Digest() || !slices.Equal(back.Held, p.Held) || !slices.Equal(back.Lines, p.Lines) {
			t.Fatalf("ParsePart(%s) = %+v, want %+v", p.Carrier, back, p)
		}
	}
	if back, err := statement.ParseContent([]byte(c)); err != nil || back.Statement.Form != 4 || len(back.Parts) != 2 {
		t.Fatalf("ParseContent = %+v, %v", back, err)
	}
	for name, change := range map[string]func(*store.Statement){
		"a held ride less":  func(s *store.Statement) { s.Held[1].Rides-- },
		"another reason":    func(s *store.Statement) { s.Held[0].Reason = "differs " },
		"a kind dropped":    func(s *store.Statement) { s.Lines[1].Kind = "" },
		"nothing held back": func(s *store.Statement) { s.Held = nil },
		"the other's held":  func(s *store.Statement) { s.Held = s.Held[:2] },
	} {
		st := heldSample()
		st.Lines, st.Held = slices.Clone(st.Lines), slices.Clone(st.Held)
		change(&st)
		if bytes.Equal(statement.Hash(&st), statement.Hash(ptr(heldSample()))) {
			t.Errorf("changing %s keeps the hash", name)
		}
	}
}

func TestParsePartRejectsHeld(t *testing.T) {
	st := heldSample()
	good := string(statement.Parts(&st)[0].Canonical())
	for name, in := range map[string]string{
		"held total off":    strings.Replace(good, "total 3 ", "total 4 ", 1),
		"held count off":    strings.Replace(good, `section "held" 2`, `section "held" 3`, 1),
		"held out of order": strings.Replace(good, `"amount-invalid" 1 1099511627776`, `"zz" 1 1099511627776`, 1),
		"no kind":           strings.Replace(good, `"city" "released"`, `"city"`, 1),
		"form 3 sections":   strings.Replace(good, "sections 2\n", "sections 1\n", 1),
		"held in form 3":    strings.Replace(good, statement.PartHeader4, statement.PartHeader, 1),
		"nothing at all": statement.PartHeader4 + "\nperiod \"2026-12\"\nadjusts \"\"\ncarrier \"X\"\nsalt " + strings.Repeat("00", 32) +
			"\nsections 2\nsection \"benefit-compensation\" 0\ntotal 0 0 0 0\nsection \"held\" 0\ntotal 0 0\nend\n",
	} {
		if _, err := statement.ParsePart([]byte(in)); !errors.Is(err, statement.ErrCanonical) {
			t.Errorf("%s: ParsePart = %v, want ErrCanonical", name, err)
		}
	}
}
