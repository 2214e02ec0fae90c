package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
)

// TestServiceToken: clearing's service token reads card events and
// blocked cards, and nothing with personal data.
func TestServiceToken(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	var c registry.Card
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &c)
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number.String()+"/status", map[string]string{"status": "personalised"}), http.StatusOK, nil)
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number.String()+"/status", map[string]string{"status": "active"}), http.StatusOK, nil)
	f.ok(f.call(registry.RoleDesk, "POST", "/v1/cards/"+c.Number.String()+"/block", map[string]string{"reason": "stolen"}), http.StatusOK, nil)

	var evs struct {
		Events []registry.CardEvent
		Next   uint64
	}
	f.ok(f.call(registry.RoleService, "GET", "/v1/cards/events?since=0", nil), http.StatusOK, &evs)
	if len(evs.Events) == 0 || evs.Events[len(evs.Events)-1].Status != registry.StatusStolen || evs.Next != evs.Events[len(evs.Events)-1].Seq {
		t.Fatalf("service reads events %+v", evs)
	}
	var bl registry.Blocklist
	f.ok(f.call(registry.RoleService, "GET", "/v1/cards/blocked", nil), http.StatusOK, &bl)
	if len(bl.Cards) != 1 || bl.Cards[0].Card != c.Number || bl.Cards[0].Reason != registry.ReasonStolen {
		t.Fatalf("service reads blocked %+v", bl)
	}
	for _, path := range []string{
		fmt.Sprintf("/v1/residents/%d", id) + purpose,
		"/v1/cards/" + c.Number.String() + "/personalisation" + purpose,
		"/v1/cards/" + c.Number.String(),
		"/v1/audit",
	} {
		f.fails(f.call(registry.RoleService, "GET", path, nil), http.StatusForbidden, "role service may not")
	}
}

// TestCardData: the desk reads a card's status and data without its
// holder's personal data, and without an audit entry.
func TestCardData(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	var c registry.Card
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &c)
	before := f.written()
	var d registry.CardData
	f.ok(f.call(registry.RoleDesk, "GET", "/v1/cards/"+c.Number.String(), nil), http.StatusOK, &d)
	if d.Number != c.Number || d.Status != registry.StatusOrdered || d.HolderRef != id || d.Entitlements == nil {
		t.Fatalf("card data %+v", d)
	}
	if f.written() != before {
		t.Fatal("reading card data wrote to the registry")
	}
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/cards/1001000000009990", nil), http.StatusNotFound, "no card")
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/cards/1234", nil), http.StatusBadRequest, "number")
}

// TestValidatorPrefix: /v1/validator/ goes to the validator handler
// without a token, below the prefix; without one it says how to publish.
func TestValidatorPrefix(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var seen string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.Path
		w.WriteHeader(http.StatusTeapot)
	})
	for _, tc := range []struct {
		validator http.Handler
		want      int
		wantPath  string
	}{{h, http.StatusTeapot, "/hotlist"}, {nil, http.StatusNotFound, ""}} {
		srv := httptest.NewServer(api.New(st, api.Options{Validator: tc.validator, Now: func() time.Time { return now }}))
		seen = ""
		resp, err := http.Get(srv.URL + "/v1/validator/hotlist?since=3")
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || seen != tc.wantPath {
			t.Errorf("GET /v1/validator/hotlist: %d, handler saw %q; want %d, %q", resp.StatusCode, seen, tc.want, tc.wantPath)
		}
	}
}
