package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/api"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/validator/tap"
)

// heldServer serves a store with one honest ride and one inflated one,
// judged, and the tokens of a finance officer and an auditor.
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
	srv := &api.Server{Store: st, Location: kyiv, Auth: heldStaff, Now: func() time.Time { return at.AddDate(0, 0, 25) }}
	hs = httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs, "fin-token", "aud-token"
}

// heldStaff are staff as the registry would answer for their tokens,
// with an auditor.
var heldStaff = fakeRegistry{
	"sup-token":  {User: "petro", Role: registry.RoleSupervisor},
	"fin-token":  {User: "olena", Role: registry.RoleFinance},
	"aud-token":  {User: "mykola", Role: registry.RoleAuditor},
	"op-token":   {User: "prometheus", Role: registry.RoleOperator},
	"desk-token": {User: "taras", Role: registry.RoleDesk},
	"svc-token":  {User: "clearing", Role: registry.RoleService},
}

// authCall sends a request with token ("" for none) and a JSON body
// (nil for none).
func authCall(t *testing.T, hs *httptest.Server, token, method, path string, body any, status int, into any) {
	t.Helper()
	send(t, hs, token, method, path, nil, body, status, into)
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
	authCall(t, hs, "rgt_not-a-token", "GET", "/v1/held?period=2026-11", nil, 401, nil)
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

// TestHeldRoleTable: finance and auditors read held rides and the
// card's proof; only finance decides; nobody else does either.
func TestHeldRoleTable(t *testing.T) {
	hs, _, _ := heldServer(t)
	decision := map[string]any{"rides": []string{"BUS-1/2"}, "decision": "reject", "reason": "x"}
	for _, tc := range []struct {
		token, method, path string
		status              int
	}{
		{"", "GET", "/v1/held?period=2026-11", http.StatusUnauthorized},
		{"", "GET", "/v1/proof?period=2026-11", http.StatusUnauthorized},
		{"", "POST", "/v1/held/decide", http.StatusUnauthorized},
		{"fin-token", "GET", "/v1/held?period=2026-11", http.StatusOK},
		{"fin-token", "GET", "/v1/proof?period=2026-11", http.StatusOK},
		{"aud-token", "GET", "/v1/held?period=2026-11", http.StatusOK},
		{"aud-token", "GET", "/v1/proof?period=2026-11", http.StatusOK},
		{"aud-token", "POST", "/v1/held/decide", http.StatusForbidden},
		{"sup-token", "GET", "/v1/held?period=2026-11", http.StatusForbidden},
		{"sup-token", "POST", "/v1/held/decide", http.StatusForbidden},
		{"op-token", "GET", "/v1/held?period=2026-11", http.StatusForbidden},
		{"op-token", "GET", "/v1/proof?period=2026-11", http.StatusForbidden},
		{"desk-token", "GET", "/v1/held?period=2026-11", http.StatusForbidden},
		{"svc-token", "POST", "/v1/held/decide", http.StatusForbidden},
		{"down", "GET", "/v1/held?period=2026-11", http.StatusServiceUnavailable},
		{"fin-token", "POST", "/v1/held?period=2026-11", http.StatusMethodNotAllowed},
		{"fin-token", "GET", "/v1/held/decide", http.StatusMethodNotAllowed},
	} {
		var body any
		if tc.method == "POST" {
			body = decision
		}
		authCall(t, hs, tc.token, tc.method, tc.path, body, tc.status, nil)
	}
	// Nothing the refused callers sent was decided.
	var list heldList
	authCall(t, hs, "aud-token", "GET", "/v1/held?period=2026-11", nil, 200, &list)
	if len(list.Rides) != 1 || list.Rides[0].State != "held" {
		t.Errorf("after refused decisions: %+v", list)
	}
}

// TestHeldPolicies: the held-ride routes are in the policy table with
// their actions.
func TestHeldPolicies(t *testing.T) {
	want := map[string]registry.Action{"GET /v1/held": registry.ActReadHeld, "POST /v1/held/decide": registry.ActDecideHeld,
		"GET /v1/proof": registry.ActReadHeld}
	for _, rt := range api.Routes() {
		if a, ok := want[rt.Pattern]; ok {
			if rt.Action != a {
				t.Errorf("%s: action %q, want %q", rt.Pattern, rt.Action, a)
			}
			delete(want, rt.Pattern)
		}
	}
	if len(want) != 0 {
		t.Errorf("routes without a policy: %v", want)
	}
}
