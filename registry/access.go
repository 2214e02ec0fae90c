package registry

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
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
	// RoleOperator runs the platform's services: clearing's metrics and
	// reconciliation, never personal data or money decisions.
	RoleOperator Role = "operator"
)

// Roles lists every role.
var Roles = []Role{RoleDesk, RoleSupervisor, RoleFinance, RoleAuditor, RoleResident, RoleService, RoleOperator}

// StaffRoles are the roles a named staff account may have: people, not
// machines or residents.
var StaffRoles = []Role{RoleDesk, RoleSupervisor, RoleFinance, RoleAuditor, RoleOperator}

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
	// ActTokens is listing and revoking API tokens and sign-in sessions.
	ActTokens Action = "list and revoke API tokens"
	// ActIntrospect is asking whose a bearer token is: what another
	// service (clearing) does to check its callers with the registry's
	// staff identities.
	ActIntrospect Action = "check other callers' tokens"

	// Clearing's actions: clearing holds no personal data, but decides
	// public money, and uses this table for its callers too.
	ActStatements      Action = "read compensation statements"
	ActCloseStatements Action = "close compensation statements"
	ActReconciliation  Action = "read reconciliation reports"
	ActMetrics         Action = "read service metrics"
	// ActReadHeld is listing the rides clearing holds back and the card's
	// proof of the rides it pays; ActDecideHeld is releasing or rejecting
	// held rides, on the record.
	ActReadHeld   Action = "read held rides"
	ActDecideHeld Action = "decide held rides"
)

// Actions lists every action.
var Actions = []Action{ActRegister, ActReadPersonal, ActEntitlements, ActCards, ActPersonalise,
	ActExpiring, ActImport, ActCardEvents, ActAudit, ActOwnData, ActTokens, ActIntrospect,
	ActStatements, ActCloseStatements, ActReconciliation, ActMetrics, ActReadHeld, ActDecideHeld}

// permissions is the role table. Finance, auditors, operators and
// services never see personal data; residents see only their own.
// Finance reads statements, only a supervisor closes them, operators
// read metrics and reconciliation. Finance decides held rides;
// auditors read them, to check the decisions.
var permissions = map[Role][]Action{
	RoleDesk: {ActRegister, ActReadPersonal, ActEntitlements, ActCards, ActPersonalise, ActExpiring},
	RoleSupervisor: {ActRegister, ActReadPersonal, ActEntitlements, ActCards, ActPersonalise, ActExpiring,
		ActImport, ActCardEvents, ActTokens, ActStatements, ActCloseStatements, ActReconciliation},
	RoleFinance:  {ActCardEvents, ActStatements, ActReconciliation, ActReadHeld, ActDecideHeld},
	RoleAuditor:  {ActAudit, ActCardEvents, ActReadHeld},
	RoleResident: {ActOwnData},
	RoleService:  {ActCardEvents, ActIntrospect},
	RoleOperator: {ActMetrics, ActReconciliation},
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

// Validate checks that the actor can be recorded in the audit log, and
// puts the user name into NFC.
func (a *Actor) Validate() error {
	switch {
	case !a.Role.Valid():
		return fieldErr("role", "%q; want one of desk, supervisor, finance, auditor, operator, resident, service", a.Role)
	case a.Role == RoleResident && a.Resident <= 0:
		return fieldErr("resident", "a resident's token must name their resident id")
	case a.Role != RoleResident && a.Resident != 0:
		return fieldErr("resident", "only a resident's token names a resident id")
	}
	return cleanField("user", &a.User, MaxUserLen, true)
}

// MaxUserLen bounds a user name.
const MaxUserLen = 100

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
// for actions that concern no single resident. A purpose, required or
// not, must be clean text (it goes to the audit log), and is put into
// NFC.
func (a *Access) Permit(act Action, about int64) error {
	if err := a.Actor.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrForbidden, err)
	}
	if a.Purpose != "" {
		if err := a.cleanPurpose(); err != nil {
			return err
		}
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
	if strings.TrimSpace(a.Purpose) == "" {
		return fmt.Errorf("%w: every read of personal data needs a purpose; state it (the purpose parameter or Purpose header, e.g. \"card replacement, ticket 4711\")", ErrNoPurpose)
	}
	return a.cleanPurpose()
}

// cleanPurpose puts the purpose into NFC, without surrounding spaces, or
// refuses it: a line break or control character would forge lines in
// the audit log, a direction override would show it as something else.
func (a *Access) cleanPurpose() error {
	p, err := CleanPurpose(a.Purpose)
	if err != nil {
		return err
	}
	a.Purpose = p
	return nil
}

// CleanPurpose returns a stated purpose as the audit log keeps it
// (trimmed, NFC), or an error wrapping ErrInvalid that says what is
// wrong with it.
func CleanPurpose(p string) (string, error) {
	p, err := CleanText("purpose", strings.TrimSpace(p), MaxPurposeLen, false)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return "", fmt.Errorf("%w: purpose %s", ErrInvalid, fe.Problem)
		}
		return "", err
	}
	return p, nil
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
	// Seq is the entry's place in the hash chain (registry/auditchain),
	// from 1 without gaps; Prev and Hash link it to the entry before.
	Seq  int64  `json:"seq"`
	Prev []byte `json:"-"`
	Hash []byte `json:"-"`
}

// AuditCheckpoint is a signed statement of the audit chain's head: that
// entry Seq had hash Hash at time At. Verifying the chain against it
// finds a log rewritten from some entry on, hashes and all, which the
// chain alone cannot.
type AuditCheckpoint struct {
	Seq  int64     `json:"seq"`
	Hash []byte    `json:"hash"`
	At   time.Time `json:"at"`
	// Key names the signing key, "sign-audit@1"; Signature is Ed25519
	// over auditchain's checkpoint message.
	Key       string `json:"key"`
	Signature []byte `json:"signature"`
}

// AuditQuery selects audit entries.
type AuditQuery struct {
	Resident int64 // only entries about this resident; 0 for all
	After    int64 // only entries with ID above this, for paging
	Limit    int   // 1..1000; 0 means 1000
}

// MaxAuditPage is the most entries one audit query returns.
const MaxAuditPage = 1000

// OwnBlockReasons are the reasons residents may give to block their own
// card, signed in to their own view: a card that is lost or stolen must
// stop at once, before its holder reaches a desk. Every other change of
// a card is the desk's.
var OwnBlockReasons = []Reason{ReasonLost, ReasonStolen}

// PermitTransition checks that the actor may make change ch of a card's
// status: staff with ActCards any change, a resident only a block of
// their own card with one of OwnBlockReasons. Whether the card is the
// resident's own is for the store to check when it reads the card (it
// answers ErrNotFound for another's, so that nothing is learnt of it).
func PermitTransition(a *Access, ch Change) error {
	if a.Actor.Role != RoleResident {
		return a.Permit(ActCards, 0)
	}
	if err := a.Permit(ActOwnData, a.Actor.Resident); err != nil {
		return err
	}
	if !slices.Contains(OwnBlockReasons, ch.Reason) || ch.To != ch.Reason.Status() {
		return fmt.Errorf("%w: a resident may only block their own card as lost or stolen; for anything else, go to a desk", ErrForbidden)
	}
	return nil
}
