package store

import (
	"context"
	"time"

	"github.com/citycard/transit/registry"
)

// Notices is the registry's outbox of notices to residents, which
// registry/notices fills and empties. Queue and claim are for the
// registry's own runner and take no Access: they audit as
// registry.NoticesActor with registry.PurposeNotice.
type Notices interface {
	// QueueNotices reads the entitlements whose last day is in [from, to]
	// and that have no notice yet, lets decide (a pure rule) say what to
	// record for them, and records it in the same transaction, one audit
	// entry each: a notice to send, or one dropped at once when decide
	// gives a DropReason (the holder opted out, no contact reaches them).
	// A notice for the same kind, entitlement and last day is never
	// recorded twice. It returns the notices recorded.
	QueueNotices(ctx context.Context, from, to registry.Date, decide func([]registry.NoticeCandidate) []registry.Notice) ([]registry.Notice, error)
	// ClaimNotices hands out up to limit queued notices whose next
	// attempt is due, oldest first: each one's attempt is counted and its
	// next attempt moved to now+retry(attempts) before it is returned, so
	// that another runner does not take it meanwhile. A notice already
	// tried maxAttempts times is dropped instead. Reading the contact is
	// audited.
	ClaimNotices(ctx context.Context, limit, maxAttempts int, retry func(attempts int) time.Duration) ([]registry.NoticeClaim, error)
	// FinishNotice records the outcome of a claimed notice's attempt:
	// sent (once: ErrConflict if it is no longer pending), failed (the
	// error, retried at the time the claim set) or dropped with a
	// reason. Sent and dropped are audited.
	FinishNotice(ctx context.Context, id int64, o registry.NoticeOutcome) error

	// SetNoticeOptOut records whether a resident wants no notices. A
	// resident sets their own; desk staff set it for them.
	SetNoticeOptOut(ctx context.Context, a registry.Access, resident int64, optOut bool) error
	// ResidentNotices returns a resident's setting and their notices,
	// newest first: a resident's own, or staff's with ActReadPersonal and
	// a purpose.
	ResidentNotices(ctx context.Context, a registry.Access, resident int64) (registry.ResidentNotices, error)
}
