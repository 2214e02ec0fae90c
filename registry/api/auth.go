package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/signin"
)

// session is the answer of a sign-in: the token to send from now on.
type session struct {
	Token   string        `json:"token"`
	Expires time.Time     `json:"expires"`
	User    string        `json:"user"`
	Role    registry.Role `json:"role"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	acc, err := s.signin.Staff(r.Context(), clientAddr(r), req.User, req.Password)
	if err != nil {
		return err
	}
	secret, ti, err := s.signin.Issue(r.Context(), acc.Actor(), "API sign-in from "+clientAddr(r))
	if err != nil {
		return err
	}
	s.log.Info("staff signed in", "user", acc.User, "role", acc.Role, "addr", clientAddr(r))
	writeJSON(w, http.StatusOK, session{Token: secret, Expires: ti.Expires, User: ti.Actor.User, Role: ti.Actor.Role})
	return nil
}

func (s *Server) residentCode(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	var req struct {
		RegistryNumber string `json:"registry_number"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	id, err := s.signin.SendCode(r.Context(), clientAddr(r), req.RegistryNumber)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{
		"sign_in":            id,
		"expires_in_seconds": int(signin.CodeTTL.Seconds()),
		"message": "If this registry number is registered with a phone number or e-mail address, a one-time code was sent there; " +
			"send it with the sign_in to /v1/auth/resident/token. If nothing arrives, ask an issuance desk to check your contact.",
	})
	return nil
}

func (s *Server) residentToken(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	var req struct {
		SignIn string `json:"sign_in"`
		Code   string `json:"code"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	actor, err := s.signin.CheckCode(r.Context(), clientAddr(r), req.SignIn, req.Code)
	if err != nil {
		return err
	}
	secret, ti, err := s.signin.Issue(r.Context(), actor, "resident sign-in with a one-time code")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, session{Token: secret, Expires: ti.Expires, User: ti.Actor.User, Role: ti.Actor.Role})
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	if _, err := s.st.RevokeToken(r.Context(), a, token(r).ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"ended": token(r).ID})
	return nil
}

// introspection is the answer about a token, for another service.
type introspection struct {
	Active  bool          `json:"active"`
	User    string        `json:"user,omitempty"`
	Role    registry.Role `json:"role,omitempty"`
	Expires *time.Time    `json:"expires,omitempty"`
}

// introspect tells another service (clearing) whose a token is. It is
// the service's own token that is throttled, not the one asked about.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	t := strings.TrimSpace(req.Token)
	if t == "" || len(t) > 200 {
		writeJSON(w, http.StatusOK, introspection{})
		return nil
	}
	ti, err := s.signin.Session(r.Context(), registry.HashToken(t))
	if err != nil {
		// Unknown, ended or revoked: not active. Anything else is the
		// registry's failure, which the asking service must not take
		// for "not active" forever.
		if errors.Is(err, registry.ErrUnauthenticated) {
			writeJSON(w, http.StatusOK, introspection{})
			return nil
		}
		return err
	}
	exp := ti.Expires
	writeJSON(w, http.StatusOK, introspection{Active: true, User: ti.Actor.User, Role: ti.Actor.Role, Expires: &exp})
	return nil
}

func (s *Server) tokens(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	q := registry.TokenQuery{User: r.URL.Query().Get("user")}
	switch v := r.URL.Query().Get("all"); v {
	case "", "0", "false":
	case "1", "true":
		q.All = true
	default:
		return &registry.FieldError{Field: "all", Problem: fmt.Sprintf("%q; want 1 (ended and revoked too) or 0", clip(v))}
	}
	list, err := s.st.Tokens(r.Context(), a, q)
	if err != nil {
		return err
	}
	if list == nil {
		list = []registry.TokenInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	var req struct {
		Confirm bool `json:"confirm"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if !req.Confirm {
		return &registry.FieldError{Field: "confirm", Problem: "revoking a token cannot be undone; send {\"confirm\": true} to do it"}
	}
	ti, err := s.st.RevokeToken(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.log.Info("token revoked", "token", ti.ID, "of", ti.Actor.User, "by", a.Actor.User)
	writeJSON(w, http.StatusOK, ti)
	return nil
}
