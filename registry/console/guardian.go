package console

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/citycard/transit/registry"
)

// Parents and guardians (registry.Guardianship): a desk links a child's
// record to a parent's on the evidence it saw, and ends the link; the
// parent, in their own view, opens the child's record, rides and cards,
// and blocks a lost card of the child's. The registry checks every step
// again and audits it in the child's record under the parent's name; the
// console only shows what the registry lets it read.

// guardianForm is the desk's form that links a parent or guardian to the
// resident whose record is open, kept with what was typed when it comes
// back with a problem.
type guardianForm struct {
	Number, Evidence string
	Error            string
	Open             bool
}

// childPage is a parent's view of one child's record.
type childPage struct {
	Link  registry.Guardianship
	Child registry.Dossier
	Rides ridesPage
}

// Blockable reports whether the parent may block the child's card c.
func (childPage) Blockable(c registry.Card) bool { return ownBlockable(c) }

// OwnBlockReasons are the reasons a parent may give.
func (childPage) OwnBlockReasons() []registry.Reason { return registry.OwnBlockReasons }

// meChild shows a parent their child's record: the child's id comes from
// the request, and the registry reads it only while a link from the
// signed-in resident stands (ErrForbidden otherwise, which says nothing
// of whether the record exists).
func (s *Server) meChild(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	rides, err := s.ridesQuery(r)
	if err != nil {
		return err
	}
	pg, err := s.childView(r, rq, id)
	if err != nil {
		return err
	}
	if pg.Rides, err = s.readRides(r, rq.lang, pg.Child.Cards, rides); err != nil {
		return err
	}
	s.render(w, r, rq, http.StatusOK, "child", "child.title", pg, childNotice(rq.lang, r))
	return nil
}

// childView reads the child's record for the parent, with the link that
// lets them; the registry refuses it (ErrForbidden) without one.
func (s *Server) childView(r *http.Request, rq *request, id int64) (childPage, error) {
	d, err := s.reg.Resident(r.Context(), access(rq, registry.PurposeGuardianView), id)
	if errors.Is(err, registry.ErrForbidden) {
		return childPage{}, &pageError{status: http.StatusForbidden, key: "child.notyours", err: err}
	}
	if err != nil {
		return childPage{}, err
	}
	if len(d.Guardianships) != 1 {
		return childPage{}, fmt.Errorf("the registry read resident %d for their guardian with %d links", id, len(d.Guardianships))
	}
	return childPage{Link: d.Guardianships[0], Child: d}, nil
}

// meChildBlock blocks a child's lost or stolen card for their parent,
// after a confirmation that names the card and the child; the registry
// checks the link again when it writes the block.
func (s *Server) meChildBlock(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	return s.holderBlock(w, r, rq, holderBlock{purpose: registry.PurposeGuardianBlock, back: fmt.Sprintf("/me/children/%d", id),
		dossier: func() (registry.Dossier, error) {
			pg, err := s.childView(r, rq, id)
			return pg.Child, err
		}})
}

// childNotice confirms a block of the child's card, like meNotice.
func childNotice(lang string, r *http.Request) string { return meNotice(lang, r) }

// deskLinkGuardian links the parent or guardian whose registry number the
// desk typed to the child whose record is open. The guardian is found by
// the number, an audited search with the page's purpose; the registry
// checks the ages and the evidence. A problem comes back on the child's
// page, the form open with what was typed.
func (s *Server) deskLinkGuardian(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, purpose, err := recordForm(r)
	if err != nil {
		return err
	}
	f := guardianForm{Number: formValue(r, "guardian_number"), Evidence: formValue(r, "evidence"), Open: true}
	var guardian int64
	switch {
	case f.Number == "":
		f.Error = translate(rq.lang, "guardian.err.number")
	case f.Evidence == "":
		f.Error = translate(rq.lang, "guardian.err.evidence")
	default:
		found, err := s.reg.FindResidents(r.Context(), access(rq, purpose), registry.Search{RegistryNumber: f.Number})
		switch {
		case errors.Is(err, registry.ErrInvalid):
			f.Error = translate(rq.lang, "guardian.err.number")
		case err != nil:
			return err
		case len(found) == 0:
			f.Error = translate(rq.lang, "guardian.err.unknown", f.Number)
		default:
			guardian = found[0].ID
		}
	}
	if guardian != 0 {
		_, err := s.reg.AddGuardianship(r.Context(), access(rq, purpose), guardian, id, f.Evidence)
		switch {
		case errors.Is(err, registry.ErrInvalid), errors.Is(err, registry.ErrConflict):
			f.Error = err.Error()
		case err != nil:
			return err
		default:
			http.Redirect(w, r, residentHref(id, purpose, "done", "linked")+"#guardians-h", http.StatusSeeOther)
			return nil
		}
	}
	pg, err := s.residentView(r.Context(), rq, id, purpose)
	if err != nil {
		return err
	}
	pg.Guardian = f
	s.render(w, r, rq, http.StatusBadRequest, "resident", "resident.title", pg, "")
	return nil
}

// deskEndGuardian ends a link, with the reason the desk gives, after a
// confirmation that names the parent and the child.
func (s *Server) deskEndGuardian(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	gid, err := pathID(r, "gid")
	if err != nil {
		return err
	}
	purpose, err := formPurpose(r)
	if err != nil {
		return err
	}
	reason := formValue(r, "reason")
	confirm := "end guardian " + strconv.FormatInt(gid, 10)
	if reason != "" && isConfirmed(r, confirm) {
		_, err := s.reg.EndGuardianship(r.Context(), access(rq, purpose), gid, reason)
		if err != nil {
			return err
		}
		http.Redirect(w, r, residentHref(id, purpose, "done", "unlinked")+"#guardians-h", http.StatusSeeOther)
		return nil
	}
	pg, err := s.residentView(r.Context(), rq, id, purpose)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(pg.Links, func(g registry.Guardianship) bool { return g.ID == gid && g.Ended.IsZero() })
	if i < 0 {
		return &pageError{status: http.StatusNotFound, key: "err.404", err: fmt.Errorf("resident %d has no standing guardian link %d", id, gid)}
	}
	if reason == "" {
		pg.EndLinkError, pg.EndLinkID = translate(rq.lang, "guardian.err.reason"), gid
		s.render(w, r, rq, http.StatusBadRequest, "resident", "resident.title", pg, "")
		return nil
	}
	g := pg.Links[i]
	lang := rq.lang
	return s.askConfirmation(w, r, rq, confirmation{Value: confirm,
		What:        translate(lang, "guardian.confirm.what", g.GuardianName, g.ChildName, reason),
		Whom:        g.ChildName,
		Consequence: translate(lang, "guardian.confirm.after", g.GuardianName),
		Button:      translate(lang, "guardian.confirm.button"),
		Cancel:      residentHref(id, purpose) + "#guardians-h"})
}
