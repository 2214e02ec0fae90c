package registry

import (
	"errors"
	"fmt"
)

// Errors the registry wraps, so that callers (the HTTP API above all) can
// tell kinds of failure apart with errors.Is. Every error that wraps one
// also says what to do.
var (
	// ErrInvalid: a value is malformed or out of range; nothing was
	// written.
	ErrInvalid = errors.New("invalid input")
	// ErrNotFound: no such resident, entitlement or card.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: the person is already registered (same registry
	// number).
	ErrDuplicate = errors.New("already registered")
	// ErrConflict: the request contradicts the registry's state, e.g. a
	// second card in use for one person.
	ErrConflict = errors.New("conflicts with the registry")
	// ErrTransition: the card lifecycle does not allow this status change.
	ErrTransition = errors.New("card status change not allowed")
	// ErrForbidden: the caller's role may not do this, or a resident
	// asked for someone else's data.
	ErrForbidden = errors.New("not allowed")
	// ErrNoPurpose: a read of personal data without a stated purpose.
	ErrNoPurpose = errors.New("no purpose stated")
	// ErrUnauthenticated: no API token, or one the registry does not know.
	ErrUnauthenticated = errors.New("not authenticated")
)

// FieldError says which field of a request or record is wrong and why.
// It wraps ErrInvalid.
type FieldError struct {
	Field   string // as the API and the import file name it: "birth_date"
	Problem string // what is wrong and what to do
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
