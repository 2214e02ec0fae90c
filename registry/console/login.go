package console

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/signin"
)

// signInCookie carries a resident's sign-in id between the two forms, so
// that it is in no URL.
const signInCookie = "console_signin"

// loginPage is a sign-in form: the staff's, or one of the resident's two.
type loginPage struct {
	CSRF    string
	Problem string // translated, shown above the form
	User    string // the user name typed, kept after a failure
	// Residents is whether residents can sign in here.
	Residents bool
}

// loginSecret returns the sign-in forms' CSRF secret, setting a fresh
// one when the browser has none.
func (s *Server) loginSecret(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) >= 40 {
		return c.Value
	}
	secret := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: secret, Path: "/login", MaxAge: 1800,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	return secret
}

// loginForm shows the staff sign-in form and gives the browser the
// form's CSRF secret in a cookie scoped to /login.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.ses != nil && homeFor(rq.ses.actor.Role) != "" {
		http.Redirect(w, r, homeFor(rq.ses.actor.Role), http.StatusSeeOther)
		return nil
	}
	var problem string
	if r.URL.Query().Get("expired") == "1" {
		problem = translate(rq.lang, "login.expired")
	}
	s.render(w, r, rq, http.StatusOK, "login", "login.title",
		loginPage{CSRF: s.loginSecret(w, r), Problem: problem, Residents: s.signin.ResidentSignInOn()}, "")
	return nil
}

// checkLoginForm checks a sign-in form's CSRF secret.
func (s *Server) checkLoginForm(w http.ResponseWriter, r *http.Request) (string, error) {
	c, err := r.Cookie(loginCookie)
	if err != nil {
		return "", &pageError{status: http.StatusForbidden, key: "err.csrf"}
	}
	return c.Value, s.checkForm(w, r, c.Value)
}

// refused renders a sign-in form again after a refusal: throttled (429,
// with Retry-After), or wrong (401).
func (s *Server) refused(w http.ResponseWriter, r *http.Request, rq *request, tmpl string, pg loginPage, err error) error {
	var te *signin.ThrottledError
	switch {
	case errors.As(err, &te):
		w.Header().Set("Retry-After", fmt.Sprint(int(te.RetryAfter().Seconds())))
		pg.Problem = translate(rq.lang, "login.throttled", int(te.RetryAfter().Seconds()))
		s.render(w, r, rq, http.StatusTooManyRequests, tmpl, "login.title", pg, "")
		return nil
	case errors.Is(err, registry.ErrUnauthenticated):
		s.render(w, r, rq, http.StatusUnauthorized, tmpl, "login.title", pg, "")
		return nil
	}
	return err
}

// login checks a staff member's password and starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request, rq *request) error {
	secret, err := s.checkLoginForm(w, r)
	if err != nil {
		return err
	}
	user, pw := formValue(r, "user"), r.PostFormValue("password")
	pg := loginPage{CSRF: secret, User: user, Residents: s.signin.ResidentSignInOn()}
	if user == "" || pw == "" {
		pg.Problem = translate(rq.lang, "login.empty")
		s.render(w, r, rq, http.StatusBadRequest, "login", "login.title", pg, "")
		return nil
	}
	acc, err := s.signin.Staff(r.Context(), clientAddr(r), user, pw)
	if err != nil {
		pg.Problem = translate(rq.lang, "login.failed")
		return s.refused(w, r, rq, "login", pg, err)
	}
	return s.startSession(w, r, rq, acc.Actor(), "console sign-in")
}

