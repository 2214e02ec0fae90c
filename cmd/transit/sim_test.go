package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/city"
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

// TestSimKeystorePassphrase: the simulation says where its keystores are
// and their passphrase, and it opens them; --db none refuses a broker it
// would publish nothing to.
func TestSimKeystorePassphrase(t *testing.T) {
	dir := t.TempDir()
	code, out, errb := cli("sim", "run", "--scale", "0.002", "--days", "1", "--db", "none", "--dir", dir)
	if code != 0 {
		t.Fatalf("sim run --db none: exit %d\n%s\n%s", code, out, errb)
	}
	if !strings.Contains(out, "passphrase \""+city.KeystorePassphrase+"\"") || !strings.Contains(out, dir) {
		t.Fatalf("sim run --dir does not say where its keystores are and their passphrase:\n%s", out)
	}
	ks, err := hsm.OpenKeystore(filepath.Join(dir, "city.keys"), []byte(city.KeystorePassphrase))
	if err != nil {
		t.Fatalf("the printed passphrase does not open city.keys: %v", err)
	}
	ks.Close()
	code, _, errb = cli("sim", "run", "--db", "none", "--brokers", "127.0.0.1:9092")
	if code != 2 || !strings.Contains(errb, "--db none") || !strings.Contains(errb, "publishes nothing") {
		t.Fatalf("--db none --brokers: exit %d, %q; want a usage error saying nothing would be published", code, errb)
	}
}
