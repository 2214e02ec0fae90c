package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// access is the registry Access of the signed-in user with a purpose.
func access(rq *request, purpose string) registry.Access {
	return registry.Access{Actor: rq.ses.actor, Purpose: purpose}
}

// formPurpose reads the purpose a form carries; a missing or overlong
// one is refused here, before the store is asked, with a message in the
// page's language.
func formPurpose(r *http.Request) (string, error) {
	p, err := registry.CleanPurpose(r.FormValue("purpose"))
	if p == "" || err != nil {
		return "", &pageError{status: http.StatusBadRequest, key: "purpose.needed", err: registry.ErrNoPurpose}
	}
	return p, nil
}

// recordForm is the record a desk form posts to (the path's id: a
// resident's, an application's) and the purpose it carries.
func recordForm(r *http.Request) (int64, string, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, "", err
	}
	purpose, err := formPurpose(r)
	return id, purpose, err
}

// deskPage is the search form and its results.
type deskPage struct {
	Query, Purpose string
	Problem        string
	Searched       bool
	Results        []found
	// CanRegister offers to register a resident (whom the search does
	// not find).
	CanRegister bool
}

// found is one search result with the link that opens the record,
// carrying the purpose.
type found struct {
	registry.Resident
	Href string
}

func (s *Server) deskSearchForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	s.render(w, r, rq, http.StatusOK, "desk", "desk.title", deskPage{CanRegister: registry.Allowed(rq.ses.actor.Role, registry.ActRegister)}, "")
	return nil
}

// allDigits matches what the search treats as a registry number.
var allDigits = regexp.MustCompile(`^[0-9]+$`)

// deskSearch finds residents by name prefix or registry number. It is a
// POST so that registry numbers stay out of URLs, server logs and the
// browser's history.
func (s *Server) deskSearch(w http.ResponseWriter, r *http.Request, rq *request) error {
	pg := deskPage{Query: strings.TrimSpace(r.PostFormValue("q")), Purpose: strings.TrimSpace(r.PostFormValue("purpose")),
		CanRegister: registry.Allowed(rq.ses.actor.Role, registry.ActRegister)}
	purpose, err := formPurpose(r)
	if err != nil {
		pg.Problem = translate(rq.lang, "purpose.needed")
		s.render(w, r, rq, http.StatusBadRequest, "desk", "desk.title", pg, "")
		return nil
	}
	q := registry.Search{NamePrefix: pg.Query}
	if allDigits.MatchString(pg.Query) {
		q = registry.Search{RegistryNumber: pg.Query}
	}
	res, err := s.reg.FindResidents(r.Context(), access(rq, purpose), q)
	if errors.Is(err, registry.ErrInvalid) {
		pg.Problem = translate(rq.lang, "desk.query.hint")
		s.render(w, r, rq, http.StatusBadRequest, "desk", "desk.title", pg, "")
		return nil
	}
	if err != nil {
		return err
	}
	pg.Searched = true
	for _, x := range res {
		pg.Results = append(pg.Results, found{Resident: x, Href: residentHref(x.ID, purpose)})
	}
	s.render(w, r, rq, http.StatusOK, "desk", "desk.title", pg, "")
	return nil
}

// residentHref is the desk page of a resident with the purpose carried
// and, after a form, what it did (kv: name, value...).
func residentHref(id int64, purpose string, kv ...string) string {
	return withQuery(fmt.Sprintf("/desk/residents/%d", id), append([]string{"purpose", purpose}, kv...)...)
}

// purposePage asks for a purpose before a page of personal data.
type purposePage struct {
	Action string
}

