package tariffs_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/tariffs"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry/publish"
	"github.com/citycard/transit/validator/tariff"
)

func keystore(t *testing.T) *hsm.Keystore {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"), hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	if _, err := ks.Generate(context.Background(), hsm.LabelSignTariff, hsm.KindSigning); err != nil {
		t.Fatal(err)
	}
	return ks
}

// signedDir writes the sample tariff as version into dir, signed with
// km's sign-tariff key, as `transit tariff sign` does.
func signedDir(t *testing.T, km hsm.KeyManager, dir string, version uint32) {
	t.Helper()
	ctx := context.Background()
	src := filepath.Join("..", "..", "testdata", "tariff")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == tariff.FileTariff {
			head, body, _ := strings.Cut(string(b), "\n")
			_, rest, _ := strings.Cut(body, ",")
			b = []byte(head + "\n" + fmt.Sprint(version) + "," + rest)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := tariff.Digest(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	ref := hsm.Ref{Label: hsm.LabelSignTariff, Version: 1}
	s, err := km.Signer(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := tariff.Sign(d, version, ref, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tariff.SignatureFile), sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

func clearingStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), ":memory:", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestAddDir(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t)
	st := clearingStore(t)
	dir := filepath.Join(t.TempDir(), "v2")
	signedDir(t, ks, dir, 2)
	now := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	tf, added, err := tariffs.AddDir(ctx, st, ks, dir, now)
	if err != nil || !added || tf.Version != 2 || tf.KeyRef != "sign-tariff@1" {
		t.Fatalf("AddDir = %+v, %v, %v", tf.Version, added, err)
	}
	if _, added, err := tariffs.AddDir(ctx, st, ks, dir, now); err != nil || added {
		t.Errorf("AddDir again = %v, %v; want kept, not added", added, err)
	}
	// A signed tariff changed afterwards is refused, and so is one whose
	// key clearing does not hold.
	tampered := filepath.Join(t.TempDir(), "tampered")
	signedDir(t, ks, tampered, 3)
	if err := os.WriteFile(filepath.Join(tampered, "fare_products.txt"), []byte("fare_product_id,amount,currency\nx,1.00,UAH\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tariffs.AddDir(ctx, st, ks, tampered, now); !errors.Is(err, tariff.ErrSignature) {
		t.Errorf("a tampered tariff: %v, want ErrSignature", err)
	}
	other := filepath.Join(t.TempDir(), "other")
	signedDir(t, keystore(t), other, 4)
	if _, _, err := tariffs.AddDir(ctx, st, ks, other, now); !errors.Is(err, tariff.ErrSignature) {
		t.Errorf("a tariff signed with a key clearing does not know: %v, want ErrSignature", err)
	}
	if v, err := tariffs.Newest(ctx, st); err != nil || v != 2 {
		t.Errorf("Newest = %d, %v; want 2", v, err)
	}
}

// TestFetch fetches from the registry's own publisher.
func TestFetch(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t)
	dir := t.TempDir()
	signedDir(t, ks, dir, 5)
	pub, err := publish.OpenTariff(ctx, dir, ks, nil)
	if err != nil {
		t.Fatal(err)
	}
	var auth string
	srv := httptest.NewServer(http.StripPrefix("/v1/validator", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		(&publish.Handler{Tariff: pub}).ServeHTTP(w, r)
	})))
	defer srv.Close()
	st := clearingStore(t)
	f := &tariffs.Fetcher{URL: srv.URL + "/v1/validator", Keys: ks, Store: st, Token: "svc-token"}
	v, added, err := f.Fetch(ctx)
	if err != nil || v != 5 || !added {
		t.Fatalf("Fetch = %d, %v, %v", v, added, err)
	}
	if auth != "Bearer svc-token" {
		t.Errorf("Authorization %q, want the bearer token", auth)
	}
	if v, added, err := f.Fetch(ctx); err != nil || v != 5 || added {
		t.Errorf("Fetch again = %d, %v, %v; want 5 kept, nothing new", v, added, err)
	}
	ts, err := st.Tariffs(ctx, true)
	if err != nil || len(ts) != 1 || !strings.HasPrefix(ts[0].Source, "registry:") || len(ts[0].Zip) == 0 {
		t.Fatalf("kept %+v, %v", ts, err)
	}
	// What is kept verifies again.
	if _, err := tariffs.Verify(ctx, ts[0].Zip, ks); err != nil {
		t.Errorf("the kept archive does not verify: %v", err)
	}
	bad := &tariffs.Fetcher{URL: "ftp://x", Keys: ks, Store: st}
	if _, _, err := bad.Fetch(ctx); err == nil {
		t.Error("an ftp URL was fetched")
	}
}
