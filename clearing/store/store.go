// Package store defines clearing's durable state: every tap ever received,
// stored once per (device, sequence), the batches that were quarantined,
// each device's sequence gaps and the anomalies found, a roll-up per
// booked period, carrier, category, funding source, route and day from
// which compensation statements are read without scanning raw taps, and
// the closed, signed statements.
//
// The interface is implemented by store/postgres (production) and
// store/sqlite (the embedded demo store); both pass the contract suite in
// store/storetest. This package imports no database driver so that code
// which only needs the interface does not drag one along.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/validator/tap"
)

// Store is clearing's durable state.
type Store interface {
	// AddTaps stores taps in one transaction and reports how many were
	// new and how many repeats. A tap is new when its (device, sequence)
	// was never stored; repeats, from earlier calls or within taps, are
	// ignored (idempotent). The call also keeps each device's sequence
	// state and gaps (recon.Advance), books every new compensable ride
	// into the roll-up of its statement (Book), and records the
	// anomalies it can see: time running backwards and accepted taps of
	// hotlisted cards. The cloned-card check is queued, not run: the
	// new compensable rides with a position (the rides the city pays
	// for, where a clone costs it money) wait for CheckClones, which
	// ingest does not wait for. A tap that fails tap.Validate fails the
	// whole call and nothing is stored.
	AddTaps(ctx context.Context, taps []tap.Tap) (added, duplicates int, err error)
	// AddBatch stores the taps of an authenticated batch as AddTaps does
	// and, in the same transaction, brings the device's fleet state up to
	// date (DeviceState, UpdateState). A tap value that the store's
	// columns cannot take fails it with an error wrapping
	// ingest.ErrUnstorable, and nothing is stored.
	AddBatch(ctx context.Context, b ingest.Batch) (added, duplicates int, err error)
	// Fleet returns the state of every device clearing has stored taps
	// of, sorted by device.
	Fleet(ctx context.Context) ([]DeviceState, error)
	// Ping checks that the store answers, for readiness probes.
	Ping(ctx context.Context) error
	// CheckClones runs the cloned-card check on up to limit of the runs
	// of rides AddTaps queued, oldest first: each ride against the
	// stored rides of its card on other vehicles (recon.Clone). It
	// records the suspicions as recon.ClonedCard anomalies and reports
	// how many runs it took and how many anomalies were new. A pair of
	// rides is found whichever arrives first, and recorded once.
	// Checkers may run at once; each run is checked by one of them.
	CheckClones(ctx context.Context, limit int) (checked, found int, err error)
	// PendingCloneChecks returns how many queued runs wait for
	// CheckClones.
	PendingCloneChecks(ctx context.Context) (int64, error)
	// Quarantine keeps a rejected batch with its reason; it is never
	// applied. It keeps q.Bounded(): at most ingest.MaxRawKept bytes of
	// the batch, its size and hash. The same bytes from the same bus
	// position again (ingest.Rejected.Key) keep one row; the call then
	// succeeds and changes nothing.
	Quarantine(ctx context.Context, q ingest.Rejected) error
	// AddAnomalies records anomalies found outside the store (the batch
	// clock checks of ingest). Recording one again keeps one.
	AddAnomalies(ctx context.Context, as []recon.Anomaly) error
	// AddHotlist records hotlist entries (a card and the time from which
	// it is blocked; recording one again changes nothing) and flags as
	// recon.HotlistedCard every accepted tap of those cards at or after
	// that time, stored now or later. It returns how many taps it
	// flagged now.
	AddHotlist(ctx context.Context, entries []HotlistEntry) (flagged int, err error)

	// Compensation returns the compensation lines booked in a period,
	// read from the roll-ups (never by scanning raw taps), sorted by
	// adjusts, carrier, category, funding, kind, route and day in byte
	// order.
	Compensation(ctx context.Context, q Query) ([]Line, error)
	// TapLines recomputes from the raw taps and their judgements the
	// lines of the statement of period that adjusts adjusts ("" for the
	// period's own statement), sorted like Compensation. It scans taps:
	// it is for audits (and tests) that check the roll-up, not for
	// reports.
	TapLines(ctx context.Context, period, adjusts string) ([]Line, error)
	// Statements returns the statements of a period: its own first, then
	// its adjustment statements by the period they adjust. A closed
	// period's come as they were closed; an open period's are drafts
	// read from the roll-up, and its own statement is there even without
	// lines.
	Statements(ctx context.Context, period string) ([]Statement, error)
	// CloseStatements closes period: with ingest held off, it re-rates
	// every ride still queued for re-rating (Rerate), reads the period's
	// statements with the rides they hold back (Statement.Held), has
	// seal fill in each one's hash and signature, and stores them
	// closed, all in one transaction. From
	// then on the statements never change; rides of the period that
	// arrive later are booked into an adjustment statement of the next
	// open period (Book). Closing a closed period fails with
	// ErrPeriodClosed.
	CloseStatements(ctx context.Context, period string, closedAt time.Time, seal Sealer) ([]Statement, error)
	// ClosedPeriods lists the closed periods, oldest first.
	ClosedPeriods(ctx context.Context) ([]string, error)
	// Carriers lists every carrier that rides were ever booked for, in
	// byte order, so that a report can tell a mistyped carrier from one
	// without rides this month. It reads the roll-up (no raw taps).
	Carriers(ctx context.Context) ([]string, error)

	// Devices returns per-device counts of the taps of a period, sorted
	// by device.
	Devices(ctx context.Context, period string) ([]DeviceStats, error)
	// Gaps returns the gaps, open and closed, revealed by taps of a
	// period (recon.Gap.Period), by device and first sequence number.
	Gaps(ctx context.Context, period string) ([]recon.Gap, error)
	// Anomalies returns the anomalies of the taps of a period, by kind,
	// device and sequence number.
	Anomalies(ctx context.Context, period string) ([]recon.Anomaly, error)
	// OpenGaps returns the number of open gaps of all devices and the
	// number of taps they miss.
	OpenGaps(ctx context.Context) (gaps, missing int64, err error)

	// Quarantined lists the batches quarantined with Received in
	// [from, to), oldest first; a zero from or to leaves that end
	// unbounded. Received comes back in UTC, truncated to microseconds.
	Quarantined(ctx context.Context, from, to time.Time) ([]ingest.Rejected, error)
	// TapCount returns the number of stored taps, for reconciliation
	// against what the validators report having sent.
	TapCount(ctx context.Context) (int64, error)
	// Taps returns up to limit stored taps of device with a sequence
	// number above after, in sequence order, so a device's history can be
	// audited page by page. Times come back in UTC, truncated to
	// microseconds.
	Taps(ctx context.Context, device string, after uint64, limit int) ([]tap.Tap, error)
	// Proof keeps what re-rating needs and decides (clearing/rerate).
	Proof

	// CardTaps returns up to q.Limit taps of the cards q.Cards with a
	// time in [q.From, q.To), newest first (TapCursor order), after or
	// before q's cursor, so that a card holder's rides can be read page by
	// page. It reads by card and time, never scanning other cards' taps.
	// A query that fails CardTapQuery.Validate fails with
	// ErrInvalidQuery. Times come back in UTC, truncated to microseconds.
	CardTaps(ctx context.Context, q CardTapQuery) ([]tap.Tap, error)
	// Close releases the store's connections.
	Close() error
}

