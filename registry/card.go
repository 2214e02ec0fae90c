package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/card"
)

// Status is where a card is in its life.
type Status string

// Card statuses, in lifecycle order.
const (
	StatusOrdered      Status = "ordered"      // number assigned, not yet written
	StatusPersonalised Status = "personalised" // written at the desk, not yet handed over
	StatusActive       Status = "active"       // with its holder, in use
	StatusBlocked      Status = "blocked"      // stopped by the desk; may be unblocked
	StatusLost         Status = "lost"         // reported lost; awaits replacement
	StatusStolen       Status = "stolen"       // reported stolen; awaits replacement
	StatusReplaced     Status = "replaced"     // superseded by a new card (final)
	StatusExpired      Status = "expired"      // past its validity (final)
)

// Statuses lists every status in lifecycle order.
var Statuses = []Status{StatusOrdered, StatusPersonalised, StatusActive, StatusBlocked,
	StatusLost, StatusStolen, StatusReplaced, StatusExpired}

// transitions is the card lifecycle: from each status, the statuses a card
// may move to. Nothing leaves replaced or expired. Lost and stolen cards
// may be in someone else's hands, so they never return to active: they
// are replaced. Only a card blocked by the desk may be unblocked.
var transitions = map[Status][]Status{
	StatusOrdered:      {StatusPersonalised},
	StatusPersonalised: {StatusActive, StatusLost, StatusStolen},
	StatusActive:       {StatusBlocked, StatusLost, StatusStolen, StatusExpired},
	StatusBlocked:      {StatusActive, StatusReplaced, StatusExpired},
	StatusLost:         {StatusReplaced, StatusExpired},
	StatusStolen:       {StatusReplaced, StatusExpired},
}

// Transitions returns a copy of the lifecycle table: for each status, the
// statuses a card may move to from it.
func Transitions() map[Status][]Status {
	out := make(map[Status][]Status, len(transitions))
	for from, to := range transitions {
		out[from] = slices.Clone(to)
	}
	return out
}

// CanTransition reports whether a card may move from one status to
// another.
func CanTransition(from, to Status) bool { return slices.Contains(transitions[from], to) }

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// Live reports whether a card in status s still belongs to its holder's
// current card: everything but replaced and expired. A person has at most
// one live card (the stores enforce it with a unique index), so a lost
// card is replaced, carrying its balance, rather than forgotten.
func (s Status) Live() bool { return s.Valid() && s != StatusReplaced && s != StatusExpired }

// Hotlisted reports whether validators must refuse a card in status s.
// An expired card is refused by its own expiry date.
func (s Status) Hotlisted() bool {
	return s == StatusBlocked || s == StatusLost || s == StatusStolen || s == StatusReplaced
}

// CheckPlainChange refuses a status change without a reason into a
// blocked, lost or stolen state: blocking needs a reason (Reason), which
// decides the status and is kept in the card's history, so it goes
// through a block request, never a plain status change. Every way of
// changing a status in (the API, the console's desk) asks this.
func CheckPlainChange(to Status) error {
	if to == StatusBlocked || to == StatusLost || to == StatusStolen {
		return &FieldError{Field: "status", Problem: "to block a card, block it with a reason (POST /v1/cards/{number}/block, or the desk's block form)"}
	}
	return nil
}

// TransitionError explains a refused status change. It wraps
// ErrTransition.
type TransitionError struct {
	Card     card.Number
	From, To Status
}

