package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/validator/tap"
)

// Proof is the part of a store that keeps what clearing needs to prove
// the rides it pays for (clearing/rerate): the signed tariffs, the
// registry's records of cards, the routes carriers run, the judgement of
// each ride, and people's decisions on held rides.
type Proof interface {
	// AddTariff keeps a signed tariff. The caller has verified its
	// signature (clearing/tariffs does). Adding a kept version again
	// with the same digest changes nothing and reports added false;
	// another digest for a kept version fails with ErrTariffConflict.
	// Rides that wait for the version are queued for re-rating.
	AddTariff(ctx context.Context, t TariffFile) (added bool, err error)
	// Tariffs lists the kept tariffs by version, files included only
	// when withFiles is set.
	Tariffs(ctx context.Context, withFiles bool) ([]TariffFile, error)

	// SetCardRecords replaces what clearing holds from the registry about
	// each card in recs, and records feed as how far clearing has read
	// the registry, in one transaction. The rides of open periods of
	// every card whose records changed are queued for re-rating, and so
	// are the waiting rides of every card when feed.AsOf moves on. It
	// returns how many cards changed.
	SetCardRecords(ctx context.Context, recs []CardRecord, feed Feed) (changed int, err error)
	// Feed returns how far clearing has read the registry's records.
	Feed(ctx context.Context) (Feed, error)
	// CardRecord returns what clearing holds about one card; ok is false
	// when it holds nothing.
	CardRecord(ctx context.Context, card uint64) (rec CardRecord, ok bool, err error)

	// SetRoutes makes routes the list of the routes carrier runs (at
	// most MaxRoutes); an empty list removes it, so that the carrier's
	// routes are no longer checked. Rides of the carrier in open periods
	// are queued for re-rating.
	SetRoutes(ctx context.Context, carrier string, routes []string) error
	// Routes returns the carriers that have a list and their routes,
	// sorted.
	Routes(ctx context.Context) (map[string][]string, error)

	// Rerate takes up to limit runs of rides that AddTaps, AddTariff,
	// SetCardRecords and SetRoutes queued, oldest first, judges the
	// rides of the cards they name (rerate.Card) and records the
	// verdicts: a ride found wrong leaves the roll-up, one found right
	// enters it (rerate.Next), and the card's evidence is linked. Several
	// re-raters may run at once; each run is taken by one of them, and a
	// card is judged by one at a time. CloseStatements re-rates whatever
	// is still queued before it closes a period.
	Rerate(ctx context.Context, limit int) (RerateStats, error)
	// PendingRerate returns how many runs wait for Rerate.
	PendingRerate(ctx context.Context) (int64, error)

	// Held lists held and waiting rides (and, with q.Decided, decided
	// ones) of a period, oldest first, paged.
	Held(ctx context.Context, q HeldQuery) ([]HeldRide, error)
	// Decide releases or rejects held rides, all of them or none: a ride
	// that is not held, or (released) that clearing cannot price, fails
	// the call with ErrNotHeld or ErrNotPriced. A released ride is paid
	// as re-rated, on a line of its own, in its period's statement while
	// that is open, else as an adjustment in the next open one. It
	// returns the rides as decided.
	Decide(ctx context.Context, d HeldDecision) ([]HeldRide, error)
	// Proof returns, per carrier, how the compensable rides of a period
	// stand: paid and confirmed by the card's later evidence, paid
	// unconfirmed, and held or waiting.
	Proof(ctx context.Context, period string) ([]ProofLine, error)
}

// Limits of the proof records.
const (
	// MaxTariffBytes bounds a kept tariff's zip archive (what the
	// registry publishes, well above any city's tariff).
	MaxTariffBytes = 16 << 20
	// MaxRoutes bounds one carrier's list of routes.
	MaxRoutes = 10_000
	// MaxRecordEntitlements bounds the entitlements of one card's record
	// (a resident's benefits over the years).
	MaxRecordEntitlements = 64
	// MaxRecordSpans bounds the revocation spans of one card's record.
	MaxRecordSpans = 64
	// MaxHeldPage is the most held rides one Held call returns, and
	// MaxDecide the most rides one Decide call decides.
	MaxHeldPage = 1000
	MaxDecide   = 1000
	// MaxNote bounds a decision's written reason.
	MaxNote = 1000
)