// Both implementations are handed to ingest.Processor as its Store.
var _ ingest.Store = Store(nil)

// Options configures an implementation.
type Options struct {
	// Location is the city's time zone; a tap belongs to the month its
	// time falls in there (tap.Period). nil means UTC. A store must be
	// opened with the same Location for its whole life: the month of a
	// stored tap is fixed when it is added. The stores record the zone
	// they were first used with and refuse to open with another.
	Location *time.Location
	// Limits are the thresholds of the reconciliation checks AddTaps
	// makes (time running backwards, cloned cards).
	Limits recon.Limits
	// Now stamps gaps when they open and close (default time.Now).
	Now func() time.Time
	// CardMACKeys gives re-rating the Transaction MAC keys of EV2/EV3
	// cards, from clearing's HSM, to verify the card's signature on each
	// of their rides (clearing/cardmac). nil: such rides wait
	// (card-mac-unchecked) until a store that has them judges them.
	CardMACKeys CardMACKeys
}

// CardMACKeys derives cards' Transaction MAC keys (cardmac.HSMKeys over
// clearing's HSM implements it).
type CardMACKeys interface {
	// CardMACKey returns the AppTransactionMACKey of the card with real
	// UID uid at key version version.
	CardMACKey(ctx context.Context, uid []byte, version uint8) ([16]byte, error)
}

