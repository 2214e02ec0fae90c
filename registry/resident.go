package registry

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry/rnokpp"
)

// Limits on free text, so that one record cannot grow without bound.
const (
	MaxNameLen    = 200 // characters
	MaxContactLen = 200
	MaxTextLen    = 500 // legal basis, evidence, notes
)

// Resident is a person in the registry. It is personal data: read it only
// through a store method that audits the read.
type Resident struct {
	ID int64 `json:"id"`
	// RegistryNumber is the person's РНОКПП, ten digits.
	RegistryNumber string `json:"registry_number"`
	Name           string `json:"name"`
	BirthDate      Date   `json:"birth_date"`
	// Contact is a phone number, e-mail or postal address, for telling
	// the person about their card and benefits.
	Contact string    `json:"contact"`
	Created time.Time `json:"created"`
}

// Validate reports the first field that cannot be right, as a
// *FieldError, and puts the text fields into NFC (CleanText). today is
// the city's current date: nobody is born after it.
func (r *Resident) Validate(today Date) error {
	if _, err := rnokpp.Parse(r.RegistryNumber); err != nil {
		return fieldErr("registry_number", "%v", err)
	}
	if err := cleanField("name", &r.Name, MaxNameLen, true); err != nil {
		return err
	}
	switch {
	case r.BirthDate.IsZero():
		return fieldErr("birth_date", "missing; give it as YYYY-MM-DD")
	case r.BirthDate.Year < 1900:
		return fieldErr("birth_date", "%s is before 1900; check the year", r.BirthDate)
	case r.BirthDate.After(today):
		return fieldErr("birth_date", "%s is in the future; check the year", r.BirthDate)
	}
	return cleanField("contact", &r.Contact, MaxContactLen, false)
}

// NameKey is the form of a name that searches compare: NFC, lower case,
// runs of spaces folded to one. Stores keep it beside the name so that a
// search by name prefix is an index scan in every database, and so that
// a name typed in NFD finds the one stored in NFC.
func NameKey(name string) string {
	lower := strings.ToLower(norm.NFC.String(name))
	return norm.NFC.String(strings.Join(strings.Fields(lower), " "))
}

// String hides the personal data so that a Resident logged by mistake
// leaks nothing.
func (r Resident) String() string { return fmt.Sprintf("resident(%d)", r.ID) }

// GoString hides the personal data from %#v as well.
func (r Resident) GoString() string { return r.String() }

// LogValue hides the personal data from log/slog.
func (r Resident) LogValue() slog.Value { return slog.Int64Value(r.ID) }

// Funding is who pays carriers back for a benefit's rides.
type Funding string

// Funding sources.
const (
	FundingCity  Funding = "city"
	FundingState Funding = "state"
)

// Card returns the funding as the card stores it.
func (f Funding) Card() card.Funding {
	if f == FundingState {
		return card.FundingState
	}
	return card.FundingCity
}

// Known benefit categories. The code is the one the card and the tariff
// carry; the tariff names it. Other non-zero codes are accepted, since a
// city may add categories to its tariff before this list learns them.
const (
	CategoryPensioner  uint16 = 11
	CategoryVeteran    uint16 = 12
	CategoryDisability uint16 = 21
	CategoryStudent    uint16 = 31
)

// CategoryCodes are the categories residents may apply for online.
var CategoryCodes = []uint16{CategoryPensioner, CategoryVeteran, CategoryDisability, CategoryStudent}

// MaxMonthlyLimit is the largest monthly ride limit a card can hold.
const MaxMonthlyLimit = 255

// Entitlement sources.
const (
	SourceDesk   = "desk"   // entered at an issuance desk
	SourceImport = "import" // from the national social-benefits register
)

// Entitlement is a resident's right to a benefit: free or discounted
// rides of one category, on a legal basis, proven by a document, for a
// period, paid back by the city or the state.
type Entitlement struct {
	ID         int64  `json:"id"`
	ResidentID int64  `json:"resident_id"`
	Category   uint16 `json:"category"`
	// LegalBasis cites the law or decision that grants the benefit.
	LegalBasis string `json:"legal_basis"`
	// Evidence identifies the document the desk saw (a pension
	// certificate number...).
	Evidence  string  `json:"evidence"`
	ValidFrom Date    `json:"valid_from"`
	ValidTo   Date    `json:"valid_to"` // last valid day, inclusive
	Funding   Funding `json:"funding"`
	// MonthlyLimit is the number of benefit rides per calendar month; 0
	// means unlimited.
	MonthlyLimit int `json:"monthly_limit"`
	// Source is SourceDesk or SourceImport; SourceRef is the register's
	// decision identifier for an imported one.
	Source    string    `json:"source"`
	SourceRef string    `json:"source_ref,omitempty"`
	Updated   time.Time `json:"updated"`
}

// Validate reports the first field that cannot be right, as a
// *FieldError, and puts the text fields into NFC.
func (e *Entitlement) Validate() error {
	switch {
	case e.Category == 0:
		return fieldErr("category", "0 is no category; give the tariff's code, e.g. 11 (pensioner)")
	case e.Funding != FundingCity && e.Funding != FundingState:
		return fieldErr("funding", "%q; want city or state", e.Funding)
	case e.MonthlyLimit < 0 || e.MonthlyLimit > MaxMonthlyLimit:
		return fieldErr("monthly_limit", "%d; want 0 (unlimited) to %d", e.MonthlyLimit, MaxMonthlyLimit)
	case e.Source != SourceDesk && e.Source != SourceImport:
		return fieldErr("source", "%q; want desk or import", e.Source)
	case e.Source == SourceImport && e.SourceRef == "":
		return fieldErr("decision_id", "empty; an imported entitlement needs the register's decision identifier")
	}
	if err := cleanField("legal_basis", &e.LegalBasis, MaxTextLen, true); err != nil {
		return err
	}
	if err := cleanField("evidence", &e.Evidence, MaxTextLen, true); err != nil {
		return err
	}
	if err := cleanField("decision_id", &e.SourceRef, 100, false); err != nil {
		return err
	}
	return checkPeriod(e.ValidFrom, e.ValidTo)
}

