package console

import (
	"net/http"
	"slices"
)

// A destructive or irreversible desk action (block a card, replace it,
// end a benefit, a resident's own block) takes two steps. The form posts
// what is to be done; the handler checks it and, without the
// confirmation field, answers with a page that says what will happen and
// to whom, carrying the form's fields in a second form with the
// confirmation. Only that second post acts. The check is the server's:
// a form posted without the field, however it was made, changes nothing.

// confirmField is the form field that confirms an action; its value
// names the action and its object (confirmation.Value), so that the
// confirmation of one card's block does not confirm another's.
const confirmField = "confirm"

// confirmation is the page that asks to confirm an action.
type confirmation struct {
	// Value is what confirmField must hold, e.g. "block 1001000000000031".
	Value string
	// What says in the page's language what will happen, Whom to whom
	// (a name, a card); Consequence what it means afterwards.
	What, Whom, Consequence string
	// Button is the label of the confirming button, Cancel the way back.
	Button, Cancel string
	// Action is the URL the form posts to again; Fields the submitted
	// fields it carries (all but the CSRF secret and the confirmation).
	Action string
	Fields []hiddenField
}

// hiddenField is a form field carried to the confirming form.
type hiddenField struct{ Name, Value string }

// isConfirmed reports whether the request confirms the action value.
func isConfirmed(r *http.Request, value string) bool {
	return r.PostFormValue(confirmField) == value
}

// askConfirmation renders the confirmation page of c for the form r
// posted.
func (s *Server) askConfirmation(w http.ResponseWriter, r *http.Request, rq *request, c confirmation) error {
	c.Action = r.URL.Path
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.PostForm {
			if !yield(k) {
				return
			}
		}
	}) {
		if name == "csrf" || name == confirmField {
			continue
		}
		for _, v := range r.PostForm[name] {
			c.Fields = append(c.Fields, hiddenField{Name: name, Value: v})
		}
	}
	s.render(w, r, rq, http.StatusOK, "confirm", "confirm.title", c, "")
	return nil
}
