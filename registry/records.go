package registry

import (
	"encoding/json"
	"time"

	"github.com/citycard/transit/card"
)

// MaxRecordPage is the most card events one page of card records covers.
const MaxRecordPage = 1000

// CardRecord is what clearing needs of a card to prove its benefit rides
// (clearing/rerate): every entitlement of its holder, ended ones too,
// with the dates the registry holds now (an entitlement ended early shows
// its new last day), and the spans in which the card's benefits were
// revoked (the card blocked for ReasonBenefitRevoked). No personal data:
// no name, no registry number, no resident id.
type CardRecord struct {
	Card         card.Number       `json:"card"`
	Entitlements []CardEntitlement `json:"entitlements"`
	Revoked      []Span            `json:"revoked"`
}

// Span is a time range; a nil To is still open.
type Span struct {
	From time.Time  `json:"from"`
	To   *time.Time `json:"to,omitempty"`
}

// MarshalJSON writes the card number as a 16-digit string.
func (r CardRecord) MarshalJSON() ([]byte, error) {
	type plain CardRecord
	return json.Marshal(struct {
		plain
		Card string `json:"card"`
	}{plain(r), r.Card.String()})
}

// CardRecords is one page of the card records export: the records of the
// cards that card events after a sequence number name, in event order.
type CardRecords struct {
	Records []CardRecord `json:"records"`
	// Next is the since of the following page: the last event read.
	Next uint64 `json:"next"`
	// AsOf is set when the page reached the newest card event: every
	// record was complete then.
	AsOf *time.Time `json:"as_of,omitempty"`
}

// RevokedSpans returns the spans of a card's status events (oldest
// first) in which it was blocked for ReasonBenefitRevoked.
func RevokedSpans(events []CardEvent) []Span {
	spans := []Span{}
	open := false
	for _, e := range events {
		if e.Kind != EventStatus {
			continue
		}
		revoked := e.Status == StatusBlocked && e.Reason == ReasonBenefitRevoked
		switch {
		case revoked && !open:
			spans = append(spans, Span{From: e.At})
			open = true
		case !revoked && open:
			at := e.At
			spans[len(spans)-1].To = &at
			open = false
		}
	}
	return spans
}
