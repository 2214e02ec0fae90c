package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/fleet"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/validator/tap"
)

// getURL returns the status and body of a GET, waiting for the server to
// listen first.
func getURL(t *testing.T, url string) (int, string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		res, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			return res.StatusCode, string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
}

// TestServicesAnswerProbesWithoutSignIn: the registry and the console
// answer /healthz and /readyz without a token or a session, with nothing
// but "ok", while every other route still wants one.
func TestServicesAnswerProbesWithoutSignIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	rdb, cdb := "sqlite:"+filepath.Join(dir, "registry.db"), "sqlite:"+filepath.Join(dir, "clearing.db")
	newClearingFile(t, filepath.Join(dir, "clearing.db"))
	raddr, caddr := freePort(t), freePort(t)
	background(t, ctx, "registry serve", "registry", "serve", "--db", rdb, "--issuer", "1001", "--listen", raddr)
	background(t, ctx, "console", "console", "--registry-db", rdb, "--clearing-db", cdb, "--issuer", "1001", "--listen", caddr)
	for _, base := range []string{"http://" + raddr, "http://" + caddr} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := getURL(t, base+path); code != http.StatusOK || body != "ok\n" {
				t.Errorf("GET %s%s = %d %q, want 200 ok", base, path, code, body)
			}
		}
	}
	if code, _ := getURL(t, "http://"+raddr+"/v1/residents?q=x"); code != http.StatusUnauthorized {
		t.Errorf("the registry API without a token answered %d", code)
	}
	if code, body := getURL(t, "http://"+caddr+"/finance"); code != http.StatusOK || !strings.Contains(body, "<form") {
		t.Errorf("the console's finance page without a session: %d, want the sign-in page", code)
	}
}

// TestReportFleet prints the fleet of a store ingest filled: the silent
// device is offline, the one on an older hotlist is marked.
func TestReportFleet(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, path, store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i, b := range []struct {
		dev     string
		ago     time.Duration
		hotlist uint64
	}{{"bus-1", time.Minute, 9}, {"bus-2", 30 * time.Hour, 8}} {
		at := now.Add(-b.ago)
		tp := tap.Tap{Device: b.dev, Seq: uint64(i + 1), Time: at, Result: tap.Accepted, TariffVersion: 2, HotlistVersion: b.hotlist}
		if _, _, err := st.AddBatch(ctx, ingest.Batch{Device: b.dev, Created: at, Received: at, Taps: []tap.Tap{tp}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	out := transit(t, ctx, 0, "report", "fleet", "--db", "sqlite:"+path)
	for _, s := range []string{"2 devices, 1 offline", "Silent over 1h: 1, over 24h: 1, over 7d: 0", "offline,old-hotlist"} {
		if !strings.Contains(out, s) {
			t.Errorf("report fleet lacks %q:\n%s", s, out)
		}
	}
	var doc fleet.ViewJSON
	js := transit(t, ctx, 0, "report", "fleet", "--format", "json", "--problems", "--db", "sqlite:"+path)
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Devices != 2 || len(doc.ListedDevices) != 1 || doc.ListedDevices[0].Device != "bus-2" || !doc.ListedDevices[0].OldHotlist {
		t.Errorf("report fleet --problems --format json: %s", js)
	}
	transit(t, ctx, 2, "report", "fleet", "--format", "xml", "--db", "sqlite:"+path)
}
