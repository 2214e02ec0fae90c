// Package spreadsheet keeps exported text from being run as a formula
// (CSV or formula injection, OWASP): every CSV and XLSX export of the
// platform passes its text cells through Defuse, the clearing's
// compensation and reconciliation reports, the console's downloads and
// the registry's expiring-entitlements list alike.
package spreadsheet

import "unicode"

// Defuse returns s safe to put into a spreadsheet cell. A cell that
// starts, after any leading spaces, with one of = + - @ (or their
// full-width forms), or that starts with a tab, carriage return, line feed
// or NUL, is prefixed with a single quote, which spreadsheets take as
// "this is text" (OWASP's rule). Anything else comes back unchanged, so a
// name or a route keeps its spelling.
//
// Numbers the exporter writes itself, such as a negative amount, are not
// text and must not be passed through Defuse; a text cell that merely
// looks like a number ("-5") is defused, since its author is outside.
func Defuse(s string) string {
	if Dangerous(s) {
		return "'" + s
	}
	return s
}

// Dangerous reports whether a spreadsheet could take s as a formula (or
// a command, through DDE): what Defuse defuses.
func Dangerous(s string) bool {
	for _, r := range s {
		switch r {
		case '=', '+', '-', '@', '\uff1d', '\uff0b', '\uff0d', '\uff20':
			return true
		case '\t', '\r', '\n', 0:
			// Control characters that spreadsheets skip or split on.
			return true
		}
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return false
}

// Row returns a copy of row with every cell defused, for a CSV row that
// is all text.
func Row(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		out[i] = Defuse(c)
	}
	return out
}
