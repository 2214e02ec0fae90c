package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/citycard/transit/registry"
)

// Audit actions of online applications.
const (
	ActionSubmitApplication = "submit application"
	ActionReadApplications  = "read applications"
	ActionReadAttachment    = "read application document"
	ActionAcceptApplication = "accept application"
	ActionRefuseApplication = "refuse application"
)

func applicationRecord(id int64) string { return fmt.Sprintf("application/%d", id) }

const applicationColumns = `a.id, a.resident_id, a.kind, a.category, a.note, a.status, a.submitted_at,
	a.decided_at, a.decided_by, a.reason, a.result, r.name`

func scanApplication(sc interface{ Scan(...any) error }) (registry.Application, error) {
	var (
		ap       registry.Application
		kind, st string
		cat      int64
	)
	err := sc.Scan(&ap.ID, &ap.Resident, &kind, &cat, &ap.Note, &st, timeCol{&ap.Submitted},
		timeCol{&ap.Decided}, &ap.DecidedBy, &ap.Reason, &ap.Result, &ap.ResidentName)
	ap.Kind, ap.Status, ap.Category = registry.ApplicationKind(kind), registry.ApplicationStatus(st), uint16(cat)
	return ap, err
}

// SubmitApplication implements store.Store.
func (s *Store) SubmitApplication(ctx context.Context, a registry.Access, ap registry.Application) (registry.Application, error) {
	if a.Actor.Role == registry.RoleResident {
		if err := a.Permit(registry.ActOwnData, ap.Resident); err != nil {
			return registry.Application{}, err
		}
		if strings.TrimSpace(a.Purpose) == "" {
			a.Purpose = registry.PurposeOwnView
		}
	} else if err := a.Permit(registry.ActRegister, ap.Resident); err != nil {
		return registry.Application{}, err
	}
	if err := registry.CheckApplication(&ap); err != nil {
		return registry.Application{}, err
	}
	err := s.write(ctx, fmt.Sprintf("submit an application of resident %d", ap.Resident), func(t *tx) error {
		if err := t.residentExists(ap.Resident); err != nil {
			return err
		}
		var open int64
		if err := t.queryRow("SELECT count(*) FROM applications WHERE resident_id = $1 AND kind = $2 AND category = $3 AND status = 'submitted'",
			ap.Resident, string(ap.Kind), int64(ap.Category)).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return fmt.Errorf("%w: the same application is already waiting for a desk's decision; wait for it, or add to it at a desk", registry.ErrConflict)
		}
		if ap.Kind == registry.ApplyCard {
			if _, live, err := t.liveCard(ap.Resident); err != nil {
				return err
			} else if live {
				return fmt.Errorf("%w: you already have a card; a lost or stolen one is blocked on your page and replaced at a desk", registry.ErrConflict)
			}
		}
		ap.Status, ap.Submitted = registry.ApplicationSubmitted, t.now
		if err := t.queryRow(`INSERT INTO applications (resident_id, kind, category, note, status, submitted_at, submitted_by)
			VALUES ($1, $2, $3, $4, 'submitted', $5, $6) RETURNING id`,
			ap.Resident, string(ap.Kind), int64(ap.Category), ap.Note, t.time(t.now), a.Actor.User).Scan(&ap.ID); err != nil {
			if s.d.IsUnique(err) {
				return fmt.Errorf("%w: the same application was submitted at the same moment", registry.ErrConflict)
			}
			return err
		}
		for i := range ap.Attachments {
			f := &ap.Attachments[i]
			if err := t.queryRow(`INSERT INTO application_files (application_id, name, type, size, data) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
				ap.ID, f.Name, f.Type, f.Size, f.Data).Scan(&f.ID); err != nil {
				return err
			}
			f.Data = nil
		}
		return t.audit(a, ap.Resident, applicationRecord(ap.ID), fmt.Sprintf("%s (%s, %d documents)", ActionSubmitApplication, ap.Kind, len(ap.Attachments)))
	})
	if err != nil {
		return registry.Application{}, err
	}
	return ap, nil
}

// Applications implements store.Store.
func (s *Store) Applications(ctx context.Context, a registry.Access, q registry.ApplicationQuery) ([]registry.Application, error) {
	own := a.Actor.Role == registry.RoleResident
	if own {
		if err := a.Permit(registry.ActOwnData, a.Actor.Resident); err != nil {
			return nil, err
		}
		q.Resident = a.Actor.Resident
		if strings.TrimSpace(a.Purpose) == "" {
			a.Purpose = registry.PurposeOwnView
		}
	} else if err := a.PermitRead(registry.ActReadPersonal, q.Resident); err != nil {
		return nil, err
	}
	where, args := []string{"TRUE"}, []any{}
	if q.Resident != 0 {
		args = append(args, q.Resident)
		where = append(where, fmt.Sprintf("a.resident_id = $%d", len(args)))
	}
	if q.Status != "" {
		args = append(args, string(q.Status))
		where = append(where, fmt.Sprintf("a.status = $%d", len(args)))
	}
	if q.ID != 0 {
		args = append(args, q.ID)
		where = append(where, fmt.Sprintf("a.id = $%d", len(args)))
	}
	args = append(args, registry.MaxApplicationsShown)
	query := "SELECT " + applicationColumns + " FROM applications a JOIN residents r ON r.id = a.resident_id WHERE " +
		strings.Join(where, " AND ") + fmt.Sprintf(" ORDER BY a.id LIMIT $%d", len(args))
	var out []registry.Application
	err := s.read(ctx, "read applications", func(t *tx) error {
		rows, err := t.query(query, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			ap, err := scanApplication(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, ap)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		rows.Close()
		for i := range out {
			if out[i].Attachments, err = t.attachments(out[i].ID); err != nil {
				return err
			}
			if err := t.audit(a, out[i].Resident, applicationRecord(out[i].ID), ActionReadApplications); err != nil {
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

// attachments lists an application's documents, without their bytes.
func (t *tx) attachments(app int64) ([]registry.Attachment, error) {
	rows, err := t.query("SELECT id, name, type, size FROM application_files WHERE application_id = $1 ORDER BY id", app)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []registry.Attachment{}
	for rows.Next() {
		var f registry.Attachment
		if err := rows.Scan(&f.ID, &f.Name, &f.Type, &f.Size); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// Attachment implements store.Store.
func (s *Store) Attachment(ctx context.Context, a registry.Access, app, file int64) (registry.Attachment, error) {
	if a.Actor.Role == registry.RoleResident {
		if err := a.Permit(registry.ActOwnData, a.Actor.Resident); err != nil {
			return registry.Attachment{}, err
		}
		if strings.TrimSpace(a.Purpose) == "" {
			a.Purpose = registry.PurposeOwnView
		}
	} else if err := a.PermitRead(registry.ActReadPersonal, 0); err != nil {
		return registry.Attachment{}, err
	}
	var f registry.Attachment
	err := s.read(ctx, fmt.Sprintf("read document %d of application %d", file, app), func(t *tx) error {
		var resident int64
		err := t.queryRow(`SELECT f.id, f.name, f.type, f.size, f.data, a.resident_id FROM application_files f
			JOIN applications a ON a.id = f.application_id WHERE f.id = $1 AND f.application_id = $2`, file, app).
			Scan(&f.ID, &f.Name, &f.Type, &f.Size, &f.Data, &resident)
		if errors.Is(err, sql.ErrNoRows) || err == nil && a.Actor.Role == registry.RoleResident && resident != a.Actor.Resident {
			return notFound("no document %d in application %d", file, app)
		}
		if err != nil {
			return err
		}
		return t.audit(a, resident, applicationRecord(app), fmt.Sprintf("%s %d", ActionReadAttachment, file))
	})
	if err != nil {
		return registry.Attachment{}, err
	}
	return f, nil
}

// DecideApplication implements store.Store.
func (s *Store) DecideApplication(ctx context.Context, a registry.Access, id int64, d registry.Decision) (registry.Application, error) {
	if err := a.Permit(registry.ActRegister, 0); err != nil {
		return registry.Application{}, err
	}
	var ap registry.Application
	err := s.write(ctx, fmt.Sprintf("decide application %d", id), func(t *tx) error {
		var err error
		ap, err = scanApplication(t.queryRow("SELECT "+applicationColumns+" FROM applications a JOIN residents r ON r.id = a.resident_id WHERE a.id = $1", id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no application %d; open the queue of applications", id)
		}
		if err != nil {
			return err
		}
		if err := registry.CheckDecision(ap, &d); err != nil {
			return err
		}
		action := ActionRefuseApplication
		ap.Status = registry.ApplicationRefused
		if d.Accept {
			action, ap.Status = ActionAcceptApplication, registry.ApplicationAccepted
			// The same checks and audit as the desk's own grant and order.
			switch ap.Kind {
			case registry.ApplyBenefit:
				if err := a.Permit(registry.ActEntitlements, ap.Resident); err != nil {
					return err
				}
				e := d.Entitlement
				e.Source, e.SourceRef, e.Updated = registry.SourceDesk, "", t.now
				if err := t.insertEntitlement(&e); err != nil {
					return err
				}
				if err := t.emitForResident(e.ResidentID); err != nil {
					return err
				}
				if err := t.audit(a, e.ResidentID, fmt.Sprintf("entitlement/%d", e.ID), "add entitlement"); err != nil {
					return err
				}
				ap.Result = fmt.Sprintf("entitlement/%d", e.ID)
			case registry.ApplyCard:
				if err := a.Permit(registry.ActCards, ap.Resident); err != nil {
					return err
				}
				c, err := t.orderCard(a, ap.Resident)
				if err != nil {
					return err
				}
				ap.Result = cardRecord(c.Number)
			}
		}
		ap.Decided, ap.DecidedBy, ap.Reason = t.now, a.Actor.User, d.Reason
		res, err := t.exec(`UPDATE applications SET status = $1, decided_at = $2, decided_by = $3, reason = $4, result = $5
			WHERE id = $6 AND status = 'submitted'`, string(ap.Status), t.time(t.now), a.Actor.User, d.Reason, ap.Result, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w: application %d was decided at the same moment", registry.ErrConflict, id)
		}
		if ap.Attachments, err = t.attachments(id); err != nil {
			return err
		}
		return t.audit(a, ap.Resident, applicationRecord(id), action)
	})
	if err != nil {
		return registry.Application{}, err
	}
	return ap, nil
}