// Errors of Proof.
var (
	// ErrTariffConflict: a tariff version clearing keeps arrived with
	// different files.
	ErrTariffConflict = errors.New("a different tariff of this version is kept")
	// ErrNotHeld: Decide was given a ride that is not held or waiting.
	ErrNotHeld = errors.New("ride is not held")
	// ErrNotPriced: Decide was asked to release a ride clearing cannot
	// price (its tariff version is unknown, or it prices no benefit of
	// the ride's category there).
	ErrNotPriced = errors.New("ride cannot be priced for a release")
	// ErrInvalidDecision: a decision without a person, a reason or rides.
	ErrInvalidDecision = errors.New("invalid decision")
)

// TariffFile is a signed tariff as clearing keeps it.
type TariffFile struct {
	Version uint32
	// Digest is tariff.Digest of its files, KeyRef the key that signed
	// it ("sign-tariff@1").
	Digest [32]byte
	KeyRef string
	// Source says where it came from: a directory or the registry's URL.
	Source string
	Added  time.Time
	// Zip holds the signed directory as the registry publishes it.
	Zip []byte
}

// CardRecord is what the registry says about one card: the entitlements
// of its holder, ended ones too, and the spans in which its benefits
// were revoked. It holds no personal data.
type CardRecord struct {
	Card         uint64
	Entitlements []RecordEntitlement
	Revoked      []RecordSpan
}

// RecordEntitlement is one benefit of a card's holder.
type RecordEntitlement struct {
	// Category is the card category code, 1..65535.
	Category uint16 `json:"category"`
	// ValidFrom and ValidTo are the first and last day, YYYY-MM-DD, in
	// the city's time zone.
	ValidFrom    string `json:"valid_from"`
	ValidTo      string `json:"valid_to"`
	MonthlyLimit int    `json:"monthly_limit"`
	Funding      string `json:"funding"`
}

// RecordSpan is a span [From, To) in which a card's benefits were
// revoked; a zero To is still open.
type RecordSpan struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// Validate reports the first field of r that cannot be right.
func (r *CardRecord) Validate() error {
	if r.Card == 0 {
		return errors.New("card record: card 0")
	}
	if len(r.Entitlements) > MaxRecordEntitlements || len(r.Revoked) > MaxRecordSpans {
		return fmt.Errorf("card record: %d entitlements and %d revocations, at most %d and %d",
			len(r.Entitlements), len(r.Revoked), MaxRecordEntitlements, MaxRecordSpans)
	}
	for i, e := range r.Entitlements {
		from, err1 := time.Parse(time.DateOnly, e.ValidFrom)
		to, err2 := time.Parse(time.DateOnly, e.ValidTo)
		switch {
		case e.Category == 0:
			return fmt.Errorf("card record: entitlement %d: category 0", i+1)
		case err1 != nil || err2 != nil || to.Before(from):
			return fmt.Errorf("card record: entitlement %d: dates %q to %q, want YYYY-MM-DD, the last not before the first", i+1, e.ValidFrom, e.ValidTo)
		case e.MonthlyLimit < 0 || e.MonthlyLimit > 255:
			return fmt.Errorf("card record: entitlement %d: monthly limit %d, want 0 to 255", i+1, e.MonthlyLimit)
		case e.Funding != "city" && e.Funding != "state":
			return fmt.Errorf("card record: entitlement %d: funding %q, want city or state", i+1, e.Funding)
		}
	}
	for i, s := range r.Revoked {
		if s.From.IsZero() || (!s.To.IsZero() && !s.To.After(s.From)) {
			return fmt.Errorf("card record: revocation %d: from %s to %s", i+1, s.From, s.To)
		}
	}
	return nil
}

// Feed is how far clearing has read the registry's records of cards.
type Feed struct {
	// Next is the registry's card event sequence number read up to.
	Next uint64
	// AsOf is when the records were last complete: the registry had no
	// later change. Zero when clearing never caught up.
	AsOf time.Time
}

