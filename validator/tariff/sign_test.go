package tariff

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/citycard/transit/hsm"
)

// signKeys is a keystore with sign-tariff@1 and @2 and sign-hotlist@1.
func signKeys(t testing.TB) *hsm.Keystore {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	for _, l := range []string{hsm.LabelSignTariff, hsm.LabelSignTariff, hsm.LabelSignHotlist} {
		if _, err := ks.Generate(context.Background(), l, hsm.KindSigning); err != nil {
			t.Fatal(err)
		}
	}
	return ks
}

var tariffKey = hsm.Ref{Label: hsm.LabelSignTariff, Version: 1}

// signed returns the sample signed with key as version.
func signed(t testing.TB, ks *hsm.Keystore, key hsm.Ref, version uint32) fstest.MapFS {
	t.Helper()
	m := sample(t)
	d, err := Digest(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ks.Signer(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Sign(d, version, key, s)
	if err != nil {
		t.Fatal(err)
	}
	m[SignatureFile] = &fstest.MapFile{Data: sig}
	return m
}

func TestSignAndOpen(t *testing.T) {
	ctx := context.Background()
	ks := signKeys(t)
	m := signed(t, ks, tariffKey, 2)
	tf, err := Open(ctx, m, ks, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tf.Version != 2 || len(tf.Carriers) != 3 {
		t.Fatalf("opened %+v", tf)
	}
	if _, err := Open(ctx, m, ks, 2); err != nil {
		t.Fatalf("reloading the version in use: %v", err)
	}
	if _, err := Open(ctx, signed(t, ks, hsm.Ref{Label: hsm.LabelSignTariff, Version: 2}, 2), ks, 1); err != nil {
		t.Fatalf("signed with the rotated key: %v", err)
	}

	t.Run("LoadSigned", func(t *testing.T) {
		dir := writeDir(t, m)
		if tf, err := LoadSigned(ctx, dir, ks, 1); err != nil || tf.Version != 2 {
			t.Fatalf("got %v", err)
		}
		if _, err := LoadSigned(ctx, dir, ks, 3); !errors.Is(err, ErrRollback) || !strings.Contains(err.Error(), "version 2, version 3 is in use") {
			t.Fatalf("rollback: %v", err)
		}
	})

	for _, c := range []struct {
		name string
		mod  func(fstest.MapFS)
		keys PublicKeys
		want error
		msg  string
	}{
		{"a file changed", func(m fstest.MapFS) {
			m[FileProducts] = &fstest.MapFile{Data: []byte(strings.Replace(string(m[FileProducts].Data), "15.00", "1.50", 1))}
		}, ks, ErrSignature, "is not the signed"},
		{"a file added", func(m fstest.MapFS) { m["extra.txt"] = &fstest.MapFile{Data: nil} }, ks, ErrSignature, "is not the signed"},
		{"a file removed", func(m fstest.MapFS) { delete(m, FilePasses) }, ks, ErrSignature, "is not the signed"},
		{"not signed", func(m fstest.MapFS) { delete(m, SignatureFile) }, ks, ErrSignature, "no tariff.sig"},
		{"signature bytes changed", func(m fstest.MapFS) {
			b := []byte(string(m[SignatureFile].Data))
			i := strings.Index(string(b), "ed25519 ") + 8
			b[i] = map[bool]byte{true: '1', false: '0'}[b[i] == '0']
			m[SignatureFile] = &fstest.MapFile{Data: b}
		}, ks, ErrSignature, "bad signature by sign-tariff@1 on version 2"},
		{"version in manifest changed", func(m fstest.MapFS) {
			m[SignatureFile] = &fstest.MapFile{Data: []byte(strings.Replace(string(m[SignatureFile].Data), "version 2", "version 9", 1))}
		}, ks, ErrSignature, "bad signature"},
		{"key unknown to the device", func(m fstest.MapFS) {
			m[SignatureFile] = &fstest.MapFile{Data: []byte(strings.Replace(string(m[SignatureFile].Data), "sign-tariff@1", "sign-tariff@7", 1))}
		}, ks, ErrSignature, "no verify key sign-tariff@7"},
		{"a hotlist key named", func(m fstest.MapFS) {
			m[SignatureFile] = &fstest.MapFile{Data: []byte(strings.Replace(string(m[SignatureFile].Data), "sign-tariff@1", "sign-hotlist@1", 1))}
		}, ks, ErrInvalid, "tariff.sig:3: key:"},
		{"garbage manifest", func(m fstest.MapFS) { m[SignatureFile] = &fstest.MapFile{Data: []byte("hello\n")} }, ks, ErrInvalid, "tariff.sig: want five lines"},
		{"older than loaded", nil, ks, ErrRollback, "version 2, version 3 is in use"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := signed(t, ks, tariffKey, 2)
			if c.mod != nil {
				c.mod(m)
			}
			loaded := uint32(0)
			if c.want == ErrRollback {
				loaded = 3
			}
			_, err := Open(ctx, m, c.keys, loaded)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v with %q", err, c.want, c.msg)
			}
		})
	}

	t.Run("manifest version is not the files'", func(t *testing.T) {
		_, err := Open(ctx, signed(t, ks, tariffKey, 5), ks, 0)
		if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "x_tariff.txt: version: 2, but tariff.sig signs version 5") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestSignRefuses(t *testing.T) {
	ks := signKeys(t)
	s, err := ks.Signer(context.Background(), tariffKey)
	if err != nil {
		t.Fatal(err)
	}
	var d [32]byte
	if _, err := Sign(d, 0, tariffKey, s); err == nil {
		t.Fatal("version 0 signed")
	}
	if _, err := Sign(d, 1, hsm.Ref{Label: hsm.LabelSignHotlist, Version: 1}, s); err == nil || !strings.Contains(err.Error(), "want sign-tariff@N") {
		t.Fatalf("hotlist key: %v", err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sign(d, 1, tariffKey, ec); err == nil || !strings.Contains(err.Error(), "not an Ed25519 key") {
		t.Fatalf("ECDSA signer: %v", err)
	}
}

func TestDigest(t *testing.T) {
	sum := func(m fstest.MapFS) [32]byte {
		t.Helper()
		d, err := Digest(m)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	one := func(name, data string) fstest.MapFS {
		return fstest.MapFS{name: &fstest.MapFile{Data: []byte(data)}}
	}
	base := sum(sample(t))
	withSig := sample(t)
	withSig[SignatureFile] = &fstest.MapFile{Data: []byte("whatever")}
	if sum(withSig) != base {
		t.Fatal("tariff.sig changed the digest it signs")
	}
	if sum(one("ab", "c")) == sum(one("a", "bc")) {
		t.Fatal("moving a byte from the content to the name kept the digest")
	}
	if sum(one("a", "")) == sum(fstest.MapFS{}) {
		t.Fatal("an empty file did not count")
	}
	two := fstest.MapFS{"a": &fstest.MapFile{Data: []byte("x")}, "b": &fstest.MapFile{Data: []byte("y")}}
	swapped := fstest.MapFS{"a": &fstest.MapFile{Data: []byte("y")}, "b": &fstest.MapFile{Data: []byte("x")}}
	if sum(two) == sum(swapped) {
		t.Fatal("swapping contents kept the digest")
	}
}

// FuzzParseManifest: the manifest decoder must not panic, and what it
// accepts has exactly one encoding.
func FuzzParseManifest(f *testing.F) {
	ks := signKeys(f)
	f.Add(signed(f, ks, tariffKey, 2)[SignatureFile].Data)
	f.Add([]byte("transit-tariff-signature 1\nversion 1\nkey sign-tariff@1\nsha256 00\ned25519 00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		out, err := m.MarshalText()
		if err != nil || string(out) != string(b) {
			t.Fatalf("accepted %q, re-encoded as %q (%v)", b, out, err)
		}
	})
}
