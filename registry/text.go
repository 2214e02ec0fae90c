package registry

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Text the registry keeps (names, addresses, purposes, notes) is stored
// in Unicode NFC, so that one spelling typed on two keyboards (a
// precomposed "й", or "и" followed by a combining breve) is one string in
// the database and in searches. Characters that change how text looks
// without being seen are refused rather than cleaned away: a name with a
// right-to-left override shows as something other than what is stored,
// and a purpose with a line break forges a second line in the audit log.

// TextProblem says why a piece of text is refused. It is the Problem of
// the FieldError that CleanText returns.
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8 text; save or send it as UTF-8"
	}
	n := 0
	for _, r := range s {
		n++
		if what := badRune(r); what != "" {
			return fmt.Sprintf("contains %s (U+%04X) at character %d; retype the text without it", what, r, n)
		}
	}
	return ""
}

// badRune names what is wrong with r in stored text, or "" when r is
// fine.
func badRune(r rune) string {
	switch {
	case r == utf8.RuneError:
		// Also what a decoder leaves of bytes that were not UTF-8 (JSON
		// turns a lone surrogate escape into it): the text was damaged
		// before it arrived.
		return "a replacement character, a sign of damaged text"
	case unicode.IsControl(r):
		return "a control character"
	case isBidi(r):
		return "a character that changes the direction of text"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character"
	case unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
		return "a line or paragraph separator"
	case unicode.Is(unicode.Co, r) || unicode.Is(unicode.Cs, r):
		return "a private-use character"
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE:
		return "a non-character"
	}
	return ""
}

// isBidi reports the explicit bidirectional formatting characters
// (Unicode's Bidi_Control, UAX #9), which may reorder what follows.
func isBidi(r rune) bool {
	return r == 0x061C || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// CleanText checks free text for field and returns it in NFC. It refuses
// (with a *FieldError naming field) text that is not valid UTF-8, holds
// control, format, bidirectional or other invisible characters, is
// longer than maxLen characters, begins or ends with spaces, or is empty
// when required.
func CleanText(field, s string, maxLen int, required bool) (string, error) {
	if p := TextProblem(s); p != "" {
		return "", fieldErr(field, "%s", p)
	}
	s = norm.NFC.String(s)
	switch n := utf8.RuneCountInString(s); {
	case required && strings.TrimSpace(s) == "":
		return "", fieldErr(field, "empty; it is required")
	case n > maxLen:
		return "", fieldErr(field, "%d characters, at most %d", n, maxLen)
	case strings.TrimSpace(s) != s:
		return "", fieldErr(field, "starts or ends with spaces; remove them")
	}
	return s, nil
}

// cleanField replaces *s with its clean form, or returns why it cannot.
func cleanField(field string, s *string, maxLen int, required bool) error {
	v, err := CleanText(field, *s, maxLen, required)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