// Error says what was refused and what the card may do instead.
func (e *TransitionError) Error() string {
	next := transitions[e.From]
	if len(next) == 0 {
		return fmt.Sprintf("card %s is %s, which is final; it cannot become %s", e.Card, e.From, e.To)
	}
	names := make([]string, len(next))
	for i, s := range next {
		names[i] = string(s)
	}
	return fmt.Sprintf("card %s is %s; it cannot become %s (from %s it can become: %s)",
		e.Card, e.From, e.To, e.From, strings.Join(names, ", "))
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// Reason says why a card is blocked. The names are the hotlist's
// (validator/hotlist.ParseReason reads them).
type Reason string

// Reasons.
const (
	ReasonLost           Reason = "lost"
	ReasonStolen         Reason = "stolen"
	ReasonFraud          Reason = "fraud"
	ReasonBenefitRevoked Reason = "benefit-revoked"
	ReasonBlockedByDesk  Reason = "blocked-by-desk"
	ReasonReplaced       Reason = "replaced"
)

// BlockReasons are the reasons a desk may give when blocking a card.
var BlockReasons = []Reason{ReasonLost, ReasonStolen, ReasonFraud, ReasonBenefitRevoked, ReasonBlockedByDesk}

// Status returns the status a card blocked for r takes: lost and stolen
// have their own, every other reason blocks.
func (r Reason) Status() Status {
	switch r {
	case ReasonLost:
		return StatusLost
	case ReasonStolen:
		return StatusStolen
	case ReasonReplaced:
		return StatusReplaced
	}
	return StatusBlocked
}

// Card is a city card as the registry tracks it. It holds no personal
// data beyond the holder's resident id.
type Card struct {
	Number     card.Number `json:"number"`
	ResidentID int64       `json:"resident_id"`
	Status     Status      `json:"status"`
	// Reason is set while the card is blocked, lost, stolen or replaced.
	Reason Reason `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
	// Issued and Expires bound the card's validity; both go on the card.
	Issued  Date `json:"issued"`
	Expires Date `json:"expires"`
	// Replaces is the card this one replaced, ReplacedBy the card that
	// replaced this one; 0 when none.
	Replaces   card.Number `json:"replaces,omitempty"`
	ReplacedBy card.Number `json:"replaced_by,omitempty"`
	// CarriedKop is the purse balance carried over from Replaces, to be
	// credited when this card is personalised; BalanceSource says where
	// the figure came from.
	CarriedKop    int64         `json:"carried_kop"`
	BalanceSource BalanceSource `json:"balance_source,omitempty"`
	Updated       time.Time     `json:"updated"`
}

// MarshalJSON writes card numbers as 16-digit strings: JSON numbers lose
// digits above 2^53 in many clients.
func (c Card) MarshalJSON() ([]byte, error) {
	type plain Card
	return json.Marshal(struct {
		plain
		Number     string `json:"number"`
		Replaces   string `json:"replaces,omitempty"`
		ReplacedBy string `json:"replaced_by,omitempty"`
	}{plain(c), c.Number.String(), numberOrEmpty(c.Replaces), numberOrEmpty(c.ReplacedBy)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Card) UnmarshalJSON(b []byte) error {
	type plain Card
	var v struct {
		plain
		Number     string `json:"number"`
		Replaces   string `json:"replaces"`
		ReplacedBy string `json:"replaced_by"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Card(v.plain)
	return parseNumbers(&c.Number, v.Number, &c.Replaces, v.Replaces, &c.ReplacedBy, v.ReplacedBy)
}

func numberOrEmpty(n card.Number) string {
	if n == 0 {
		return ""
	}
	return n.String()
}

// parseNumbers parses pairs of (destination, JSON string); an empty
// string leaves 0.
func parseNumbers(pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		dst, s := pairs[i].(*card.Number), pairs[i+1].(string)
		if s == "" {
			*dst = 0
			continue
		}
		n, err := card.ParseNumber(s)
		if err != nil {
			return err
		}
		*dst = n
	}
	return nil
}

// Change is a status change the desk asks for: to personalised, active
// or expired, or a block with a reason.
type Change struct {
	To     Status
	Reason Reason // required for blocked, lost and stolen; empty otherwise
	Note   string // free text kept with the card
}

// Validate checks that the change is well formed and puts its note into
// NFC; whether the card's current status allows it is CanTransition's
// business.
func (c *Change) Validate() error {
	switch {
	case !c.To.Valid():
		return fieldErr("status", "%q is no card status; want one of %s", c.To, statusList())
	case c.To == StatusReplaced:
		return fieldErr("status", "a card is replaced by ordering its replacement (POST /v1/cards/{number}/replace), not by a status change")
	case c.To == StatusOrdered:
		return fieldErr("status", "a card is ordered for a resident (POST /v1/residents/{id}/cards), not by a status change")
	case c.To == StatusBlocked || c.To == StatusLost || c.To == StatusStolen:
		if !slices.Contains(BlockReasons, c.Reason) {
			return fieldErr("reason", "%q; want one of lost, stolen, fraud, benefit-revoked, blocked-by-desk", c.Reason)
		}
		if c.Reason.Status() != c.To {
			return fieldErr("reason", "%s does not go with status %s", c.Reason, c.To)
		}
	case c.Reason != "":
		return fieldErr("reason", "only a block has a reason")
	}
	return cleanField("note", &c.Note, MaxTextLen, false)
}