func checkPeriod(from, to Date) error {
	switch {
	case from.IsZero():
		return fieldErr("valid_from", "missing; give the first day as YYYY-MM-DD")
	case to.IsZero():
		return fieldErr("valid_to", "missing; give the last day as YYYY-MM-DD")
	case from.Before(cardFirstDay) || from.After(cardLastDay):
		return fieldErr("valid_from", "%s is outside what a card holds (%s..%s)", from, cardFirstDay, cardLastDay)
	case to.Before(cardFirstDay) || to.After(cardLastDay):
		return fieldErr("valid_to", "%s is outside what a card holds (%s..%s)", to, cardFirstDay, cardLastDay)
	case to.Before(from):
		return fieldErr("valid_to", "%s is before valid_from %s", to, from)
	}
	return nil
}

// CurrentOn reports whether e has not ended by day d: it is valid on d or
// starts later.
func (e *Entitlement) CurrentOn(d Date) bool { return !e.ValidTo.Before(d) }

// CardEntitlement is an entitlement as a card and the validators see it:
// no legal basis, no document, no person.
type CardEntitlement struct {
	Category     uint16  `json:"category"`
	ValidFrom    Date    `json:"valid_from"`
	ValidTo      Date    `json:"valid_to"`
	Funding      Funding `json:"funding"`
	MonthlyLimit int     `json:"monthly_limit"`
}

// ForCard returns the part of e that goes on a card.
func (e *Entitlement) ForCard() CardEntitlement {
	return CardEntitlement{Category: e.Category, ValidFrom: e.ValidFrom, ValidTo: e.ValidTo, Funding: e.Funding, MonthlyLimit: e.MonthlyLimit}
}

// Card returns the entitlement as the card's contract file stores it.
func (c CardEntitlement) Card() (card.Entitlement, error) {
	from, err := c.ValidFrom.Card()
	if err != nil {
		return card.Entitlement{}, err
	}
	to, err := c.ValidTo.Card()
	if err != nil {
		return card.Entitlement{}, err
	}
	return card.Entitlement{Category: c.Category, ValidFrom: from, ValidTo: to, Limit: uint8(c.MonthlyLimit), Funding: c.Funding.Card()}, nil
}

// CardEntitlements returns, in a stable order (first day, then category),
// the entitlements of es that have not ended by day d, as cards carry
// them.
func CardEntitlements(es []Entitlement, d Date) []CardEntitlement {
	out := []CardEntitlement{} // JSON [] rather than null

	for i := range es {
		if es[i].CurrentOn(d) {
			out = append(out, es[i].ForCard())
		}
	}
	slices.SortFunc(out, func(a, b CardEntitlement) int {
		if c := a.ValidFrom.Compare(b.ValidFrom); c != 0 {
			return c
		}
		return int(a.Category) - int(b.Category)
	})
	return out
}

// Dossier is everything the registry holds about one resident.
type Dossier struct {
	Resident     Resident      `json:"resident"`
	Entitlements []Entitlement `json:"entitlements"`
	Cards        []Card        `json:"cards"`
	// Guardianships are the record's links to parents, guardians and
	// children, as the reader may see them: staff every link, ended ones
	// too; the resident the children they stand for now; a guardian
	// reading a child's record the link that lets them.
	Guardianships []Guardianship `json:"guardianships"`
}

// MaxSearchResults bounds one search, so that nobody lists the registry.
const MaxSearchResults = 50

// Search selects residents. At least one criterion is required: the
// registry is not for browsing.
type Search struct {
	RegistryNumber string // exact
	NamePrefix     string // compared as NameKey
	Limit          int    // 1..MaxSearchResults; 0 means MaxSearchResults
}

// Validate checks the criteria.
func (q *Search) Validate() error {
	if p := TextProblem(q.NamePrefix); p != "" {
		return fieldErr("name", "%s", p)
	}
	if len(q.NamePrefix) > 4*MaxNameLen {
		return fieldErr("name", "longer than a name can be (%d characters)", MaxNameLen)
	}
	switch {
	case q.RegistryNumber == "" && strings.TrimSpace(q.NamePrefix) == "":
		return fieldErr("query", "no criterion; search by registry_number or by name (at least 3 letters)")
	case q.RegistryNumber != "" && !rnokpp.Valid(q.RegistryNumber):
		_, err := rnokpp.Parse(q.RegistryNumber)
		return fieldErr("registry_number", "%v", err)
	case q.RegistryNumber == "" && utf8.RuneCountInString(NameKey(q.NamePrefix)) < 3:
		return fieldErr("name", "give at least 3 letters of the name")
	case q.Limit < 0 || q.Limit > MaxSearchResults:
		return fieldErr("limit", "%d; want 1 to %d", q.Limit, MaxSearchResults)
	}
	return nil
}

// Expiring is an entitlement that ends soon, with what the desk needs to
// tell its holder. It is personal data.
type Expiring struct {
	Entitlement Entitlement `json:"entitlement"`
	Name        string      `json:"name"`
	Contact     string      `json:"contact"`
}

// DefaultExpiringDays is how far ahead the expiring list looks unless told.
const DefaultExpiringDays = 30
