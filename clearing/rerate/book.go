package rerate

import (
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// KindReleased is the line kind of rides a person released: they appear
// in a statement as lines of their own.
const KindReleased = "released"

// Booking is where a ride's payment is booked: the statement of period
// Into, as an adjustment of Adjusts when that is not "", on a line of
// Kind ("" for rides paid as re-rated). The zero Booking is unpaid.
type Booking struct {
	Into, Adjusts, Kind string
}

// Paid reports whether b books a payment.
func (b Booking) Paid() bool { return b.Into != "" }

// Record is what clearing has recorded about a judged ride.
type Record struct {
	State          State
	Reason, Detail string
	// Booking and Paid say where the ride's payment is booked and what
	// it pays; the zero Booking for an unpaid ride.
	Booking Booking
	Paid    Pay
	// Release is what a release would pay, when Priced.
	Release Pay
	Priced  bool
	// Decision records a person's release or rejection.
	Decision Decision
}

// Decision is a person's release or rejection of a held ride.
type Decision struct {
	By, Note string
	At       time.Time
}

// Claim returns the statement r's claim was booked into at ingest (its
// own period, or the later one Booked names, as an adjustment).
func Claim(r *Ride, period string) Booking {
	if r.Booked != "" {
		return Booking{Into: r.Booked, Adjusts: period}
	}
	return Booking{Into: period}
}

// Ingested returns the record of ride r of period that clearing has not
// judged: paid where ingest booked it when store.Compensable says it
// counts, unpaid otherwise.
func Ingested(r *Ride, period string) Record {
	if !store.Compensable(r.Tap) {
		return Record{}
	}
	return Record{State: Paid, Booking: Claim(r, period),
		Paid: Pay{r.Category, r.Funding, r.FareKop, r.ChargedKop, r.CompensationKop}}
}

// Delta is a change to one roll-up row.
type Delta struct {
	Booking
	Carrier, Category, Funding, Route string
	// Day is the ride's day in the city, YYYY-MM-DD.
	Day                                         string
	Rides, FareKop, ChargedKop, CompensationKop int64
}

func delta(b Booking, r *Ride, day string, p Pay, sign int64) Delta {
	return Delta{Booking: b, Carrier: r.Carrier, Category: p.Category, Funding: p.Funding, Route: r.Route, Day: day,
		Rides: sign, FareKop: sign * p.FareKop, ChargedKop: sign * p.ChargedKop, CompensationKop: sign * p.CompensationKop}
}

// frozen reports whether cur, recorded for ride r of period, can no
// longer change by itself: a person decided it, or the statement that
// holds its payment (or, unpaid, its claim) is closed and it waits for
// nothing.
func frozen(r *Ride, period string, cur Record, closed map[string]bool) bool {
	if cur.State.Decided() {
		return true
	}
	if cur.State == Waiting {
		return false
	}
	b := cur.Booking
	if !b.Paid() {
		b = Claim(r, period)
	}
	return closed[b.Into]
}

// Next returns what clearing records of ride r (of period, on day) after
// the verdict v, given its current record cur and the closed periods,
// with the changes to the roll-up; changed is false when nothing
// changes. A payment moves only inside open statements: a newly paid ride
// is booked into its own period while that is open, else into the next
// open one as an adjustment (store.Book).
func Next(r *Ride, period, day string, cur Record, v Verdict, closed map[string]bool) (next Record, deltas []Delta, changed bool) {
	if frozen(r, period, cur, closed) {
		return cur, nil, false
	}
	next = Record{State: v.State, Reason: v.Reason, Detail: v.Detail, Release: v.Release, Priced: v.Priced}
	if v.State == Paid {
		// A paid ride records where it is paid, nothing else: a ride
		// ingest booked and re-rating confirms needs no record at all.
		next.Reason, next.Detail, next.Release, next.Priced = "", "", Pay{}, false
	}
	if v.State == Paid && cur.Booking.Paid() && cur.Paid == v.Owed {
		next.Booking, next.Paid = cur.Booking, cur.Paid
	} else {
		if cur.Booking.Paid() {
			deltas = append(deltas, delta(cur.Booking, r, day, cur.Paid, -1))
		}
		if v.State == Paid {
			into, adjusts := store.Book(period, closed)
			next.Booking, next.Paid = Booking{Into: into, Adjusts: adjusts}, v.Owed
			deltas = append(deltas, delta(next.Booking, r, day, next.Paid, 1))
		}
	}
	return next, deltas, next != cur
}

// Errors of Decide.
var (
	// ErrNotHeld: the ride is not held or waiting, so there is nothing
	// to decide.
	ErrNotHeld = errors.New("the ride is not held")
	// ErrNotPriced: clearing cannot say what the ride owes, so it cannot
	// be released.
	ErrNotPriced = errors.New("clearing cannot price the ride")
)

// Decide applies a person's decision to held ride r: release pays it as
// re-rated (Record.Release), into its own period while that is open,
// else as an adjustment of it in the next open one, on a line of its own
// (KindReleased); a rejection never pays it. The decision is final.
func Decide(r *Ride, period, day string, cur Record, release bool, d Decision, closed map[string]bool) (Record, []Delta, error) {
	if !cur.State.Open() {
		return cur, nil, fmt.Errorf("%s/%d: %w (it is %s)", r.Device, r.Seq, ErrNotHeld, cur.State)
	}
	if cur.Booking.Paid() {
		// A held ride is never paid; a record saying so is broken.
		return cur, nil, fmt.Errorf("%s/%d is held but booked as paid into %s", r.Device, r.Seq, cur.Booking.Into)
	}
	next := cur
	next.Decision = d
	if !release {
		next.State = Rejected
		return next, nil, nil
	}
	if !cur.Priced {
		return cur, nil, fmt.Errorf("%s/%d: %w (%s): reject it, or give clearing what it lacks and let it re-rate the ride", r.Device, r.Seq, ErrNotPriced, cur.Reason)
	}
	into, adjusts := store.Book(period, closed)
	next.State, next.Booking, next.Paid = Released, Booking{Into: into, Adjusts: adjusts, Kind: KindReleased}, cur.Release
	return next, []Delta{delta(next.Booking, r, day, next.Paid, 1)}, nil
}
