package statement

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// Header3 is the first line of the canonical form 3, in which statements
// are closed now: the signed content names each carrier's part by a
// salted digest, and the lines are in the parts.
const Header3 = "citycard-transit-statement/3"

// PartHeader is the first line of a carrier's part of a form 3
// statement.
const PartHeader = "citycard-transit-statement-part/3"

// Header4 is the first line of the canonical form 4, in which statements
// are closed now: as form 3, but each carrier's part also holds its lines
// of released rides (store.Line.Kind) and the rides the statement holds
// back from it (store.Statement.Held), so a carrier may have a part with
// held rides only.
const Header4 = "citycard-transit-statement/4"

// PartHeader4 is the first line of a carrier's part of a form 4
// statement.
const PartHeader4 = "citycard-transit-statement-part/4"

// SectionHeld names the section of a form 4 part that lists the rides
// the statement holds back from the carrier, per reason: not paid, not in
// the compensation total.
const SectionHeld = "held"

// SeedSize is the size of a statement's PartSeed.
const SeedSize = 32

// saltLabel separates the salts from any other use of the seed.
const saltLabel = "citycard-transit-statement-part-salt/3\x00"

// Part is one carrier's share of a closed form 3 statement: its lines,
// and the salt that makes its digest tell nothing about them to whoever
// lacks the part. It travels to that carrier alone.
type Part struct {
	Period, Adjusts, Carrier string
	// Form is the statement's form: 4, or 3 (also for 0) for a part
	// without released lines and held rides.
	Form int
	// Salt is 32 bytes derived from the statement's PartSeed.
	Salt []byte
	// Lines are the carrier's lines, in statement order, with Carrier and
	// Adjusts set.
	Lines []store.Line
	// Held (form 4) are the carrier's rides the statement holds back, in
	// statement order, with Carrier set.
	Held []store.HeldLine
}

// PartDigest names one carrier's part in the signed content.
type PartDigest struct {
	Carrier string
	// Digest is the SHA-256 of the part's canonical form.
	Digest [sha256.Size]byte
}

// Total sums the part's lines.
func (p *Part) Total() store.Line {
	var t store.Line
	for _, l := range p.Lines {
		t.Add(l)
	}
	return t
}

// HeldTotal sums the part's held rides.
func (p *Part) HeldTotal() store.HeldLine {
	var t store.HeldLine
	for _, h := range p.Held {
		t.Rides += h.Rides
		t.ClaimedKop += h.ClaimedKop
	}
	return t
}

// Canonical returns the part's canonical form in its Form: form 3's
//
//	citycard-transit-statement-part/3
//	period "2026-11"
//	adjusts ""
//	carrier "ATP-1"
//	salt 9a7b...(64 hex digits)
//	sections 1
//	section "benefit-compensation" 2
//	line "11" "state" 12 18000 0 18000
//	line "12" "city" 8 12000 0 12000
//	total 20 30000 0 30000
//	end
//
// A line holds category and funding, then rides, fare, charged and
// compensation in kopiyky; strings are quoted as in the other forms.
// Form 4's is canonicalV4.
func (p *Part) Canonical() []byte {
	if p.Form >= 4 {
		return p.canonicalV4()
	}
	var b bytes.Buffer
	b.WriteString(PartHeader + "\n")
	fmt.Fprintf(&b, "period %s\nadjusts %s\ncarrier %s\nsalt %x\n", quote(p.Period), quote(p.Adjusts), quote(p.Carrier), p.Salt)
	fmt.Fprintf(&b, "sections 1\nsection %s %d\n", quote(SectionCompensation), len(p.Lines))
	for _, l := range p.Lines {
		fmt.Fprintf(&b, "line %s %s %d %d %d %d\n", quote(l.Category), quote(l.Funding), l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop)
	}
	t := p.Total()
	fmt.Fprintf(&b, "total %d %d %d %d\nend\n", t.Rides, t.FareKop, t.ChargedKop, t.CompensationKop)
	return b.Bytes()
}

