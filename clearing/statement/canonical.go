// Package statement closes, signs and verifies compensation statements.
//
// A closed statement is fixed by its canonical form (Canonical): a short
// text that names the period, the period it adjusts, when and by whom it
// was closed, the signing key by name and fingerprint, and its lines with
// their amounts in integer kopiyky (since form 3, a digest of each
// carrier's part, which holds that carrier's lines). Its SHA-256 is the
// statement's content hash, and an Ed25519 signature over that hash, made
// with the HSM's sign-statement key, is stored with it. Verifying
// recomputes the hash from the stored lines and checks the signature with
// the key's public half, so neither a changed line nor a changed hash goes
// unnoticed; the public key alone is enough (VerifyWith, Bundle), and the
// key is known by its fingerprint, not by a label another keystore may
// reuse.
//
// Each carrier sees its own lines only. Since form 3 the signed content
// (CanonicalV3) holds, instead of the lines, one salted digest per
// carrier of that carrier's part (Part): its lines and a salt derived
// from a secret seed kept with the statement. A carrier's copy (Bundle)
// holds the signed content, its signature and that carrier's part: the
// carrier checks the signature with the public key and its part against
// its digest, and learns of the other carriers only that they have a
// part. An auditor's copy holds every part. Statements closed in forms 1
// and 2 keep their canonical forms and verify as before; their one
// signature covers every carrier's lines, so they travel whole.
//
// Form 4, in which statements are closed now, is form 3 with a second
// section in every part: the carrier's rides the statement holds back
// (clearing/rerate: held for a person to decide, or waiting for a fact
// clearing lacks), per reason, with the compensation they claim; and the
// compensation section's lines name their kind, "" for rides paid as
// clearing re-rated them and "released" for held rides a person released
// (on a line of their own). A carrier with held rides only has a part
// too. Held rides are in no total: the statement says how much it holds
// back and why, and signs that, but pays none of it. (CanonicalV4,
// Part.Canonical.) Statements closed in form 3 keep it: they were closed
// before clearing held rides back.
//
// Benefit compensation is section 1 of a part; the sections to come (fare
// revenue) are added as further sections.
package statement

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/citycard/transit/clearing/store"
)

// Header is the first line of the canonical form 1, the form of the
// statements closed before the actor and key fingerprint were recorded;
// a change of the form changes it, so old signatures keep their meaning.
const Header = "citycard-transit-statement/1"

// Header2 is the first line of the canonical form 2, in which statements
// were closed before each carrier's lines were a part of their own.
const Header2 = "citycard-transit-statement/2"

// Form is the canonical form new statements are closed in.
const Form = 4

// SectionCompensation names the benefit compensation section: what the
// city owes each carrier for benefit rides, per category and funding.
const SectionCompensation = "benefit-compensation"

const stampLayout = "2006-01-02T15:04:05.000000Z"

// Canonical returns the canonical form of a closed statement in its
// Form, what its signature covers: CanonicalV1 for form 1, CanonicalV2
// for form 2, CanonicalV3 for form 3, CanonicalV4 otherwise.
func Canonical(st *store.Statement) []byte {
	switch {
	case st.Form <= 1:
		return CanonicalV1(st)
	case st.Form == 2:
		return CanonicalV2(st)
	case st.Form == 3:
		return CanonicalV3(st)
	}
	return CanonicalV4(st)
}

// CanonicalV2 returns the canonical form 2 of a closed statement:
//
//	citycard-transit-statement/2
//	period "2026-12"
//	adjusts "2026-11"        ("" for the period's own statement)
//	closed 2027-01-05T10:00:00.000000Z
//	closed-by "o.koval"
//	key "sign-statement@1" "sha256:3f1c...(64 hex digits)"
//	sections 1
//	section "benefit-compensation" 2
//	line "ATP-1" "11" "state" 12 18000 0 18000
//	line ...
//	total 20 30000 0 30000
//	end
//
// After the header fields come the sections, each named, with its number
// of lines, its lines and its total; form 2 has one section, benefit
// compensation, whose lines are as in form 1. Strings are quoted as in
// form 1. Statements are closed in form 4 now (CanonicalV4), whose
// carriers' parts carry the sections.
func CanonicalV2(st *store.Statement) []byte {
	var b bytes.Buffer
	b.WriteString(Header2 + "\n")
	fmt.Fprintf(&b, "period %s\nadjusts %s\n", quote(st.Period), quote(st.Adjusts))
	fmt.Fprintf(&b, "closed %s\nclosed-by %s\n", st.ClosedAt.UTC().Format(stampLayout), quote(st.ClosedBy))
	fmt.Fprintf(&b, "key %s %s\n", quote(st.KeyRef), quote(st.KeyFingerprint))
	b.WriteString("sections 1\n")
	fmt.Fprintf(&b, "section %s %d\n", quote(SectionCompensation), len(st.Lines))
	writeLines(&b, st)
	b.WriteString("end\n")
	return b.Bytes()
}

