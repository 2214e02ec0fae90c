package update

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tariff"
)

type user struct{ t atomic.Pointer[fare.Tariff] }

func (u *user) CurrentTariff() *fare.Tariff { return u.t.Load() }
func (u *user) SetTariff(t *fare.Tariff)    { u.t.Store(t) }

// signedZip is the sample tariff at version, signed with km's sign-tariff
// key, as a zip archive; tamper, if set, changes the files after signing.
func signedZip(t *testing.T, km hsm.KeyManager, version string, tamper func(map[string][]byte)) []byte {
	t.Helper()
	files := map[string][]byte{}
	src := filepath.Join("..", "..", "testdata", "tariff")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == tariff.FileTariff {
			lines := strings.SplitN(string(b), "\n", 2)
			_, rest, _ := strings.Cut(lines[1], ",")
			b = []byte(lines[0] + "\n" + version + "," + rest)
		}
		files[e.Name()] = b
	}
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tf, err := tariff.Parse(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := tariff.Digest(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	ref := hsm.Ref{Label: hsm.LabelSignTariff, Version: 1}
	s, err := km.Signer(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := tariff.Sign(digest, tf.Version, ref, s)
	if err != nil {
		t.Fatal(err)
	}
	files[tariff.SignatureFile] = sig
	if tamper != nil {
		tamper(files)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, b := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTariffFetcher(t *testing.T) {
	ctx := context.Background()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "k"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if _, err := ks.Generate(ctx, hsm.LabelSignTariff, hsm.KindSigning); err != nil {
		t.Fatal(err)
	}
	var served atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/tariff" {
			http.NotFound(w, r)
			return
		}
		w.Write(*served.Load())
	}))
	defer srv.Close()

	dir := filepath.Join(t.TempDir(), "tariff")
	u := &user{}
	start, err := tariff.Parse(os.DirFS(filepath.Join("..", "..", "testdata", "tariff")))
	if err != nil {
		t.Fatal(err)
	}
	u.SetTariff(start)
	f := &TariffFetcher{Base: srv.URL, Dir: dir, Keys: ks, User: u}

	v7 := signedZip(t, ks, "7", nil)
	served.Store(&v7)
	if ok, err := f.Once(ctx); err != nil || !ok || u.CurrentTariff().Version != 7 {
		t.Fatalf("new tariff: applied %v, %v", ok, err)
	}
	// What is on disk is the signed tariff, as a restart loads it.
	if tf, err := tariff.LoadSigned(ctx, dir, ks, 0); err != nil || tf.Version != 7 {
		t.Fatalf("stored tariff: %v", err)
	}
	if ok, err := f.Once(ctx); err != nil || ok {
		t.Fatalf("same tariff again: applied %v, %v", ok, err)
	}
	v5 := signedZip(t, ks, "5", nil)
	served.Store(&v5)
	if _, err := f.Once(ctx); !errors.Is(err, tariff.ErrRollback) || u.CurrentTariff().Version != 7 {
		t.Fatalf("older tariff: %v, in force %d", err, u.CurrentTariff().Version)
	}
	// A forged archive: one byte of a file changed after signing.
	forged := signedZip(t, ks, "9", func(files map[string][]byte) {
		files["fare_products.txt"] = bytes.Replace(files["fare_products.txt"], []byte("15.00"), []byte("95.00"), 1)
	})
	served.Store(&forged)
	if _, err := f.Once(ctx); err == nil || u.CurrentTariff().Version != 7 {
		t.Fatalf("forged tariff: %v, in force %d", err, u.CurrentTariff().Version)
	}
	if tf, err := tariff.LoadSigned(ctx, dir, ks, 0); err != nil || tf.Version != 7 {
		t.Fatalf("stored tariff after refusals: %v", err)
	}
}

func TestRecoverDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tariff")
	if err := os.MkdirAll(dir+".next", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RecoverDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("interrupted swap not completed: %v", err)
	}
}
