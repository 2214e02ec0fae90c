package sqlstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store"
)

const staffColumns = "user_name, role, password_hash, created_at, password_changed_at, disabled_at, disabled_by"

func scanStaff(sc interface{ Scan(...any) error }) (registry.StaffAccount, error) {
	var (
		acc  registry.StaffAccount
		role string
	)
	err := sc.Scan(&acc.User, &role, &acc.PasswordHash, timeCol{&acc.Created}, timeCol{&acc.PasswordChanged}, timeCol{&acc.Disabled}, &acc.DisabledBy)
	acc.Role = registry.Role(role)
	return acc, err
}

// AddStaff implements store.Store.
func (s *Store) AddStaff(ctx context.Context, acc registry.StaffAccount) error {
	if err := acc.Validate(); err != nil {
		return err
	}
	return s.write(ctx, "add staff account "+acc.User, func(t *tx) error {
		_, err := t.exec(`INSERT INTO staff_accounts (user_name, role, password_hash, created_at, password_changed_at) VALUES ($1, $2, $3, $4, $4)`,
			acc.User, string(acc.Role), acc.PasswordHash, t.time(t.now))
		if err != nil && s.d.IsUnique(err) {
			return fmt.Errorf("%w: there is already a staff account %q; choose another user name", registry.ErrDuplicate, acc.User)
		}
		return err
	})
}

// Staff implements store.Store.
func (s *Store) Staff(ctx context.Context, user string) (registry.StaffAccount, error) {
	acc, err := scanStaff(s.db.QueryRowContext(ctx, s.q("SELECT "+staffColumns+" FROM staff_accounts WHERE user_name = $1"), user))
	if errors.Is(err, sql.ErrNoRows) {
		return registry.StaffAccount{}, notFound("no staff account %q", user)
	}
	if err != nil {
		return registry.StaffAccount{}, fmt.Errorf("read staff account: %w", err)
	}
	return acc, nil
}

// StaffAccounts implements store.Store.
func (s *Store) StaffAccounts(ctx context.Context) ([]registry.StaffAccount, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+staffColumns+" FROM staff_accounts ORDER BY user_name")
	if err != nil {
		return nil, fmt.Errorf("list staff accounts: %w", err)
	}
	defer rows.Close()
	var out []registry.StaffAccount
	for rows.Next() {
		acc, err := scanStaff(rows)
		if err != nil {
			return nil, fmt.Errorf("list staff accounts: %w", err)
		}
		acc.PasswordHash = ""
		out = append(out, acc)
	}
	return out, rows.Err()
}

// SetStaffPassword implements store.Store.
func (s *Store) SetStaffPassword(ctx context.Context, user, hash string) error {
	if hash == "" {
		return &registry.FieldError{Field: "password", Problem: "missing; set a password"}
	}
	return s.write(ctx, "set the password of "+user, func(t *tx) error {
		res, err := t.exec("UPDATE staff_accounts SET password_hash = $1, password_changed_at = $2 WHERE user_name = $3", hash, t.time(t.now), user)
		if err != nil {
			return err
		}
		return oneRow(res, user)
	})
}

// DisableStaff implements store.Store.
func (s *Store) DisableStaff(ctx context.Context, user, by string, disable bool) error {
	what := "disable"
	if !disable {
		what = "enable"
	}
	return s.write(ctx, what+" staff account "+user, func(t *tx) error {
		var (
			res sql.Result
			err error
		)
		if disable {
			res, err = t.exec("UPDATE staff_accounts SET disabled_at = $1, disabled_by = $2 WHERE user_name = $3", t.time(t.now), by, user)
		} else {
			res, err = t.exec("UPDATE staff_accounts SET disabled_at = NULL, disabled_by = '' WHERE user_name = $1", user)
		}
		if err != nil {
			return err
		}
		if err := oneRow(res, user); err != nil {
			return err
		}
		if !disable {
			return nil
		}
		// Everything the person could still use ends with the account.
		_, err = t.exec(`UPDATE api_tokens SET revoked_at = $1, revoked_by = $2
			WHERE user_name = $3 AND role <> 'resident' AND role <> 'service' AND revoked_at IS NULL`, t.time(t.now), by, user)
		return err
	})
}

func oneRow(res sql.Result, user string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return notFound("no staff account %q; list them with transit registry staff list", user)
	}
	return nil
}

// Resident sign-in.

// PurposeSignIn is what the audit log records when the registry reads a
// resident's contact to send them a sign-in code.
const PurposeSignIn = "resident sign-in: one-time code sent to the registered contact"

// StartResidentSignIn implements store.Store.
func (s *Store) StartResidentSignIn(ctx context.Context, registryNumber string, c store.ResidentCode) (int64, string, error) {
	if c.ID == "" || !c.Expires.After(c.Created) {
		return 0, "", &registry.FieldError{Field: "code", Problem: "a sign-in needs an id and an end after its start"}
	}
	var (
		id      int64
		contact string
	)
	err := s.read(ctx, "start a resident's sign-in", func(t *tx) error {
		err := t.queryRow("SELECT id, contact FROM residents WHERE registry_number = $1", registryNumber).Scan(&id, &contact)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("no resident with this registry number")
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO resident_codes (id, resident_id, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			c.ID, id, c.CodeHash[:], t.time(c.Created), t.time(c.Expires)); err != nil {
			return err
		}
		a := registry.Access{Actor: registry.Actor{User: registry.ResidentUser(id), Role: registry.RoleResident, Resident: id}, Purpose: PurposeSignIn}
		return t.audit(a, id, residentRecord(id), "read contact to send a sign-in code")
	})
	if err != nil {
		return 0, "", err
	}
	return id, contact, nil
}

// FinishResidentSignIn implements store.Store.
func (s *Store) FinishResidentSignIn(ctx context.Context, id string, codeHash [32]byte, maxAttempts int) (int64, error) {
	var (
		resident int64
		ok       bool
	)
	err := s.write(ctx, "finish a resident's sign-in", func(t *tx) error {
		var (
			want          []byte
			expires, used time.Time
			attempts      int
		)
		err := t.queryRow("SELECT resident_id, code_hash, expires_at, attempts, used_at FROM resident_codes WHERE id = $1", id).
			Scan(&resident, &want, timeCol{&expires}, &attempts, timeCol{&used})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !used.IsZero() || !t.now.Before(expires) || attempts >= maxAttempts {
			return nil
		}
		if subtle.ConstantTimeCompare(want, codeHash[:]) != 1 {
			_, err := t.exec("UPDATE resident_codes SET attempts = attempts + 1 WHERE id = $1", id)
			return err
		}
		ok = true
		_, err = t.exec("UPDATE resident_codes SET used_at = $1, attempts = attempts + 1 WHERE id = $2", t.time(t.now), id)
		return err
	})
	if err != nil {
		return 0, err
	}
	if !ok {
		// The same answer for a wrong code, a used or ended one, and no
		// sign-in at all.
		return 0, fmt.Errorf("%w: the code is wrong, used or expired; ask for a new one", registry.ErrUnauthenticated)
	}
	return resident, nil
}

// ResidentCodesSince implements store.Store.
func (s *Store) ResidentCodesSince(ctx context.Context, resident int64, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q("SELECT count(*) FROM resident_codes WHERE resident_id = $1 AND created_at >= $2"),
		resident, s.d.Time(since.UTC())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count sign-in codes: %w", err)
	}
	return n, nil
}
