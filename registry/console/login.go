package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/citycard/transit/registry"
)

// loginPage is the sign-in form.
type loginPage struct {
	CSRF    string
	Problem string // translated, shown above the form
}

// loginForm shows the sign-in form and gives the browser the form's CSRF
// secret in a cookie scoped to /login.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.ses != nil && homeFor(rq.ses.actor.Role) != "" {
		http.Redirect(w, r, homeFor(rq.ses.actor.Role), http.StatusSeeOther)
		return nil
	}
	secret := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: secret, Path: "/login", MaxAge: 1800,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	var problem string
	if r.URL.Query().Get("expired") == "1" {
		problem = translate(rq.lang, "login.expired")
	}
	s.render(w, r, rq, http.StatusOK, "login", "login.title", loginPage{CSRF: secret, Problem: problem}, "")
	return nil
}

// login checks the token with the registry and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request, rq *request) error {
	c, err := r.Cookie(loginCookie)
	if err != nil {
		return &pageError{status: http.StatusForbidden, key: "err.csrf"}
	}
	if err := s.checkForm(w, r, c.Value); err != nil {
		return err
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		s.render(w, r, rq, http.StatusBadRequest, "login", "login.title",
			loginPage{CSRF: c.Value, Problem: translate(rq.lang, "login.empty")}, "")
		return nil
	}
	hash := registry.HashToken(token)
	actor, err := s.reg.Authenticate(r.Context(), hash)
	if errors.Is(err, registry.ErrUnauthenticated) {
		s.log.Warn("console sign-in refused: unknown token")
		s.render(w, r, rq, http.StatusUnauthorized, "login", "login.title",
			loginPage{CSRF: c.Value, Problem: translate(rq.lang, "login.failed")}, "")
		return nil
	}
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if homeFor(actor.Role) == "" {
		s.log.Warn("console sign-in refused: the role has no console pages", "user", actor.User, "role", actor.Role)
		s.render(w, r, rq, http.StatusForbidden, "login", "login.title",
			loginPage{CSRF: c.Value, Problem: translate(rq.lang, "login.norole", actor.Role)}, "")
		return nil
	}
	// A fresh id at every sign-in, so that an id planted before it
	// (session fixation) never becomes a signed-in session.
	if rq.sid != "" {
		s.sessions.end(rq.sid)
	}
	id, _ := s.sessions.create(actor, hash, s.now())
	// No MaxAge: the cookie ends with the browser, the session earlier
	// on the server.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/",
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	rq.ses = &session{actor: actor} // for the request log
	s.log.Info("console sign-in", "user", actor.User, "role", actor.Role)
	http.Redirect(w, r, homeFor(actor.Role), http.StatusSeeOther)
	return nil
}

// logout ends the session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, rq *request) error {
	s.sessions.end(rq.sid)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