// residentPage is a resident's record at the desk.
type residentPage struct {
	Dossier  registry.Dossier
	Purpose  string
	Cards    []cardView
	CanOrder bool
	// Entitlements are Dossier.Entitlements with their end forms.
	Entitlements []entView
	// CanEntitle says whether the role may grant and end entitlements;
	// Grant is the form that grants one.
	CanEntitle bool
	Grant      grantForm
	// ReceiptHref prints a receipt of the card operation the last form
	// did; "" when it did none.
	ReceiptHref string
	// Replace is the replacement form that came back with problems.
	Replace replaceForm
	// Links are the record's links to parents, guardians and children;
	// CanLink says whether the role may add and end them, Guardian is
	// the form that adds one, EndLinkError the problem of the end form
	// of link EndLinkID.
	Links        []registry.Guardianship
	CanLink      bool
	Guardian     guardianForm
	EndLinkError string
	EndLinkID    int64
	// Minor says the record is a child's, whom a parent or guardian may
	// be linked to.
	Minor bool
}

// cardView is a card with what the desk may do with it now.
type cardView struct {
	registry.Card
	// Reasons are the block reasons the card's status allows (a
	// personalised card not yet handed over can be lost or stolen, but
	// not blocked by the desk); empty when it cannot be blocked.
	Reasons    []registry.Reason
	CanReplace bool
}

// residentPurpose reads the resident of a desk page's path and the
// purpose of reading their record. Without a purpose it asks for one
// and returns "": the caller has answered.
func (s *Server) residentPurpose(w http.ResponseWriter, r *http.Request, rq *request) (int64, string, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, "", err
	}
	return id, s.queryPurpose(w, r, rq), nil
}

func (s *Server) deskResident(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, purpose, err := s.residentPurpose(w, r, rq)
	if err != nil || purpose == "" {
		return err
	}
	pg, err := s.residentView(r.Context(), rq, id, purpose)
	if err != nil {
		return err
	}
	pg.ReceiptHref = receiptAfter(r.URL.Query(), purpose)
	s.render(w, r, rq, http.StatusOK, "resident", "resident.title", pg, deskNotice(rq.lang, r))
	return nil
}

// residentView reads a resident's record for the desk page, an audited
// read with purpose, with what the signed-in role may do on it.
func (s *Server) residentView(ctx context.Context, rq *request, id int64, purpose string) (residentPage, error) {
	d, err := s.reg.Resident(ctx, access(rq, purpose), id)
	if err != nil {
		return residentPage{}, err
	}
	role := rq.ses.actor.Role
	today := registry.Today(s.now(), s.loc)
	pg := residentPage{Dossier: d, Purpose: purpose, CanOrder: changeCards(role),
		Entitlements: entitlementViews(d.Entitlements, today, changeEntitlements(role)),
		CanEntitle:   changeEntitlements(role),
		Grant:        grantForm{ValidFrom: today.String(), Errors: newFormErrors(grantPrefix, grantLabels())}}
	for _, c := range d.Cards {
		v := cardView{Card: c}
		if changeCards(role) {
			for _, reason := range registry.BlockReasons {
				if registry.CanTransition(c.Status, reason.Status()) {
					v.Reasons = append(v.Reasons, reason)
				}
			}
			v.CanReplace = registry.CanTransition(c.Status, registry.StatusReplaced)
		}
		if c.Status.Live() {
			pg.CanOrder = false
		}
		pg.Cards = append(pg.Cards, v)
	}
	pg.Links = d.Guardianships
	pg.CanLink = registry.Allowed(role, registry.ActRegister)
	pg.Minor = today.Before(d.Resident.BirthDate.AddYears(registry.AdultAge))
	return pg, nil
}

// deskNotice confirms what the last desk form did, from the redirect's
// query. Only known outcomes and valid card numbers are shown, so a
// crafted link cannot put words on the page.
func deskNotice(lang string, r *http.Request) string {
	q := r.URL.Query()
	switch q.Get("done") {
	case "registered":
		return translate(lang, "done.registered")
	case "granted":
		return translate(lang, "done.granted")
	case "linked":
		return translate(lang, "guardian.done.linked")
	case "unlinked":
		return translate(lang, "guardian.done.unlinked")
	case "ended":
		if d, err := registry.ParseDate(q.Get("to")); err == nil {
			return translate(lang, "done.ended", formatDate(lang, d))
		}
		return ""
	}
	n, err := card.ParseNumber(q.Get("card"))
	if err != nil {
		return ""
	}
	switch q.Get("done") {
	case "blocked":
		return translate(lang, "done.blocked", formatCard(n))
	case "ordered":
		return translate(lang, "done.ordered", formatCard(n))
	case "replaced":
		if m, err := card.ParseNumber(q.Get("new")); err == nil {
			return translate(lang, "done.replaced", formatCard(n), formatCard(m))
		}
	}
	return ""
}

