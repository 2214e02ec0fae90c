package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// ownBlockPurpose is what the audit log records as the purpose of a
// resident's block of their own card.
const ownBlockPurpose = "card reported lost or stolen by its holder"

// ownBlockable reports whether a resident may block card c themselves
// now: a card that can still become lost or stolen.
func ownBlockable(c registry.Card) bool {
	return registry.CanTransition(c.Status, registry.StatusLost)
}

// meBlock blocks the signed-in resident's own card as lost or stolen,
// after a confirmation (confirm.go). The card must be among the
// resident's own, which the console checks on their record and the
// registry again when it writes the block: another's card, or a number
// that is no card, is refused the same way, with nothing written and
// nothing said about it. The block is the resident's in the audit log,
// and validators refuse the card after the next hotlist, as after a
// desk's block.
func (s *Server) meBlock(w http.ResponseWriter, r *http.Request, rq *request) error {
	return s.holderBlock(w, r, rq, holderBlock{purpose: ownBlockPurpose, back: "/me",
		dossier: func() (registry.Dossier, error) {
			return s.reg.Resident(r.Context(), access(rq, registry.PurposeOwnView), rq.ses.actor.Resident)
		}})
}

// holderBlock is whose card a resident's block is of: their own, or a
// child's (guardian.go).
type holderBlock struct {
	// purpose is recorded with the block; back is the page to return to.
	purpose, back string
	// dossier reads the holder's record, whose cards the card must be
	// among.
	dossier func() (registry.Dossier, error)
}

// holderBlock blocks the card in the path as lost or stolen, after a
// confirmation naming it and its holder.
func (s *Server) holderBlock(w http.ResponseWriter, r *http.Request, rq *request, h holderBlock) error {
	n, err := pathCard(r)
	if err != nil {
		return err
	}
	reason := registry.Reason(r.PostFormValue("reason"))
	if !slices.Contains(registry.OwnBlockReasons, reason) {
		return &pageError{status: http.StatusBadRequest, key: "me.block.reason", err: fmt.Errorf("resident's block reason %q", reason)}
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if !isConfirmed(r, "block "+n.String()) {
		d, err := h.dossier()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(d.Cards, func(c registry.Card) bool { return c.Number == n })
		if i < 0 {
			return &pageError{status: http.StatusNotFound, key: "me.block.notyours", err: fmt.Errorf("resident's block of card %s: not theirs", n)}
		}
		if !ownBlockable(d.Cards[i]) {
			return &pageError{status: http.StatusConflict, key: "me.block.cannot",
				args: []any{formatCard(n), translate(rq.lang, "status."+string(d.Cards[i].Status))}}
		}
		lang := rq.lang
		return s.askConfirmation(w, r, rq, confirmation{Value: "block " + n.String(),
			What:        translate(lang, "me.block.what", formatCard(n), translate(lang, "reason."+string(reason))),
			Whom:        d.Resident.Name,
			Consequence: translate(lang, "me.block.after"),
			Button:      translate(lang, "confirm.block.button", formatCard(n)),
			Cancel:      h.back + "#cards-h"})
	}
	_, err = s.reg.Transition(r.Context(), access(rq, h.purpose), n, registry.Change{To: reason.Status(), Reason: reason, Note: note})
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return &pageError{status: http.StatusNotFound, key: "me.block.notyours", err: err}
	case errors.Is(err, registry.ErrTransition):
		return &pageError{status: http.StatusConflict, key: "me.block.again", args: []any{formatCard(n)}, err: err}
	case err != nil:
		return err
	}
	s.log.Info("card blocked by its holder or their guardian", "card", n.String(), "reason", reason, "user", rq.ses.actor.User)
	http.Redirect(w, r, withQuery(h.back, "done", "blocked", "card", n.String()), http.StatusSeeOther)
	return nil
}

// meNotice confirms what the resident's last form did. Only a known
// outcome and a valid card number show, so that a crafted link puts no
// words on the page.
func meNotice(lang string, r *http.Request) string {
	q := r.URL.Query()
	if q.Get("done") != "blocked" {
		return ""
	}
	n, err := card.ParseNumber(q.Get("card"))
	if err != nil {
		return ""
	}
	return translate(lang, "me.block.done", formatCard(n))
}