func writeLines(b *bytes.Buffer, st *store.Statement) {
	for _, l := range st.Lines {
		fmt.Fprintf(b, "line %s %s %s %d %d %d %d\n", quote(l.Carrier), quote(l.Category), quote(l.Funding),
			l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop)
	}
	t := st.Total()
	fmt.Fprintf(b, "total %d %d %d %d\n", t.Rides, t.FareKop, t.ChargedKop, t.CompensationKop)
}

// CanonicalV1 returns the canonical form 1 of a closed statement:
//
//	citycard-transit-statement/1
//	period "2026-12"
//	adjusts "2026-11"        ("" for the period's own statement)
//	closed 2027-01-05T10:00:00.000000Z
//	lines 2
//	line "ATP-1" "pensioner" "city" 12 18000 0 18000
//	line ...
//	total 20 30000 0 30000
//
// Each line holds carrier, category and funding, then rides, fare,
// charged and compensation in kopiyky; lines are in the order of
// store.CompareLines. Strings are quoted: '"' and '\' are escaped with a
// backslash, control bytes and bytes that are not UTF-8 are written \xHH,
// so every statement has one form and every form one statement. Each line
// ends with "\n". It has no actor and no key: statements closed since
// are in form 2.
func CanonicalV1(st *store.Statement) []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	fmt.Fprintf(&b, "period %s\nadjusts %s\n", quote(st.Period), quote(st.Adjusts))
	fmt.Fprintf(&b, "closed %s\nlines %d\n", st.ClosedAt.UTC().Format(stampLayout), len(st.Lines))
	writeLines(&b, st)
	return b.Bytes()
}

// Hash is the content hash of a statement: SHA-256 of its canonical form.
func Hash(st *store.Statement) []byte {
	h := sha256.Sum256(Canonical(st))
	return h[:]
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1, r < 0x20, r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(byte(r))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
	return b.String()
}

// ErrCanonical is wrapped by every Parse error.
var ErrCanonical = errors.New("not a canonical statement")

// MaxCanonical bounds the canonical form Parse reads: a city's month is
// a few thousand lines of a hundred bytes.
const MaxCanonical = 16 << 20