func pathCard(r *http.Request) (card.Number, error) {
	n, err := card.ParseNumber(r.PathValue("number"))
	if err != nil {
		return 0, &pageError{status: http.StatusNotFound, key: "err.404", err: err}
	}
	return n, nil
}

// cardHolder reads the record of the resident a card form names (its
// "resident" field), for a confirmation page or a form shown again: an
// audited read with the form's purpose. A card that is not that
// resident's is refused as not found, so that a forged form learns
// nothing.
func (s *Server) cardHolder(r *http.Request, rq *request, n card.Number, purpose string) (residentPage, cardView, error) {
	id, err := strconv.ParseInt(r.PostFormValue("resident"), 10, 64)
	if err != nil || id <= 0 {
		return residentPage{}, cardView{}, &pageError{status: http.StatusBadRequest, key: "confirm.noresident",
			err: fmt.Errorf("card %s: the form names no resident", n)}
	}
	pg, err := s.residentView(r.Context(), rq, id, purpose)
	if err != nil {
		return residentPage{}, cardView{}, err
	}
	for _, c := range pg.Cards {
		if c.Number == n {
			return pg, c, nil
		}
	}
	return residentPage{}, cardView{}, &pageError{status: http.StatusNotFound, key: "err.404", err: fmt.Errorf("resident %d has no card %s", id, n)}
}

