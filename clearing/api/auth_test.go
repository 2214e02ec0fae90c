package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Issue 16, 1: anyone who reached the clearing API could read every
// statement and close a month. Now the registry's staff identities and
// roles decide: finance reads, only a supervisor closes, operators read
// metrics and reconciliation.
func TestCloseNeedsASupervisor(t *testing.T) {
	hs, _ := server(t, true)
	var e errDoc
	h := callAs(t, hs, "", "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", http.StatusUnauthorized, &e)
	if h.Get("WWW-Authenticate") == "" || !strings.Contains(e.Error, "token") {
		t.Errorf("unauthenticated close: %q, %v", e.Error, h)
	}
	callAs(t, hs, "rgt_guessed", "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", http.StatusUnauthorized, &e)
	callAs(t, hs, "fin-token", "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", http.StatusForbidden, &e)
	if !strings.Contains(e.Error, "role finance may not close compensation statements") {
		t.Errorf("finance close: %q", e.Error)
	}
	callAs(t, hs, "op-token", "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", http.StatusForbidden, &e)
	var doc struct{ Closed bool }
	callAs(t, hs, "fin-token", "GET", "/v1/statements/2026-11", http.StatusOK, &doc)
	if doc.Closed {
		t.Fatal("a refused close closed the period")
	}
	callAs(t, hs, "sup-token", "POST", "/v1/statements/2026-11/close?early=true&confirm=2026-11", http.StatusOK, &doc)
	if !doc.Closed {
		t.Fatal("the supervisor's close did not close")
	}
}

func TestRoleTable(t *testing.T) {
	hs, _ := server(t, true)
	for _, tc := range []struct {
		token, path string
		status      int
	}{
		{"", "/v1/compensation?period=2026-11", http.StatusUnauthorized},
		{"", "/v1/reconciliation?period=2026-11", http.StatusUnauthorized},
		{"", "/metrics", http.StatusUnauthorized},
		{"fin-token", "/v1/compensation?period=2026-11", http.StatusOK},
		{"fin-token", "/v1/reconciliation?period=2026-11", http.StatusOK},
		{"fin-token", "/v1/statements/2026-11/verify", http.StatusConflict},
		{"fin-token", "/metrics", http.StatusForbidden},
		{"op-token", "/metrics", http.StatusOK},
		{"op-token", "/v1/reconciliation?period=2026-11", http.StatusOK},
		{"op-token", "/v1/compensation?period=2026-11", http.StatusForbidden},
		{"op-token", "/v1/statements/2026-11", http.StatusForbidden},
		{"desk-token", "/v1/compensation?period=2026-11", http.StatusForbidden},
		{"desk-token", "/v1/reconciliation?period=2026-11", http.StatusForbidden},
		{"down", "/v1/compensation?period=2026-11", http.StatusServiceUnavailable},
	} {
		callAs(t, hs, tc.token, "GET", tc.path, tc.status, nil)
	}
}

// Guessing tokens is slowed: after a few failures from one address,
// 429 with Retry-After.
func TestWrongTokensThrottled(t *testing.T) {
	hs, _ := server(t, false)
	for i := range 100 {
		req, _ := http.NewRequest("GET", hs.URL+"/v1/compensation?period=2026-11", nil)
		req.Header.Set("Authorization", "Bearer guess-"+strconv.Itoa(i))
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			return
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		}
	}
	t.Fatal("100 wrong tokens were all answered 401; want 429 after a few")
}
