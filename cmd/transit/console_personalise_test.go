package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleReaderFlags: the console takes the reader and card-key
// flags of transit desk personalise, and refuses combinations that
// cannot personalise before it opens anything (no pcscd is touched).
func TestConsoleReaderFlags(t *testing.T) {
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"console", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("console --help: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"--reader", "--pkcs11-token", "--keystore", "--wait duration", "(default 30s)", "desk machine"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("console --help lacks %q:\n%s", want, out.String())
		}
	}

	dir := t.TempDir()
	base := []string{"console", "--registry-db", "sqlite:" + filepath.Join(dir, "r.db"), "--clearing-db", "sqlite:" + filepath.Join(dir, "c.db"),
		"--issuer", "1001", "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"reader without keys", []string{"--reader", "ACS ACR122U 00 00"}, "--reader needs the desk's card keys"},
		{"module without token", []string{"--reader", "ACS ACR122U 00 00", "--pkcs11-module", "/nonexistent.so"}, "--pkcs11-token"},
		{"wait too long", []string{"--reader", "ACS ACR122U 00 00", "--keystore", filepath.Join(dir, "k"), "--wait", "5m"}, "--wait 5m0s"},
		{"no wait", []string{"--reader", "ACS ACR122U 00 00", "--keystore", filepath.Join(dir, "k"), "--wait", "0s"}, "--wait 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncBuffer
			code := run(context.Background(), append(append([]string{}, base...), tc.args...), &out, &errb)
			if msg := errb.String(); code != 2 || !strings.Contains(msg, tc.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line with %q", code, msg, tc.want)
			}
		})
	}
}
