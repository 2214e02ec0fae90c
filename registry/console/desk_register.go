package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/rnokpp"
)

// registerPage is the form that registers a resident, empty or as it
// was submitted with its problems.
type registerPage struct {
	Name, RegistryNumber, BirthDate, Contact, Purpose string
	Errors                                            formErrors
	// ExistingHref opens the record of the person already registered
	// under the number given.
	ExistingHref string
	// Today bounds the birth date input.
	Today registry.Date
}

// registerLabels are the fields of the registration form and their
// labels.
func registerLabels() map[string]string {
	return map[string]string{"name": "resident.name", "registry_number": "register.number", "birth_date": "resident.birth",
		"contact": "register.contact", "purpose": "purpose"}
}

func (s *Server) deskRegisterForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	pg := registerPage{Errors: newFormErrors("", registerLabels()), Today: registry.Today(s.now(), s.loc)}
	s.render(w, r, rq, http.StatusOK, "register", "register.title", pg, "")
	return nil
}

// deskRegister registers a resident and opens their record. A form with
// problems comes back with what was typed and a message at each field
// that is wrong; nothing is stored then.
func (s *Server) deskRegister(w http.ResponseWriter, r *http.Request, rq *request) error {
	today := registry.Today(s.now(), s.loc)
	pg := registerPage{
		Name: formValue(r, "name"),
		// Digits are often typed in groups; the number has none.
		RegistryNumber: strings.Join(strings.Fields(r.PostFormValue("registry_number")), ""),
		BirthDate:      formValue(r, "birth_date"),
		Contact:        formValue(r, "contact"),
		Purpose:        formValue(r, "purpose"),
		Errors:         newFormErrors("", registerLabels()),
		Today:          today,
	}
	res := pg.check(rq.lang, today)
	if pg.Errors.Any() {
		s.render(w, r, rq, http.StatusBadRequest, "register", "register.title", pg, "")
		return nil
	}
	a := access(rq, pg.Purpose)
	created, err := s.reg.AddResident(r.Context(), a, res)
	var fe *registry.FieldError
	switch {
	case errors.As(err, &fe):
		pg.Errors.addRegistry(fe)
		s.render(w, r, rq, http.StatusBadRequest, "register", "register.title", pg, "")
		return nil
	case errors.Is(err, registry.ErrDuplicate):
		pg.Errors.add("registry_number", translate(rq.lang, "register.err.duplicate"))
		// The link to the record is a read of personal data, audited
		// with the purpose the operator gave.
		found, ferr := s.reg.FindResidents(r.Context(), a, registry.Search{RegistryNumber: res.RegistryNumber})
		if ferr != nil {
			s.log.Warn("find the resident already registered", "error", ferr)
		} else if len(found) == 1 {
			pg.ExistingHref = residentHref(found[0].ID, pg.Purpose)
		}
		s.render(w, r, rq, http.StatusConflict, "register", "register.title", pg, "")
		return nil
	case err != nil:
		return err
	}
	http.Redirect(w, r, residentHref(created.ID, pg.Purpose, "done", "registered"), http.StatusSeeOther)
	return nil
}

// check reads the form into a Resident and records, in lang, a problem
// for every field that registry.Resident.Validate would refuse.
func (pg *registerPage) check(lang string, today registry.Date) registry.Resident {
	e := &pg.Errors
	checkTextField(e, lang, "name", pg.Name, registry.MaxNameLen, true)
	switch _, err := rnokpp.Parse(pg.RegistryNumber); {
	case pg.RegistryNumber == "":
		e.add("registry_number", translate(lang, "form.err.required"))
	case errors.Is(err, rnokpp.ErrCheckDigit):
		e.add("registry_number", translate(lang, "register.err.check"))
	case err != nil:
		e.add("registry_number", translate(lang, "register.err.format"))
	}
	birth := parseDateField(e, lang, "birth_date", pg.BirthDate, true)
	switch {
	case birth.IsZero():
	case birth.Year < 1900:
		e.add("birth_date", translate(lang, "register.err.old"))
	case birth.After(today):
		e.add("birth_date", translate(lang, "register.err.future"))
	}
	checkTextField(e, lang, "contact", pg.Contact, registry.MaxContactLen, false)
	checkPurposeField(e, lang, pg.Purpose)
	return registry.Resident{Name: pg.Name, RegistryNumber: pg.RegistryNumber, BirthDate: birth, Contact: pg.Contact}
}
