// Package pdftest reads back, for tests, the text of a PDF the way a
// person's tools do: with poppler's pdftotext and pdftoppm (Debian's
// poppler-utils). CheckLayout checks a rendered document for overflow.
//
// Without pdftotext a test is skipped, except under CI (CI=true) or
// TRANSIT_TEST_REQUIRE=1, where it fails, as simulator/testenv does for
// servers: CI must never skip a test because a tool is missing.
package pdftest

import "testing"

// Tool is the program Text runs.
const Tool = "pdftotext"

// Text returns the text of the PDF doc, laid out as on the page (each
// table row on one line) and pages separated by form feeds.
func Text(t testing.TB, doc []byte) string {
	t.Helper()
	return string(run(t, doc, Tool, "-layout", "-enc", "UTF-8", "{}", "-"))
}
