package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
)

const auditColumns = "id, at, user_name, role, resident_id, record, action, purpose, seq, prev_hash, hash"

func scanAudit(sc interface{ Scan(...any) error }) (registry.AuditEntry, error) {
	var (
		e        registry.AuditEntry
		role     string
		resident sql.NullInt64
		seq      sql.NullInt64
	)
	err := sc.Scan(&e.ID, timeCol{&e.At}, &e.User, &role, &resident, &e.Record, &e.Action, &e.Purpose, &seq, &e.Prev, &e.Hash)
	e.Role, e.Resident, e.Seq = registry.Role(role), resident.Int64, seq.Int64
	return e, err
}

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
		query := `SELECT ` + auditColumns + ` FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2`
		args := []any{q.After, q.Limit}
		if q.Resident != 0 {
			query = `SELECT ` + auditColumns + ` FROM audit_log WHERE resident_id = $3 AND id > $1 ORDER BY id LIMIT $2`
			args = append(args, q.Resident)
		}
		rows, err := t.query(query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanAudit(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// chainPage is how many entries one query of the chain reads: the walk
// over millions of entries releases the connection between pages.
const chainPage = 5000

// AuditChain implements store.Store.
func (s *Store) AuditChain(ctx context.Context, after int64, fn func(*registry.AuditEntry) error) error {
	if after <= 0 {
		// Entries without a place in the chain, which only a hand can
		// have added: few, if any.
		if err := s.auditPage(ctx, "SELECT "+auditColumns+" FROM audit_log WHERE seq IS NULL ORDER BY id", nil, fn); err != nil {
			return err
		}
	}
	// (seq, id) pages; the first starts after every entry at seq after.
	lastSeq, lastID := after, int64(math.MaxInt64)
	for {
		var n int
		err := s.auditPage(ctx, "SELECT "+auditColumns+` FROM audit_log
			WHERE seq > $1 OR (seq = $1 AND id > $2) ORDER BY seq, id LIMIT $3`, []any{lastSeq, lastID, chainPage},
			func(e *registry.AuditEntry) error {
				n++
				lastSeq, lastID = e.Seq, e.ID
				return fn(e)
			})
		if err != nil || n < chainPage {
			return err
		}
	}
}

func (s *Store) auditPage(ctx context.Context, query string, args []any, fn func(*registry.AuditEntry) error) error {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return fmt.Errorf("read the audit chain: %w", err)
	}
	var page []registry.AuditEntry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			rows.Close()
			return fmt.Errorf("read the audit chain: %w", err)
		}
		page = append(page, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the audit chain: %w", err)
	}
	// fn runs with the connection released: it may use the store.
	for i := range page {
		if err := fn(&page[i]); err != nil {
			return err
		}
	}
	return nil
}

// AuditHead implements store.Store.
func (s *Store) AuditHead(ctx context.Context) (int64, []byte, error) {
	var (
		seq  int64
		hash []byte
	)
	err := s.db.QueryRowContext(ctx, "SELECT seq, hash FROM audit_head WHERE id = 1").Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, errors.New("read the audit chain's head: the audit_head row is gone; the database was altered by hand")
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read the audit chain's head: %w", err)
	}
	return seq, hash, nil
}

// AuditCheckpoints implements store.Store.
func (s *Store) AuditCheckpoints(ctx context.Context) ([]registry.AuditCheckpoint, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT seq, hash, at, key, signature FROM audit_checkpoints ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	defer rows.Close()
	var out []registry.AuditCheckpoint
	for rows.Next() {
		var cp registry.AuditCheckpoint
		if err := rows.Scan(&cp.Seq, &cp.Hash, timeCol{&cp.At}, &cp.Key, &cp.Signature); err != nil {
			return nil, fmt.Errorf("read audit checkpoints: %w", err)
		}
		out = append(out, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit checkpoints: %w", err)
	}
	return out, nil
}

// AddAuditCheckpoint implements store.Store.
func (s *Store) AddAuditCheckpoint(ctx context.Context, cp registry.AuditCheckpoint) error {
	if cp.Seq <= 0 || len(cp.Hash) != len(auditchain.Genesis) || len(cp.Signature) == 0 || cp.Key == "" {
		return &registry.FieldError{Field: "checkpoint", Problem: "incomplete: it needs an entry, its hash, a key and a signature"}
	}
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO audit_checkpoints (seq, hash, at, key, signature) VALUES ($1, $2, $3, $4, $5)"),
		cp.Seq, cp.Hash, s.d.Time(cp.At), cp.Key, cp.Signature)
	if err != nil {
		if s.d.IsUnique(err) {
			return fmt.Errorf("%w: entry %d already has a checkpoint", registry.ErrDuplicate, cp.Seq)
		}
		return fmt.Errorf("store audit checkpoint at entry %d: %w", cp.Seq, err)
	}
	return nil
}
