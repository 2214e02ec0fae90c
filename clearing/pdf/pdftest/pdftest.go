// Package pdftest reads back, for tests, the text of a PDF the way a
// person's tools do: with poppler's pdftotext (Debian's poppler-utils).
//
// Without pdftotext a test is skipped, except under CI (CI=true) or
// TRANSIT_TEST_REQUIRE=1, where it fails, as simulator/testenv does for
// servers: CI must never skip a test because a tool is missing.
package pdftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/citycard/transit/simulator/testenv"
)

// Tool is the program Text runs.
const Tool = "pdftotext"

// Text returns the text of the PDF doc, laid out as on the page (each
// table row on one line) and pages separated by form feeds.
func Text(t testing.TB, doc []byte) string {
	t.Helper()
	path, err := exec.LookPath(Tool)
	if err != nil {
		msg := Tool + " is not installed (apt-get install poppler-utils)"
		if testenv.Required() {
			t.Fatal(msg + "; CI must not skip this test")
		}
		t.Skip(msg)
	}
	file := filepath.Join(t.TempDir(), "doc.pdf")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-layout", "-enc", "UTF-8", file, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot read the PDF: %v\n%s", Tool, err, out)
	}
	return string(out)
}