// Clock returns o.Now, or time.Now when it is nil.
func (o Options) Clock() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

// Zone returns o.Location, or UTC when it is nil.
func (o Options) Zone() *time.Location {
	if o.Location != nil {
		return o.Location
	}
	return time.UTC
}

// Query selects compensation lines.
type Query struct {
	// Period is the accounting month, "YYYY-MM" in the city's time zone;
	// required.
	Period string
	// Carrier limits the lines to one carrier; "" means all carriers.
	Carrier string
	// ByRoute and ByDay split the lines by route and by the day of the
	// ride; without them Route and Day are "" in every line.
	ByRoute, ByDay bool
}

// Line is what one funding source owes one carrier for one benefit
// category in a period. Amounts are in kopiyky.
type Line struct {
	// Adjusts is "" for rides of the period itself; for rides that
	// arrived after their own period was closed it is that period, and
	// the line belongs to the adjustment statement of it.
	Adjusts  string
	Carrier  string
	Category string
	Funding  string
	// Kind is "" for rides paid as clearing re-rated them, "released"
	// for held rides a person released (rerate.KindReleased): those
	// appear as lines of their own.
	Kind string
	// Route and Day ("YYYY-MM-DD", the day of the ride in the city's
	// time zone) are set only when the query asked for them.
	Route string
	Day   string
	// Rides is the number of compensable rides: accepted, committed on the
	// card, and with a compensation above zero.
	Rides int64
	// FareKop is the sum of full fares of those rides, ChargedKop what the
	// riders paid from their purses, CompensationKop what is owed.
	FareKop         int64
	ChargedKop      int64
	CompensationKop int64
}

// Add adds the amounts of o to l.
func (l *Line) Add(o Line) {
	l.Rides += o.Rides
	l.FareKop += o.FareKop
	l.ChargedKop += o.ChargedKop
	l.CompensationKop += o.CompensationKop
}

// Statement is what the city owes for the rides booked in one period:
// the period's own rides, or (Adjusts set) the late rides of an earlier,
// closed period. A draft is read live from the roll-up; a closed one is
// frozen, hashed and signed.
type Statement struct {
	Period  string
	Adjusts string
	// Closed is false for a draft; ClosedAt, Hash, Signature and KeyRef
	// are set only when it is true.
	Closed   bool
	ClosedAt time.Time
	// Lines are per carrier, category, funding source and kind, sorted
	// so; each has Adjusts equal to the statement's.
	Lines []Line
	// ClosedBy names who closed the period (a staff account, or the
	// operator the command line named); it is part of the signed
	// content from form 2 on. Empty in statements closed before it was
	// recorded.
	ClosedBy string
	// Form is the version of the canonical form that Hash is over (see
	// clearing/statement): 1 for statements closed before ClosedBy and
	// KeyFingerprint were recorded, 2 for those closed before each
	// carrier's lines were a part of their own, 3 since.
	Form int
	// PartSeed (form 3) is the random secret from which the salt of each
	// carrier's part derives: the signed content holds a salted digest
	// of each carrier's lines, so that a carrier given its own part and
	// the others' digests learns nothing of the others' lines. It never
	// leaves clearing; nil before form 3.
	PartSeed []byte
	// Held are the rides the statement does not pay, per carrier and
	// reason (clearing/rerate): held for a person to decide, or waiting
	// for a fact clearing lacks. They are not in Lines or Total. Rides
	// belong here when their claim belongs to the statement.
	Held []HeldLine
	// Hash is the SHA-256 of the statement's canonical form, Signature
	// the Ed25519 signature over it made with the key KeyRef
	// ("sign-statement@N"), whose public key has the fingerprint
	// KeyFingerprint ("sha256:" and 64 hex digits; empty in Form 1).
	Hash           []byte
	Signature      []byte
	KeyRef         string
	KeyFingerprint string
}

