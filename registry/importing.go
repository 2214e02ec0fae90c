package registry

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ImportRow is one row of a benefit-register export: a recipient and one
// of their entitlements (format in IMPORT.md, parsed by
// registry/importcsv).
type ImportRow struct {
	Line        int // in the file, for error messages
	Resident    Resident
	Entitlement Entitlement // Source is SourceImport, SourceRef the decision id
	// Ended: the register has ended this entitlement on Entitlement.ValidTo.
	Ended bool
}

// ChangeKind says what an import does with a row.
type ChangeKind string

// Change kinds.
const (
	NewResident        ChangeKind = "new_resident"
	NewEntitlement     ChangeKind = "new_entitlement"
	ChangedEntitlement ChangeKind = "changed_entitlement"
	EndedEntitlement   ChangeKind = "ended_entitlement"
)

// ImportChange is one change an import makes (or, in a dry run, would
// make). It names the row and the register's decision, not the person.
type ImportChange struct {
	Line     int        `json:"line"`
	Kind     ChangeKind `json:"kind"`
	Resident int64      `json:"resident,omitempty"` // 0 for a resident not yet created (dry run)
	Decision string     `json:"decision_id,omitempty"`
	Category uint16     `json:"category,omitempty"`
	// Fields lists what a changed entitlement changes.
	Fields []string `json:"fields,omitempty"`
}

// ImportReport is what an import did or, in a dry run, would do.
type ImportReport struct {
	DryRun bool `json:"dry_run"`
	Rows   int  `json:"rows"`
	// Counts per kind of change; Unchanged rows and Ignored rows (an end
	// of an entitlement the registry never had) change nothing.
	NewResidents        int            `json:"new_residents"`
	NewEntitlements     int            `json:"new_entitlements"`
	ChangedEntitlements int            `json:"changed_entitlements"`
	EndedEntitlements   int            `json:"ended_entitlements"`
	Unchanged           int            `json:"unchanged"`
	Ignored             int            `json:"ignored"`
	Changes             []ImportChange `json:"changes"`
	// Warnings are differences the import does not apply, such as a name
	// that differs from the registry's record; a desk should look.
	Warnings []string `json:"warnings,omitempty"`
}

// Add records a change and counts it.
func (r *ImportReport) Add(c ImportChange) {
	switch c.Kind {
	case NewResident:
		r.NewResidents++
	case NewEntitlement:
		r.NewEntitlements++
	case ChangedEntitlement:
		r.ChangedEntitlements++
	case EndedEntitlement:
		r.EndedEntitlements++
	}
	r.Changes = append(r.Changes, c)
}

// DiffEntitlement compares the registry's entitlement with an import row
// for the same decision. It returns "" when the row changes nothing,
// EndedEntitlement when the row ends it (its last day moves earlier),
// ChangedEntitlement otherwise, with the fields that differ.
func DiffEntitlement(have *Entitlement, row *ImportRow) (ChangeKind, []string) {
	want := &row.Entitlement
	var fields []string
	diff := func(name string, differs bool) {
		if differs {
			fields = append(fields, name)
		}
	}
	diff("category", have.Category != want.Category)
	diff("legal_basis", have.LegalBasis != want.LegalBasis)
	diff("evidence", have.Evidence != want.Evidence)
	diff("valid_from", have.ValidFrom != want.ValidFrom)
	diff("valid_to", have.ValidTo != want.ValidTo)
	diff("funding", have.Funding != want.Funding)
	diff("monthly_limit", have.MonthlyLimit != want.MonthlyLimit)
	switch {
	case len(fields) == 0:
		return "", nil
	case row.Ended && want.ValidTo.Before(have.ValidTo):
		return EndedEntitlement, fields
	}
	return ChangedEntitlement, fields
}

// ImportLineError is a row the import cannot apply; it names the line and
// field. It wraps ErrInvalid or ErrConflict.
type ImportLineError struct {
	Line  int
	Field string
	Err   error
}

// LineError attributes err to a line; a *FieldError's field becomes the
// line error's field.
func LineError(line int, err error) *ImportLineError {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &ImportLineError{Line: line, Field: fe.Field, Err: err}
	}
	return &ImportLineError{Line: line, Err: err}
}

// Error returns "line N, field: problem".
func (e *ImportLineError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Problem())
	}
	return fmt.Sprintf("line %d, %s: %s", e.Line, e.Field, e.Problem())
}

// Problem is the error without its line and field, and without the
// "invalid input" every problem of a file's own would otherwise start
// with; a conflict with the registry keeps saying so.
func (e *ImportLineError) Problem() string {
	var fe *FieldError
	if errors.As(e.Err, &fe) {
		return fe.Problem
	}
	s := e.Err.Error()
	if p, ok := strings.CutPrefix(s, ErrInvalid.Error()+": "); ok {
		return p
	}
	return s
}

// Unwrap returns the underlying error.
func (e *ImportLineError) Unwrap() error { return e.Err }

// MaxImportErrors is how many problems an import collects before it
// stops looking for more.
const MaxImportErrors = 100

// ImportErrors is every problem found in an import, in line order.
type ImportErrors []*ImportLineError

// Error lists the first problems on one line.
func (e ImportErrors) Error() string {
	const show = 10
	var b strings.Builder
	fmt.Fprintf(&b, "import has %d problem(s)", len(e))
	if len(e) >= MaxImportErrors {
		b.WriteString(" (stopped counting)")
	}
	b.WriteString("; fix them and import again: ")
	for i, le := range e {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(le.Error())
	}
	return b.String()
}

// Unwrap returns the problems, so errors.Is finds ErrInvalid or
// ErrConflict in them.
func (e ImportErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, le := range e {
		out[i] = le
	}
	return out
}

// ImportPlan is what an import writes, worked out from the rows and the
// registry's current records of the people and decisions they name.
type ImportPlan struct {
	// NewResidents are people the registry does not have, in row order.
	NewResidents []Resident
	// NewEntitlements are decisions the registry does not have. The
	// ResidentID of one whose person is new is 0 until that person is
	// written; NewEntitlementOwner gives the person's registry number.
	NewEntitlements     []Entitlement
	NewEntitlementOwner []string
	// Updates are changed or ended entitlements, with their IDs.
	Updates []Entitlement
	// Read are the existing residents the import compared, in row order:
	// each gets an audit entry.
	Read []int64
	// Changed are the existing residents whose entitlements change; their
	// live cards get an entitlements event. New residents have no card.
	Changed []int64
	// Report is what the import does; ChangeOwner[i] is the registry
	// number of a new resident that Report.Changes[i] concerns ("" for an
	// existing one), so that a store can fill in the id once it has one.
	Report      ImportReport
	ChangeOwner []string
}

// PlanImport works out an import. residents holds the registry's records
// of the registry numbers in rows (by number), entitlements its records of
// the decision ids in rows (by SourceRef); now stamps the entitlements'
// Updated. A row that contradicts the registry (another person's
// decision, a different birth date) makes it return ImportErrors, each
// wrapping ErrConflict. The rows must have passed validation.
func PlanImport(rows []ImportRow, residents map[string]Resident, entitlements map[string]Entitlement, now time.Time) (*ImportPlan, error) {
	p := &ImportPlan{Report: ImportReport{Rows: len(rows), Changes: []ImportChange{}}}
	var (
		errs    ImportErrors
		isNew   = make(map[string]bool) // registry number -> created by this import
		seen    = make(map[string]bool) // registry number -> met in an earlier row
		changed = make(map[int64]bool)  // existing resident id -> in Changed
		decided = make(map[string]int)  // decision id -> line, within the file
		fail    = func(line int, field string, err error) bool {
			errs = append(errs, &ImportLineError{Line: line, Field: field, Err: err})
			return len(errs) >= MaxImportErrors
		}
	)
	add := func(c ImportChange, owner string) {
		p.Report.Add(c)
		p.ChangeOwner = append(p.ChangeOwner, owner)
	}
rows:
	for i := range rows {
		r := &rows[i]
		rn := r.Resident.RegistryNumber
		if prev, dup := decided[r.Entitlement.SourceRef]; dup {
			if fail(r.Line, "decision_id", fmt.Errorf("%w: the same decision is on line %d; a decision appears once", ErrInvalid, prev)) {
				break rows
			}
			continue
		}
		decided[r.Entitlement.SourceRef] = r.Line
		have, known := entitlements[r.Entitlement.SourceRef]
		if !known && r.Ended {
			p.Report.Ignored++ // the end of something the registry never had
			continue
		}
		res, exists := residents[rn]
		switch {
		case exists && res.BirthDate != r.Resident.BirthDate:
			if fail(r.Line, "birth_date", fmt.Errorf("%w: differs from the registry's record of this person; correct the file or, at a desk, the record",
				ErrConflict)) {
				break rows
			}
			continue
		case exists && known && have.ResidentID != res.ID, !exists && known:
			if fail(r.Line, "decision_id", fmt.Errorf("%w: the registry has this decision for another person; check the rnokpp and the decision id",
				ErrConflict)) {
				break rows
			}
			continue
		}
		if !seen[rn] {
			seen[rn] = true
			if exists {
				p.Read = append(p.Read, res.ID)
				if res.Name != r.Resident.Name {
					p.Report.Warnings = append(p.Report.Warnings, fmt.Sprintf(
						"line %d: the name differs from the registry's record of resident %d; the import keeps the record's name", r.Line, res.ID))
				}
			} else {
				isNew[rn] = true
				p.NewResidents = append(p.NewResidents, r.Resident)
				add(ImportChange{Line: r.Line, Kind: NewResident}, rn)
			}
		}
		want := r.Entitlement
		want.ResidentID, want.Updated = res.ID, now
		owner := ""
		if isNew[rn] {
			owner = rn
		}
		if !known {
			p.NewEntitlements = append(p.NewEntitlements, want)
			p.NewEntitlementOwner = append(p.NewEntitlementOwner, owner)
			add(ImportChange{Line: r.Line, Kind: NewEntitlement, Resident: res.ID, Decision: want.SourceRef, Category: want.Category}, owner)
		} else {
			kind, fields := DiffEntitlement(&have, r)
			if kind == "" {
				p.Report.Unchanged++
				continue
			}
			want.ID = have.ID
			p.Updates = append(p.Updates, want)
			add(ImportChange{Line: r.Line, Kind: kind, Resident: res.ID, Decision: want.SourceRef, Category: want.Category, Fields: fields}, "")
		}
		if exists && !changed[res.ID] {
			changed[res.ID] = true
			p.Changed = append(p.Changed, res.ID)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}
