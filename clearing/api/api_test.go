package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/clearing/api"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/validator/tap"
)

var kyiv, _ = time.LoadLocation("Europe/Kyiv")

func server(t testing.TB, withKeys bool) (*httptest.Server, *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "c.db"), store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	at := time.Date(2026, 11, 3, 9, 0, 0, 0, kyiv)
	// Rides clearing's re-rating proves (the store suite's tariff): free
	// rides on ATP-1's buses (15.00) and ELEKTROTRANS's trams (8.00).
	var taps []tap.Tap
	for i := range 6 {
		tp := storetest.Ride("BUS-1", uint64(i+1), at.Add(time.Duration(i)*time.Hour))
		tp.Route = "5"
		if i%2 == 1 {
			tp.Carrier, tp.FareKop, tp.CompensationKop = "ELEKTROTRANS", 800, 800
		}
		taps = append(taps, tp)
	}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	if _, err := ingest.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{Store: st, Location: kyiv, Gatherer: reg, Auth: staff}
	if withKeys {
		ks, err := hsm.CreateKeystore(filepath.Join(dir, "k"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ks.Close() })
		if _, err := ks.Generate(ctx, hsm.LabelSignStatement, hsm.KindSigning); err != nil {
			t.Fatal(err)
		}
		srv.Statements = &statement.Service{Store: st, Keys: ks, Location: kyiv,
			Now: func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, kyiv) }}
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs, st
}

// staff are the tests' callers, as the registry would answer for their
// tokens.
var staff = fakeRegistry{
	"sup-token":  {User: "petro", Role: registry.RoleSupervisor},
	"fin-token":  {User: "iryna", Role: registry.RoleFinance},
	"op-token":   {User: "prometheus", Role: registry.RoleOperator},
	"desk-token": {User: "olena", Role: registry.RoleDesk},
}

// fakeRegistry answers for the tokens it holds.
type fakeRegistry map[string]registry.Actor

func (f fakeRegistry) Authenticate(_ context.Context, token string) (registry.Actor, error) {
	if token == "down" {
		return registry.Actor{}, errors.New("registry unreachable")
	}
	a, ok := f[token]
	if !ok {
		return registry.Actor{}, fmt.Errorf("%w: unknown", registry.ErrUnauthenticated)
	}
	return a, nil
}

// call sends a request as the supervisor, whose role may do everything
// but read metrics.
func call(t *testing.T, hs *httptest.Server, method, path string, status int, into any) http.Header {
	t.Helper()
	return callFull(t, hs, "sup-token", method, path, nil, status, into)
}

// callAs sends a request with token ("" for none).
func callAs(t *testing.T, hs *httptest.Server, token, method, path string, status int, into any) http.Header {
	t.Helper()
	return callFull(t, hs, token, method, path, nil, status, into)
}

// callWith sends a request as the supervisor with headers h.
func callWith(t *testing.T, hs *httptest.Server, method, path string, h http.Header, status int, into any) http.Header {
	t.Helper()
	return callFull(t, hs, "sup-token", method, path, h, status, into)
}

func callFull(t *testing.T, hs *httptest.Server, token, method, path string, h http.Header, status int, into any) http.Header {
	t.Helper()
	return send(t, hs, token, method, path, h, nil, status, into)
}

// send makes a request with token ("" for none), headers h and a JSON
// body (nil for none), checks its status and decodes its answer into
// into (unless nil).
func send(t *testing.T, hs *httptest.Server, token, method, path string, h http.Header, body any, status int, into any) http.Header {
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
	for k, v := range h {
		req.Header[k] = v
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
			t.Fatalf("%s %s: not JSON: %v\n%s", method, path, err, b)
		}
	}
	return resp.Header
}

type errDoc struct {
	Error string `json:"error"`
}