// HeldTotal sums a statement's held rides.
func (s *Statement) HeldTotal() HeldLine {
	var t HeldLine
	for _, h := range s.Held {
		t.Rides += h.Rides
		t.ClaimedKop += h.ClaimedKop
	}
	return t
}

// Total sums a statement's lines.
func (s *Statement) Total() Line {
	var t Line
	for _, l := range s.Lines {
		t.Add(l)
	}
	return t
}

// Sealer fills in a statement's ClosedBy, Form, PartSeed,
// KeyFingerprint, Hash, Signature and KeyRef from its other fields; CloseStatements calls it
// for each statement it closes and stores what it filled in. A Sealer
// that fails stops the close: nothing is stored.
type Sealer func(ctx context.Context, s *Statement) error

// ErrPeriodClosed is wrapped by CloseStatements when the period is closed
// already.
var ErrPeriodClosed = errors.New("period is closed already")

// HotlistEntry says that a card is blocked from a time on.
type HotlistEntry struct {
	Card uint64
	From time.Time
	// Reason is why, as the hotlist names it; ReasonBenefitRevoked
	// withdraws the card's benefits (re-rating holds its benefit rides)
	// but does not deny its rides, so such an entry flags no tap.
	Reason string
}

// ReasonBenefitRevoked is the hotlist reason that withdraws a card's
// benefits only (validator/hotlist, registry.ReasonBenefitRevoked).
const ReasonBenefitRevoked = "benefit-revoked"

// DeviceStats counts one device's taps of a period.
type DeviceStats struct {
	Device string
	// Taps is the number stored, Duplicates the repeats received.
	Taps       int64
	Duplicates int64
	// FirstSeq and LastSeq are the lowest and highest sequence numbers
	// stored.
	FirstSeq, LastSeq uint64
}

// Book returns the statement a ride of month period is booked into, given
// the closed periods: the period itself while it is open; otherwise the
// first later period that is not closed, as an adjustment of the ride's
// own period.
func Book(period string, closed map[string]bool) (into, adjusts string) {
	if !closed[period] {
		return period, ""
	}
	p, err := ParsePeriod(period)
	if err != nil {
		// A month beyond year 9999 cannot have been closed.
		return period, ""
	}
	for {
		p = p.AddDate(0, 1, 0)
		if next := p.Format("2006-01"); !closed[next] {
			return next, period
		}
	}
}

// Bounds returns the first instant of period and of the month after it
// in loc.
func Bounds(period string, loc *time.Location) (from, to time.Time, err error) {
	p, err := ParsePeriod(period)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	from = time.Date(p.Year(), p.Month(), 1, 0, 0, 0, 0, loc)
	return from, from.AddDate(0, 1, 0), nil
}

