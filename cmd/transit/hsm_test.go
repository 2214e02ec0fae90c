package main

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citycard/transit/simulator/testenv"
)

// cli runs transit and returns exit code, stdout and stderr.
func cli(args ...string) (int, string, string) {
	var out, errb syncBuffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHSMCommandsOnKeystore(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "city.keys")
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "city pass")
	t.Setenv("TRANSIT_ROLE_PASSPHRASE", "bus pass")
	ks := []string{"--keystore", keys}
	step := func(want int, wantOut string, args ...string) string {
		t.Helper()
		code, out, errb := cli(append(args, ks...)...)
		if code != want || !strings.Contains(out+errb, wantOut) {
			t.Fatalf("transit %s: exit %d, stdout %q, stderr %q; want exit %d with %q", strings.Join(args, " "), code, out, errb, want, wantOut)
		}
		if code != 0 && strings.Count(strings.TrimSpace(errb), "\n") != 0 {
			t.Fatalf("transit %s: error is not one line: %q", strings.Join(args, " "), errb)
		}
		return out
	}
	out := step(0, "tmac-master@1\ttmac-master", "hsm", "init")
	if n := strings.Count(out, "\n"); n != 11 || !strings.Contains(out, "sign-audit@1") {
		t.Fatalf("hsm init made %d keys, want 11 with sign-audit and tmac-master:\n%s", n, out)
	}
	step(1, "exists", "hsm", "init")
	step(0, "door-mac@1\tmac", "hsm", "keygen", "door-mac", "--kind", "mac")
	step(2, "cannot tell the kind", "hsm", "keygen", "door-key")
	step(2, "unknown --kind", "hsm", "keygen", "door-key", "--kind", "rsa")
	step(0, "card-validator@2", "hsm", "rotate", "card-validator")
	out = step(0, "card-validator@1", "hsm", "list")
	if !strings.Contains(out, "card-validator@2") {
		t.Fatalf("list after rotate lacks version 2:\n%s", out)
	}
	step(1, "create it first", "hsm", "rotate", "no-such-key")

	pemOut := step(0, "BEGIN PUBLIC KEY", "hsm", "export-public", "sign-hotlist")
	blk, _ := pem.Decode([]byte(pemOut))
	if blk == nil {
		t.Fatalf("export-public printed no PEM:\n%s", pemOut)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if _, ok := pub.(ed25519.PublicKey); err != nil || !ok {
		t.Fatalf("export-public key: %T, %v", pub, err)
	}
	step(1, "wrong type", "hsm", "export-public", "card-issuer")
	step(1, "not found", "hsm", "export-public", "sign-nothing")
	step(2, "--device", "hsm", "export-role", "validator", "--out", filepath.Join(dir, "v.keys"))
	out = step(0, "batch-device@1", "hsm", "export-role", "validator", "--device", "bus-1", "--out", filepath.Join(dir, "v.keys"))
	for _, secret := range []string{"card-issuer", "card-desk", "card-topup", "card-inspector", "batch-master", "sign-statement"} {
		if strings.Contains(out, secret) {
			t.Fatalf("validator keystore holds %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "card-validator@1") || !strings.Contains(out, "card-validator@2") || !strings.Contains(out, "sign-hotlist@1\ted25519-public") {
		t.Fatalf("validator keystore lacks its keys (both card-validator versions, hotlist verify key):\n%s", out)
	}
	step(2, "unknown role", "hsm", "export-role", "driver", "--out", filepath.Join(dir, "d.keys"))

	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "wrong")
	step(1, "passphrase", "hsm", "list")
	if code, _, errb := cli("hsm", "list"); code != 2 || !strings.Contains(errb, "no key backend") {
		t.Fatalf("hsm list without a backend: exit %d, %q", code, errb)
	}
}

func TestHSMCommandsOnSoftHSM(t *testing.T) {
	tok := testenv.SoftHSM(t)
	p11 := []string{"--pkcs11-module", tok.Module, "--token", tok.Token}
	t.Setenv("TRANSIT_HSM_PIN", tok.PIN)
	if code, out, errb := cli(append([]string{"hsm", "init"}, p11...)...); code != 0 {
		t.Fatalf("hsm init on the token: exit %d\n%s%s", code, out, errb)
	}
	code, out, errb := cli(append([]string{"hsm", "list"}, p11...)...)
	if code != 0 || !strings.Contains(out, "card-validator@") || !strings.Contains(out, "sign-statement@") {
		t.Fatalf("hsm list on the token: exit %d\n%s%s", code, out, errb)
	}
	if code, out, errb := cli(append([]string{"hsm", "export-public", "sign-hotlist"}, p11...)...); code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Fatalf("export-public from the token: exit %d\n%s%s", code, out, errb)
	}
	if code, _, errb := cli(append([]string{"hsm", "export-role", "desk", "--out", filepath.Join(t.TempDir(), "x")}, p11...)...); code != 2 || !strings.Contains(errb, "non-extractable") {
		t.Fatalf("export-role from a token: exit %d, %q", code, errb)
	}
	t.Setenv("TRANSIT_HSM_PIN", "0000")
	if code, _, errb := cli(append([]string{"hsm", "list"}, p11...)...); code != 1 || !strings.Contains(errb, "PIN") || strings.Count(strings.TrimSpace(errb), "\n") != 0 {
		t.Fatalf("wrong PIN: exit %d, %q; want one line about the PIN", code, errb)
	}
	t.Setenv("TRANSIT_HSM_PIN", "")
	if code, _, errb := cli(append([]string{"hsm", "list"}, p11...)...); code != 1 || !strings.Contains(errb, "TRANSIT_HSM_PIN") {
		t.Fatalf("no PIN: exit %d, %q", code, errb)
	}
}
