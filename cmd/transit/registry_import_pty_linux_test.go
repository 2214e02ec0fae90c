package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistryImportAsks: --apply on a terminal shows the preview and
// asks; anything but yes imports nothing, yes imports.
func TestRegistryImportAsks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	db := "sqlite:" + path
	transit(t, ctx, 0, "registry", "migrate", "--db", db)
	args := []string{"registry", "import", sampleCSV, "--db", db, "--apply", "--actor", "olena.k"}
	for _, tc := range []struct {
		answer    string
		code      int
		residents int
	}{{"no\n", 2, 0}, {"\n", 2, 0}, {"yes\n", 0, 4}} {
		ptmx, tty := ptyPair(t)
		stdin := os.Stdin
		os.Stdin = tty // confirm asks only a terminal
		if _, err := ptmx.WriteString(tc.answer); err != nil {
			t.Fatal(err)
		}
		var out, errb syncBuffer
		code := run(ctx, args, &out, &errb)
		os.Stdin = stdin
		if code != tc.code {
			t.Errorf("answer %q: exit %d, want %d\nstdout: %s\nstderr: %s", tc.answer, code, tc.code, out.String(), errb.String())
		}
		if q := errb.String(); !strings.Contains(q, "Import benefit-recipients.csv as cli:olena.k: 6 row(s): 4 new resident(s)") || !strings.Contains(q, "Type yes:") {
			t.Errorf("answer %q: the question was %q", tc.answer, q)
		}
		if !strings.Contains(out.String(), "(dry run): 6 row(s)") {
			t.Errorf("answer %q: no preview before the question:\n%s", tc.answer, out.String())
		}
		if n := countRows(t, path, "residents"); n != tc.residents {
			t.Errorf("answer %q: %d residents, want %d", tc.answer, n, tc.residents)
		}
	}
}
