package registry

import "time"

// NoticeBenefitEnding is the kind of notice that tells a resident their
// benefit ends soon.
const NoticeBenefitEnding = "benefit-ending"

// PurposeNotice is the purpose the audit log records when the registry
// reads a resident's contact to tell them about their benefit.
const PurposeNotice = "benefit-ending notice"

// NoticesActor is who the audit log names for the registry's own notice
// runner: the registry service, not a person.
var NoticesActor = Actor{User: "registry-notices", Role: RoleService}

// NoticeCandidate is an entitlement that ends soon, with what deciding
// whether its holder gets a notice needs. It is personal data.
type NoticeCandidate struct {
	Resident    int64
	Entitlement int64
	Category    uint16
	// Ends is the entitlement's last valid day.
	Ends     Date
	Contact  string
	OptedOut bool
}

// Notice is one message to a resident in the registry's outbox: queued,
// then sent once or dropped with a reason.
type Notice struct {
	ID          int64  `json:"id"`
	Kind        string `json:"kind"`
	Resident    int64  `json:"resident_id"`
	Entitlement int64  `json:"entitlement_id"`
	Category    uint16 `json:"category"`
	// Ends is the last day of the entitlement the notice is about, as it
	// was when the notice was queued.
	Ends Date `json:"ends"`
	// Contact is where the notice was to go when it was queued.
	Contact  string    `json:"contact"`
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	// NextAttempt is when a queued notice may be tried (again).
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	// Sent, SentTo and Sender say when, to whom and how it was sent.
	Sent   time.Time `json:"sent,omitzero"`
	SentTo string    `json:"sent_to,omitempty"`
	Sender string    `json:"sender,omitempty"`
	// Dropped and DropReason say when and why it will never be sent.
	Dropped    time.Time `json:"dropped,omitzero"`
	DropReason string    `json:"drop_reason,omitempty"`
}

// Pending reports whether the notice is neither sent nor dropped.
func (n *Notice) Pending() bool { return n.Sent.IsZero() && n.Dropped.IsZero() }

// NoticeClaim is a queued notice handed to a runner to send, with the
// registry's current view of its holder and benefit: the contact now
// (empty when it was cleared), whether they opted out since, and the
// entitlement's last day now.
type NoticeClaim struct {
	Notice
	CurrentContact string
	OptedOut       bool
	CurrentEnds    Date
}

// NoticeOutcome is what became of one attempt at a claimed notice:
// exactly one of SentTo (with Sender), Error (try again later) or Drop
// (never send it) is set.
type NoticeOutcome struct {
	SentTo, Sender string
	Error          string
	Drop           string
}

// ResidentNotices is a resident's notice settings and what they were
// sent.
type ResidentNotices struct {
	OptedOut bool     `json:"opted_out"`
	Notices  []Notice `json:"notices"`
}

// Why a notice was dropped, as the outbox records it: fixed texts that
// pages translate. NoticeEndMoved is followed by the new last day
// (DD.MM.YYYY), NoticeGaveUp by the number of attempts and the last
// error.
const (
	NoticeOptedOut       = "the resident opted out of notices"
	NoticeNoEntitlement  = "the entitlement no longer exists"
	NoticeEndMoved       = "the benefit's last day changed to "
	NoticeEnded          = "the benefit ended before the notice could be sent"
	NoticeContactCleared = "the resident's contact was cleared"
	NoticeNoContact      = "the registry holds no contact for the resident"
	NoticeUnreachable    = "the resident's contact cannot receive notices"
	NoticeRefused        = "the mail server refused the address: the mailbox does not exist"
	NoticeGaveUp         = "gave up after "
)

// MaxNoticeText bounds the error and reason texts a notice records.
const MaxNoticeText = 500
