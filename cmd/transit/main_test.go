package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpExplainsEveryCommand(t *testing.T) {
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d: %s", code, errb.String())
	}
	for _, c := range []string{"demo", "validator", "clearing", "report", "hsm", "tariff", "registry", "desk", "console", "statement", "sim", "version"} {
		if !strings.Contains(out.String(), "\n  "+c+" ") {
			t.Errorf("--help does not list %q:\n%s", c, out.String())
		}
	}
	for _, args := range [][]string{{"demo"}, {"validator", "run"}, {"clearing", "serve"}, {"clearing", "migrate"},
		{"report", "compensation"}, {"hsm", "init"}, {"tariff", "sign"}, {"registry", "serve"}} {
		var out, errb syncBuffer
		run(context.Background(), append(args, "--help"), &out, &errb)
		if !strings.Contains(out.String(), "Examples:") {
			t.Errorf("transit %s --help shows no example:\n%s", strings.Join(args, " "), out.String())
		}
	}
}

// TestBadInputIsOneClearLine runs wrong command lines and unreachable
// servers: each must exit non-zero with one line that says what to do.
func TestBadInputIsOneClearLine(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "city.keys")
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "pw")
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"hsm", "init", "--keystore", keys}, &out, &errb); code != 0 {
		t.Fatalf("hsm init: %s", errb.String())
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"typo in a command", []string{"demoo"}, 2, "did you mean demo"},
		{"unknown flag", []string{"demo", "--colour"}, 2, "unknown flag"},
		{"missing config file", []string{"validator", "run", "--config", filepath.Join(dir, "nope.json")}, 1, "no such file"},
		{"no config flag", []string{"validator", "run"}, 2, "--config"},
		{"bad period", []string{"report", "compensation", "--period", "2026-13", "--db", "sqlite:" + filepath.Join(dir, "c.db")}, 2, "YYYY-MM"},
		{"no database", []string{"report", "compensation", "--period", "2026-11"}, 2, "--db"},
		{"unreachable database", []string{"report", "compensation", "--period", "2026-11", "--db", "postgres://postgres@127.0.0.1:1/transit?connect_timeout=2"}, 1, "127.0.0.1:1"},
		{"unreachable broker", []string{"clearing", "serve", "--db", "sqlite:" + filepath.Join(dir, "c.db"), "--brokers", "127.0.0.1:1", "--keystore", keys}, 1, "127.0.0.1:1"},
		{"no broker", []string{"clearing", "serve", "--db", "sqlite:" + filepath.Join(dir, "c.db"), "--keystore", keys}, 2, "--brokers"},
		{"migrate what", []string{"clearing", "migrate", "--db", "mysql://x"}, 2, "sqlite:FILE"},
		{"wrong passphrase", []string{"hsm", "list", "--keystore", keys}, 1, "passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "wrong passphrase" {
				t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "not it")
			}
			var out, errb syncBuffer
			code := run(context.Background(), tc.args, &out, &errb)
			msg := errb.String()
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and a message with %q", code, msg, tc.code, tc.want)
			}
			if strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Fatalf("error is not one line:\n%s", msg)
			}
		})
	}
}

func TestDemoPrintsPerCarrierReport(t *testing.T) {
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"demo", "--cards", "20"}, &out, &errb); code != 0 {
		t.Fatalf("demo exit %d: %s\n%s", code, errb.String(), out.String())
	}
	s := out.String()
	for _, want := range []string{"ATP-1", "ELEKTROTRANS", "PRIVAT-7", "TOTAL", "equals the sum"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}

// TestValidatorRefusesUnsignedTariff: deleting tariff.sig must not get a
// tariff past the signature check.
func TestValidatorRefusesUnsignedTariff(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "pw")
	t.Setenv("TRANSIT_ROLE_PASSPHRASE", "pw")
	keys, vkeys := filepath.Join(dir, "city.keys"), filepath.Join(dir, "bus.keys")
	if code, _, errb := cli("hsm", "init", "--keystore", keys); code != 0 {
		t.Fatal(errb)
	}
	if code, _, errb := cli("hsm", "export-role", "validator", "--device", "bus-1", "--out", vkeys, "--keystore", keys); code != 0 {
		t.Fatal(errb)
	}
	tariffDir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "tariff"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "v.json")
	doc := `{"device":"bus-1","device_number":1,"carrier":"ATP-1","route":"1","vehicle":"v1","reader":"Virtual PCD 00 00",
		"journal":"j.db","keystore":"` + vkeys + `","tariff":"` + tariffDir + `","kafka":{"brokers":["127.0.0.1:1"]}}`
	if err := os.WriteFile(cfg, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errb := cli("validator", "run", "--config", cfg)
	if code != 1 || !strings.Contains(errb, "is not signed") || !strings.Contains(errb, "transit tariff sign") {
		t.Fatalf("unsigned tariff: exit %d, %q", code, errb)
	}
}