// deskBlock blocks a card with a reason; lost and stolen take their own
// status (registry.Reason.Status). Blocking stops the card on every
// validator, so it is confirmed first (confirm.go).
func (s *Server) deskBlock(w http.ResponseWriter, r *http.Request, rq *request) error {
	n, err := pathCard(r)
	if err != nil {
		return err
	}
	purpose, err := formPurpose(r)
	if err != nil {
		return err
	}
	reason := registry.Reason(r.PostFormValue("reason"))
	if !slices.Contains(registry.BlockReasons, reason) {
		return &pageError{status: http.StatusBadRequest, key: "block.reason.bad", err: fmt.Errorf("block reason %q", reason)}
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if !isConfirmed(r, "block "+n.String()) {
		pg, c, err := s.cardHolder(r, rq, n, purpose)
		if err != nil {
			return err
		}
		if !slices.Contains(c.Reasons, reason) {
			return &registry.TransitionError{Card: n, From: c.Status, To: reason.Status()}
		}
		lang := rq.lang
		return s.askConfirmation(w, r, rq, confirmation{Value: "block " + n.String(),
			What:        translate(lang, "confirm.block.what", formatCard(n), translate(lang, "reason."+string(reason))),
			Whom:        pg.Dossier.Resident.Name,
			Consequence: translate(lang, "confirm.block."+blockKind(reason)),
			Button:      translate(lang, "confirm.block.button", formatCard(n)),
			Cancel:      residentHref(pg.Dossier.Resident.ID, purpose) + "#card-" + n.String()})
	}
	c, err := s.reg.Transition(r.Context(), access(rq, purpose), n,
		registry.Change{To: reason.Status(), Reason: reason, Note: note})
	if err != nil {
		return err
	}
	http.Redirect(w, r, residentHref(c.ResidentID, purpose, "done", "blocked", "card", n.String()), http.StatusSeeOther)
	return nil
}

// blockKind is "final" for a block that only a replacement follows
// (lost, stolen), "undo" for one the desk may lift.
func blockKind(r registry.Reason) string {
	if registry.CanTransition(r.Status(), registry.StatusActive) {
		return "undo"
	}
	return "final"
}

// deskReplace orders the replacement of a blocked, lost or stolen card,
// carrying its balance. An amount that will not do comes back at its
// field, with what was typed; a good one is confirmed first, since the
// old card is then replaced for good.
func (s *Server) deskReplace(w http.ResponseWriter, r *http.Request, rq *request) error {
	n, err := pathCard(r)
	if err != nil {
		return err
	}
	purpose, err := formPurpose(r)
	if err != nil {
		return err
	}
	form := replaceForm{Card: n, Clearing: formValue(r, "clearing_balance"), CardBalance: formValue(r, "card_balance")}
	var b registry.Balance
	if b.ClearingKop, err = parseUAH(form.Clearing); err != nil {
		form.ClearingError = translate(rq.lang, "bad.balance", translate(rq.lang, "replace.clearing"))
	}
	if form.CardBalance != "" {
		kop, err := parseUAH(form.CardBalance)
		if err != nil {
			form.CardError = translate(rq.lang, "bad.balance", translate(rq.lang, "replace.card"))
		}
		b.CardKop = &kop
	}
	if form.ClearingError != "" || form.CardError != "" || !isConfirmed(r, "replace "+n.String()) {
		pg, _, err := s.cardHolder(r, rq, n, purpose)
		if err != nil {
			return err
		}
		if form.ClearingError != "" || form.CardError != "" {
			pg.Replace = form
			s.render(w, r, rq, http.StatusBadRequest, "resident", "resident.title", pg, "")
			return nil
		}
		kop, src, err := b.Carried()
		if err != nil {
			return err
		}
		lang := rq.lang
		return s.askConfirmation(w, r, rq, confirmation{Value: "replace " + n.String(),
			What:        translate(lang, "confirm.replace.what", formatCard(n), formatUAH(lang, kop), translate(lang, "act.source."+string(src))),
			Whom:        pg.Dossier.Resident.Name,
			Consequence: translate(lang, "confirm.replace.after"),
			Button:      translate(lang, "confirm.replace.button", formatCard(n)),
			Cancel:      residentHref(pg.Dossier.Resident.ID, purpose) + "#card-" + n.String()})
	}
	old, repl, err := s.reg.Replace(r.Context(), access(rq, purpose), n, b)
	if err != nil {
		return err
	}
	http.Redirect(w, r, residentHref(old.ResidentID, purpose, "done", "replaced", "card", n.String(), "new", repl.Number.String()),
		http.StatusSeeOther)
	return nil
}

// replaceForm is a replacement form as it was submitted, with the
// problem of each amount.
type replaceForm struct {
	Card                     card.Number
	Clearing, CardBalance    string
	ClearingError, CardError string
}

// deskOrderCard orders a first card (or one after an expired card).
func (s *Server) deskOrderCard(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return &pageError{status: http.StatusNotFound, key: "err.404", err: fmt.Errorf("resident id %q", r.PathValue("id"))}
	}
	purpose, err := formPurpose(r)
	if err != nil {
		return err
	}
	c, err := s.reg.OrderCard(r.Context(), access(rq, purpose), id)
	if err != nil {
		return err
	}
	http.Redirect(w, r, residentHref(id, purpose, "done", "ordered", "card", c.Number.String()), http.StatusSeeOther)
	return nil
}

// uahAmount is hryvnias with at most two decimals, a point or a comma
// (the Ukrainian decimal separator) before them.
var uahAmount = regexp.MustCompile(`^([0-9]{1,9})(?:[.,]([0-9]{1,2}))?$`)

// parseUAH reads an amount in hryvnias as kopiyky, exactly: money never
// passes through a float.
func parseUAH(s string) (int64, error) {
	m := uahAmount.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%w: %q is not an amount in hryvnias like 12.50", registry.ErrInvalid, s)
	}
	uah, _ := strconv.ParseInt(m[1], 10, 64) // nine digits at most: cannot fail
	kop := int64(0)
	if m[2] != "" {
		kop, _ = strconv.ParseInt(m[2], 10, 64)
		if len(m[2]) == 1 {
			kop *= 10
		}
	}
	return uah*100 + kop, nil
}

// ReplaceFor is the replacement form of card n as it came back with
// problems, or an empty one.
func (pg residentPage) ReplaceFor(n card.Number) replaceForm {
	if pg.Replace.Card == n {
		return pg.Replace
	}
	return replaceForm{Card: n}
}
