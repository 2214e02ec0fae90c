package console

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/citycard/transit/registry"
)

// fieldProblem is what is wrong with one field of a submitted form, in
// the page's language.
type fieldProblem struct {
	Field string // the input's name
	// ID is the input's id, for the link from the list of problems; ""
	// when the problem belongs to no field of the form.
	ID string
	// Label is the catalogue key of the field's label.
	Label   string
	Message string
}

// formErrors collects the problems of a submitted form, one per field,
// in the order they were found (the order of the fields).
type formErrors struct {
	// prefix turns a field's name into its input's id ("grant-" +
	// "valid_to"), so that two forms on a page have distinct ids.
	prefix string
	// labels maps the form's field names to their label keys; a field
	// not in it is not on the form.
	labels map[string]string
	List   []fieldProblem
}

func newFormErrors(prefix string, labels map[string]string) formErrors {
	return formErrors{prefix: prefix, labels: labels}
}

// add records a problem of field, unless the field already has one: the
// first is the one to fix first.
func (e *formErrors) add(field, msg string) {
	if e.For(field) != "" {
		return
	}
	p := fieldProblem{Field: field, Message: msg}
	if label, ok := e.labels[field]; ok {
		p.ID, p.Label = e.prefix+field, label
	}
	e.List = append(e.List, p)
}

// addRegistry records a problem the registry found (its validation is
// the last word), under the field it names.
func (e *formErrors) addRegistry(fe *registry.FieldError) { e.add(fe.Field, fe.Problem) }

// For returns the problem of field, or "".
func (e formErrors) For(field string) string {
	for _, p := range e.List {
		if p.Field == field {
			return p.Message
		}
	}
	return ""
}

// Any reports whether the form has a problem.
func (e formErrors) Any() bool { return len(e.List) > 0 }

// checkTextField checks a free-text field the way registry.Resident and
// registry.Entitlement will, so that the problem is shown at the field
// in the page's language rather than as the registry's English. v is
// already trimmed: surrounding spaces are the browser's, not the
// person's.
func checkTextField(e *formErrors, lang, field, v string, maxLen int, required bool) {
	switch {
	case required && v == "":
		e.add(field, translate(lang, "form.err.required"))
	case registry.TextProblem(v) != "":
		e.add(field, translate(lang, "form.err.control"))
	case utf8.RuneCountInString(v) > maxLen:
		e.add(field, translate(lang, "form.err.long", utf8.RuneCountInString(v), maxLen))
	}
}

// parseDateField reads a YYYY-MM-DD field (what a date input sends);
// the zero Date and a problem recorded in e when it is not one.
func parseDateField(e *formErrors, lang, field, v string, required bool) registry.Date {
	if v == "" {
		if required {
			e.add(field, translate(lang, "form.err.required"))
		}
		return registry.Date{}
	}
	d, err := registry.ParseDateField(field, v)
	if err != nil {
		e.add(field, translate(lang, "form.err.date"))
		return registry.Date{}
	}
	return d
}

// checkPurposeField checks the stated purpose of a form that leads to
// personal data.
func checkPurposeField(e *formErrors, lang, v string) {
	if _, err := registry.CleanPurpose(v); v == "" || err != nil {
		e.add("purpose", translate(lang, "purpose.needed"))
	}
}

// formValue is a form field with surrounding spaces removed.
func formValue(r *http.Request, name string) string {
	return strings.TrimSpace(r.PostFormValue(name))
}

// option is a choice of a select. Code is the value as a benefit
// category, for the choices of one.
type option struct {
	Value    string
	Code     uint16
	Selected bool
}

// options lists values as choices, the one equal to chosen selected.
func options[T ~string | ~uint16](values []T, chosen string) []option {
	out := make([]option, len(values))
	for i, v := range values {
		s := fmt.Sprint(v)
		out[i] = option{Value: s, Selected: s == chosen}
		if c, ok := any(v).(uint16); ok {
			out[i].Code = c
		}
	}
	return out
}
