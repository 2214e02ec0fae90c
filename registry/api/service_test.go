package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/validator/devauth"
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

// TestCardState: the desk reads a card's status and validity, which name
// neither its holder nor their benefits, without an audit entry.
func TestCardState(t *testing.T) {
	f := newFixture(t)
	id, _ := f.resident()
	var c registry.Card
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/cards", id), nil), http.StatusCreated, &c)
	before := f.written()
	r := f.call(registry.RoleDesk, "GET", "/v1/cards/"+c.Number.String(), nil)
	var d registry.CardState
	f.ok(r, http.StatusOK, &d)
	if d != (registry.CardState{Number: c.Number, Status: registry.StatusOrdered, Issued: c.Issued, Expires: c.Expires}) {
		t.Fatalf("card state %+v", d)
	}
	for _, field := range []string{"holder_ref", "resident_id", "entitlements", "category"} {
		if strings.Contains(string(r.body), field) {
			t.Errorf("GET /v1/cards/N answers %q: %s", field, r.body)
		}
	}
	if f.written() != before {
		t.Fatal("reading a card's state wrote to the registry")
	}
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/cards/1001000000009990", nil), http.StatusNotFound, "no card")
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/cards/1234", nil), http.StatusBadRequest, "number")
}

// TestValidatorPrefix: /v1/validator/ goes to the validator handler for
// a validator's signed request, below the prefix; an unsigned, forged or
// stale one is refused; without a publisher it says how to publish.
func TestValidatorPrefix(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "r.db"), store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kdf := hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}
	city, err := hsm.CreateKeystore(filepath.Join(dir, "city.keys"), []byte("pw"), kdf)
	if err != nil {
		t.Fatal(err)
	}
	defer city.Close()
	for _, l := range []struct {
		label string
		kind  hsm.Kind
	}{{hsm.LabelBatchMaster, hsm.KindBatchMaster}, {hsm.LabelSignHotlist, hsm.KindSigning}, {hsm.LabelSignTariff, hsm.KindSigning}} {
		if _, err := city.Generate(ctx, l.label, l.kind); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := city.Generate(ctx, hsm.CardMasterLabel(hsm.RoleValidator), hsm.KindCardMaster); err != nil {
		t.Fatal(err)
	}
	bus, err := hsm.ExportRole(ctx, city, hsm.RoleValidator, "bus-7", filepath.Join(dir, "bus.keys"), []byte("pw"), kdf)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var seen string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.URL.Path
		w.WriteHeader(http.StatusTeapot)
	})
	clock := func() time.Time { return now }
	srv := httptest.NewServer(api.New(st, api.Options{Validator: h, Devices: &devauth.Verifier{Keys: city, Now: clock}, Now: clock}))
	defer srv.Close()
	get := func(sign func(*http.Request)) int {
		t.Helper()
		seen = ""
		req, _ := http.NewRequest("GET", srv.URL+"/v1/validator/hotlist?since=3", nil)
		if sign != nil {
			sign(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signer := &devauth.Signer{Device: "bus-7", Keys: bus, Now: clock}
	if got := get(func(r *http.Request) { signer.Sign(ctx, r) }); got != http.StatusTeapot || seen != "/hotlist" {
		t.Errorf("a signed request: %d, handler saw %q; want 418 at /hotlist", got, seen)
	}
	for name, sign := range map[string]func(*http.Request){
		"unsigned":       nil,
		"a bearer token": func(r *http.Request) { r.Header.Set("Authorization", "Bearer rgt_x") },
		"another device's name": func(r *http.Request) {
			signer.Sign(ctx, r)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "bus-7", "bus-8", 1))
		},
		"another path": func(r *http.Request) {
			signer.Sign(ctx, r)
			r.URL.RawQuery = "since=4"
		},
		"an hour old": func(r *http.Request) {
			(&devauth.Signer{Device: "bus-7", Keys: bus, Now: func() time.Time { return now.Add(-time.Hour) }}).Sign(ctx, r)
		},
	} {
		if got := get(sign); got != http.StatusUnauthorized || seen != "" {
			t.Errorf("%s: %d, handler saw %q; want 401 and no handler", name, got, seen)
		}
	}
	plain := httptest.NewServer(api.New(st, api.Options{Now: clock}))
	defer plain.Close()
	resp, err := http.Get(plain.URL + "/v1/validator/hotlist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without a publisher: %d, want 404", resp.StatusCode)
	}
}

// TestPublishedTariff: clearing's service token reads the tariff the
// validators fetch, at /tariff of the validator handler and nothing else
// of it; without a bearer token it is refused, and without a publisher it
// says how to publish.
func TestPublishedTariff(t *testing.T) {
	var seen, query string
	f := newFixtureWith(t, func(o *api.Options, _ *fixture) {
		o.Validator = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen, query = r.URL.Path, r.URL.RawQuery
			w.WriteHeader(http.StatusNotModified)
		})
	})
	if r := f.call(registry.RoleService, "GET", "/v1/tariff?since=3", nil); r.status != http.StatusNotModified || seen != "/tariff" || query != "since=3" {
		t.Errorf("service: %d, handler saw %q?%s; want 304 at /tariff?since=3", r.status, seen, query)
	}
	seen = ""
	f.fails(f.call(registry.RoleDesk, "GET", "/v1/tariff", nil), http.StatusForbidden, "role desk may not")
	f.fails(f.callToken("", "GET", "/v1/tariff", nil), http.StatusUnauthorized, "")
	if seen != "" {
		t.Errorf("a refused request reached the handler at %q", seen)
	}
	plain := newFixture(t)
	plain.fails(plain.call(registry.RoleService, "GET", "/v1/tariff", nil), http.StatusNotFound, "publishes no tariff")
}