// canonicalV4 returns the canonical form 4 of a part:
//
//	citycard-transit-statement-part/4
//	period "2026-11"
//	adjusts ""
//	carrier "ATP-1"
//	salt 9a7b...(64 hex digits)
//	sections 2
//	section "benefit-compensation" 2
//	line "11" "city" "" 12 18000 0 18000
//	line "11" "city" "released" 1 1500 0 1500
//	total 13 19500 0 19500
//	section "held" 2
//	held "amount-invalid" 1 1099511627776
//	held "differs" 2 3000
//	total 3 1099511630776
//	end
//
// A compensation line holds category, funding and kind ("" for rides
// paid as clearing re-rated them, "released" for held rides a person
// released), then rides, fare, charged and compensation in kopiyky. A
// held row holds the reason, then the rides and the compensation they
// claim; held rides are paid by no one and are in no compensation total.
// Either section may be empty, not both.
func (p *Part) canonicalV4() []byte {
	var b bytes.Buffer
	b.WriteString(PartHeader4 + "\n")
	fmt.Fprintf(&b, "period %s\nadjusts %s\ncarrier %s\nsalt %x\n", quote(p.Period), quote(p.Adjusts), quote(p.Carrier), p.Salt)
	fmt.Fprintf(&b, "sections 2\nsection %s %d\n", quote(SectionCompensation), len(p.Lines))
	for _, l := range p.Lines {
		fmt.Fprintf(&b, "line %s %s %s %d %d %d %d\n", quote(l.Category), quote(l.Funding), quote(l.Kind), l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop)
	}
	t := p.Total()
	fmt.Fprintf(&b, "total %d %d %d %d\n", t.Rides, t.FareKop, t.ChargedKop, t.CompensationKop)
	fmt.Fprintf(&b, "section %s %d\n", quote(SectionHeld), len(p.Held))
	for _, h := range p.Held {
		fmt.Fprintf(&b, "held %s %d %d\n", quote(h.Reason), h.Rides, h.ClaimedKop)
	}
	ht := p.HeldTotal()
	fmt.Fprintf(&b, "total %d %d\nend\n", ht.Rides, ht.ClaimedKop)
	return b.Bytes()
}

// Digest is the SHA-256 of the part's canonical form.
func (p *Part) Digest() [sha256.Size]byte { return sha256.Sum256(p.Canonical()) }

