// Package store defines clearing's durable state: every tap ever received,
// stored once per (device, sequence), the batches that were quarantined,
// and a monthly roll-up from which compensation statements are read
// without scanning raw taps.
//
// The interface is implemented by store/postgres (production) and
// store/sqlite (the embedded demo store); both pass the contract suite in
// store/storetest. This package imports no database driver so that code
// which only needs the interface does not drag one along.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/validator/tap"
)

// Store is clearing's durable state.
type Store interface {
	// AddTaps stores taps in one transaction, ignoring any (device, seq)
	// already stored or repeated within taps (idempotent), maintains the
	// roll-ups, and reports how many were new and how many repeats. A
	// tap that fails tap.Validate fails the whole call and nothing is
	// stored.
	AddTaps(ctx context.Context, taps []tap.Tap) (added, duplicates int, err error)
	// Quarantine keeps a rejected batch with its reason; it is never
	// applied.
	Quarantine(ctx context.Context, q ingest.Rejected) error
	// Compensation returns the compensation lines of a period, read from
	// the roll-ups (never by scanning raw taps), sorted by carrier,
	// category and funding in byte order.
	Compensation(ctx context.Context, q Query) ([]Line, error)
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
	// stored tap is fixed when it is added.
	Location *time.Location
}

// Query selects compensation lines.
type Query struct {
	// Period is the accounting month, "YYYY-MM" in the city's time zone;
	// required.
	Period string
	// Carrier limits the lines to one carrier; "" means all carriers.
	Carrier string
}

// Line is what one funding source owes one carrier for one benefit
// category in a period. Amounts are in kopiyky.
type Line struct {
	Carrier  string
	Category string
	Funding  string
	// Rides is the number of compensable rides: accepted, committed on the
	// card, and with a compensation above zero.
	Rides int64
	// FareKop is the sum of full fares of those rides, ChargedKop what the
	// riders paid from their purses, CompensationKop what is owed.
	FareKop         int64
	ChargedKop      int64
	CompensationKop int64
}

// Compensable reports whether t counts towards compensation: a benefit
// ride that was accepted and that the card really recorded. A tap whose
// card left the field before the commit is kept as evidence but owes
// nothing, since the card's benefit counters did not move.
func Compensable(t *tap.Tap) bool {
	return t.Result == tap.Accepted && t.CardCommitted && t.CompensationKop > 0
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