func statusList() string {
	names := make([]string, len(Statuses))
	for i, s := range Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// BalanceSource says where a carried purse balance came from.
type BalanceSource string

// Balance sources.
const (
	// BalanceFromClearing: the last balance clearing knows, from the taps
	// it has received. Taps still in a validator's journal are missing
	// from it.
	BalanceFromClearing BalanceSource = "clearing"
	// BalanceFromCard: read from the old card at the desk; exact.
	BalanceFromCard BalanceSource = "card"
)

// Balance is what the desk knows of a replaced card's purse.
type Balance struct {
	// ClearingKop is the last balance clearing knows, in kopiyky;
	// required.
	ClearingKop int64
	// CardKop is the balance read from the card, when the holder brought
	// it; it wins over ClearingKop.
	CardKop *int64
}

// Carried returns the balance to carry to the replacement and its source.
func (b Balance) Carried() (int64, BalanceSource, error) {
	kop, src, field := b.ClearingKop, BalanceFromClearing, "clearing_balance_kop"
	if b.CardKop != nil {
		kop, src, field = *b.CardKop, BalanceFromCard, "card_balance_kop"
	}
	if kop < 0 || kop > int64(card.PurseUpper) {
		return 0, "", fieldErr(field, "%d kopiyky is outside what a purse holds (0..%d)", kop, int64(card.PurseUpper))
	}
	if b.ClearingKop < 0 || b.ClearingKop > int64(card.PurseUpper) {
		return 0, "", fieldErr("clearing_balance_kop", "%d kopiyky is outside what a purse holds (0..%d)", b.ClearingKop, int64(card.PurseUpper))
	}
	return kop, src, nil
}

// CardState is where a card is in its life: what anyone who handles
// cards may see (validators see the same on the hotlist). It names no
// holder and no benefit.
type CardState struct {
	Number  card.Number `json:"number"`
	Status  Status      `json:"status"`
	Issued  Date        `json:"issued"`
	Expires Date        `json:"expires"`
}

// MarshalJSON writes the card number as a 16-digit string.
func (c CardState) MarshalJSON() ([]byte, error) {
	type plain CardState
	return json.Marshal(struct {
		plain
		Number string `json:"number"`
	}{plain(c), c.Number.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *CardState) UnmarshalJSON(b []byte) error {
	type plain CardState
	var v struct {
		plain
		Number string `json:"number"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = CardState(v.plain)
	return parseNumbers(&c.Number, v.Number)
}

// CardData is what goes on a card apart from its holder's name and birth
// date. It is personal data all the same: the holder reference names the
// person inside the registry, and a benefit category can reveal a
// disability. Reading it is audited.
type CardData struct {
	Number  card.Number `json:"number"`
	Status  Status      `json:"status"`
	Issued  Date        `json:"issued"`
	Expires Date        `json:"expires"`
	// Entitlements are the holder's entitlements that have not ended, at
	// most card.MaxEntitlements of them.
	Entitlements []CardEntitlement `json:"entitlements"`
	// PurseKop is the balance to credit: what was carried from the card
	// this one replaces.
	PurseKop int64 `json:"purse_kop"`
	// HolderRef is the holder's resident id, written on the card as its
	// registry reference; it names no one outside the registry.
	HolderRef int64 `json:"holder_ref"`
}

// MarshalJSON writes the card number as a 16-digit string.
func (d CardData) MarshalJSON() ([]byte, error) {
	type plain CardData
	return json.Marshal(struct {
		plain
		Number string `json:"number"`
	}{plain(d), d.Number.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *CardData) UnmarshalJSON(b []byte) error {
	type plain CardData
	var v struct {
		plain
		Number string `json:"number"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = CardData(v.plain)
	return parseNumbers(&d.Number, v.Number)
}

// Identity returns the card's identification file.
func (d *CardData) Identity() (card.Identity, error) {
	issued, err := d.Issued.Card()
	if err != nil {
		return card.Identity{}, fmt.Errorf("card %s issue date: %w", d.Number, err)
	}
	expires, err := d.Expires.Card()
	if err != nil {
		return card.Identity{}, fmt.Errorf("card %s expiry: %w", d.Number, err)
	}
	id := card.Identity{Number: d.Number, Issuer: d.Number.Issuer(), Issued: issued, Expires: expires}
	return id, id.Validate()
}

// Contract returns the card's transport contract file, active, with the
// entitlements and no passes; Personalise sets its key version.
func (d *CardData) Contract() (card.Contract, error) {
	if len(d.Entitlements) > card.MaxEntitlements {
		return card.Contract{}, fmt.Errorf("card %s: %w: the holder has %d current entitlements and a card holds %d; end one first",
			d.Number, ErrConflict, len(d.Entitlements), card.MaxEntitlements)
	}
	expires, err := d.Expires.Card()
	if err != nil {
		return card.Contract{}, fmt.Errorf("card %s expiry: %w", d.Number, err)
	}
	c := card.Contract{Status: card.StatusActive, Number: d.Number, Expires: expires}
	for i, e := range d.Entitlements {
		if c.Entitlements[i], err = e.Card(); err != nil {
			return card.Contract{}, fmt.Errorf("card %s entitlement %d: %w", d.Number, i+1, err)
		}
	}
	return c, c.Validate()
}

// Holder is the personal data written into the card's holder application,
// which only the desk key reads.
type Holder struct {
	Name      string `json:"name"`
	BirthDate Date   `json:"birth_date"`
}

// Personalisation is everything a desk writes on a card: the card data
// and its holder's personal data. Reading it is audited.
type Personalisation struct {
	Card   CardData `json:"card"`
	Holder Holder   `json:"holder"`
}

// CardHolder returns the card's holder file.
func (p *Personalisation) CardHolder() (card.Holder, error) {
	h := card.Holder{Name: p.Holder.Name, BirthDate: p.Holder.BirthDate.BirthDate(), RegistryRef: uint64(p.Card.HolderRef)}
	if err := h.Validate(); err != nil {
		return card.Holder{}, fmt.Errorf("holder of card %s: %w; shorten the name as the holder agrees", p.Card.Number, err)
	}
	return h, nil
}

// String hides the holder's personal data.
func (p Personalisation) String() string {
	return fmt.Sprintf("personalisation(card %s)", p.Card.Number)
}

// GoString hides the holder's personal data from %#v as well.
func (p Personalisation) GoString() string { return p.String() }

// Event kinds.
const (
	EventStatus       = "status"       // the card's status changed (or it was ordered)
	EventEntitlements = "entitlements" // the holder's entitlements changed
)

// CardEvent is one change of a card as clearing and the hotlist see it:
// no name, no registry number, no resident id. Seq numbers events from 1
// without gaps, in commit order, so a consumer that has seen up to Seq
// asks for the ones after it.
type CardEvent struct {
	Seq    uint64      `json:"seq"`
	At     time.Time   `json:"at"`
	Kind   string      `json:"kind"`
	Card   card.Number `json:"card"`
	Status Status      `json:"status"`
	Reason Reason      `json:"reason,omitempty"`
	// Issued and Expires are the card's validity.
	Issued  Date `json:"issued"`
	Expires Date `json:"expires"`
	// Entitlements are the holder's entitlements that had not ended on
	// the day of the event.
	Entitlements []CardEntitlement `json:"entitlements"`
	Replaces     card.Number       `json:"replaces,omitempty"`
	ReplacedBy   card.Number       `json:"replaced_by,omitempty"`
}

// MarshalJSON writes card numbers as 16-digit strings.
func (e CardEvent) MarshalJSON() ([]byte, error) {
	type plain CardEvent
	return json.Marshal(struct {
		plain
		Card       string `json:"card"`
		Replaces   string `json:"replaces,omitempty"`
		ReplacedBy string `json:"replaced_by,omitempty"`
	}{plain(e), e.Card.String(), numberOrEmpty(e.Replaces), numberOrEmpty(e.ReplacedBy)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *CardEvent) UnmarshalJSON(b []byte) error {
	type plain CardEvent
	var v struct {
		plain
		Card       string `json:"card"`
		Replaces   string `json:"replaces"`
		ReplacedBy string `json:"replaced_by"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = CardEvent(v.plain)
	return parseNumbers(&e.Card, v.Card, &e.Replaces, v.Replaces, &e.ReplacedBy, v.ReplacedBy)
}

// BlockedCard is a card validators must refuse, and why.
type BlockedCard struct {
	Card   card.Number `json:"card"`
	Status Status      `json:"status"`
	Reason Reason      `json:"reason"`
	Since  time.Time   `json:"since"`
}

// MarshalJSON writes the card number as a 16-digit string.
func (b BlockedCard) MarshalJSON() ([]byte, error) {
	type plain BlockedCard
	return json.Marshal(struct {
		plain
		Card string `json:"card"`
	}{plain(b), b.Card.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *BlockedCard) UnmarshalJSON(js []byte) error {
	type plain BlockedCard
	var v struct {
		plain
		Card string `json:"card"`
	}
	if err := json.Unmarshal(js, &v); err != nil {
		return err
	}
	*b = BlockedCard(v.plain)
	return parseNumbers(&b.Card, v.Card)
}

// Blocklist is every card validators must refuse, as of one version.
// Version is the Seq of the last card event included; it only grows, so
// the hotlist publisher can use it as the hotlist version and build a
// delta from an older version out of the card events in between.
type Blocklist struct {
	Version uint64        `json:"version"`
	Cards   []BlockedCard `json:"cards"` // ascending card number
}
