// Package statement closes, signs and verifies compensation statements.
//
// A closed statement is fixed by its canonical form (Canonical): a short
// text that names the period, the period it adjusts, when it was closed
// and every line with its amounts in integer kopiyky. Its SHA-256 is the
// statement's content hash, and an Ed25519 signature over that hash, made
// with the HSM's sign-statement key, is stored with it and the key's
// name. Verifying recomputes the hash from the stored lines and checks the
// signature with the key's public half, so neither a changed line nor a
// changed hash goes unnoticed.
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

// Header is the first line of the canonical form; a change of the form
// changes it, so old signatures keep their meaning.
const Header = "citycard-transit-statement/1"

const stampLayout = "2006-01-02T15:04:05.000000Z"

// Canonical returns the canonical form of a closed statement:
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
// store.CompareLines. A line of rides a person released
// (store.Line.Kind) has its kind as a fourth string:
//
//	line "ATP-1" "11" "city" "released" 1 1500 0 1500
//
// A statement that holds rides back (store.Statement.Held) ends with
// them, per carrier and reason, with their count and claimed
// compensation; they are not in the total:
//
//	held 1
//	held-line "ATP-1" "differs" 2 3000
//	held-total 2 3000
//
// Statements without either have the form they always had, so earlier
// signatures still verify. Strings are quoted: '"' and '\' are escaped with a
// backslash, control bytes and bytes that are not UTF-8 are written \xHH,
// so every statement has one form and every form one statement. Each line
// ends with "\n".
func Canonical(st *store.Statement) []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	fmt.Fprintf(&b, "period %s\nadjusts %s\n", quote(st.Period), quote(st.Adjusts))
	fmt.Fprintf(&b, "closed %s\nlines %d\n", st.ClosedAt.UTC().Format(stampLayout), len(st.Lines))
	for _, l := range st.Lines {
		kind := ""
		if l.Kind != "" {
			kind = " " + quote(l.Kind)
		}
		fmt.Fprintf(&b, "line %s %s %s%s %d %d %d %d\n", quote(l.Carrier), quote(l.Category), quote(l.Funding), kind,
			l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop)
	}
	t := st.Total()
	fmt.Fprintf(&b, "total %d %d %d %d\n", t.Rides, t.FareKop, t.ChargedKop, t.CompensationKop)
	if len(st.Held) > 0 {
		fmt.Fprintf(&b, "held %d\n", len(st.Held))
		for _, h := range st.Held {
			fmt.Fprintf(&b, "held-line %s %s %d %d\n", quote(h.Carrier), quote(h.Reason), h.Rides, h.ClaimedKop)
		}
		ht := st.HeldTotal()
		fmt.Fprintf(&b, "held-total %d %d\n", ht.Rides, ht.ClaimedKop)
	}
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

// Parse reads a statement back from its canonical form, as an auditor
// does with an exported statement. It accepts exactly what Canonical
// writes: Canonical(Parse(b)) == b for every b it accepts, and the total
// must equal the sum of the lines.
func Parse(b []byte) (store.Statement, error) {
	var st store.Statement
	fail := func(line int, format string, args ...any) (store.Statement, error) {
		return store.Statement{}, fmt.Errorf("%w: line %d: %s", ErrCanonical, line, fmt.Sprintf(format, args...))
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
	if err != nil || n < 0 || n > int64(len(lines)-6) {
		return fail(5, "want lines N with N the number of line rows (at most %d)", len(lines)-6)
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
		if strings.HasPrefix(rest, `"`) {
			if l.Kind, rest, err = unquote(rest); err != nil || l.Kind == "" {
				return fail(6+i, "kind: want a non-empty quoted string")
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
	at := 5 + int(n) // the total's index
	rest, ok := strings.CutPrefix(lines[at], "total ")
	var total store.Line
	if !ok {
		return fail(at+1, "want total ...")
	}
	if err := amounts(rest, &total.Rides, &total.FareKop, &total.ChargedKop, &total.CompensationKop); err != nil {
		return fail(at+1, "%v", err)
	}
	if total != st.Total() {
		return fail(at+1, "total %+v is not the sum of the lines %+v", total, st.Total())
	}
	if extra := lines[at+1:]; len(extra) > 0 {
		m, err := number(extra[0], "held ")
		if err != nil || m < 1 || m != int64(len(extra)-2) {
			return fail(at+2, "want held N with N the number of held-line rows (%d)", len(extra)-2)
		}
		for i := range int(m) {
			rest, ok := strings.CutPrefix(extra[1+i], "held-line ")
			if !ok {
				return fail(at+3+i, "want held-line ...")
			}
			var h store.HeldLine
			for _, p := range []*string{&h.Carrier, &h.Reason} {
				if *p, rest, err = unquote(rest); err != nil {
					return fail(at+3+i, "%v", err)
				}
				if rest, ok = strings.CutPrefix(rest, " "); !ok {
					return fail(at+3+i, "want a space after a string")
				}
			}
			if err := amounts(rest, &h.Rides, &h.ClaimedKop); err != nil {
				return fail(at+3+i, "%v", err)
			}
			if k := len(st.Held); k > 0 && store.CompareHeld(st.Held[k-1], h) >= 0 {
				return fail(at+3+i, "held lines out of order or repeated")
			}
			st.Held = append(st.Held, h)
		}
		rest, ok := strings.CutPrefix(extra[len(extra)-1], "held-total ")
		var ht store.HeldLine
		if !ok {
			return fail(len(lines), "want held-total ...")
		}
		if err := amounts(rest, &ht.Rides, &ht.ClaimedKop); err != nil {
			return fail(len(lines), "%v", err)
		}
		if ht != st.HeldTotal() {
			return fail(len(lines), "held total %+v is not the sum of the held lines %+v", ht, st.HeldTotal())
		}
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
