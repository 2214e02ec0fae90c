package tokencheck_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	capi "github.com/citycard/transit/clearing/api"
	cstore "github.com/citycard/transit/clearing/store"
	csqlite "github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/tokencheck"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestClearingChecksCallersWithTheRegistry runs clearing's API against a
// real registry: an unauthenticated close gets 401, a finance close 403,
// a supervisor's close goes through, and a revoked token stops working
// within the cache's TTL.
func TestClearingChecksCallersWithTheRegistry(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"), store.Options{Issuer: 1001, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := httptest.NewServer(api.New(st, api.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler)}))
	defer reg.Close()
	token := func(a registry.Actor) string {
		secret, tok, err := registry.NewToken(a, clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return secret
	}
	service := token(registry.Actor{User: "clearing", Role: registry.RoleService})
	finance := token(registry.Actor{User: "iryna", Role: registry.RoleFinance})
	super := token(registry.Actor{User: "petro", Role: registry.RoleSupervisor})

	tc, err := tokencheck.New(reg.URL, service, tokencheck.Options{TTL: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := csqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), cstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	clr := httptest.NewServer((&capi.Server{Store: cs, Auth: tc, Log: slog.New(slog.DiscardHandler)}).Handler())
	defer clr.Close()
	do := func(tok, method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, clr.URL+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do("", "POST", "/v1/statements/2026-11/close?early=true"); got != http.StatusUnauthorized {
		t.Errorf("unauthenticated close: %d, want 401", got)
	}
	if got := do(finance, "POST", "/v1/statements/2026-11/close?early=true"); got != http.StatusForbidden {
		t.Errorf("finance close: %d, want 403", got)
	}
	// No signing key here: the supervisor gets past the check to 503.
	if got := do(super, "POST", "/v1/statements/2026-11/close?early=true"); got != http.StatusServiceUnavailable {
		t.Errorf("supervisor close: %d, want 503 (past the check, no key)", got)
	}
	if got := do(finance, "GET", "/v1/statements/2026-11"); got != http.StatusOK {
		t.Errorf("finance reads statements: %d, want 200", got)
	}

	// Revoked in the registry: still cached for up to the TTL, then gone.
	list, err := st.Tokens(ctx, registry.Access{Actor: registry.Actor{User: "s", Role: registry.RoleSupervisor}}, registry.TokenQuery{User: "iryna"})
	if err != nil || len(list) != 1 {
		t.Fatal(list, err)
	}
	if _, err := st.RevokeToken(ctx, registry.Access{Actor: registry.Actor{User: "s", Role: registry.RoleSupervisor}}, list[0].ID); err != nil {
		t.Fatal(err)
	}
	clk.Add(31 * time.Second)
	if got := do(finance, "GET", "/v1/statements/2026-11"); got != http.StatusUnauthorized {
		t.Errorf("a revoked token after the TTL: %d, want 401", got)
	}
	if _, err := tc.Authenticate(ctx, finance); !errors.Is(err, registry.ErrUnauthenticated) {
		t.Errorf("tokencheck of a revoked token: %v", err)
	}

	// A registry that refuses the service's own token lets nobody in.
	bad, _ := tokencheck.New(reg.URL, "rgt_not_the_service", tokencheck.Options{Now: clk.Now})
	if _, err := bad.Authenticate(ctx, super); !errors.Is(err, tokencheck.ErrUnavailable) {
		t.Errorf("with a wrong service token: %v; want ErrUnavailable", err)
	}
	reg.Close()
	clk.Add(time.Minute)
	if _, err := tc.Authenticate(ctx, super); !errors.Is(err, tokencheck.ErrUnavailable) {
		t.Errorf("with the registry down: %v; want ErrUnavailable", err)
	}
}
