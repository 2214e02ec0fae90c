package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/citycard/transit/registry"
)

func TestNoticeOptOut(t *testing.T) {
	f := newFixture(t)
	a, aToken := f.resident()
	b, _ := f.resident()
	var got registry.ResidentNotices
	f.ok(f.callToken(aToken, "GET", "/v1/me/notices", nil), http.StatusOK, &got)
	if got.OptedOut || got.Notices == nil || len(got.Notices) != 0 {
		t.Errorf("a new resident's notices = %+v; want opted in, an empty list", got)
	}
	f.ok(f.callToken(aToken, "POST", "/v1/me/notices", map[string]bool{"opt_out": true}), http.StatusOK, nil)
	f.ok(f.call(registry.RoleDesk, "GET", fmt.Sprintf("/v1/residents/%d/notices", a)+purpose, nil), http.StatusOK, &got)
	if !got.OptedOut {
		t.Errorf("after opting out: %+v", got)
	}
	f.fails(f.callToken(aToken, "POST", "/v1/me/notices", map[string]string{}), http.StatusBadRequest, "opt_out", "missing")
	f.fails(f.callToken(aToken, "POST", "/v1/me/notices", map[string]string{"opt_out": "yes"}), http.StatusBadRequest, "opt_out")
	// A resident sets only their own.
	f.fails(f.callToken(aToken, "POST", fmt.Sprintf("/v1/residents/%d/notices", b), map[string]bool{"opt_out": true}), http.StatusForbidden)
	f.fails(f.callToken(aToken, "GET", fmt.Sprintf("/v1/residents/%d/notices", b)+purpose, nil), http.StatusForbidden)
	f.fails(f.call(registry.RoleFinance, "POST", fmt.Sprintf("/v1/residents/%d/notices", b), map[string]bool{"opt_out": true}), http.StatusForbidden)
	f.fails(f.call(registry.RoleDesk, "POST", "/v1/residents/999999/notices", map[string]bool{"opt_out": true}), http.StatusNotFound)
	// The desk opts them back in.
	f.ok(f.call(registry.RoleDesk, "POST", fmt.Sprintf("/v1/residents/%d/notices", a), map[string]bool{"opt_out": false}), http.StatusOK, nil)
	f.ok(f.callToken(aToken, "GET", "/v1/me/notices", nil), http.StatusOK, &got)
	if got.OptedOut {
		t.Errorf("after the desk opted them in: %+v", got)
	}
}