// Compensable reports whether t counts towards compensation when it is
// stored: a benefit ride that was accepted, that the card really
// recorded, and whose amounts some tariff could owe (SaneAmounts). A tap
// whose card left the field before the commit is kept as evidence but
// owes nothing, since the card's benefit counters did not move; a tap
// with an impossible amount is kept, and held by re-rating
// (clearing/rerate), which also judges every compensable ride before its
// statement is closed.
func Compensable(t *tap.Tap) bool {
	return t.Result == tap.Accepted && t.CardCommitted && t.CompensationKop > 0 && SaneAmounts(t)
}

// MaxAmountKop is the largest amount a tariff can hold
// (validator/tariff/FORMAT.md: at most 1,000,000.00 UAH).
const MaxAmountKop = 100_000_000

// SaneAmounts reports whether t's amounts could come from some tariff:
// none negative, none above MaxAmountKop. A validator sends such amounts
// only when it is broken or dishonest.
func SaneAmounts(t *tap.Tap) bool {
	ok := func(k int64) bool { return k >= 0 && k <= MaxAmountKop }
	return ok(t.FareKop) && ok(t.ChargedKop) && ok(t.CompensationKop)
}

// ParsePeriod parses an accounting month "YYYY-MM" and returns midnight
// UTC on its first day. It accepts exactly that form, so that a period
// string can be compared as stored.
func ParsePeriod(s string) (time.Time, error) {
	p, err := time.Parse("2006-01", s)
	// time.Parse is lenient about some forms; the round trip is not.
	if err != nil || p.Format("2006-01") != s {
		return time.Time{}, fmt.Errorf("period %q: want YYYY-MM, e.g. 2026-11", s)
	}
	return p, nil
}

// Drafts groups the lines booked in an open period (sorted by adjusts
// first, as Compensation returns them without route and day) into its
// draft statements: its own, always, then one per adjusted period.
func Drafts(period string, lines []Line) []Statement {
	out := []Statement{{Period: period}}
	for _, l := range lines {
		if last := &out[len(out)-1]; l.Adjusts != last.Adjusts {
			out = append(out, Statement{Period: period, Adjusts: l.Adjusts})
		}
		last := &out[len(out)-1]
		last.Lines = append(last.Lines, l)
	}
	return out
}

// AdjustsHeld is a held line of the statement that adjusts Adjusts (""
// for the period's own statement).
type AdjustsHeld struct {
	Adjusts string
	HeldLine
}

// DraftsHeld is Drafts with the held lines (sorted by adjusts, carrier and
// reason) in the statements they belong to; a statement that holds back
// rides and pays none is there too.
func DraftsHeld(period string, lines []Line, held []AdjustsHeld) []Statement {
	out := Drafts(period, lines)
	for _, h := range held {
		i := slices.IndexFunc(out, func(s Statement) bool { return s.Adjusts == h.Adjusts })
		if i < 0 {
			out = append(out, Statement{Period: period, Adjusts: h.Adjusts})
			i = len(out) - 1
		}
		out[i].Held = append(out[i].Held, h.HeldLine)
	}
	// The own statement first, then the adjustments by the period they
	// adjust.
	slices.SortStableFunc(out[1:], func(a, b Statement) int { return strings.Compare(a.Adjusts, b.Adjusts) })
	return out
}

// CompareLines orders lines as the stores return them: by adjusts,
// carrier, category, funding, kind, route and day, in byte order.
func CompareLines(a, b Line) int {
	return cmp.Or(strings.Compare(a.Adjusts, b.Adjusts), strings.Compare(a.Carrier, b.Carrier),
		strings.Compare(a.Category, b.Category), strings.Compare(a.Funding, b.Funding),
		strings.Compare(a.Kind, b.Kind), strings.Compare(a.Route, b.Route), strings.Compare(a.Day, b.Day))
}

// CompareHeld orders held lines by carrier and reason.
func CompareHeld(a, b HeldLine) int {
	return cmp.Or(strings.Compare(a.Carrier, b.Carrier), strings.Compare(a.Reason, b.Reason))
}