// Parse reads a statement back from its canonical form 1 or 2, as an
// auditor does with an exported statement (forms 3 and 4: ParseContent
// and ParsePart). It accepts exactly
// what Canonical writes: Canonical(Parse(b)) == b for every b it accepts,
// and each total must equal the sum of its lines.
func Parse(b []byte) (store.Statement, error) {
	fail := func(line int, format string, args ...any) (store.Statement, error) {
		return store.Statement{}, fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	if len(b) > MaxCanonical {
		return fail(0, "longer than %d bytes", MaxCanonical)
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return fail(0, "does not end with a newline")
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return fail(len(lines)+1, "%v", err)
	}
	if len(lines) > 0 && lines[0] == Header2 {
		return parseV2(b, lines)
	}
	if len(lines) > 0 && (lines[0] == Header3 || lines[0] == Header4) {
		return fail(1, "a form 3 or 4 statement holds its carriers' part digests, not lines: read it with ParseContent")
	}
	return parseV1(b, lines)
}

// parseV2 reads form 2.
func parseV2(b []byte, lines []string) (store.Statement, error) {
	st := store.Statement{Form: 2, Closed: true}
	fail := func(line int, format string, args ...any) (store.Statement, error) {
		return store.Statement{}, fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	const head = 8 // header, period, adjusts, closed, closed-by, key, sections, section
	if len(lines) < head+2 {
		return fail(1, "want at least %d lines after %q", head+2, Header2)
	}
	if err := readFields(lines, &st); err != nil {
		return store.Statement{}, err
	}
	if lines[6] != "sections 1" {
		return fail(7, "want sections 1 (%s): a newer transit may know more sections", SectionCompensation)
	}
	rest, ok := strings.CutPrefix(lines[7], "section ")
	if !ok {
		return fail(8, "want section NAME N")
	}
	name, rest, err := unquote(rest)
	if err != nil || name != SectionCompensation {
		return fail(8, "section %q: want %q", name, SectionCompensation)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(rest, " "))
	if err != nil || !strings.HasPrefix(rest, " ") || n < 0 || n != len(lines)-head-2 {
		return fail(8, "want the number of line rows (%d) after the section's name", len(lines)-head-2)
	}
	for i := range n {
		l, err := parseLine(lines[head+i], st.Adjusts)
		if err != nil {
			return fail(head+1+i, "%v", err)
		}
		if k := len(st.Lines); k > 0 && store.CompareLines(st.Lines[k-1], l) >= 0 {
			return fail(head+1+i, "lines out of order or repeated")
		}
		st.Lines = append(st.Lines, l)
	}
	if err := checkTotal(lines[len(lines)-2], st.Total()); err != nil {
		return fail(len(lines)-1, "%v", err)
	}
	if lines[len(lines)-1] != "end" {
		return fail(len(lines), "want end")
	}
	if !bytes.Equal(Canonical(&st), b) {
		return fail(0, "not in canonical form")
	}
	return st, nil
}

func parseLine(s, adjusts string) (store.Line, error) {
	rest, ok := strings.CutPrefix(s, "line ")
	if !ok {
		return store.Line{}, errors.New("want line ...")
	}
	var (
		l   store.Line
		err error
	)
	for _, p := range []*string{&l.Carrier, &l.Category, &l.Funding} {
		if *p, rest, err = unquote(rest); err != nil {
			return store.Line{}, err
		}
		if rest, ok = strings.CutPrefix(rest, " "); !ok {
			return store.Line{}, errors.New("want a space after a string")
		}
	}
	if err := amounts(rest, &l.Rides, &l.FareKop, &l.ChargedKop, &l.CompensationKop); err != nil {
		return store.Line{}, err
	}
	l.Adjusts = adjusts
	return l, nil
}

func checkTotal(s string, want store.Line) error {
	rest, ok := strings.CutPrefix(s, "total ")
	if !ok {
		return errors.New("want total ...")
	}
	var total store.Line
	if err := amounts(rest, &total.Rides, &total.FareKop, &total.ChargedKop, &total.CompensationKop); err != nil {
		return err
	}
	if total != want {
		return fmt.Errorf("total %+v is not the sum of the lines %+v", total, want)
	}
	return nil
}

// parseV1 reads form 1.
func parseV1(b []byte, lines []string) (store.Statement, error) {
	st := store.Statement{Form: 1}
	fail := func(line int, format string, args ...any) (store.Statement, error) {
		return store.Statement{}, fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
	}
	if len(lines) < 6 || lines[0] != Header {
		return fail(1, "want %q and at least 6 lines", Header)
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
	st.Closed = true
	n, err := number(lines[4], "lines ")
	if err != nil || n < 0 || n != int64(len(lines)-6) {
		return fail(5, "want lines N with N the number of line rows (%d)", len(lines)-6)
	}
	for i := range int(n) {
		rest, ok := strings.CutPrefix(lines[5+i], "line ")
		if !ok {
			return fail(6+i, "want line ...")
		}
		var l store.Line
		strs := []*string{&l.Carrier, &l.Category, &l.Funding}
		for _, p := range strs {
			if *p, rest, err = unquote(rest); err != nil {
				return fail(6+i, "%v", err)
			}
			if rest, ok = strings.CutPrefix(rest, " "); !ok {
				return fail(6+i, "want a space after a string")
			}
		}
		if err := amounts(rest, &l.Rides, &l.FareKop, &l.ChargedKop, &l.CompensationKop); err != nil {
			return fail(6+i, "%v", err)
		}
		l.Adjusts = st.Adjusts
		if k := len(st.Lines); k > 0 && store.CompareLines(st.Lines[k-1], l) >= 0 {
			return fail(6+i, "lines out of order or repeated")
		}
		st.Lines = append(st.Lines, l)
	}
	rest, ok := strings.CutPrefix(lines[len(lines)-1], "total ")
	var total store.Line
	if !ok {
		return fail(len(lines), "want total ...")
	}
	if err := amounts(rest, &total.Rides, &total.FareKop, &total.ChargedKop, &total.CompensationKop); err != nil {
		return fail(len(lines), "%v", err)
	}
	if total != st.Total() {
		return fail(len(lines), "total %+v is not the sum of the lines %+v", total, st.Total())
	}
	if !bytes.Equal(Canonical(&st), b) {
		return fail(0, "not in canonical form")
	}
	return st, nil
}

func field(line, prefix string) (string, error) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return "", fmt.Errorf("want %q", prefix+"...")
	}
	s, rest, err := unquote(rest)
	if err == nil && rest != "" {
		err = fmt.Errorf("%q after the string", rest)
	}
	return s, err
}

func number(line, prefix string) (int64, error) {
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok {
		return 0, fmt.Errorf("want %q", prefix+"N")
	}
	return strconv.ParseInt(rest, 10, 64)
}

func amounts(s string, into ...*int64) error {
	parts := strings.Split(s, " ")
	if len(parts) != len(into) {
		return fmt.Errorf("want %d numbers, got %q", len(into), s)
	}
	for i, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return fmt.Errorf("number %q: %w", p, err)
		}
		*into[i] = v
	}
	return nil
}

// unquote reads one quoted string from the start of s and returns it and
// what follows.
func unquote(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, errors.New("want a quoted string")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 >= len(s) {
				return "", s, errors.New("unfinished escape")
			}
			switch s[i+1] {
			case '"', '\\':
				b.WriteByte(s[i+1])
				i++
			case 'x':
				if i+3 >= len(s) {
					return "", s, errors.New("unfinished \\x escape")
				}
				v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
				if err != nil {
					return "", s, fmt.Errorf("escape %q", s[i:i+4])
				}
				b.WriteByte(byte(v))
				i += 3
			default:
				return "", s, fmt.Errorf("unknown escape \\%c", s[i+1])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", s, errors.New("unterminated string")
}
