package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/citycard/transit/registry"
)

// chunk is how many rows one batched statement reads or writes: well
// under both databases' limits on parameters (32766 in SQLite, 65535 in
// PostgreSQL) at a dozen columns.
const chunk = 500

// Import implements store.Store. It reads the people and decisions the
// rows name in batches, works out the changes with registry.PlanImport
// (pure), and writes them in batches, so a city's 180,000 recipients take
// seconds rather than minutes. A dry run does the same writes inside a
// savepoint and rolls back to it, so it reports exactly what a real run
// would do; the audit entries are written after the rollback.
func (s *Store) Import(ctx context.Context, a registry.Access, rows []registry.ImportRow, dryRun bool) (registry.ImportReport, error) {
	if err := a.PermitRead(registry.ActImport, 0); err != nil {
		return registry.ImportReport{}, err
	}
	var rep registry.ImportReport
	err := s.write(ctx, "import benefit recipients", func(t *tx) error {
		var errs registry.ImportErrors
		for i := range rows {
			if err := t.checkRow(&rows[i]); err != nil {
				errs = append(errs, registry.LineError(rows[i].Line, err))
				if len(errs) >= registry.MaxImportErrors {
					break
				}
			}
		}
		if len(errs) > 0 {
			return errs
		}
		residents, entitlements, err := t.importRecords(rows)
		if err != nil {
			return err
		}
		plan, err := registry.PlanImport(rows, residents, entitlements, t.now)
		if err != nil {
			return err
		}
		if dryRun {
			if _, err := t.exec("SAVEPOINT import_dry_run"); err != nil {
				return err
			}
		}
		created, err := t.applyImport(plan)
		if err != nil {
			return err
		}
		rep = plan.Report
		rep.DryRun = dryRun
		audited := plan.Read
		action := "import benefit recipients"
		if dryRun {
			if _, err := t.exec("ROLLBACK TO SAVEPOINT import_dry_run"); err != nil {
				return err
			}
			action = "import benefit recipients (dry run)"
		} else {
			for i, owner := range plan.ChangeOwner {
				if owner != "" {
					rep.Changes[i].Resident = created[owner]
				}
			}
			for _, r := range plan.NewResidents {
				audited = append(audited, created[r.RegistryNumber])
			}
		}
		return t.auditMany(a, audited, action)
	})
	if err != nil {
		return registry.ImportReport{}, err
	}
	return rep, nil
}

// checkRow validates a row as the parser would; rows may come from
// elsewhere than importcsv.
func (t *tx) checkRow(r *registry.ImportRow) error {
	if err := r.Resident.Validate(t.today()); err != nil {
		return err
	}
	if r.Entitlement.Source != registry.SourceImport {
		return &registry.FieldError{Field: "source", Problem: "an imported entitlement must have source import"}
	}
	return r.Entitlement.Validate()
}

// importRecords reads the registry's records of the people and decisions
// the rows name.
func (t *tx) importRecords(rows []registry.ImportRow) (map[string]registry.Resident, map[string]registry.Entitlement, error) {
	var numbers, refs []any
	seenN, seenR := map[string]bool{}, map[string]bool{}
	for i := range rows {
		if n := rows[i].Resident.RegistryNumber; !seenN[n] {
			seenN[n] = true
			numbers = append(numbers, n)
		}
		if r := rows[i].Entitlement.SourceRef; !seenR[r] {
			seenR[r] = true
			refs = append(refs, r)
		}
	}
	residents := make(map[string]registry.Resident, len(numbers))
	for part := range slices.Chunk(numbers, chunk) {
		rs, err := t.query("SELECT "+residentColumns+" FROM residents WHERE registry_number IN ("+params(1, len(part))+")", part...)
		if err != nil {
			return nil, nil, err
		}
		for rs.Next() {
			r, err := scanResident(rs)
			if err != nil {
				rs.Close()
				return nil, nil, err
			}
			residents[r.RegistryNumber] = r
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, nil, err
		}
	}
	entitlements := make(map[string]registry.Entitlement, len(refs))
	for part := range slices.Chunk(refs, chunk) {
		// The literal source_ref <> '' lets both databases use the partial
		// unique index on source_ref; without it a generic plan scans the
		// table for every chunk.
		rs, err := t.query("SELECT "+entitlementColumns+" FROM entitlements WHERE source_ref <> '' AND source_ref IN ("+params(1, len(part))+")", part...)
		if err != nil {
			return nil, nil, err
		}
		for rs.Next() {
			e, err := scanEntitlement(rs)
			if err != nil {
				rs.Close()
				return nil, nil, err
			}
			entitlements[e.SourceRef] = e
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, nil, err
		}
	}
	return residents, entitlements, nil
}