func TestCompensation(t *testing.T) {
	hs, _ := server(t, false)
	var doc struct {
		Period string `json:"period"`
		Lines  []struct {
			Carrier         string `json:"carrier"`
			Route           string `json:"route"`
			Rides           int64  `json:"rides"`
			CompensationKop int64  `json:"compensation_kop"`
		} `json:"lines"`
		CompensationKop int64 `json:"compensation_kop"`
	}
	call(t, hs, "GET", "/v1/compensation?period=2026-11", 200, &doc)
	if len(doc.Lines) != 2 || doc.Lines[0].Carrier != "ATP-1" || doc.Lines[0].Rides != 3 || doc.CompensationKop != 3*1500+3*800 {
		t.Fatalf("compensation %+v", doc)
	}
	call(t, hs, "GET", "/v1/compensation?period=2026-11&carrier=ELEKTROTRANS&by=route", 200, &doc)
	if len(doc.Lines) != 1 || doc.Lines[0].Route != "5" || doc.CompensationKop != 3*800 {
		t.Fatalf("ELEKTROTRANS by route %+v", doc)
	}
	h := call(t, hs, "GET", "/v1/compensation?period=2026-11&format=xlsx", 200, nil)
	if !strings.Contains(h.Get("Content-Type"), "spreadsheetml") || !strings.Contains(h.Get("Content-Disposition"), "compensation-2026-11.xlsx") {
		t.Errorf("xlsx headers %v", h)
	}
	for path, want := range map[string]string{
		"/v1/compensation":                         "add period=YYYY-MM",
		"/v1/compensation?period=2026-13":          "want YYYY-MM",
		"/v1/compensation?period=2026-11&by=month": "category, route, day",
		"/v1/compensation?period=2026-11&format=x": "json, csv or xlsx",
		"/v1/reconciliation?period=nov":            "want YYYY-MM",
		"/v1/statements/2026-1":                    "want YYYY-MM",
	} {
		var e errDoc
		call(t, hs, "GET", path, 400, &e)
		if !strings.Contains(e.Error, want) {
			t.Errorf("GET %s: error %q does not say %q", path, e.Error, want)
		}
	}
	var e errDoc
	h = call(t, hs, "POST", "/v1/compensation?period=2026-11", 405, &e)
	if h.Get("Allow") != "GET" || !strings.Contains(e.Error, "use GET") {
		t.Errorf("POST compensation: %q, Allow %q", e.Error, h.Get("Allow"))
	}
	call(t, hs, "GET", "/v2/anything", 404, &e)
	call(t, hs, "POST", "/v1/statements/2026-11/close", 503, &e)
	if !strings.Contains(e.Error, "--keystore") {
		t.Errorf("close without keys: %q", e.Error)
	}
}

