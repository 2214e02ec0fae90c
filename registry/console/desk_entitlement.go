package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/citycard/transit/registry"
)

// changeEntitlements lets in the roles that may grant and end
// entitlements.
func changeEntitlements(r registry.Role) bool { return registry.Allowed(r, registry.ActEntitlements) }

// entView is an entitlement on the desk page, with its end form.
type entView struct {
	registry.Entitlement
	// CanEnd is set for an entitlement in force or still to come, when
	// the role may end it.
	CanEnd bool
	// EndDay is the last day that was given (the form proposes none);
	// EndError what was wrong with it.
	EndDay, EndError string
}

// grantForm is the form that grants an entitlement, empty or as it was
// submitted with its problems. Field names are the registry's
// (registry.FieldError.Field), so that its findings land at the field.
type grantForm struct {
	Category, Funding, ValidFrom, ValidTo, LegalBasis, Evidence, MonthlyLimit string
	Errors                                                                    formErrors
	// Open unfolds the form: it came back with problems.
	Open bool
}

// Categories are the category choices: the categories the registry
// knows by name.
func (g grantForm) Categories() []option {
	return options([]uint16{registry.CategoryPensioner, registry.CategoryVeteran, registry.CategoryDisability, registry.CategoryStudent}, g.Category)
}

// Fundings are the funding choices.
func (g grantForm) Fundings() []option {
	return options([]registry.Funding{registry.FundingCity, registry.FundingState}, g.Funding)
}

func grantLabels() map[string]string {
	return map[string]string{"category": "grant.category", "funding": "grant.funding", "valid_from": "grant.from",
		"valid_to": "grant.to", "legal_basis": "grant.basis", "evidence": "grant.evidence", "monthly_limit": "grant.limit"}
}

// grantPrefix keeps the grant form's ids apart from the other forms on
// the resident page.
const grantPrefix = "grant-"

// check reads the form into an entitlement of resident and records, in
// lang, a problem for every field it can tell is wrong; the registry
// checks the rest (the dates a card can hold).
func (g *grantForm) check(lang string, resident int64) registry.Entitlement {
	e := &g.Errors
	ent := registry.Entitlement{ResidentID: resident, LegalBasis: g.LegalBasis, Evidence: g.Evidence}
	if c, err := strconv.ParseUint(g.Category, 10, 16); err != nil || c == 0 {
		e.add("category", translate(lang, "grant.err.category"))
	} else {
		ent.Category = uint16(c)
	}
	switch f := registry.Funding(g.Funding); f {
	case registry.FundingCity, registry.FundingState:
		ent.Funding = f
	default:
		e.add("funding", translate(lang, "grant.err.funding"))
	}
	ent.ValidFrom = parseDateField(e, lang, "valid_from", g.ValidFrom, true)
	ent.ValidTo = parseDateField(e, lang, "valid_to", g.ValidTo, true)
	if !ent.ValidFrom.IsZero() && !ent.ValidTo.IsZero() && ent.ValidTo.Before(ent.ValidFrom) {
		e.add("valid_to", translate(lang, "grant.err.order", ent.ValidFrom))
	}
	checkTextField(e, lang, "legal_basis", g.LegalBasis, registry.MaxTextLen, true)
	checkTextField(e, lang, "evidence", g.Evidence, registry.MaxTextLen, true)
	if g.MonthlyLimit != "" {
		n, err := strconv.Atoi(g.MonthlyLimit)
		if err != nil || n < 0 || n > registry.MaxMonthlyLimit {
			e.add("monthly_limit", translate(lang, "grant.err.limit", registry.MaxMonthlyLimit))
		}
		ent.MonthlyLimit = n
	}
	return ent
}

// pathID reads a positive record id from the path.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, &pageError{status: http.StatusNotFound, key: "err.404", err: fmt.Errorf("%s %q is not a record number", name, r.PathValue(name))}
	}
	return id, nil
}

