package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/api"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

// heldServer serves a store with one honest ride and one inflated one,
// judged, and tokens for a finance officer and an auditor.
func heldServer(t *testing.T) (hs *httptest.Server, finance, auditor string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, kyiv)
	good, inflated := storetest.Ride("BUS-1", 1, at), storetest.Ride("BUS-1", 2, at.Add(time.Hour))
	inflated.Carrier, inflated.Route = "ELEKTROTRANS", "T1" // a tram ride claiming the bus fare
	taps := []tap.Tap{good, inflated}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Rerate(ctx, 10); err != nil {
		t.Fatal(err)
	}
	var lines []string
	finance, fl, err := api.NewToken(api.RoleFinance, "olena")
	if err != nil {
		t.Fatal(err)
	}
	auditor, al, err := api.NewToken(api.RoleAuditor, "mykola")
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, "# clearing API tokens", fl, al)
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := api.LoadTokens(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a token file others can read: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := api.LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{Store: st, Location: kyiv, Auth: tokens, Now: func() time.Time { return at.AddDate(0, 0, 25) }}
	hs = httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs, finance, auditor
}

func authCall(t *testing.T, hs *httptest.Server, token, method, path string, body any, status int, into any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, hs.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, status, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

type heldList struct {
	Rides []struct {
		Device    string `json:"device"`
		Seq       uint64 `json:"seq"`
		State     string `json:"state"`
		Reason    string `json:"reason"`
		Detail    string `json:"detail"`
		DecidedBy string `json:"decided_by"`
		Note      string `json:"note"`
		PaidIn    string `json:"paid_in"`
		Release   *struct {
			CompensationKop int64 `json:"compensation_kop"`
		} `json:"release"`
	} `json:"rides"`
}

func TestHeldRides(t *testing.T) {
	hs, finance, auditor := heldServer(t)
	var e errDoc
	authCall(t, hs, "", "GET", "/v1/held?period=2026-11", nil, 401, &e)
	if !strings.Contains(e.Error, "Bearer") {
		t.Errorf("401 says %q", e.Error)
	}
	authCall(t, hs, "clt_not-a-token", "GET", "/v1/held?period=2026-11", nil, 401, nil)
	var list heldList
	authCall(t, hs, auditor, "GET", "/v1/held?period=2026-11", nil, 200, &list)
	if len(list.Rides) != 1 || list.Rides[0].Seq != 2 || list.Rides[0].Reason != "differs" || list.Rides[0].Release == nil ||
		list.Rides[0].Release.CompensationKop != 800 || !strings.Contains(list.Rides[0].Detail, "8.00") {
		t.Fatalf("held rides %+v", list)
	}
	decision := map[string]any{"rides": []string{"BUS-1/2"}, "decision": "release", "reason": "the tram's tariff was misconfigured"}
	authCall(t, hs, auditor, "POST", "/v1/held/decide", decision, 403, nil)
	for body, want := range map[string]map[string]any{
		"no reason":      {"rides": []string{"BUS-1/2"}, "decision": "release"},
		"no decision":    {"rides": []string{"BUS-1/2"}, "reason": "x"},
		"a bad ride":     {"rides": []string{"BUS-1"}, "decision": "reject", "reason": "x"},
		"an extra field": {"rides": []string{"BUS-1/2"}, "decision": "reject", "reason": "x", "by": "someone else"},
	} {
		_ = body
		authCall(t, hs, finance, "POST", "/v1/held/decide", want, 400, nil)
	}
	authCall(t, hs, finance, "POST", "/v1/held/decide", map[string]any{"rides": []string{"BUS-1/1"}, "decision": "reject", "reason": "x"}, 409, &e)
	if !strings.Contains(e.Error, "nothing was decided") {
		t.Errorf("409 says %q", e.Error)
	}
	authCall(t, hs, finance, "POST", "/v1/held/decide", decision, 200, nil)
	authCall(t, hs, finance, "POST", "/v1/held/decide", decision, 409, nil)
	authCall(t, hs, auditor, "GET", "/v1/held?period=2026-11&decided=true", nil, 200, &list)
	if len(list.Rides) != 1 || list.Rides[0].State != "released" || list.Rides[0].DecidedBy != "finance:olena" ||
		list.Rides[0].Note != "the tram's tariff was misconfigured" || list.Rides[0].PaidIn != "2026-11" {
		t.Errorf("after the release %+v", list)
	}
	var proof struct {
		Lines []struct {
			Carrier string `json:"carrier"`
			Paid    int64  `json:"paid"`
		} `json:"lines"`
		Total struct {
			Paid int64 `json:"paid"`
		} `json:"total"`
	}
	authCall(t, hs, auditor, "GET", "/v1/proof?period=2026-11", nil, 200, &proof)
	if proof.Total.Paid != 2 || len(proof.Lines) != 2 {
		t.Errorf("proof %+v", proof)
	}
}

func TestHeldNeedsAuthenticator(t *testing.T) {
	hs, _ := server(t, false)
	var e errDoc
	call(t, hs, "GET", "/v1/held?period=2026-11", 503, &e)
	if !strings.Contains(e.Error, "--api-tokens") {
		t.Errorf("503 says %q", e.Error)
	}
}

// FuzzParseTokens: a token file is read or refused, never half.
func FuzzParseTokens(f *testing.F) {
	_, line, _ := api.NewToken(api.RoleFinance, "olena")
	f.Add([]byte("# tokens\n" + line + "\n"))
	f.Add([]byte("finance x 00\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := api.ParseTokens(bytes.NewReader(b)); err != nil {
			return
		}
	})
}