func TestStatementsLifecycle(t *testing.T) {
	hs, st := server(t, true)
	type stDoc struct {
		Closed     bool   `json:"closed"`
		CloseToken string `json:"close_token"`
		Statements []struct {
			Status         string `json:"status"`
			ContentHash    string `json:"content_hash"`
			KeyRef         string `json:"key_ref"`
			KeyFingerprint string `json:"key_fingerprint"`
			ClosedBy       string `json:"closed_by"`
			Rides          int64  `json:"rides"`
		} `json:"statements"`
	}
	var doc stDoc
	call(t, hs, "GET", "/v1/statements/2026-11", 200, &doc)
	if doc.Closed || len(doc.Statements) != 1 || doc.Statements[0].Status != "draft" || doc.Statements[0].Rides != 6 {
		t.Fatalf("draft %+v", doc)
	}
	var e errDoc
	call(t, hs, "POST", "/v1/statements/2026-11/close?early=true", 400, &e)
	if !strings.Contains(e.Error, "confirm=2026-11") {
		t.Errorf("closing without confirm: %q", e.Error)
	}
	callAs(t, hs, "", "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", 401, &e)
	var staff http.Header // the supervisor's token names petro
	callWith(t, hs, "POST", "/v1/statements/2026-11/close?confirm=2026-11", staff, 409, &e)
	if !strings.Contains(e.Error, "early=true") {
		t.Errorf("closing before the end: %q", e.Error)
	}
	call(t, hs, "GET", "/v1/statements/2026-11/verify", 409, &e)
	callWith(t, hs, "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11&expect=-:000000000000000000000000", staff, 409, &e)
	if !strings.Contains(e.Error, "changed") {
		t.Errorf("closing other figures than expected: %q", e.Error)
	}
	callWith(t, hs, "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11&expect="+doc.CloseToken, staff, 200, &doc)
	if !doc.Closed || doc.Statements[0].KeyRef != "sign-statement@1" || len(doc.Statements[0].ContentHash) != 64 ||
		doc.Statements[0].ClosedBy != "petro" || !strings.HasPrefix(doc.Statements[0].KeyFingerprint, "sha256:") {
		t.Fatalf("closed %+v", doc)
	}
	callWith(t, hs, "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", staff, 409, &e)
	if !strings.Contains(e.Error, "closed already") {
		t.Errorf("closing twice: %q", e.Error)
	}
	var vs []struct {
		OK        bool  `json:"ok"`
		TapsMatch *bool `json:"taps_match"`
	}
	call(t, hs, "GET", "/v1/statements/2026-11/verify?deep=true", 200, &vs)
	if len(vs) != 1 || !vs[0].OK || vs[0].TapsMatch == nil || !*vs[0].TapsMatch {
		t.Fatalf("verify %+v", vs)
	}
	// A late tap shows in December's adjustment, and reconciliation shows
	// the device.
	late := tap.Tap{Device: "BUS-1", Seq: 9, Time: time.Date(2026, 11, 29, 9, 0, 0, 0, kyiv), Carrier: "ATP-1",
		Result: tap.Accepted, FareKop: 10, CompensationKop: 10, CardCommitted: true}
	if _, _, err := st.AddTaps(context.Background(), []tap.Tap{late}); err != nil {
		t.Fatal(err)
	}
	call(t, hs, "GET", "/v1/statements/2026-12", 200, &doc)
	if len(doc.Statements) != 2 || doc.Statements[1].Rides != 1 {
		t.Fatalf("December %+v", doc)
	}
	var rec struct {
		Taps     int64 `json:"taps"`
		OpenGaps int64 `json:"open_gaps"`
	}
	call(t, hs, "GET", "/v1/reconciliation?period=2026-11", 200, &rec)
	if rec.Taps != 7 || rec.OpenGaps != 1 {
		t.Fatalf("reconciliation %+v", rec)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer op-token")
	resp, err := hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "transit_clearing_taps_ingested_total") {
		t.Errorf("/metrics lacks the ingest counter:\n%s", body)
	}
}

// FuzzHandler sends arbitrary requests: none may fail with a 5xx, and
// every answer but the metrics and exports is JSON.
func FuzzHandler(f *testing.F) {
	hs, _ := server(f, true)
	for _, seed := range []string{"/v1/compensation?period=2026-11&by=day,route", "/v1/statements/2026-11/verify?deep=1",
		"/v1/statements/%00/close", "/v1/reconciliation?period=9999-12", "/v1/statements/0000-01"} {
		f.Add("GET", seed)
		f.Add("POST", seed)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		if method != "GET" && method != "POST" && method != "PUT" {
			return
		}
		req, err := http.NewRequest(method, hs.URL+"/"+strings.TrimPrefix(target, "/"), nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer sup-token")
		resp, err := hs.Client().Do(req)
		if err != nil {
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s: %d %s", method, target, resp.StatusCode, body)
		}
		ct := resp.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "application/json") && !strings.Contains(ct, "csv") && !strings.Contains(ct, "spreadsheet") &&
			!strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("%s %s: content type %q", method, target, ct)
		}
		if strings.HasPrefix(ct, "application/json") && !json.Valid(body) {
			t.Fatalf("%s %s: invalid JSON %s", method, target, body)
		}
	})
}
