package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/citycard/transit/registry"
)

// tokensPage lists API tokens and sign-in sessions for a supervisor.
type tokensPage struct {
	All    bool
	Tokens []tokenRow
	// AllHref and LiveHref switch between live tokens and all of them.
	AllHref, LiveHref string
}

// tokenRow is one token as the page shows it.
type tokenRow struct {
	registry.TokenInfo
	Live bool
}

// tokens lists the registry's tokens: live ones, or all with ?all=1.
func (s *Server) tokens(w http.ResponseWriter, r *http.Request, rq *request) error {
	all := r.URL.Query().Get("all") == "1"
	list, err := s.reg.Tokens(r.Context(), access(rq, ""), registry.TokenQuery{All: all})
	if err != nil {
		return err
	}
	pg := tokensPage{All: all, AllHref: "/tokens?all=1", LiveHref: "/tokens"}
	now := s.now()
	for _, ti := range list {
		pg.Tokens = append(pg.Tokens, tokenRow{TokenInfo: ti, Live: ti.Live(now)})
	}
	notice := ""
	if r.URL.Query().Get("done") == "revoked" {
		notice = translate(rq.lang, "tokens.revoked")
	}
	s.render(w, r, rq, http.StatusOK, "tokens", "tokens.title", pg, notice)
	return nil
}

// revokeToken revokes a token. It cannot be undone, so it is confirmed
// first on a page that names whose token it is (confirm.go), and the
// registry records who did it.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, rq *request) error {
	id := r.PathValue("id")
	if !isConfirmed(r, "revoke "+id) {
		list, err := s.reg.Tokens(r.Context(), access(rq, ""), registry.TokenQuery{})
		if err != nil {
			return err
		}
		i := slices.IndexFunc(list, func(ti registry.TokenInfo) bool { return ti.ID == id })
		if i < 0 {
			return &pageError{status: http.StatusNotFound, key: "tokens.gone", err: fmt.Errorf("token %q: not live", id)}
		}
		ti, lang := list[i], rq.lang
		return s.askConfirmation(w, r, rq, confirmation{Value: "revoke " + id,
			What:        translate(lang, "tokens.confirm.what", id, translate(lang, "tokens.kind."+string(ti.Kind))),
			Whom:        fmt.Sprintf("%s (%s)", ti.Actor.User, roleName(lang, ti.Actor.Role)),
			Consequence: translate(lang, "tokens.confirm.after"),
			Button:      translate(lang, "tokens.confirm.button"),
			Cancel:      "/tokens#token-" + id})
	}
	ti, err := s.reg.RevokeToken(r.Context(), access(rq, ""), id)
	if errors.Is(err, registry.ErrConflict) {
		// Revoked meanwhile, by someone else: what the supervisor wanted.
		http.Redirect(w, r, "/tokens?done=revoked", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	s.log.Info("token revoked", "token", ti.ID, "of", ti.Actor.User, "by", rq.ses.actor.User, "addr", clientAddr(r))
	http.Redirect(w, r, "/tokens?done=revoked", http.StatusSeeOther)
	return nil
}
