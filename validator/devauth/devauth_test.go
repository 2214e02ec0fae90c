package devauth_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/devauth"
)

func keys(t testing.TB) (city, bus *hsm.Keystore) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	kdf := hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}
	city, err := hsm.CreateKeystore(filepath.Join(dir, "city"), []byte("pw"), kdf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { city.Close() })
	if _, err := city.Generate(ctx, hsm.LabelBatchMaster, hsm.KindBatchMaster); err != nil {
		t.Fatal(err)
	}
	k, err := hsm.DeviceKey(ctx, city, hsm.Ref{Label: hsm.LabelBatchMaster, Version: 1}, "bus-1")
	if err != nil {
		t.Fatal(err)
	}
	bus, err = hsm.CreateKeystore(filepath.Join(dir, "bus"), []byte("pw"), kdf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	if err := bus.Import(ctx, hsm.Ref{Label: hsm.LabelBatchDevice, Version: 1}, hsm.KindMAC, k[:]); err != nil {
		t.Fatal(err)
	}
	return city, bus
}

var now = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func TestSignVerify(t *testing.T) {
	city, bus := keys(t)
	v := &devauth.Verifier{Keys: city, Now: func() time.Time { return now }}
	req, _ := http.NewRequest("GET", "https://registry/v1/validator/hotlist?since=4", nil)
	if err := (&devauth.Signer{Device: "bus-1", Keys: bus, Now: func() time.Time { return now }}).Sign(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if d, err := v.Verify(req); err != nil || d != "bus-1" {
		t.Fatalf("Verify = %q, %v", d, err)
	}
	v.Devices = map[string]bool{"bus-2": true}
	if _, err := v.Verify(req); !errors.Is(err, devauth.ErrBad) {
		t.Errorf("a device not on the list: %v", err)
	}
	v.Devices = nil
	v.Now = func() time.Time { return now.Add(time.Hour) }
	if _, err := v.Verify(req); !errors.Is(err, devauth.ErrClock) {
		t.Errorf("an hour-old request: %v", err)
	}
	req.Header.Del("Authorization")
	if _, err := v.Verify(req); !errors.Is(err, devauth.ErrMissing) {
		t.Errorf("no header: %v", err)
	}
}

// FuzzVerify: no Authorization header, however made, passes or panics.
func FuzzVerify(f *testing.F) {
	city, _ := keys(f)
	v := &devauth.Verifier{Keys: city, Now: func() time.Time { return now }}
	f.Add(`TransitDevice device="bus-1", key="1", t="1795000000", mac="00112233445566778899aabbccddeeff"`)
	f.Add(`TransitDevice device=bus-1,key=1`)
	f.Add(`TransitDevice ,,,=`)
	f.Fuzz(func(t *testing.T, h string) {
		req, _ := http.NewRequest("GET", "https://registry/v1/validator/hotlist", nil)
		req.Header.Set("Authorization", h)
		if d, err := v.Verify(req); err == nil {
			t.Fatalf("header %q verified as %q", h, d)
		}
	})
}
