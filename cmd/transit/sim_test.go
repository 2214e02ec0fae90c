package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSimRunMatchesTheTruth(t *testing.T) {
	for _, fid := range []string{"fast", "full"} {
		t.Run(fid, func(t *testing.T) {
			db := "sqlite:" + filepath.Join(t.TempDir(), "clearing.db")
			code, out, errb := cli("sim", "run", "--scale", "0.002", "--days", "2", "--fidelity", fid, "--db", db)
			if code != 0 || !strings.Contains(out, "Clearing equals the truth, to the kopiyka.") {
				t.Fatalf("sim run: exit %d\n%s\n%s", code, out, errb)
			}
		})
	}
	if code, _, errb := cli("sim", "run", "--fidelity", "exact"); code != 2 || !strings.Contains(errb, "--fidelity") {
		t.Fatalf("bad --fidelity: exit %d, %q", code, errb)
	}
}
