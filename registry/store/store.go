// Package store defines the registry's durable state: residents, their
// entitlements, cards and their lifecycle, the card event stream that
// clearing and the hotlist consume, API tokens (with their ends, last use
// and revocation), staff accounts, residents' one-time sign-in codes, the
// outbox of notices to residents, and the append-only, hash-chained audit
// log of every access to personal data with its signed checkpoints
// (registry/auditchain).
//
// The interface is implemented by store/postgres (production) and
// store/sqlite (the embedded store); both pass the contract suite in
// store/storetest. This package imports no database driver.
//
// Every method that reads or changes personal data takes a
// registry.Access, checks it against the role table (registry.Allowed),
// and writes the audit entry in the same transaction as the read or
// change: the data is never returned unless the entry was committed.
// Methods that return no personal data (card events, blocked cards, card
// data) take no Access; the API checks the caller's role before calling
// them.
package store

import (
	"context"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// Store is the registry's durable state. Implementations are safe for
// concurrent use. Errors wrap the registry's sentinels (ErrInvalid,
// ErrNotFound, ErrDuplicate, ErrConflict, ErrTransition, ErrForbidden,
// ErrNoPurpose, ErrUnauthenticated); a call that fails writes nothing.
type Store interface {
	// AddResident registers a person and returns the record with its id.
	// ErrDuplicate if the registry number is already registered.
	AddResident(ctx context.Context, a registry.Access, r registry.Resident) (registry.Resident, error)
	// Resident returns everything the registry holds about one person.
	// A resident may read their own, and a child's while a guardian link
	// stands (AddGuardianship); staff need ActReadPersonal and a purpose.
	Resident(ctx context.Context, a registry.Access, id int64) (registry.Dossier, error)
	// FindResidents returns the residents matching q, by name; each one
	// returned gets an audit entry.
	FindResidents(ctx context.Context, a registry.Access, q registry.Search) ([]registry.Resident, error)

	// AddEntitlement records an entitlement of e.ResidentID (e.Source is
	// set to SourceDesk) and emits an entitlements event for the
	// resident's live card.
	AddEntitlement(ctx context.Context, a registry.Access, e registry.Entitlement) (registry.Entitlement, error)
	// EndEntitlement moves the last day of an entitlement of a resident
	// earlier, to lastDay, and emits an entitlements event for the
	// resident's live card.
	EndEntitlement(ctx context.Context, a registry.Access, resident, id int64, lastDay registry.Date) (registry.Entitlement, error)
	// Expiring lists the entitlements whose last day is in [from, to],
	// soonest first, with their holders' names and contacts.
	Expiring(ctx context.Context, a registry.Access, from, to registry.Date) ([]registry.Expiring, error)

	// OrderCard gives a resident a new card number, status ordered.
	// ErrConflict if the resident has a live card (registry.Status.Live):
	// a person has one card, and a lost one is replaced.
	OrderCard(ctx context.Context, a registry.Access, resident int64) (registry.Card, error)
	// Transition moves a card to another status as the lifecycle table
	// allows (ErrTransition otherwise) and emits a status event. Staff
	// need ActCards; a resident may block their own card as lost or
	// stolen (registry.PermitTransition), and another's card is
	// ErrNotFound to them, with nothing written.
	Transition(ctx context.Context, a registry.Access, number card.Number, c registry.Change) (registry.Card, error)
	// Replace orders a replacement for a blocked, lost or stolen card,
	// carrying its purse balance; the old card becomes replaced. It
	// returns the old card and the new one.
	Replace(ctx context.Context, a registry.Access, number card.Number, b registry.Balance) (old, replacement registry.Card, err error)
	// Personalisation returns what the desk writes on an ordered or
	// personalised card, the holder's personal data included.
	Personalisation(ctx context.Context, a registry.Access, number card.Number) (registry.Personalisation, error)

	// CardState returns where a card is in its life: no holder, no
	// benefit, nothing personal.
	CardState(ctx context.Context, number card.Number) (registry.CardState, error)
	// CardData returns what goes on a card without its holder's name and
	// birth date. It names the holder (HolderRef) and their benefits, so
	// it is an audited read: ActReadPersonal and a purpose.
	CardData(ctx context.Context, a registry.Access, number card.Number) (registry.CardData, error)
	// CardEvents returns up to limit card events with Seq above since,
	// in Seq order.
	CardEvents(ctx context.Context, since uint64, limit int) ([]registry.CardEvent, error)
	// Blocked returns every card validators must refuse, and the version
	// (last event Seq) the list is consistent with.
	Blocked(ctx context.Context) (registry.Blocklist, error)
	// CardRecords returns the records (registry.CardRecord) of the cards
	// that up to limit (1 to registry.MaxRecordPage) card events after
	// since name, for clearing's copy; a page that reaches the newest
	// event says as of when it is complete.
	CardRecords(ctx context.Context, since uint64, limit int) (registry.CardRecords, error)

	// Import applies the rows of a benefit-register export in one
	// transaction, all or nothing, and reports the changes. With dryRun
	// it reports the same and writes nothing but the audit entries of the
	// records it read. A row that contradicts the registry (another
	// person's decision, a different birth date) fails the import with
	// registry.ImportLineError.
	Import(ctx context.Context, a registry.Access, rows []registry.ImportRow, dryRun bool) (registry.ImportReport, error)

	// Audit returns audit entries, oldest first. Auditors see all; a
	// resident sees those about themselves whatever q.Resident says.
	Audit(ctx context.Context, a registry.Access, q registry.AuditQuery) ([]registry.AuditEntry, error)

	// AddToken stores an API token (its hash only). A resident's token
	// needs an existing resident.
	AddToken(ctx context.Context, t registry.Token) error
	// Authenticate returns the token with this hash and records its use
	// (to the minute), or ErrUnauthenticated when there is none or it
	// was revoked or has ended. A staff member's session ends with their
	// account.
	Authenticate(ctx context.Context, hash [32]byte) (registry.TokenInfo, error)
	// Tokens lists tokens, newest first (ActTokens).
	Tokens(ctx context.Context, a registry.Access, q registry.TokenQuery) ([]registry.TokenInfo, error)
	// RevokeToken ends the token with public id now, recording who did
	// it; ErrNotFound for an unknown id, ErrConflict for one already
	// revoked (ActTokens, or the token's own user ending their session).
	RevokeToken(ctx context.Context, a registry.Access, id string) (registry.TokenInfo, error)

	// AddStaff creates a named staff account; ErrDuplicate if the user
	// name is taken.
	AddStaff(ctx context.Context, acc registry.StaffAccount) error
	// Staff returns one account, its password hash included, for sign-in;
	// ErrNotFound for none.
	Staff(ctx context.Context, user string) (registry.StaffAccount, error)
	// StaffAccounts lists every account, by user name, without hashes.
	StaffAccounts(ctx context.Context) ([]registry.StaffAccount, error)
	// SetStaffPassword replaces an account's password hash.
	SetStaffPassword(ctx context.Context, user, hash string) error
	// DisableStaff stops an account signing in and revokes its tokens;
	// enable false undoes it (the tokens stay revoked).
	DisableStaff(ctx context.Context, user, by string, disable bool) error

	// StartResidentSignIn stores a one-time code (its hash) for the
	// resident with this registry number and returns the resident's id
	// and registered contact to send it to; ErrNotFound when there is no
	// such resident. Reading the contact is audited.
	StartResidentSignIn(ctx context.Context, registryNumber string, c ResidentCode) (resident int64, contact string, err error)
	// FinishResidentSignIn checks a code against the sign-in with this
	// id: the resident's id if codeHash is its code, still valid and
	// tried fewer than maxAttempts times, and the code is then used up;
	// ErrUnauthenticated otherwise (and the attempt counts).
	FinishResidentSignIn(ctx context.Context, id string, codeHash [32]byte, maxAttempts int) (resident int64, err error)
	// ResidentCodesSince counts the codes sent to a resident since t, to
	// bound how many one person can be sent.
	ResidentCodesSince(ctx context.Context, resident int64, t time.Time) (int, error)

	// AuditChain, AuditHead and AuditCheckpoints read the audit log's
	// hash chain for registry/auditchain; AddAuditCheckpoint stores a
	// signed checkpoint.
	AuditChain(ctx context.Context, after int64, fn func(*registry.AuditEntry) error) error
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	AuditCheckpoints(ctx context.Context) ([]registry.AuditCheckpoint, error)
	AddAuditCheckpoint(ctx context.Context, cp registry.AuditCheckpoint) error

	// AddGuardianship links child's record to guardian's on the evidence
	// named (ActRegister); registry.CheckGuardianship says what may be
	// linked, ErrConflict for a link that already stands. Both records'
	// audit logs show it.
	AddGuardianship(ctx context.Context, a registry.Access, guardian, child int64, evidence string) (registry.Guardianship, error)
	// EndGuardianship ends a standing link with a reason (ActRegister);
	// ErrConflict when it has ended.
	EndGuardianship(ctx context.Context, a registry.Access, id int64, reason string) (registry.Guardianship, error)
	// A record's links are read with it (registry.Dossier.Guardianships).
	// A resident reads a child's record with Resident, and blocks a
	// child's card with Transition, while the link is active; both are
	// audited in the child's record under the guardian's name.

	// SubmitApplication stores a resident's online application for a
	// card or a benefit with its documents (registry.CheckApplication):
	// the resident's own (ActOwnData) or a desk's for them (ActRegister).
	// ErrConflict for a second open application for the same thing, or
	// a card application of a resident who has a card.
	SubmitApplication(ctx context.Context, a registry.Access, ap registry.Application) (registry.Application, error)
	// Applications lists applications with their documents' names (not
	// their bytes): a resident their own; staff (ActReadPersonal, a
	// purpose) the queue, each listed application audited.
	Applications(ctx context.Context, a registry.Access, q registry.ApplicationQuery) ([]registry.Application, error)
	// Attachment returns one document of an application, its bytes
	// included, audited; ErrNotFound for another resident's.
	Attachment(ctx context.Context, a registry.Access, app, file int64) (registry.Attachment, error)
	// DecideApplication accepts or refuses a submitted application, on
	// the record (ActRegister). Accepting creates the entitlement
	// (ActEntitlements) or orders the card (ActCards) with the same
	// checks as the desk's own forms, in the same transaction.
	DecideApplication(ctx context.Context, a registry.Access, id int64, d registry.Decision) (registry.Application, error)

	// Notices is the outbox of notices to residents.
	Notices

	// Close releases the store's connections.
	Close() error
}

// ResidentCode is a one-time sign-in code as stored: its hash only.
type ResidentCode struct {
	// ID names the sign-in; the resident's browser or client holds it.
	ID       string
	CodeHash [32]byte
	Created  time.Time
	Expires  time.Time
}

// Options configures an implementation.
type Options struct {
	// Issuer is the issuer code of new card numbers (the first four
	// digits), 1..9999. A store without one (0) refuses to issue cards;
	// that suits tools that only migrate or manage tokens.
	Issuer uint16
	// CardYears is how long a new card is valid; 0 means DefaultCardYears.
	CardYears int
	// Location is the city's time zone, which decides what "today" is;
	// nil means UTC.
	Location *time.Location
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

// DefaultCardYears is how long a card is valid unless told.
const DefaultCardYears = 5

// MaxEventPage is the most card events one CardEvents call returns.
const MaxEventPage = 10_000
