package card

import (
	"errors"
	"fmt"
)

// Sentinel errors that decoders wrap, so callers can tell kinds of bad data
// apart with errors.Is.
var (
	ErrLength     = errors.New("wrong length")
	ErrVersion    = errors.New("unknown version")
	ErrDate       = errors.New("impossible date")
	ErrCheckDigit = errors.New("bad check digit")
	ErrValue      = errors.New("invalid value")
)

// FieldError says which field of which file content is wrong.
type FieldError struct {
	File  string // "contract", "taplog", ...
	Field string // "version", "entitlements[1].validTo", ...
	Err   error
}

// Error says which file and field is wrong, and why.
func (e *FieldError) Error() string {
	return fmt.Sprintf("card %s: field %s: %v", e.File, e.Field, e.Err)
}

// Unwrap returns the underlying error (one of the sentinels, wrapped).
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(file, field string, kind error, format string, args ...any) error {
	return &FieldError{File: file, Field: field, Err: fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)}
}

func lengthErr(file string, got, want int) error {
	return fieldErr(file, "length", ErrLength, "%d bytes, want %d", got, want)
}

func versionErr(file string, got, want uint8) error {
	return fieldErr(file, "version", ErrVersion, "%d, this code reads %d", got, want)
}