// applyImport writes a plan and returns the ids of the residents it
// created, by registry number.
func (t *tx) applyImport(p *registry.ImportPlan) (map[string]int64, error) {
	created := make(map[string]int64, len(p.NewResidents))
	for part := range slices.Chunk(p.NewResidents, chunk) {
		args := make([]any, 0, 6*len(part))
		for _, r := range part {
			args = append(args, r.RegistryNumber, r.Name, registry.NameKey(r.Name), t.date(r.BirthDate), r.Contact, t.time(t.now))
		}
		rs, err := t.query(`INSERT INTO residents (registry_number, name, name_key, birth_date, contact, created_at)
			VALUES `+rowParams(len(part), 6)+` RETURNING id, registry_number`, args...)
		if err != nil {
			return nil, fmt.Errorf("add %d residents: %w", len(part), err)
		}
		for rs.Next() {
			var (
				id int64
				n  string
			)
			if err := rs.Scan(&id, &n); err != nil {
				rs.Close()
				return nil, err
			}
			created[n] = id
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, err
		}
	}
	for i, owner := range p.NewEntitlementOwner {
		if owner != "" {
			p.NewEntitlements[i].ResidentID = created[owner]
		}
	}
	for part := range slices.Chunk(p.NewEntitlements, chunk) {
		args := make([]any, 0, 11*len(part))
		for _, e := range part {
			args = append(args, e.ResidentID, int64(e.Category), e.LegalBasis, e.Evidence, t.date(e.ValidFrom), t.date(e.ValidTo),
				string(e.Funding), e.MonthlyLimit, e.Source, e.SourceRef, t.time(e.Updated))
		}
		if _, err := t.exec(`INSERT INTO entitlements (resident_id, category, legal_basis, evidence, valid_from, valid_to,
				funding, monthly_limit, source, source_ref, updated_at)
			VALUES `+rowParams(len(part), 11), args...); err != nil {
			return nil, fmt.Errorf("add %d entitlements: %w", len(part), err)
		}
	}
	for i := range p.Updates {
		if err := t.updateEntitlement(&p.Updates[i]); err != nil {
			return nil, fmt.Errorf("update entitlement %d: %w", p.Updates[i].ID, err)
		}
	}
	for _, id := range p.Changed {
		if err := t.emitForResident(id); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// auditMany appends one audit entry per resident.
func (t *tx) auditMany(a registry.Access, residents []int64, action string) error {
	es := make([]registry.AuditEntry, len(residents))
	for i, id := range residents {
		es[i] = registry.AuditEntry{At: t.now, User: a.Actor.User, Role: a.Actor.Role, Resident: id,
			Record: residentRecord(id), Action: action, Purpose: strings.TrimSpace(a.Purpose)}
	}
	return t.appendAudit(es)
}

// params returns "$from, $from+1, ..." n placeholders.
func params(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// rowParams returns "($1, $2), ($3, $4)" for rows of cols placeholders.
func rowParams(rows, cols int) string {
	var b strings.Builder
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(params(1+r*cols, cols))
		b.WriteByte(')')
	}
	return b.String()
}
