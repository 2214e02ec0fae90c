package statement

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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

// SeedSize is the size of a statement's PartSeed.
const SeedSize = 32

// saltLabel separates the salts from any other use of the seed.
const saltLabel = "citycard-transit-statement-part-salt/3\x00"

// Part is one carrier's share of a closed form 3 statement: its lines,
// and the salt that makes its digest tell nothing about them to whoever
// lacks the part. It travels to that carrier alone.
type Part struct {
	Period, Adjusts, Carrier string
	// Salt is 32 bytes derived from the statement's PartSeed.
	Salt []byte
	// Lines are the carrier's lines, in statement order, with Carrier and
	// Adjusts set.
	Lines []store.Line
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

// Canonical returns the part's canonical form:
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
func (p *Part) Canonical() []byte {
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

// Parts splits a form 3 statement into its carriers' parts, in carrier
// order, each salted from st.PartSeed. A statement without lines has no
// parts.
func Parts(st *store.Statement) []Part {
	var out []Part
	for _, l := range st.Lines {
		if len(out) == 0 || out[len(out)-1].Carrier != l.Carrier {
			out = append(out, Part{Period: st.Period, Adjusts: st.Adjusts, Carrier: l.Carrier, Salt: salt(st, l.Carrier)})
		}
		p := &out[len(out)-1]
		p.Lines = append(p.Lines, l)
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
func CanonicalV3(st *store.Statement) []byte {
	var b bytes.Buffer
	b.WriteString(Header3 + "\n")
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

// ParseContent reads the canonical form 3 of a statement back (its signed content). It accepts
// exactly what CanonicalV3 writes.
func ParseContent(b []byte) (Content, error) {
	fail := func(line int, format string, args ...any) (Content, error) {
		return Content{}, fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	lines, err := splitLines(b)
	if err != nil {
		return Content{}, err
	}
	const head = 7 // header, period, adjusts, closed, closed-by, key, parts
	if len(lines) < head+1 || lines[0] != Header3 {
		return fail(1, "want %q and at least %d lines", Header3, head+1)
	}
	st := store.Statement{Form: 3, Closed: true}
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

// canonical writes h back as CanonicalV3 would.
func (h *Content) canonical() []byte {
	var b bytes.Buffer
	st := &h.Statement
	b.WriteString(Header3 + "\n")
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
	if len(lines) < head+2 || lines[0] != PartHeader {
		return fail(1, "want %q and at least %d lines", PartHeader, head+2)
	}
	var p Part
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
