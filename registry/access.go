package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Role is what a user of the registry is allowed to do.
type Role string

// Roles.
const (
	RoleDesk       Role = "desk"       // issuance desk operator
	RoleSupervisor Role = "supervisor" // desk supervisor: imports, card events
	RoleFinance    Role = "finance"    // finance staff: card events, blocked cards
	RoleAuditor    Role = "auditor"    // data-protection auditor: the audit log
	RoleResident   Role = "resident"   // a resident, seeing their own data
	// RoleService is another service of the platform (clearing): card
	// events and blocked cards, never personal data. A machine gets a role
	// of its own so that its token is not a staff member's and grows no
	// staff rights.
	RoleService Role = "service"
)

// Roles lists every role.
var Roles = []Role{RoleDesk, RoleSupervisor, RoleFinance, RoleAuditor, RoleResident, RoleService}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Action is a class of registry operations that a role may or may not
// perform. Each API endpoint belongs to exactly one.
type Action string

// Actions.
const (
	ActRegister     Action = "register residents"
	ActReadPersonal Action = "read residents' personal data"
	ActEntitlements Action = "add and end entitlements"
	ActCards        Action = "order, block and replace cards"
	ActPersonalise  Action = "read personalisation data"
	ActExpiring     Action = "list expiring entitlements"
	ActImport       Action = "import benefit recipients"
	ActCardEvents   Action = "read card events and blocked cards"
	ActAudit        Action = "read the audit log"
	ActOwnData      Action = "see one's own data"
)

// Actions lists every action.
var Actions = []Action{ActRegister, ActReadPersonal, ActEntitlements, ActCards, ActPersonalise,
	ActExpiring, ActImport, ActCardEvents, ActAudit, ActOwnData}

// permissions is the role table. Finance, auditors and services never
// see personal data; residents see only their own.
var permissions = map[Role][]Action{
	RoleDesk: {ActRegister, ActReadPersonal, ActEntitlements, ActCards, ActPersonalise, ActExpiring},
	RoleSupervisor: {ActRegister, ActReadPersonal, ActEntitlements, ActCards, ActPersonalise, ActExpiring,
		ActImport, ActCardEvents},
	RoleFinance:  {ActCardEvents},
	RoleAuditor:  {ActAudit, ActCardEvents},
	RoleResident: {ActOwnData},
	RoleService:  {ActCardEvents},
}

// Allowed reports whether role r may perform action a.
func Allowed(r Role, a Action) bool { return slices.Contains(permissions[r], a) }

// Permissions returns a copy of the role table.
func Permissions() map[Role][]Action {
	out := make(map[Role][]Action, len(permissions))
	for r, as := range permissions {
		out[r] = slices.Clone(as)
	}
	return out
}

// Actor is an authenticated user of the registry.
type Actor struct {
	User string `json:"user"`
	Role Role   `json:"role"`
	// Resident is the resident id of a RoleResident actor, whose own data
	// it may see; 0 for staff.
	Resident int64 `json:"resident,omitempty"`
}

// Validate checks that the actor can be recorded in the audit log.
func (a *Actor) Validate() error {
	switch {
	case !a.Role.Valid():
		return fieldErr("role", "%q; want one of desk, supervisor, finance, auditor, resident, service", a.Role)
	case a.Role == RoleResident && a.Resident <= 0:
		return fieldErr("resident", "a resident's token must name their resident id")
	case a.Role != RoleResident && a.Resident != 0:
		return fieldErr("resident", "only a resident's token names a resident id")
	}
	return checkText("user", a.User, 100, true)
}

// Access is who reads or changes registry data, and why. Every store
// method that touches personal data takes one and records it.
type Access struct {
	Actor Actor
	// Purpose is why the data is read, as the user stated it: required
	// for every read of personal data.
	Purpose string
}

// MaxPurposeLen bounds a stated purpose.
const MaxPurposeLen = 300

// Permit checks that the actor may perform act. A resident may perform
// ActOwnData only about themselves (about resident id `about`); pass 0
// for actions that concern no single resident.
func (a *Access) Permit(act Action, about int64) error {
	if err := a.Actor.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	if !Allowed(a.Actor.Role, act) {
		return fmt.Errorf("%w: role %s may not %s; ask a user with a role that may", ErrForbidden, a.Actor.Role, act)
	}
	if act == ActOwnData && about != a.Actor.Resident {
		return fmt.Errorf("%w: a resident sees only their own data", ErrForbidden)
	}
	return nil
}

// PermitRead is Permit for a read of personal data: it also requires a
// stated purpose.
func (a *Access) PermitRead(act Action, about int64) error {
	if err := a.Permit(act, about); err != nil {
		return err
	}
	return a.checkPurpose()
}

func (a *Access) checkPurpose() error {
	p := strings.TrimSpace(a.Purpose)
	switch {
	case p == "":
		return fmt.Errorf("%w: every read of personal data needs a purpose; state it (the purpose parameter or Purpose header, e.g. \"card replacement, ticket 4711\")", ErrNoPurpose)
	case utf8.RuneCountInString(p) > MaxPurposeLen || !utf8.ValidString(p):
		return fmt.Errorf("%w: purpose: at most %d characters of UTF-8 text", ErrInvalid, MaxPurposeLen)
	}
	return nil
}

// PurposeOwnView is the purpose recorded when residents look at their own
// data: they need not state one.
const PurposeOwnView = "holder's own view"

// AuditEntry records one access to personal data: who, when, which
// record, what they did and why. The log is append-only.
type AuditEntry struct {
	ID   int64     `json:"id"`
	At   time.Time `json:"at"`
	User string    `json:"user"`
	Role Role      `json:"role"`
	// Resident is whose data it was; 0 when the access named nobody.
	Resident int64 `json:"resident,omitempty"`
	// Record names what was touched: "resident/42", "card/1001...".
	Record  string `json:"record"`
	Action  string `json:"action"`
	Purpose string `json:"purpose"`
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	Resident int64 // only entries about this resident; 0 for all
	After    int64 // only entries with ID above this, for paging
	Limit    int   // 1..1000; 0 means 1000
}

// MaxAuditPage is the most entries one audit query returns.
const MaxAuditPage = 1000

// Token is an API token as the registry stores it: only the SHA-256 of
// the secret, bound to a user and a role.
type Token struct {
	Hash    [sha256.Size]byte
	Actor   Actor
	Created time.Time
}

// tokenPrefix marks registry tokens so that a leaked one is recognisable
// (secret scanners) and cannot be mistaken for another system's.
const tokenPrefix = "rgt_"

// NewToken makes a fresh random API token for actor: the secret to give
// the user once, and the Token to store.
func NewToken(actor Actor, now time.Time) (secret string, t Token, err error) {
	if err := actor.Validate(); err != nil {
		return "", Token{}, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Token{}, fmt.Errorf("new token: %w", err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Token{Hash: HashToken(secret), Actor: actor, Created: now}, nil
}

// HashToken returns the SHA-256 under which a token's secret is stored.
// A plain hash suffices: the secret is 256 random bits, so there is
// nothing to guess and no need for a slow password hash.
func HashToken(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }
