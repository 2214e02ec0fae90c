package registry

import (
	"fmt"
	"strings"
	"time"
)

// AdultAge is the age at which a child's link to a parent or guardian
// ends by itself: from that birthday on, the child's record is theirs
// alone.
const AdultAge = 18

// MaxEvidenceLen bounds the description of a link's evidence.
const MaxEvidenceLen = 200

// MaxGuardianships bounds the links one resident's record lists: a
// family's, not a register's.
const MaxGuardianships = 50

// PurposeGuardianView is the purpose recorded when a parent or guardian
// looks at their child's record in their own view.
const PurposeGuardianView = "guardian's view of their child's record"

// PurposeGuardianBlock is the purpose recorded when a parent or guardian
// blocks their child's card as lost or stolen.
const PurposeGuardianBlock = "child's card reported lost or stolen by their guardian"

// Guardianship links a child's record to a parent's or guardian's, on
// the evidence a desk saw (a birth certificate, a court's decision). While
// it is active the guardian, signed in to their own view, sees the
// child's record and rides and may block the child's card, every time
// audited in the child's record under the guardian's name. It ends by
// itself on the child's eighteenth birthday (EndsOn), or when a desk ends
// it, with a reason; an ended link is kept, for the record.
type Guardianship struct {
	ID       int64 `json:"id"`
	Guardian int64 `json:"guardian"`
	Child    int64 `json:"child"`
	// GuardianName, ChildName and ChildBirth are read with the link.
	GuardianName string `json:"guardian_name"`
	ChildName    string `json:"child_name"`
	ChildBirth   Date   `json:"child_birth_date"`
	// Evidence says what proves the link: the document, its number.
	Evidence  string    `json:"evidence"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	// Ended is when a desk ended the link, zero while it stands;
	// EndedBy and EndReason say who and why.
	Ended     time.Time `json:"ended,omitzero"`
	EndedBy   string    `json:"ended_by,omitempty"`
	EndReason string    `json:"end_reason,omitempty"`
}

// EndsOn returns the day the link ends by itself: the child's
// eighteenth birthday.
func (g *Guardianship) EndsOn() Date { return g.ChildBirth.AddYears(AdultAge) }

// Active reports whether the link lets the guardian act for the child
// on day today (the city's date).
func (g *Guardianship) Active(today Date) bool {
	return g.Ended.IsZero() && !g.ChildBirth.IsZero() && today.Before(g.EndsOn())
}

// CheckGuardianship reports why guardian may not be linked to child on
// the evidence given, on day today: one person is not their own guardian,
// the child must be under AdultAge and the guardian of age, and the
// evidence must be named. It returns the evidence cleaned (CleanText).
func CheckGuardianship(guardian, child Resident, evidence string, today Date) (string, error) {
	switch {
	case guardian.ID == child.ID:
		return "", fieldErr("guardian", "a resident cannot be their own guardian; give the parent's or guardian's record")
	case !today.Before(child.BirthDate.AddYears(AdultAge)):
		return "", fieldErr("child", "%s was born on %s and is of age: no guardian sees their record", child.Name, child.BirthDate)
	case today.Before(guardian.BirthDate.AddYears(AdultAge)):
		return "", fieldErr("guardian", "%s was born on %s and is not of age; a guardian must be", guardian.Name, guardian.BirthDate)
	}
	ev, err := CleanText("evidence", strings.TrimSpace(evidence), MaxEvidenceLen, true)
	if err != nil {
		return "", fmt.Errorf("%w (name the document that proves the link and its number, e.g. \"birth certificate I-КВ 123456\")", err)
	}
	return ev, nil
}

// CheckEndReason cleans the reason a desk gives to end a link.
func CheckEndReason(reason string) (string, error) {
	return CleanText("reason", strings.TrimSpace(reason), MaxEvidenceLen, true)
}
