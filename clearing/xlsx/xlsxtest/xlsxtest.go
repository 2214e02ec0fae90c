// Package xlsxtest opens, for tests, a spreadsheet the way a finance
// officer's tools do: in LibreOffice (Debian's libreoffice-calc-nogui),
// converted headless to CSV of what the cells show.
//
// Without LibreOffice a test is skipped, except under CI (CI=true) or
// TRANSIT_TEST_REQUIRE=1, where it fails: CI must never skip a test
// because a tool is missing.
package xlsxtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/citycard/transit/simulator/testenv"
)

// Tool is the program CSV runs.
const Tool = "soffice"

// CSV returns the first sheet of the workbook doc as LibreOffice writes
// it to CSV: UTF-8, comma separated, cells as formatted.
func CSV(t testing.TB, doc []byte) string {
	t.Helper()
	path, err := exec.LookPath(Tool)
	if err != nil {
		msg := Tool + " is not installed (apt-get install libreoffice-calc-nogui)"
		if testenv.Required() {
			t.Fatal(msg + "; CI must not skip this test")
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "book.xlsx")
	if err := os.WriteFile(in, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	// A profile of its own: LibreOffice refuses to run twice on one, and
	// tests run at once.
	cmd := exec.Command(path, "-env:UserInstallation=file://"+filepath.Join(dir, "profile"), "--headless", "--norestore",
		"--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true", "--outdir", dir, in)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s cannot convert the workbook: %v\n%s", Tool, err, out)
	}
	out, err := os.ReadFile(filepath.Join(dir, "book.csv"))
	if err != nil {
		t.Fatalf("%s wrote no CSV: %v", Tool, err)
	}
	return string(out)
}
