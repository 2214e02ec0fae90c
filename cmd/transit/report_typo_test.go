package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportTypos: the typos fail with one line and a non-zero
// exit, and create nothing; an empty month says so.
func TestReportTypos(t *testing.T) {
	db, _, _ := pdfStore(t)
	missing := filepath.Join(t.TempDir(), "does", "not", "exist.db")
	for _, args := range [][]string{
		{"--db", "sqlite:" + missing},
		{"--db", "sqlite:"},
		{"--db", "sqlite::memory:"},
		{"--db", db, "--carrier", "ATP1"},
		{"--db", db, "--category", "99", "--register", "../../testdata/finance"},
	} {
		code, _, errb := cli(append([]string{"report", "compensation", "--period", "2026-11"}, args...)...)
		if code == 0 || strings.Count(strings.TrimSpace(errb), "\n") != 0 || errb == "" {
			t.Errorf("%v: exit %d, stderr %q; want a failure in one line", args, code, errb)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Error("a report created a directory")
	}
	out := transit(t, context.Background(), 0, "report", "compensation", "--period", "2031-02", "--db", db)
	if !strings.Contains(out, "No benefit rides are booked in 2031-02") {
		t.Errorf("empty month: %q", out)
	}
	// Closing without --yes shows and changes nothing.
	code, stdout, errb := cli("statement", "close", "--period", "2031-02", "--actor", "o.koval", "--db", db)
	if code != 2 || !strings.Contains(stdout, "Closing 2031-02 freezes") || !strings.Contains(errb, "--yes") {
		t.Errorf("close without --yes: %d %q %q", code, stdout, errb)
	}
}
