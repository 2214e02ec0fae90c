package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/citycard/transit/registry"
)

// Audit implements store.Store.
func (s *Store) Audit(ctx context.Context, a registry.Access, q registry.AuditQuery) ([]registry.AuditEntry, error) {
	if a.Actor.Role == registry.RoleResident {
		if err := a.Permit(registry.ActOwnData, a.Actor.Resident); err != nil {
			return nil, err
		}
		q.Resident = a.Actor.Resident
	} else if err := a.Permit(registry.ActAudit, 0); err != nil {
		return nil, err
	}
	if q.Limit < 0 || q.Limit > registry.MaxAuditPage {
		return nil, &registry.FieldError{Field: "limit", Problem: fmt.Sprintf("%d; want 1 to %d", q.Limit, registry.MaxAuditPage)}
	}
	if q.Limit == 0 {
		q.Limit = registry.MaxAuditPage
	}
	var out []registry.AuditEntry
	err := s.read(ctx, "read the audit log", func(t *tx) error {
		query := `SELECT id, at, user_name, role, resident_id, record, action, purpose FROM audit_log
			WHERE id > $1 ORDER BY id LIMIT $2`
		args := []any{q.After, q.Limit}
		if q.Resident != 0 {
			query = `SELECT id, at, user_name, role, resident_id, record, action, purpose FROM audit_log
				WHERE resident_id = $3 AND id > $1 ORDER BY id LIMIT $2`
			args = append(args, q.Resident)
		}
		rows, err := t.query(query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e        registry.AuditEntry
				role     string
				resident sql.NullInt64
			)
			if err := rows.Scan(&e.ID, timeCol{&e.At}, &e.User, &role, &resident, &e.Record, &e.Action, &e.Purpose); err != nil {
				return err
			}
			e.Role, e.Resident = registry.Role(role), resident.Int64
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddToken implements store.Store.
func (s *Store) AddToken(ctx context.Context, tok registry.Token) error {
	if err := tok.Actor.Validate(); err != nil {
		return err
	}
	return s.write(ctx, fmt.Sprintf("add a token for %s", tok.Actor.User), func(t *tx) error {
		var resident any
		if tok.Actor.Role == registry.RoleResident {
			if err := t.residentExists(tok.Actor.Resident); err != nil {
				return err
			}
			resident = tok.Actor.Resident
		}
		_, err := t.exec(`INSERT INTO api_tokens (hash, user_name, role, resident_id, created_at) VALUES ($1, $2, $3, $4, $5)`,
			tok.Hash[:], tok.Actor.User, string(tok.Actor.Role), resident, t.time(tok.Created))
		if err != nil && s.d.IsUnique(err) {
			return fmt.Errorf("%w: this token is already stored; make a new one", registry.ErrDuplicate)
		}
		return err
	})
}

// Authenticate implements store.Store.
func (s *Store) Authenticate(ctx context.Context, hash [32]byte) (registry.Actor, error) {
	var (
		a        registry.Actor
		role     string
		resident sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.q("SELECT user_name, role, resident_id FROM api_tokens WHERE hash = $1"), hash[:]).
		Scan(&a.User, &role, &resident)
	if errors.Is(err, sql.ErrNoRows) {
		return registry.Actor{}, fmt.Errorf("%w: unknown API token; ask an administrator for one (transit registry token create)", registry.ErrUnauthenticated)
	}
	if err != nil {
		return registry.Actor{}, fmt.Errorf("check API token: %w", err)
	}
	a.Role, a.Resident = registry.Role(role), resident.Int64
	return a, nil
}
