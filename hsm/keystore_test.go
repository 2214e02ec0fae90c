package hsm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// testKDF keeps tests fast; real keystores use DefaultKDF.
var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func newKeystore(t testing.TB) (*Keystore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	ks, err := CreateKeystore(path, []byte("correct horse"), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	return ks, path
}

func TestKeystoreContract(t *testing.T) {
	ks, path := newKeystore(t)
	contract(t, ks)
	// Everything survives a reopen.
	before, _ := ks.Keys(context.Background())
	re, err := OpenKeystore(path, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := re.Keys(context.Background())
	if len(before) == 0 || len(before) != len(after) {
		t.Fatalf("reopened keystore has %d keys, want %d", len(after), len(before))
	}
}

func TestAN10922ShortInputPads(t *testing.T) {
	// For inputs under 16 bytes AN10922 pads to two blocks; this must
	// differ from plain CMAC over 0x01||input, which pads to one.
	ks, _ := newKeystore(t)
	ctx := context.Background()
	ref := Ref{"card-desk", 1}
	if err := ks.Import(ctx, ref, KindCardMaster, unhex(t, an10922Master)); err != nil {
		t.Fatal(err)
	}
	short := unhex(t, "04782E21801D80")
	got, err := ks.Diversify(ctx, ref, short)
	if err != nil {
		t.Fatal(err)
	}
	// Reference: CBC-MAC over the 32-byte padded message with K2 in block 2,
	// computed here independently from the cmac package's subkeys.
	want := referenceAN10922(t, unhex(t, an10922Master), short)
	if got != want {
		t.Fatalf("short input: %X, want %X", got, want)
	}
	if _, err := ks.Diversify(ctx, ref, nil); err == nil {
		t.Fatal("empty input accepted")
	}
}

func TestKeystoreNoPlaintextOnDisk(t *testing.T) {
	ks, path := newKeystore(t)
	key := unhex(t, an10922Master)
	if err := ks.Import(context.Background(), Ref{"card-issuer", 1}, KindCardMaster, key); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range [][]byte{key, []byte("card-issuer"), []byte("ABEiM0RVZneImaq7zN3u/w==")} {
		if bytes.Contains(raw, needle) {
			t.Fatalf("keystore file contains %q in the clear", needle)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keystore mode %v, want 0600", fi.Mode().Perm())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(m) != 0 {
		t.Fatalf("temp files left behind: %v", m)
	}
}

func TestKeystoreRefusesBadOpen(t *testing.T) {
	ks, path := newKeystore(t)
	if err := ks.Import(context.Background(), Ref{"card-issuer", 1}, KindCardMaster, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	tamper := func(f func([]byte) []byte) string {
		p := filepath.Join(t.TempDir(), "k.json")
		os.WriteFile(p, f(bytes.Clone(raw)), 0o600)
		return p
	}
	flipCiphertext := func(b []byte) []byte {
		i := bytes.Index(b, []byte(`"ciphertext": "`)) + len(`"ciphertext": "`) + 4
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return b
	}
	changeParams := func(b []byte) []byte {
		return bytes.Replace(b, []byte(`"memory_kib": 64`), []byte(`"memory_kib": 65`), 1)
	}
	tests := []struct {
		name, path, pass string
		want             error
	}{
		{"wrong passphrase", path, "wrong horse", ErrBadPassphrase},
		{"empty passphrase", path, "", ErrBadPassphrase},
		{"tampered ciphertext", tamper(flipCiphertext), "correct horse", ErrBadPassphrase},
		{"tampered KDF parameters", tamper(changeParams), "correct horse", ErrBadPassphrase},
		{"truncated file", tamper(func(b []byte) []byte { return b[:len(b)/2] }), "correct horse", nil},
		{"missing file", filepath.Join(t.TempDir(), "none"), "correct horse", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenKeystore(tc.path, []byte(tc.pass))
			if err == nil {
				t.Fatal("opened")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := CreateKeystore(path, []byte("x"), testKDF); err == nil {
		t.Fatal("CreateKeystore overwrote an existing file")
	}
}

func FuzzOpenKeystore(f *testing.F) {
	ks, path := newKeystore(f)
	ks.Import(context.Background(), Ref{"card-issuer", 1}, KindCardMaster, make([]byte, 16))
	raw, _ := os.ReadFile(path)
	f.Add(raw)
	f.Add([]byte(`{"format":"transit-keystore/1","kdf":"argon2id","params":{"time":1,"memory_kib":8,"threads":1}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.json")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		OpenKeystore(p, []byte("correct horse")) // must not panic or hang
	})
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"card-validator@2", Ref{"card-validator", 2}, true},
		{"sign-hotlist", Ref{"sign-hotlist", 0}, true},
		{"card@0", Ref{}, false},
		{"card@x", Ref{}, false},
		{"", Ref{}, false},
		{"Card", Ref{}, false},
		{"a b", Ref{}, false},
	}
	for _, tc := range tests {
		got, err := ParseRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if s := (Ref{"card-desk", 3}).String(); s != "card-desk@3" {
		t.Errorf("String = %q", s)
	}
}

// TestKeystoreIsPrivate: a keystore is written 0600 whatever the umask,
// and one made wider by a copy is made 0600 again when opened.
func TestKeystoreIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "k")
	ks, err := CreateKeystore(p, []byte("pw"), KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Generate(context.Background(), LabelSignAudit, KindSigning); err != nil {
		t.Fatal(err)
	}
	ks.Close()
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("keystore written with umask 0 is %v, want 0600", fi.Mode().Perm())
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	ks, err = OpenKeystore(p, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	ks.Close()
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("a 0644 keystore after opening is %v, want 0600", fi.Mode().Perm())
	}
}