// salt derives the salt of carrier's part of st from st.PartSeed.
func salt(st *store.Statement, carrier string) []byte {
	m := hmac.New(sha256.New, st.PartSeed)
	m.Write([]byte(saltLabel))
	for _, s := range []string{st.Period, st.Adjusts, carrier} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Parts splits a form 3 or 4 statement into its carriers' parts, in
// carrier order, each salted from st.PartSeed. A statement without lines
// (form 4: and without held rides) has no parts.
func Parts(st *store.Statement) []Part {
	form := 3
	if st.Form >= 4 {
		form = st.Form
	}
	var out []Part
	part := func(carrier string) *Part {
		i, found := slices.BinarySearchFunc(out, carrier, func(p Part, c string) int { return strings.Compare(p.Carrier, c) })
		if !found {
			out = slices.Insert(out, i, Part{Period: st.Period, Adjusts: st.Adjusts, Carrier: carrier, Form: form, Salt: salt(st, carrier)})
		}
		return &out[i]
	}
	for _, l := range st.Lines {
		p := part(l.Carrier)
		p.Lines = append(p.Lines, l)
	}
	if form >= 4 {
		for _, h := range st.Held {
			p := part(h.Carrier)
			p.Held = append(p.Held, h)
		}
	}
	return out
}

// CanonicalV3 returns the canonical form 3 of a closed statement, what
// its signature covers:
//
//	citycard-transit-statement/3
//	period "2026-12"
//	adjusts "2026-11"        ("" for the period's own statement)
//	closed 2027-01-05T10:00:00.000000Z
//	closed-by "o.koval"
//	key "sign-statement@1" "sha256:3f1c...(64 hex digits)"
//	parts 2
//	part "ATP-1" 5e0f...(64 hex digits: the SHA-256 of the part)
//	part "ELEKTROTRANS" 77a2...
//	end
//
// Each carrier with lines has one part (Part.Canonical), in byte order
// of the carriers. Strings are quoted as in form 1. It needs
// st.PartSeed: without the seed nobody can make the parts' salts, and
// the digests say nothing about a carrier's lines.
func CanonicalV3(st *store.Statement) []byte { return canonicalParts(st, Header3) }

// CanonicalV4 returns the canonical form 4 of a closed statement, what
// its signature covers: as form 3 (CanonicalV3) with the header
// citycard-transit-statement/4, and parts in form 4 (Part.Canonical),
// which hold the carrier's released lines and held rides too. Each
// carrier with lines or held rides has a part.
func CanonicalV4(st *store.Statement) []byte { return canonicalParts(st, Header4) }

func canonicalParts(st *store.Statement, header string) []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	fmt.Fprintf(&b, "period %s\nadjusts %s\n", quote(st.Period), quote(st.Adjusts))
	fmt.Fprintf(&b, "closed %s\nclosed-by %s\n", st.ClosedAt.UTC().Format(stampLayout), quote(st.ClosedBy))
	fmt.Fprintf(&b, "key %s %s\n", quote(st.KeyRef), quote(st.KeyFingerprint))
	parts := Parts(st)
	fmt.Fprintf(&b, "parts %d\n", len(parts))
	for i := range parts {
		fmt.Fprintf(&b, "part %s %x\n", quote(parts[i].Carrier), parts[i].Digest())
	}
	b.WriteString("end\n")
	return b.Bytes()
}

// Content is the signed content of a form 3 statement, read back.
type Content struct {
	// Statement has every field of the statement but its lines (which
	// are in the parts), its PartSeed and its Signature; Hash is the
	// SHA-256 of the header as read.
	Statement store.Statement
	// Parts name each carrier's part, in carrier order.
	Parts []PartDigest
}

// Carriers lists the carriers with a part, in order.
func (h *Content) Carriers() []string {
	out := make([]string, len(h.Parts))
	for i, p := range h.Parts {
		out[i] = p.Carrier
	}
	return out
}

