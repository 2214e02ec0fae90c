// Package fare decides what a tap costs and whether it is allowed. Decide is
// a pure function: card state, tariff, hotlist and device context in, a
// decision and the card writes to perform out. No clock, disk or card inside;
// the caller brings now.
package fare

import (
	"time"

	"github.com/citycard/transit/validator/tap"
)

// Reasons a tap is accepted or denied, as recorded in tap.Tap.Reason.
const (
	ReasonOK                = "ok"
	ReasonHotlisted         = "hotlisted"
	ReasonBlocked           = "card-blocked"
	ReasonExpired           = "card-expired"
	ReasonInsufficientFunds = "insufficient-funds"
	ReasonNoFare            = "no-fare-for-carrier"
	ReasonPassback          = "already-paid"
)

// Products that can pay for a ride.
const (
	ProductPurse   = "purse"
	ProductBenefit = "benefit"
)

// Tariff is what a validator needs to price a ride.
type Tariff struct {
	Version uint32
	// FareKop is the full single fare per carrier code, in kopiyky.
	FareKop map[string]int64
	// Categories are the benefit categories by code.
	Categories map[string]Category
	// Passback is how long the same card on the same vehicle is treated as
	// the same ride (not charged again).
	Passback time.Duration
}

// Category is a benefit category: who pays the discount and how much it is.
type Category struct {
	Code string
	// DiscountPct is the share of the fare the rider does not pay
	// (100 = free ride). The carrier is compensated for that share.
	DiscountPct int64
	// Funding names the budget that compensates the carrier: "city" or
	// "state".
	Funding string
}

// Entitlement is a benefit written on the card.
type Entitlement struct {
	Category  string
	ValidFrom time.Time
	ValidTo   time.Time // exclusive
}

// Card is what the validator read from the card.
type Card struct {
	Number       uint64
	Expiry       time.Time // exclusive; zero means no expiry
	Blocked      bool
	PurseKop     int64
	Entitlements []Entitlement
	// LastTap is the newest tap in the card's own log, for anti-passback.
	LastTap *LastTap
}

// LastTap is the part of the card's tap log a decision looks at.
type LastTap struct {
	Time    time.Time
	Vehicle string
}

// Hotlist says whether a card is blocked centrally.
type Hotlist interface {
	Contains(card uint64) bool
}

// Device is where the tap happens.
type Device struct {
	ID, Carrier, Route, Vehicle string
}

// Decision is the outcome of one tap and what must be written to the card
// for it.
type Decision struct {
	Result          tap.Result
	Reason          string
	Product         string
	Category        string
	Funding         string
	FareKop         int64
	ChargedKop      int64
	CompensationKop int64
	// DebitKop is what to take from the purse on the card (equals
	// ChargedKop); zero means no purse write.
	DebitKop int64
	// LogTap says whether the tap is written to the card's tap log.
	LogTap bool
}

// Decide prices one tap. It never fails: every input yields a decision, and
// a denial carries its reason.
func Decide(c Card, t *Tariff, hl Hotlist, d Device, now time.Time) Decision {
	deny := func(reason string) Decision {
		return Decision{Result: tap.Denied, Reason: reason}
	}
	if hl != nil && hl.Contains(c.Number) {
		return deny(ReasonHotlisted)
	}
	if c.Blocked {
		return deny(ReasonBlocked)
	}
	if !c.Expiry.IsZero() && !now.Before(c.Expiry) {
		return deny(ReasonExpired)
	}
	if c.LastTap != nil && c.LastTap.Vehicle == d.Vehicle && t.Passback > 0 {
		if age := now.Sub(c.LastTap.Time); age >= 0 && age < t.Passback {
			return Decision{Result: tap.AlreadyPaid, Reason: ReasonPassback}
		}
	}
	full, ok := t.FareKop[d.Carrier]
	if !ok {
		return deny(ReasonNoFare)
	}
	dec := Decision{Result: tap.Accepted, Reason: ReasonOK, Product: ProductPurse, FareKop: full, ChargedKop: full}
	if cat, ok := bestBenefit(c.Entitlements, t, now); ok {
		discount := full * cat.DiscountPct / 100
		dec.Product = ProductBenefit
		dec.Category = cat.Code
		dec.Funding = cat.Funding
		dec.ChargedKop = full - discount
		dec.CompensationKop = discount
	}
	if dec.ChargedKop > c.PurseKop {
		return Decision{Result: tap.Denied, Reason: ReasonInsufficientFunds, FareKop: full,
			Category: dec.Category, Funding: dec.Funding}
	}
	dec.DebitKop = dec.ChargedKop
	dec.LogTap = true
	return dec
}

// bestBenefit picks the valid entitlement with the largest discount; on a
// tie the lexically smaller code wins so the choice is deterministic.
func bestBenefit(ents []Entitlement, t *Tariff, now time.Time) (Category, bool) {
	var best Category
	found := false
	for _, e := range ents {
		if now.Before(e.ValidFrom) || !now.Before(e.ValidTo) {
			continue
		}
		cat, ok := t.Categories[e.Category]
		if !ok {
			continue // a category this tariff does not know gives nothing
		}
		if !found || cat.DiscountPct > best.DiscountPct ||
			(cat.DiscountPct == best.DiscountPct && cat.Code < best.Code) {
			best, found = cat, true
		}
	}
	return best, found
}
