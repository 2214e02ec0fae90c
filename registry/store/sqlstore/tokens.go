package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/citycard/transit/registry"
)

// lastUseStep is how stale a token's recorded last use may get: writing
// it on every request would make every read a write.
const lastUseStep = time.Minute

// AddToken implements store.Store.
func (s *Store) AddToken(ctx context.Context, tok registry.Token) error {
	if err := tok.Validate(); err != nil {
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
		_, err := t.exec(`INSERT INTO api_tokens (hash, id, user_name, role, resident_id, kind, created_at, expires_at, created_by, note)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			tok.Hash[:], registry.TokenID(tok.Hash), tok.Actor.User, string(tok.Actor.Role), resident, string(tok.Kind),
			t.time(tok.Created), t.time(tok.Expires), tok.CreatedBy, tok.Note)
		if err != nil && s.d.IsUnique(err) {
			return fmt.Errorf("%w: this token is already stored; make a new one", registry.ErrDuplicate)
		}
		return err
	})
}

const tokenColumns = `t.id, t.user_name, t.role, t.resident_id, t.kind, t.created_at, t.expires_at, t.created_by, t.note,
	t.last_used_at, t.revoked_at, t.revoked_by`

func scanToken(sc interface{ Scan(...any) error }, extra ...any) (registry.TokenInfo, error) {
	var (
		ti             registry.TokenInfo
		role, kind     string
		resident       sql.NullInt64
		lastUsed, revk time.Time
	)
	dst := append([]any{&ti.ID, &ti.Actor.User, &role, &resident, &kind, timeCol{&ti.Created}, timeCol{&ti.Expires},
		&ti.CreatedBy, &ti.Note, timeCol{&lastUsed}, timeCol{&revk}, &ti.RevokedBy}, extra...)
	err := sc.Scan(dst...)
	ti.Actor.Role, ti.Actor.Resident, ti.Kind = registry.Role(role), resident.Int64, registry.TokenKind(kind)
	ti.LastUsed, ti.Revoked = lastUsed, revk
	return ti, err
}

// Authenticate implements store.Store.
func (s *Store) Authenticate(ctx context.Context, hash [32]byte) (registry.TokenInfo, error) {
	var disabled time.Time
	ti, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+`, s.disabled_at FROM api_tokens t
		LEFT JOIN staff_accounts s ON s.user_name = t.user_name AND t.kind = 'session'
		WHERE t.hash = $1`), hash[:]), timeCol{&disabled})
	if errors.Is(err, sql.ErrNoRows) {
		return registry.TokenInfo{}, fmt.Errorf("%w: unknown API token; sign in again, or ask an administrator for a token (transit registry token create)", registry.ErrUnauthenticated)
	}
	if err != nil {
		return registry.TokenInfo{}, fmt.Errorf("check API token: %w", err)
	}
	now := s.now().UTC()
	switch {
	case !ti.Revoked.IsZero():
		return registry.TokenInfo{}, fmt.Errorf("%w: this token was revoked on %s; sign in again or ask for a new one",
			registry.ErrUnauthenticated, ti.Revoked.Format(time.DateOnly))
	case now.After(ti.Expires):
		return registry.TokenInfo{}, fmt.Errorf("%w: this token ended on %s; sign in again or ask for a new one",
			registry.ErrUnauthenticated, ti.Expires.Format(time.DateOnly))
	case ti.Expires.Sub(ti.Created) > registry.MaxTokenTTL || ti.Created.After(now.Add(time.Minute)):
		// Only a hand in the database makes such a row.
		return registry.TokenInfo{}, fmt.Errorf("%w: this token's dates are impossible; ask for a new one", registry.ErrUnauthenticated)
	case !disabled.IsZero():
		return registry.TokenInfo{}, fmt.Errorf("%w: the account %s is disabled", registry.ErrUnauthenticated, ti.Actor.User)
	}
	if ti.LastUsed.IsZero() || now.Sub(ti.LastUsed) >= lastUseStep {
		at := now.Truncate(lastUseStep)
		if _, err := s.db.ExecContext(ctx, s.q("UPDATE api_tokens SET last_used_at = $1 WHERE hash = $2"), s.d.Time(at), hash[:]); err != nil {
			return registry.TokenInfo{}, fmt.Errorf("record the token's use: %w", err)
		}
		ti.LastUsed = at
	}
	return ti, nil
}

// MaxTokenList bounds one list of tokens.
const MaxTokenList = 1000

// Tokens implements store.Store.
func (s *Store) Tokens(ctx context.Context, a registry.Access, q registry.TokenQuery) ([]registry.TokenInfo, error) {
	if err := a.Permit(registry.ActTokens, 0); err != nil {
		return nil, err
	}
	where, args := []string{"1 = 1"}, []any{}
	if !q.All {
		args = append(args, s.d.Time(s.now().UTC()))
		where = append(where, fmt.Sprintf("t.revoked_at IS NULL AND t.expires_at >= $%d", len(args)))
	}
	if q.User != "" {
		args = append(args, q.User)
		where = append(where, fmt.Sprintf("t.user_name = $%d", len(args)))
	}
	args = append(args, MaxTokenList)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+tokenColumns+` FROM api_tokens t WHERE `+strings.Join(where, " AND ")+
		fmt.Sprintf(" ORDER BY t.created_at DESC, t.id LIMIT $%d", len(args))), args...)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []registry.TokenInfo
	for rows.Next() {
		ti, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, ti)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken implements store.Store.
func (s *Store) RevokeToken(ctx context.Context, a registry.Access, id string) (registry.TokenInfo, error) {
	if err := a.Actor.Validate(); err != nil {
		return registry.TokenInfo{}, fmt.Errorf("%w: %v", registry.ErrForbidden, err)
	}
	id = strings.ToLower(strings.TrimSpace(id))
	var ti registry.TokenInfo
	err := s.write(ctx, "revoke token "+id, func(t *tx) error {
		var err error
		ti, err = scanToken(t.queryRow(`SELECT `+tokenColumns+` FROM api_tokens t WHERE t.id = $1`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no token %q; list them with transit registry token list", id)
		}
		if err != nil {
			return err
		}
		own := ti.Actor.User == a.Actor.User && ti.Actor.Role == a.Actor.Role
		if !own {
			if err := a.Permit(registry.ActTokens, 0); err != nil {
				return err
			}
		}
		if !ti.Revoked.IsZero() {
			return fmt.Errorf("%w: token %s was already revoked on %s by %s", registry.ErrConflict, id, ti.Revoked.Format(time.DateOnly), ti.RevokedBy)
		}
		ti.Revoked, ti.RevokedBy = t.now, a.Actor.User
		_, err = t.exec("UPDATE api_tokens SET revoked_at = $1, revoked_by = $2 WHERE id = $3", t.time(t.now), a.Actor.User, id)
		return err
	})
	if err != nil {
		return registry.TokenInfo{}, err
	}
	return ti, nil
}