// deskGrant grants an entitlement through the registry, which checks and
// audits it. A form with problems comes back on the resident's page,
// unfolded, with what was typed; nothing is stored then.
func (s *Server) deskGrant(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, purpose, err := recordForm(r)
	if err != nil {
		return err
	}
	g := grantForm{Category: formValue(r, "category"), Funding: formValue(r, "funding"), ValidFrom: formValue(r, "valid_from"),
		ValidTo: formValue(r, "valid_to"), LegalBasis: formValue(r, "legal_basis"), Evidence: formValue(r, "evidence"),
		MonthlyLimit: formValue(r, "monthly_limit"), Errors: newFormErrors(grantPrefix, grantLabels())}
	ent := g.check(rq.lang, id)
	if !g.Errors.Any() {
		_, err := s.reg.AddEntitlement(r.Context(), access(rq, purpose), ent)
		var fe *registry.FieldError
		switch {
		case errors.As(err, &fe):
			g.Errors.addRegistry(fe)
		case err != nil:
			return err
		default:
			http.Redirect(w, r, residentHref(id, purpose, "done", "granted"), http.StatusSeeOther)
			return nil
		}
	}
	g.Open = true
	// Showing the form again shows the record again: a read, audited
	// with the same purpose.
	pg, err := s.residentView(r.Context(), rq, id, purpose)
	if err != nil {
		return err
	}
	pg.Grant = g
	s.render(w, r, rq, http.StatusBadRequest, "resident", "resident.title", pg, "")
	return nil
}

// deskEndEntitlement moves the last day of an entitlement earlier (ends
// or revokes it) through the registry, which checks and audits it. A
// day that will not do comes back at the entitlement's row; a good one
// is confirmed first (confirm.go), naming the benefit, its holder and
// the day, since a resident loses the benefit from the day after.
func (s *Server) deskEndEntitlement(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	eid, err := pathID(r, "eid")
	if err != nil {
		return err
	}
	purpose, err := formPurpose(r)
	if err != nil {
		return err
	}
	raw := formValue(r, "valid_to")
	errs := newFormErrors("end-", nil)
	day := parseDateField(&errs, rq.lang, "valid_to", raw, true)
	// The confirmation names the day: confirming one day does not end
	// the benefit on another.
	confirm := fmt.Sprintf("end %d %s", eid, day)
	if !errs.Any() && isConfirmed(r, confirm) {
		_, err := s.reg.EndEntitlement(r.Context(), access(rq, purpose), id, eid, day)
		var fe *registry.FieldError
		switch {
		case errors.As(err, &fe):
			errs.addRegistry(fe)
		case err != nil:
			return err
		default:
			http.Redirect(w, r, residentHref(id, purpose, "done", "ended", "to", day.String()), http.StatusSeeOther)
			return nil
		}
	}
	pg, err := s.residentView(r.Context(), rq, id, purpose)
	if err != nil {
		return err
	}
	var v *entView
	for i := range pg.Entitlements {
		if pg.Entitlements[i].ID == eid {
			v = &pg.Entitlements[i]
		}
	}
	if v == nil {
		return &pageError{status: http.StatusNotFound, key: "err.404", err: fmt.Errorf("resident %d has no entitlement %d", id, eid)}
	}
	v.CanEnd, v.EndDay, v.EndError = true, raw, errs.For("valid_to")
	// The registry says why in English; the two cases it can refuse
	// are said in the page's language, before asking to confirm.
	switch {
	case day.IsZero():
	case day.After(v.ValidTo):
		v.EndError = translate(rq.lang, "end.err.after", formatDate(rq.lang, v.ValidTo))
	case day.Before(v.ValidFrom):
		v.EndError = translate(rq.lang, "end.err.before", formatDate(rq.lang, v.ValidFrom))
	}
	if v.EndError == "" && !errs.Any() {
		lang := rq.lang
		consequence := translate(lang, "confirm.end.after", formatDate(lang, day.AddDays(1)))
		if day.Before(registry.Today(s.now(), s.loc)) {
			consequence = translate(lang, "confirm.end.now")
		}
		return s.askConfirmation(w, r, rq, confirmation{Value: confirm,
			What: translate(lang, "confirm.end.what", categoryName(lang, strconv.Itoa(int(v.Category))), formatDate(lang, day),
				formatDate(lang, v.ValidTo)),
			Whom:        pg.Dossier.Resident.Name,
			Consequence: consequence,
			Button:      translate(lang, "confirm.end.button"),
			Cancel:      residentHref(id, purpose) + fmt.Sprintf("#ent-%d", eid)})
	}
	s.render(w, r, rq, http.StatusBadRequest, "resident", "resident.title", pg, "")
	return nil
}

// entitlementViews are a dossier's entitlements with their end forms.
// The forms propose no day: ending a benefit is a decision the operator
// types, never one click on a form filled in advance.
func entitlementViews(es []registry.Entitlement, today registry.Date, mayChange bool) []entView {
	out := make([]entView, len(es))
	for i, e := range es {
		out[i] = entView{Entitlement: e, CanEnd: mayChange && !e.ValidTo.Before(today)}
	}
	return out
}
