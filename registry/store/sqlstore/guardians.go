package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/citycard/transit/registry"
)

// Audit actions of links between children and guardians.
const (
	ActionLinkGuardian = "link guardian"
	ActionEndGuardian  = "end guardian link"
)

const guardianColumns = `g.id, g.guardian_id, g.child_id, p.name, c.name, c.birth_date, g.evidence,
	g.created_at, g.created_by, g.ended_at, g.ended_by, g.end_reason`

const guardianFrom = ` FROM guardianships g JOIN residents p ON p.id = g.guardian_id JOIN residents c ON c.id = g.child_id`

func scanGuardianship(sc interface{ Scan(...any) error }) (registry.Guardianship, error) {
	var g registry.Guardianship
	err := sc.Scan(&g.ID, &g.Guardian, &g.Child, &g.GuardianName, &g.ChildName, dateCol{&g.ChildBirth}, &g.Evidence,
		timeCol{&g.Created}, &g.CreatedBy, timeCol{&g.Ended}, &g.EndedBy, &g.EndReason)
	return g, err
}

func guardianRecord(id int64) string { return fmt.Sprintf("guardianship/%d", id) }

// AddGuardianship implements store.Store.
func (s *Store) AddGuardianship(ctx context.Context, a registry.Access, guardian, child int64, evidence string) (registry.Guardianship, error) {
	if err := a.Permit(registry.ActRegister, child); err != nil {
		return registry.Guardianship{}, err
	}
	var g registry.Guardianship
	err := s.write(ctx, fmt.Sprintf("link resident %d to guardian %d", child, guardian), func(t *tx) error {
		gr, err := scanResident(t.queryRow("SELECT "+residentColumns+" FROM residents WHERE id = $1", guardian))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no resident %d to be the guardian; register the parent or guardian first", guardian)
		}
		if err != nil {
			return err
		}
		ch, err := scanResident(t.queryRow("SELECT "+residentColumns+" FROM residents WHERE id = $1", child))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no resident %d to be the child; check the record", child)
		}
		if err != nil {
			return err
		}
		ev, err := registry.CheckGuardianship(gr, ch, evidence, t.today())
		if err != nil {
			return err
		}
		var n int64
		if err := t.queryRow("SELECT count(*) FROM guardianships WHERE guardian_id = $1 AND child_id = $2 AND ended_at IS NULL",
			guardian, child).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %s is already linked to this guardian; end that link first to record other evidence", registry.ErrConflict, ch.Name)
		}
		if err := t.queryRow("SELECT count(*) FROM guardianships WHERE child_id = $1", child).Scan(&n); err != nil {
			return err
		}
		if n >= registry.MaxGuardianships {
			return fmt.Errorf("%w: resident %d has %d guardian links on record, the most one record holds", registry.ErrConflict, child, n)
		}
		if err := t.queryRow(`INSERT INTO guardianships (guardian_id, child_id, evidence, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, guardian, child, ev, t.time(t.now), a.Actor.User).Scan(&g.ID); err != nil {
			if s.d.IsUnique(err) {
				return fmt.Errorf("%w: the same link was recorded at the same moment; open the record", registry.ErrConflict)
			}
			return err
		}
		g = registry.Guardianship{ID: g.ID, Guardian: guardian, Child: child, GuardianName: gr.Name, ChildName: ch.Name,
			ChildBirth: ch.BirthDate, Evidence: ev, Created: t.now, CreatedBy: a.Actor.User}
		// Both records show the link in their audit log.
		if err := t.audit(a, child, guardianRecord(g.ID), fmt.Sprintf("%s: resident %d", ActionLinkGuardian, guardian)); err != nil {
			return err
		}
		return t.audit(a, guardian, guardianRecord(g.ID), fmt.Sprintf("%s of resident %d", ActionLinkGuardian, child))
	})
	if err != nil {
		return registry.Guardianship{}, err
	}
	return g, nil
}

// EndGuardianship implements store.Store.
func (s *Store) EndGuardianship(ctx context.Context, a registry.Access, id int64, reason string) (registry.Guardianship, error) {
	if err := a.Permit(registry.ActRegister, 0); err != nil {
		return registry.Guardianship{}, err
	}
	reason, err := registry.CheckEndReason(reason)
	if err != nil {
		return registry.Guardianship{}, err
	}
	var g registry.Guardianship
	err = s.write(ctx, fmt.Sprintf("end guardian link %d", id), func(t *tx) error {
		var err error
		g, err = scanGuardianship(t.queryRow("SELECT "+guardianColumns+guardianFrom+" WHERE g.id = $1", id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no guardian link %d; open the child's record to see its links", id)
		}
		if err != nil {
			return err
		}
		if !g.Ended.IsZero() {
			return fmt.Errorf("%w: the link was ended on %s by %s", registry.ErrConflict, g.Ended.In(t.s.loc).Format("2006-01-02"), g.EndedBy)
		}
		if _, err := t.exec("UPDATE guardianships SET ended_at = $1, ended_by = $2, end_reason = $3 WHERE id = $4 AND ended_at IS NULL",
			t.time(t.now), a.Actor.User, reason, id); err != nil {
			return err
		}
		g.Ended, g.EndedBy, g.EndReason = t.now, a.Actor.User, reason
		if err := t.audit(a, g.Child, guardianRecord(id), fmt.Sprintf("%s: resident %d", ActionEndGuardian, g.Guardian)); err != nil {
			return err
		}
		return t.audit(a, g.Guardian, guardianRecord(id), fmt.Sprintf("%s of resident %d", ActionEndGuardian, g.Child))
	})
	if err != nil {
		return registry.Guardianship{}, err
	}
	return g, nil
}

// Which links of a record a reader sees (registry.Dossier.Guardianships).
const (
	linksStaff    = iota // every link in which the resident is guardian or child
	linksOwn             // the children the resident stands for now
	linksGuardian        // the standing link of guardian to the resident
)

// links reads the links of resident that view shows; guardian is the
// reader's own id for linksGuardian.
func (t *tx) links(resident, guardian int64, view int) ([]registry.Guardianship, error) {
	where, args := " WHERE (g.guardian_id = $1 OR g.child_id = $1)", []any{resident}
	switch view {
	case linksOwn:
		where = " WHERE g.guardian_id = $1 AND g.ended_at IS NULL"
	case linksGuardian:
		where, args = " WHERE g.child_id = $1 AND g.guardian_id = $2 AND g.ended_at IS NULL", []any{resident, guardian}
	}
	rows, err := t.query("SELECT "+guardianColumns+guardianFrom+where+" ORDER BY g.id LIMIT "+fmt.Sprint(2*registry.MaxGuardianships), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	today := t.today()
	out := []registry.Guardianship{}
	for rows.Next() {
		g, err := scanGuardianship(rows)
		if err != nil {
			return nil, err
		}
		if view != linksStaff && !g.Active(today) {
			continue
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// guards reports whether guardian stands for child today: an active
// link between them.
func (t *tx) guards(guardian, child int64) (bool, error) {
	ls, err := t.links(child, guardian, linksGuardian)
	return len(ls) > 0, err
}
