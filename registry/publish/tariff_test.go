package publish_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry/publish"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tariff"
	"github.com/citycard/transit/validator/update"
)

// validatorTariff is a validator's tariff in force.
type validatorTariff struct{ t atomic.Pointer[fare.Tariff] }

func (v *validatorTariff) CurrentTariff() *fare.Tariff { return v.t.Load() }
func (v *validatorTariff) SetTariff(t *fare.Tariff)    { v.t.Store(t) }

// signTariff makes dir the sample tariff at version, signed with km's
// sign-tariff key, as `transit tariff sign` does; the signature file gets
// a modification time of its own, as a re-signing a second later would.
func signTariff(t *testing.T, km hsm.KeyManager, dir string, version int) {
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
			lines := strings.SplitN(string(b), "\n", 2)
			_, rest, _ := strings.Cut(lines[1], ",")
			b = []byte(lines[0] + "\n" + fmt.Sprint(version) + "," + rest)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
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
	info, err := hsm.Resolve(ctx, km, hsm.Ref{Label: hsm.LabelSignTariff})
	if err != nil {
		t.Fatal(err)
	}
	s, err := km.Signer(ctx, info.Ref)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := tariff.Sign(digest, tf.Version, info.Ref, s)
	if err != nil {
		t.Fatal(err)
	}
	touch(t, dir, sig)
}

// touch writes tariff.sig with a modification time later than any before.
func touch(t *testing.T, dir string, sig []byte) {
	t.Helper()
	path := filepath.Join(dir, tariff.SignatureFile)
	stamp := time.Now()
	if fi, err := os.Stat(path); err == nil && !fi.ModTime().Before(stamp) {
		stamp = fi.ModTime().Add(time.Second)
	}
	if err := os.WriteFile(path, sig, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, stamp, stamp); err != nil {
		t.Fatal(err)
	}
}

func TestTariffReachesValidator(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t, hsm.LabelSignTariff)
	dir := filepath.Join(t.TempDir(), "tariff")
	signTariff(t, ks, dir, 7)
	var logs logBuffer
	tp, err := publish.OpenTariff(ctx, dir, ks, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/v1/validator", &publish.Handler{Tariff: tp}))
	defer srv.Close()
	v := &validatorTariff{}
	f := &update.TariffFetcher{Base: srv.URL + "/v1/validator", Dir: filepath.Join(t.TempDir(), "tariff"), Keys: ks, User: v}
	fetch := func(wantNew bool, wantVersion uint32) {
		t.Helper()
		got, err := f.Once(ctx)
		if err != nil || got != wantNew || v.CurrentTariff().Version != wantVersion {
			t.Fatalf("validator poll: applied %v, %v, in force %d; want %v and %d", got, err, v.CurrentTariff().Version, wantNew, wantVersion)
		}
	}
	fetch(true, 7)
	if stored, err := tariff.LoadSigned(ctx, f.Dir, ks, 0); err != nil || stored.Version != 7 {
		t.Fatalf("validator's stored tariff: %v", err)
	}
	fetch(false, 7) // 304

	signTariff(t, ks, dir, 8)
	fetch(true, 8)

	// Changed after signing: refused, version 8 stays published.
	signTariff(t, ks, dir, 9)
	path := filepath.Join(dir, "fare_products.txt")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	sig, _ := os.ReadFile(filepath.Join(dir, tariff.SignatureFile))
	touch(t, dir, sig)
	fetch(false, 8)
	if !strings.Contains(logs.String(), "new tariff refused") {
		t.Fatalf("a forged tariff was not reported: %s", logs.String())
	}
	// An older version, properly signed: refused too.
	signTariff(t, ks, dir, 5)
	fetch(false, 8)
	if tp.Version() != 8 {
		t.Fatalf("publishing version %d after refusals, want 8", tp.Version())
	}

	// A validator with a newer tariff is told, not sent an older one.
	resp, err := http.Get(srv.URL + "/v1/validator/tariff?since=12")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("validator ahead: %s, want 409", resp.Status)
	}
	if _, _, _, err := tp.Get(ctx, 12); !errors.Is(err, publish.ErrAhead) {
		t.Fatalf("validator ahead: %v, want ErrAhead", err)
	}
}

func TestTariffMustBeSigned(t *testing.T) {
	ctx := context.Background()
	ks := keystore(t, hsm.LabelSignTariff)
	dir := filepath.Join(t.TempDir(), "tariff")
	signTariff(t, ks, dir, 3)
	os.Remove(filepath.Join(dir, tariff.SignatureFile))
	if _, err := publish.OpenTariff(ctx, dir, ks, nil); err == nil || !strings.Contains(err.Error(), "sign") {
		t.Fatalf("unsigned tariff: %v", err)
	}
	// Signed by a key the registry's HSM does not hold.
	signTariff(t, keystore(t, hsm.LabelSignTariff), dir, 3)
	if _, err := publish.OpenTariff(ctx, dir, ks, nil); !errors.Is(err, tariff.ErrSignature) {
		t.Fatalf("tariff signed with another key: %v, want ErrSignature", err)
	}
}
