package main

import (
	"os"
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

// TestSimRunHoldsDishonestValidators runs the city with dishonest
// validators: the run says how many rides they invented each day, and the
// comparison how clearing judged every lie, held per reason, with no
// honest ride held. At full fidelity, where every validator runs the real
// code, the fault cannot be had and the run says why.
func TestSimRunHoldsDishonestValidators(t *testing.T) {
	config := filepath.Join("..", "..", "simulator", "city", "testdata", "dishonest.json")
	db := "sqlite:" + filepath.Join(t.TempDir(), "clearing.db")
	code, out, errb := cli("sim", "run", "--config", config, "--days", "2", "--scale", "0.004", "--db", db)
	if code != 0 || !strings.Contains(out, "Clearing equals the truth, to the kopiyka.") {
		t.Fatalf("sim run: exit %d\n%s\n%s", code, out, errb)
	}
	for _, want := range []string{"rides invented by dishonest validators", "4 dishonest validators sealed",
		"held contradicted-by-card:", "held amount-invalid:", "held over-tariff:", "held differs:", "no honest ride held"} {
		if !strings.Contains(out, want) {
			t.Errorf("sim run does not say %q:\n%s", want, out)
		}
	}
	code, _, errb = cli("sim", "run", "--config", config, "--days", "1", "--scale", "0.001", "--fidelity", "full", "--db", "none")
	if code == 0 || !strings.Contains(errb, "faults dishonest devices 4") || !strings.Contains(errb, "run fast or mixed") {
		t.Fatalf("dishonest validators at full fidelity: exit %d, %q", code, errb)
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

func TestSimCardRefusesBadInput(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.vdfc")
	if err := os.WriteFile(junk, []byte("not a card"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sim", "card"}, 2, "--state"},
		{[]string{"sim", "card", "--state", filepath.Join(dir, "new.vdfc"), "--uid", "zz"}, 2, "--uid"},
		{[]string{"sim", "card", "--state", filepath.Join(dir, "new.vdfc"), "--for", "-1s"}, 2, "--for"},
		{[]string{"sim", "card", "--state", junk}, 1, "not a file 'transit sim card' wrote"},
	} {
		code, _, errb := cli(tc.args...)
		if code != tc.code || !strings.Contains(errb, tc.want) || strings.Count(strings.TrimSpace(errb), "\n") != 0 {
			t.Errorf("%v: exit %d, %q; want exit %d and one line with %q", tc.args, code, errb, tc.code, tc.want)
		}
	}
}