// startSession stores a session token for actor in the registry and
// gives the browser a fresh session id.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, rq *request, actor registry.Actor, how string) error {
	if homeFor(actor.Role) == "" {
		return &pageError{status: http.StatusForbidden, key: "login.norole", args: []any{actor.Role}}
	}
	secret, ti, err := s.signin.Issue(r.Context(), actor, how+" from "+clientAddr(r))
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	// A fresh id at every sign-in, so that an id planted before it
	// (session fixation) never becomes a signed-in session.
	if rq.sid != "" {
		s.sessions.end(rq.sid)
	}
	id, _ := s.sessions.create(actor, registry.HashToken(secret), ti.ID, s.now())
	// No MaxAge: the cookie ends with the browser, the session earlier
	// on the server.
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/",
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	for _, name := range []string{loginCookie, signInCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/login", MaxAge: -1,
			HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	}
	rq.ses = &session{actor: actor} // for the request log
	s.log.Info("console sign-in", "user", actor.User, "role", actor.Role, "addr", clientAddr(r))
	http.Redirect(w, r, homeFor(actor.Role), http.StatusSeeOther)
	return nil
}

// residentForm asks a resident for their registry number.
func (s *Server) residentForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	if !s.signin.ResidentSignInOn() {
		return &pageError{status: http.StatusServiceUnavailable, key: "login.resident.off"}
	}
	s.render(w, r, rq, http.StatusOK, "login_resident", "login.resident.title", loginPage{CSRF: s.loginSecret(w, r), Residents: true}, "")
	return nil
}

// residentCode sends a one-time code to the resident's registered
// contact, and asks for it. The page is the same whether or not the
// number is registered.
func (s *Server) residentCode(w http.ResponseWriter, r *http.Request, rq *request) error {
	secret, err := s.checkLoginForm(w, r)
	if err != nil {
		return err
	}
	pg := loginPage{CSRF: secret, Residents: true}
	id, err := s.signin.SendCode(r.Context(), clientAddr(r), formValue(r, "registry_number"))
	var fe *registry.FieldError
	switch {
	case errors.As(err, &fe):
		pg.Problem = translate(rq.lang, "login.resident.number")
		s.render(w, r, rq, http.StatusBadRequest, "login_resident", "login.resident.title", pg, "")
		return nil
	case errors.Is(err, signin.ErrResidentSignInOff):
		return &pageError{status: http.StatusServiceUnavailable, key: "login.resident.off", err: err}
	case err != nil:
		return s.refused(w, r, rq, "login_resident", pg, err)
	}
	http.SetCookie(w, &http.Cookie{Name: signInCookie, Value: id, Path: "/login", MaxAge: int(signin.CodeTTL.Seconds()),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	s.render(w, r, rq, http.StatusOK, "login_code", "login.resident.title", pg, "")
	return nil
}

// residentSignIn checks the code and starts the resident's session.
func (s *Server) residentSignIn(w http.ResponseWriter, r *http.Request, rq *request) error {
	secret, err := s.checkLoginForm(w, r)
	if err != nil {
		return err
	}
	pg := loginPage{CSRF: secret, Residents: true}
	c, err := r.Cookie(signInCookie)
	if err != nil {
		pg.Problem = translate(rq.lang, "login.code.again")
		s.render(w, r, rq, http.StatusUnauthorized, "login_resident", "login.resident.title", pg, "")
		return nil
	}
	actor, err := s.signin.CheckCode(r.Context(), clientAddr(r), c.Value, formValue(r, "code"))
	if err != nil {
		pg.Problem = translate(rq.lang, "login.code.failed")
		return s.refused(w, r, rq, "login_code", pg, err)
	}
	return s.startSession(w, r, rq, actor, "resident sign-in with a one-time code")
}

// logout ends the session and revokes its token in the registry.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, rq *request) error {
	if rq.ses.tokenID != "" {
		if _, err := s.reg.RevokeToken(r.Context(), access(rq, ""), rq.ses.tokenID); err != nil && !errors.Is(err, registry.ErrConflict) {
			s.log.Warn("could not revoke the session's token at sign-out", "user", rq.ses.actor.User, "error", err)
		}
	}
	s.sessions.end(rq.sid)
	s.imports.drop(rq.sid)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}