// ParseContent reads the canonical form 3 or 4 of a statement back (its
// signed content). It accepts exactly what CanonicalV3 and CanonicalV4
// write.
func ParseContent(b []byte) (Content, error) {
	fail := func(line int, format string, args ...any) (Content, error) {
		return Content{}, fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	lines, err := splitLines(b)
	if err != nil {
		return Content{}, err
	}
	const head = 7 // header, period, adjusts, closed, closed-by, key, parts
	if len(lines) < head+1 || lines[0] != Header3 && lines[0] != Header4 {
		return fail(1, "want %q or %q and at least %d lines", Header3, Header4, head+1)
	}
	st := store.Statement{Form: 3, Closed: true}
	if lines[0] == Header4 {
		st.Form = 4
	}
	if err := readFields(lines, &st); err != nil {
		return Content{}, err
	}
	n, err := number(lines[6], "parts ")
	if err != nil || n < 0 || n != int64(len(lines)-head-1) {
		return fail(7, "want parts N with N the number of part rows (%d)", len(lines)-head-1)
	}
	h := Content{Statement: st}
	for i := range int(n) {
		rest, ok := strings.CutPrefix(lines[head+i], "part ")
		if !ok {
			return fail(head+1+i, "want part \"CARRIER\" DIGEST")
		}
		var p PartDigest
		if p.Carrier, rest, err = unquote(rest); err != nil {
			return fail(head+1+i, "%v", err)
		}
		d, err := hex.DecodeString(strings.TrimPrefix(rest, " "))
		if err != nil || !strings.HasPrefix(rest, " ") || len(d) != sha256.Size {
			return fail(head+1+i, "want the part's SHA-256 in hex after the carrier")
		}
		copy(p.Digest[:], d)
		if k := len(h.Parts); k > 0 && h.Parts[k-1].Carrier >= p.Carrier {
			return fail(head+1+i, "parts out of order or repeated")
		}
		h.Parts = append(h.Parts, p)
	}
	if lines[len(lines)-1] != "end" {
		return fail(len(lines), "want end")
	}
	if !bytes.Equal(h.canonical(), b) {
		return fail(0, "not in canonical form")
	}
	sum := sha256.Sum256(b)
	h.Statement.Hash = sum[:]
	return h, nil
}

// canonical writes h back as CanonicalV3 or CanonicalV4 would.
func (h *Content) canonical() []byte {
	var b bytes.Buffer
	st := &h.Statement
	if st.Form >= 4 {
		b.WriteString(Header4 + "\n")
	} else {
		b.WriteString(Header3 + "\n")
	}
	fmt.Fprintf(&b, "period %s\nadjusts %s\n", quote(st.Period), quote(st.Adjusts))
	fmt.Fprintf(&b, "closed %s\nclosed-by %s\n", st.ClosedAt.UTC().Format(stampLayout), quote(st.ClosedBy))
	fmt.Fprintf(&b, "key %s %s\n", quote(st.KeyRef), quote(st.KeyFingerprint))
	fmt.Fprintf(&b, "parts %d\n", len(h.Parts))
	for _, p := range h.Parts {
		fmt.Fprintf(&b, "part %s %x\n", quote(p.Carrier), p.Digest)
	}
	b.WriteString("end\n")
	return b.Bytes()
}

// ParsePart reads a carrier's part back from its canonical form. It
// accepts exactly what Part.Canonical writes, and the total must be the
// sum of the lines.
func ParsePart(b []byte) (Part, error) {
	fail := func(line int, format string, args ...any) (Part, error) {
		return Part{}, fmt.Errorf("%w: part: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	lines, err := splitLines(b)
	if err != nil {
		return Part{}, err
	}
	const head = 7 // header, period, adjusts, carrier, salt, sections, section
	if len(lines) < head+2 || lines[0] != PartHeader && lines[0] != PartHeader4 {
		return fail(1, "want %q or %q and at least %d lines", PartHeader, PartHeader4, head+2)
	}
	var p Part
	if lines[0] == PartHeader4 {
		p.Form = 4
	}
	if p.Period, err = field(lines[1], "period "); err != nil {
		return fail(2, "%v", err)
	}
	if _, perr := store.ParsePeriod(p.Period); perr != nil {
		return fail(2, "%v", perr)
	}
	if p.Adjusts, err = field(lines[2], "adjusts "); err != nil {
		return fail(3, "%v", err)
	}
	if p.Adjusts != "" {
		if _, perr := store.ParsePeriod(p.Adjusts); perr != nil {
			return fail(3, "%v", perr)
		}
	}
	if p.Carrier, err = field(lines[3], "carrier "); err != nil {
		return fail(4, "%v", err)
	}
	s, ok := strings.CutPrefix(lines[4], "salt ")
	if p.Salt, err = hex.DecodeString(s); !ok || err != nil || len(p.Salt) != sha256.Size {
		return fail(5, "want salt and 64 hex digits")
	}
	if p.Form >= 4 {
		return parsePartV4(b, lines, p)
	}
	if lines[5] != "sections 1" {
		return fail(6, "want sections 1 (%s): a newer transit may know more sections", SectionCompensation)
	}
	rest, ok := strings.CutPrefix(lines[6], "section ")
	if !ok {
		return fail(7, "want section NAME N")
	}
	name, rest, err := unquote(rest)
	if err != nil || name != SectionCompensation {
		return fail(7, "section %q: want %q", name, SectionCompensation)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(rest, " "))
	if err != nil || !strings.HasPrefix(rest, " ") || n < 1 || n != len(lines)-head-2 {
		return fail(7, "want the number of line rows (%d, at least 1) after the section's name", len(lines)-head-2)
	}
	for i := range n {
		rest, ok := strings.CutPrefix(lines[head+i], "line ")
		l, err := parseLine("line "+quote(p.Carrier)+" "+rest, p.Adjusts)
		if !ok || err != nil {
			return fail(head+1+i, "want line \"CATEGORY\" \"FUNDING\" RIDES FARE CHARGED COMPENSATION")
		}
		if k := len(p.Lines); k > 0 && store.CompareLines(p.Lines[k-1], l) >= 0 {
			return fail(head+1+i, "lines out of order or repeated")
		}
		p.Lines = append(p.Lines, l)
	}
	if err := checkTotal(lines[len(lines)-2], p.Total()); err != nil {
		return fail(len(lines)-1, "%v", err)
	}
	if lines[len(lines)-1] != "end" {
		return fail(len(lines), "want end")
	}
	if !bytes.Equal(p.Canonical(), b) {
		return fail(0, "not in canonical form")
	}
	return p, nil
}

// parsePartV4 reads the sections of a form 4 part whose header fields
// ParsePart has read into p.
func parsePartV4(b []byte, lines []string, p Part) (Part, error) {
	fail := func(line int, format string, args ...any) (Part, error) {
		return Part{}, fmt.Errorf("%w: part: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	if lines[5] != "sections 2" {
		return fail(6, "want sections 2 (%s, %s): a newer transit may know more sections", SectionCompensation, SectionHeld)
	}
	// section reads "section NAME N" at line i (0-based) and the number
	// of rows that can follow it, leaving rest rows after them.
	section := func(i int, want string, rest int) (int, error) {
		s, ok := strings.CutPrefix(lines[i], "section ")
		if !ok {
			return 0, fmt.Errorf("want section %q N", want)
		}
		name, s, err := unquote(s)
		if err != nil || name != want {
			return 0, fmt.Errorf("section %q: want %q", name, want)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(s, " "))
		if err != nil || !strings.HasPrefix(s, " ") || n < 0 || n > len(lines)-i-1-rest {
			return 0, fmt.Errorf("want the number of the section's rows (at most %d) after its name", len(lines)-i-1-rest)
		}
		return n, nil
	}
	const head = 7
	// After the lines: their total, the held section, its total, end.
	n, err := section(6, SectionCompensation, 4)
	if err != nil {
		return fail(7, "%v", err)
	}
	for i := range n {
		rest, ok := strings.CutPrefix(lines[head+i], "line ")
		var l store.Line
		strs := []*string{&l.Category, &l.Funding, &l.Kind}
		for _, s := range strs {
			var err error
			if *s, rest, err = unquote(rest); !ok || err != nil {
				ok = false
				break
			}
			if rest, ok = strings.CutPrefix(rest, " "); !ok {
				break
			}
		}
		if !ok || amounts(rest, &l.Rides, &l.FareKop, &l.ChargedKop, &l.CompensationKop) != nil {
			return fail(head+1+i, "want line \"CATEGORY\" \"FUNDING\" \"KIND\" RIDES FARE CHARGED COMPENSATION")
		}
		l.Carrier, l.Adjusts = p.Carrier, p.Adjusts
		if k := len(p.Lines); k > 0 && store.CompareLines(p.Lines[k-1], l) >= 0 {
			return fail(head+1+i, "lines out of order or repeated")
		}
		p.Lines = append(p.Lines, l)
	}
	at := head + n
	if err := checkTotal(lines[at], p.Total()); err != nil {
		return fail(at+1, "%v", err)
	}
	m, err := section(at+1, SectionHeld, 2)
	if err != nil {
		return fail(at+2, "%v", err)
	}
	if n+m == 0 {
		return fail(at+2, "a part holds at least one line or held row")
	}
	if len(lines) != at+m+4 {
		return fail(at+2, "want %d held rows, their total and end after the section", m)
	}
	for i := range m {
		rest, ok := strings.CutPrefix(lines[at+2+i], "held ")
		h := store.HeldLine{Carrier: p.Carrier}
		var err error
		if ok {
			h.Reason, rest, err = unquote(rest)
			rest, ok = strings.CutPrefix(rest, " ")
		}
		if !ok || err != nil || amounts(rest, &h.Rides, &h.ClaimedKop) != nil {
			return fail(at+3+i, "want held \"REASON\" RIDES CLAIMED")
		}
		if k := len(p.Held); k > 0 && store.CompareHeld(p.Held[k-1], h) >= 0 {
			return fail(at+3+i, "held rows out of order or repeated")
		}
		p.Held = append(p.Held, h)
	}
	rest, ok := strings.CutPrefix(lines[len(lines)-2], "total ")
	var ht store.HeldLine
	if !ok || amounts(rest, &ht.Rides, &ht.ClaimedKop) != nil {
		return fail(len(lines)-1, "want total RIDES CLAIMED of the held rows")
	}
	if ht != p.HeldTotal() {
		return fail(len(lines)-1, "held total %d %d is not the sum of the held rows", ht.Rides, ht.ClaimedKop)
	}
	if lines[len(lines)-1] != "end" {
		return fail(len(lines), "want end")
	}
	if !bytes.Equal(p.Canonical(), b) {
		return fail(0, "not in canonical form")
	}
	return p, nil
}

// splitLines checks the size and the final newline of a canonical text
// and splits it into lines.
func splitLines(b []byte) ([]string, error) {
	if len(b) > MaxCanonical {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrCanonical, MaxCanonical)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, fmt.Errorf("%w: does not end with a newline", ErrCanonical)
	}
	return strings.Split(string(b[:len(b)-1]), "\n"), nil
}

// readFields reads the fields forms 2 and 3 share: lines 2 to 6.
func readFields(lines []string, st *store.Statement) error {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	var err error
	if st.Period, err = field(lines[1], "period "); err != nil {
		return fail(2, "%v", err)
	}
	if _, perr := store.ParsePeriod(st.Period); perr != nil {
		return fail(2, "%v", perr)
	}
	if st.Adjusts, err = field(lines[2], "adjusts "); err != nil {
		return fail(3, "%v", err)
	}
	if st.Adjusts != "" {
		if _, perr := store.ParsePeriod(st.Adjusts); perr != nil {
			return fail(3, "%v", perr)
		}
	}
	stamp, ok := strings.CutPrefix(lines[3], "closed ")
	if !ok {
		return fail(4, "want closed TIME")
	}
	if st.ClosedAt, err = time.Parse(stampLayout, stamp); err != nil || st.ClosedAt.Format(stampLayout) != stamp {
		return fail(4, "time %q: want %s", stamp, stampLayout)
	}
	if st.ClosedBy, err = field(lines[4], "closed-by "); err != nil {
		return fail(5, "%v", err)
	}
	rest, ok := strings.CutPrefix(lines[5], "key ")
	if !ok {
		return fail(6, "want key \"LABEL@VERSION\" \"sha256:...\"")
	}
	if st.KeyRef, rest, err = unquote(rest); err != nil {
		return fail(6, "%v", err)
	}
	if rest, ok = strings.CutPrefix(rest, " "); !ok {
		return fail(6, "want a space after the key's name")
	}
	if st.KeyFingerprint, rest, err = unquote(rest); err != nil || rest != "" {
		return fail(6, "want the key's fingerprint, quoted, last")
	}
	return nil
}

// ErrNoSeed is wrapped when a form 3 statement lacks its PartSeed.
var ErrNoSeed = errors.New("a form 3 statement needs its part seed")