// RerateStats says what one Rerate call did.
type RerateStats struct {
	// Runs is the number of queued runs taken, Cards the cards judged,
	// Rides the rides judged, Changed the rides whose record changed.
	Runs, Cards, Rides, Changed int
}

// Ride identifies a tap for Decide.
type Ride struct {
	Device string
	Seq    uint64
}

// HeldQuery selects held rides.
type HeldQuery struct {
	// Period is the rides' month; required.
	Period string
	// Carrier and Reason narrow the list when set.
	Carrier, Reason string
	// Decided lists released and rejected rides as well.
	Decided bool
	// Limit is the page size, 1 to MaxHeldPage; After continues after
	// that ride (the last of the previous page).
	Limit int
	After Ride
}

// HeldRide is a judged ride with what clearing found and decided.
type HeldRide struct {
	Tap tap.Tap
	// State is "held", "waiting", "released" or "rejected" (the
	// rerate.State values); Reason and Detail say why.
	State, Reason, Detail string
	// Release is what a release pays, when Priced.
	Release Amounts
	Priced  bool
	// Confirmed says a later tap of the card names the ride.
	Confirmed bool
	// Into and Adjusts name the statement a released ride is paid in.
	Into, Adjusts string
	// DecidedBy, DecidedAt and Note record a person's decision.
	DecidedBy string
	DecidedAt time.Time
	Note      string
}

// Amounts is what a ride is paid.
type Amounts struct {
	Category, Funding                    string
	FareKop, ChargedKop, CompensationKop int64
}

// HeldDecision releases or rejects held rides.
type HeldDecision struct {
	Rides []Ride
	// Release pays them as re-rated; false rejects them.
	Release bool
	// By names the person (their role and name, as the caller
	// authenticated them); Note is their written reason.
	By, Note string
	At       time.Time
}

// Validate reports what is wrong with d.
func (d *HeldDecision) Validate() error {
	switch {
	case len(d.Rides) == 0 || len(d.Rides) > MaxDecide:
		return fmt.Errorf("%w: %d rides, decide 1 to %d at once", ErrInvalidDecision, len(d.Rides), MaxDecide)
	case d.By == "":
		return fmt.Errorf("%w: no person; a decision records who made it", ErrInvalidDecision)
	case d.Note == "" || len(d.Note) > MaxNote:
		return fmt.Errorf("%w: the written reason has %d bytes, give 1 to %d", ErrInvalidDecision, len(d.Note), MaxNote)
	case d.At.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalidDecision)
	}
	seen := make(map[Ride]bool, len(d.Rides))
	for _, r := range d.Rides {
		if r.Device == "" || r.Seq == 0 {
			return fmt.Errorf("%w: ride %q/%d", ErrInvalidDecision, r.Device, r.Seq)
		}
		if seen[r] {
			return fmt.Errorf("%w: ride %s/%d is named twice", ErrInvalidDecision, r.Device, r.Seq)
		}
		seen[r] = true
	}
	return nil
}

// Validate reports what is wrong with q.
func (q *HeldQuery) Validate() error {
	if _, err := ParsePeriod(q.Period); err != nil {
		return fmt.Errorf("held rides: %w", err)
	}
	if q.Limit < 1 || q.Limit > MaxHeldPage {
		return fmt.Errorf("held rides: limit %d, want 1 to %d", q.Limit, MaxHeldPage)
	}
	return nil
}

// ProofLine says how one carrier's compensable rides of a period stand.
type ProofLine struct {
	Carrier string
	// Paid are the rides paid (in the period's statement or an
	// adjustment of it), CompensationKop what they owe; Confirmed of
	// them a later tap of the card names.
	Paid, Confirmed int64
	CompensationKop int64
	// Held and Waiting are the rides not paid for now, HeldKop what they
	// claim.
	Held, Waiting int64
	HeldKop       int64
}

// Unconfirmed returns the paid rides no later tap of the card names yet.
func (l ProofLine) Unconfirmed() int64 { return l.Paid - l.Confirmed }

// HeldLine is one carrier's held or waiting rides of one reason in a
// statement: what the statement does not pay, and why.
type HeldLine struct {
	Carrier, Reason string
	Rides           int64
	// ClaimedKop is the compensation the rides claim.
	ClaimedKop int64
}
