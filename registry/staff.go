package registry

import (
	"slices"
	"strconv"
	"time"
)

// StaffAccount is a named person who signs in with a password: desk
// staff, supervisors, finance staff, auditors and operators. The
// password itself is never stored, only its memory-hard hash
// (registry/password).
type StaffAccount struct {
	User string `json:"user"`
	Role Role   `json:"role"`
	// PasswordHash is the encoded Argon2id hash; it never leaves the
	// registry's store and sign-in.
	PasswordHash    string    `json:"-"`
	Created         time.Time `json:"created"`
	PasswordChanged time.Time `json:"password_changed"`
	// Disabled is when the account was disabled, by DisabledBy; zero
	// while it may sign in.
	Disabled   time.Time `json:"disabled,omitzero"`
	DisabledBy string    `json:"disabled_by,omitempty"`
}

// Validate checks an account before it is stored and puts its user name
// into NFC.
func (s *StaffAccount) Validate() error {
	if !slices.Contains(StaffRoles, s.Role) {
		return fieldErr("role", "%q; a staff account is desk, supervisor, finance, auditor or operator", s.Role)
	}
	if err := cleanField("user", &s.User, MaxUserLen, true); err != nil {
		return err
	}
	if s.PasswordHash == "" {
		return fieldErr("password", "missing; set a password")
	}
	return nil
}

// Actor returns the account as the audit log records its user.
func (s *StaffAccount) Actor() Actor { return Actor{User: s.User, Role: s.Role} }

// String hides the password hash.
func (s StaffAccount) String() string { return "staff(" + s.User + ", " + string(s.Role) + ")" }

// GoString hides the password hash from %#v as well.
func (s StaffAccount) GoString() string { return s.String() }

// ResidentUser is the user name the audit log records for resident id
// when they act themselves: their id, never their name.
func ResidentUser(id int64) string { return "resident/" + strconv.FormatInt(id, 10) }
