package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/citycard/transit/registry"
)

const residentColumns = "id, registry_number, name, birth_date, contact, created_at"

func scanResident(sc interface{ Scan(...any) error }) (registry.Resident, error) {
	var r registry.Resident
	err := sc.Scan(&r.ID, &r.RegistryNumber, &r.Name, dateCol{&r.BirthDate}, &r.Contact, timeCol{&r.Created})
	return r, err
}

// AddResident implements store.Store.
func (s *Store) AddResident(ctx context.Context, a registry.Access, r registry.Resident) (registry.Resident, error) {
	if err := a.Permit(registry.ActRegister, 0); err != nil {
		return registry.Resident{}, err
	}
	err := s.write(ctx, "register resident", func(t *tx) error {
		if err := r.Validate(t.today()); err != nil {
			return err
		}
		var id int64
		switch err := t.queryRow("SELECT id FROM residents WHERE registry_number = $1", r.RegistryNumber).Scan(&id); {
		case err == nil:
			// Who holds it is not said: finding them is a read of
			// personal data, with a purpose and an audit entry.
			return fmt.Errorf("%w: this registry number is already registered; find the record by the number (stating why) instead of registering the person again", registry.ErrDuplicate)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		r.Created = t.now
		err := t.queryRow(`INSERT INTO residents (registry_number, name, name_key, birth_date, contact, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			r.RegistryNumber, r.Name, registry.NameKey(r.Name), t.date(r.BirthDate), r.Contact, t.time(r.Created)).Scan(&r.ID)
		if err != nil {
			if s.d.IsUnique(err) {
				return fmt.Errorf("%w: this registry number was registered at the same moment; open the record instead", registry.ErrDuplicate)
			}
			return err
		}
		return t.audit(a, r.ID, residentRecord(r.ID), "register resident")
	})
	if err != nil {
		return registry.Resident{}, err
	}
	return r, nil
}

func residentRecord(id int64) string { return fmt.Sprintf("resident/%d", id) }

// Resident implements store.Store.
func (s *Store) Resident(ctx context.Context, a registry.Access, id int64) (registry.Dossier, error) {
	guardian := false
	switch {
	case a.Actor.Role == registry.RoleResident && id != a.Actor.Resident:
		// A parent's or guardian's view of their child: the actor is
		// checked here, the link in the transaction.
		if err := a.Permit(registry.ActOwnData, a.Actor.Resident); err != nil {
			return registry.Dossier{}, err
		}
		guardian, a.Purpose = true, registry.PurposeGuardianView
	case a.Actor.Role == registry.RoleResident:
		if err := a.Permit(registry.ActOwnData, id); err != nil {
			return registry.Dossier{}, err
		}
		if strings.TrimSpace(a.Purpose) == "" {
			a.Purpose = registry.PurposeOwnView
		}
	default:
		if err := a.PermitRead(registry.ActReadPersonal, id); err != nil {
			return registry.Dossier{}, err
		}
	}
	var d registry.Dossier
	err := s.read(ctx, fmt.Sprintf("read resident %d", id), func(t *tx) error {
		if guardian {
			ok, err := t.guards(a.Actor.Resident, id)
			if err != nil {
				return err
			}
			if !ok {
				// Whether the record exists is not said either.
				return fmt.Errorf("%w: a resident sees only their own record and, while a desk's link stands, their children's", registry.ErrForbidden)
			}
		}
		var err error
		d.Resident, err = scanResident(t.queryRow("SELECT "+residentColumns+" FROM residents WHERE id = $1", id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no resident %d; check the id or search by registry number", id)
		}
		if err != nil {
			return err
		}
		if d.Entitlements, err = t.entitlements(id); err != nil {
			return err
		}
		if d.Cards, err = t.cards("resident_id = $1 ORDER BY updated_at, number", id); err != nil {
			return err
		}
		view := linksStaff
		switch {
		case guardian:
			view = linksGuardian
		case a.Actor.Role == registry.RoleResident:
			view = linksOwn
		}
		if d.Guardianships, err = t.links(id, a.Actor.Resident, view); err != nil {
			return err
		}
		return t.audit(a, id, residentRecord(id), "read resident")
	})
	if err != nil {
		return registry.Dossier{}, err
	}
	return d, nil
}

// FindResidents implements store.Store.
func (s *Store) FindResidents(ctx context.Context, a registry.Access, q registry.Search) ([]registry.Resident, error) {
	if err := a.PermitRead(registry.ActReadPersonal, 0); err != nil {
		return nil, err
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = registry.MaxSearchResults
	}
	var out []registry.Resident
	err := s.read(ctx, "search residents", func(t *tx) error {
		var (
			rows *sql.Rows
			err  error
		)
		if q.RegistryNumber != "" {
			rows, err = t.query("SELECT "+residentColumns+" FROM residents WHERE registry_number = $1", strings.TrimSpace(q.RegistryNumber))
		} else {
			rows, err = t.query("SELECT "+residentColumns+` FROM residents WHERE name_key LIKE $1 ESCAPE '\'
				ORDER BY name_key, id LIMIT $2`, likePrefix(registry.NameKey(q.NamePrefix)), limit)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanResident(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		for _, r := range out {
			if err := t.audit(a, r.ID, residentRecord(r.ID), "found in a search"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// likePrefix makes a LIKE pattern matching strings that start with p.
func likePrefix(p string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(p) + "%"
}

const entitlementColumns = `id, resident_id, category, legal_basis, evidence, valid_from, valid_to, funding,
	monthly_limit, source, source_ref, updated_at`

func scanEntitlement(sc interface{ Scan(...any) error }) (registry.Entitlement, error) {
	var (
		e       registry.Entitlement
		cat     int64
		funding string
	)
	err := sc.Scan(&e.ID, &e.ResidentID, &cat, &e.LegalBasis, &e.Evidence, dateCol{&e.ValidFrom}, dateCol{&e.ValidTo},
		&funding, &e.MonthlyLimit, &e.Source, &e.SourceRef, timeCol{&e.Updated})
	e.Category, e.Funding = uint16(cat), registry.Funding(funding)
	return e, err
}

// entitlements returns a resident's entitlements, oldest first.
func (t *tx) entitlements(resident int64) ([]registry.Entitlement, error) {
	rows, err := t.query("SELECT "+entitlementColumns+" FROM entitlements WHERE resident_id = $1 ORDER BY valid_from, id", resident)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []registry.Entitlement
	for rows.Next() {
		e, err := scanEntitlement(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// residentExists fails with ErrNotFound unless the resident exists.
func (t *tx) residentExists(id int64) error {
	var one int
	err := t.queryRow("SELECT 1 FROM residents WHERE id = $1", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("no resident %d; check the id", id)
	}
	return err
}

// AddEntitlement implements store.Store.
func (s *Store) AddEntitlement(ctx context.Context, a registry.Access, e registry.Entitlement) (registry.Entitlement, error) {
	if err := a.Permit(registry.ActEntitlements, e.ResidentID); err != nil {
		return registry.Entitlement{}, err
	}
	e.Source, e.SourceRef = registry.SourceDesk, ""
	if err := e.Validate(); err != nil {
		return registry.Entitlement{}, err
	}
	err := s.write(ctx, fmt.Sprintf("add entitlement to resident %d", e.ResidentID), func(t *tx) error {
		if err := t.residentExists(e.ResidentID); err != nil {
			return err
		}
		e.Updated = t.now
		if err := t.insertEntitlement(&e); err != nil {
			return err
		}
		if err := t.emitForResident(e.ResidentID); err != nil {
			return err
		}
		return t.audit(a, e.ResidentID, fmt.Sprintf("entitlement/%d", e.ID), "add entitlement")
	})
	if err != nil {
		return registry.Entitlement{}, err
	}
	return e, nil
}

func (t *tx) insertEntitlement(e *registry.Entitlement) error {
	err := t.queryRow(`INSERT INTO entitlements (resident_id, category, legal_basis, evidence, valid_from, valid_to,
			funding, monthly_limit, source, source_ref, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		e.ResidentID, int64(e.Category), e.LegalBasis, e.Evidence, t.date(e.ValidFrom), t.date(e.ValidTo),
		string(e.Funding), e.MonthlyLimit, e.Source, e.SourceRef, t.time(e.Updated)).Scan(&e.ID)
	if err != nil && t.s.d.IsUnique(err) {
		return fmt.Errorf("%w: decision %q is already recorded", registry.ErrConflict, e.SourceRef)
	}
	return err
}

func (t *tx) updateEntitlement(e *registry.Entitlement) error {
	_, err := t.exec(`UPDATE entitlements SET category = $1, legal_basis = $2, evidence = $3, valid_from = $4,
			valid_to = $5, funding = $6, monthly_limit = $7, updated_at = $8
		WHERE id = $9`,
		int64(e.Category), e.LegalBasis, e.Evidence, t.date(e.ValidFrom), t.date(e.ValidTo), string(e.Funding),
		e.MonthlyLimit, t.time(e.Updated), e.ID)
	return err
}

// EndEntitlement implements store.Store.
func (s *Store) EndEntitlement(ctx context.Context, a registry.Access, resident, id int64, lastDay registry.Date) (registry.Entitlement, error) {
	if err := a.Permit(registry.ActEntitlements, resident); err != nil {
		return registry.Entitlement{}, err
	}
	if lastDay.IsZero() {
		return registry.Entitlement{}, &registry.FieldError{Field: "valid_to", Problem: "missing; give the last day of the entitlement as YYYY-MM-DD"}
	}
	var e registry.Entitlement
	err := s.write(ctx, fmt.Sprintf("end entitlement %d of resident %d", id, resident), func(t *tx) error {
		var err error
		e, err = scanEntitlement(t.queryRow("SELECT "+entitlementColumns+" FROM entitlements WHERE id = $1 AND resident_id = $2", id, resident))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("resident %d has no entitlement %d; check both ids", resident, id)
		}
		if err != nil {
			return err
		}
		switch {
		case lastDay.After(e.ValidTo):
			return &registry.FieldError{Field: "valid_to", Problem: fmt.Sprintf(
				"%s is after the entitlement's last day %s; ending moves the last day earlier", lastDay, e.ValidTo)}
		case lastDay.Before(e.ValidFrom):
			return &registry.FieldError{Field: "valid_to", Problem: fmt.Sprintf(
				"%s is before the entitlement's first day %s; end it on its first day at the earliest", lastDay, e.ValidFrom)}
		case lastDay == e.ValidTo:
			return nil // already ends then: nothing to change, nothing to emit
		}
		e.ValidTo, e.Updated = lastDay, t.now
		if err := t.updateEntitlement(&e); err != nil {
			return err
		}
		if err := t.emitForResident(resident); err != nil {
			return err
		}
		return t.audit(a, resident, fmt.Sprintf("entitlement/%d", id), "end entitlement")
	})
	if err != nil {
		return registry.Entitlement{}, err
	}
	return e, nil
}

// Expiring implements store.Store.
func (s *Store) Expiring(ctx context.Context, a registry.Access, from, to registry.Date) ([]registry.Expiring, error) {
	if err := a.PermitRead(registry.ActExpiring, 0); err != nil {
		return nil, err
	}
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return nil, &registry.FieldError{Field: "days", Problem: fmt.Sprintf("window %s..%s is empty; give a window of at least one day", from, to)}
	}
	var out []registry.Expiring
	err := s.read(ctx, "list expiring entitlements", func(t *tx) error {
		rows, err := t.query(`SELECT `+prefixed("e.", entitlementColumns)+`, r.name, r.contact
			FROM entitlements e JOIN residents r ON r.id = e.resident_id
			WHERE e.valid_to >= $1 AND e.valid_to <= $2
			ORDER BY e.valid_to, e.resident_id, e.id`, t.date(from), t.date(to))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x registry.Expiring
			var (
				cat     int64
				funding string
				e       = &x.Entitlement
			)
			if err := rows.Scan(&e.ID, &e.ResidentID, &cat, &e.LegalBasis, &e.Evidence, dateCol{&e.ValidFrom}, dateCol{&e.ValidTo},
				&funding, &e.MonthlyLimit, &e.Source, &e.SourceRef, timeCol{&e.Updated}, &x.Name, &x.Contact); err != nil {
				return err
			}
			e.Category, e.Funding = uint16(cat), registry.Funding(funding)
			out = append(out, x)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		seen := make(map[int64]bool)
		for _, x := range out {
			if seen[x.Entitlement.ResidentID] {
				continue
			}
			seen[x.Entitlement.ResidentID] = true
			if err := t.audit(a, x.Entitlement.ResidentID, residentRecord(x.Entitlement.ResidentID), "listed with an expiring entitlement"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// prefixed qualifies each column of a comma-separated list.
func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
