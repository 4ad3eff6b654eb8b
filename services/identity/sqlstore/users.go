package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

const userCols = "id, login_name, display_name, id_type, id_number_enc, id_number_mask, phone_enc, phone_mask, " +
	"email, org_id, status, feature_code, is_admin, password_hash, password_changed_at, must_change, " +
	"never_expires, cannot_change, failed_count, locked_until, created_at, updated_at, password_only"

func scanUser(sc store.Scanner) (*identity.User, string, error) {
	var (
		u                             identity.User
		idType, status, failed        int64
		org, feature                  sql.NullString
		changed, locked, created, upd int64
	)
	err := sc.Scan(&u.ID, &u.LoginName, &u.DisplayName, &idType, &u.IDNumberEnc, &u.IDNumberMask,
		&u.PhoneEnc, &u.PhoneMask, &u.Email, &org, &status, &feature, &u.IsAdmin, &u.PasswordHash,
		&changed, &u.MustChange, &u.NeverExpires, &u.CannotChange, &failed, &locked, &created, &upd, &u.PasswordOnly)
	if err != nil {
		return nil, "", err
	}
	u.IDType, u.Status, u.FailedCount = identity.IDType(idType), identity.Status(status), int(failed)
	u.OrgID, u.FeatureCode = org.String, feature.String
	u.PasswordChangedAt, u.LockedUntil = store.FromUnixMS(changed), store.FromUnixMS(locked)
	u.CreatedAt, u.UpdatedAt = store.FromUnixMS(created), store.FromUnixMS(upd)
	return &u, u.ID, nil
}

func (s *Store) getUser(ctx context.Context, qr store.Querier, col, v string) (*identity.User, error) {
	u, _, err := scanUser(qr.QueryRowContext(ctx, s.q("SELECT "+userCols+" FROM users WHERE "+col+" = ?"), v))
	if errors.Is(err, sql.ErrNoRows) {
		if col == "id" {
			return nil, store.NotFound("user")
		}
		// Do not echo a login name (personal data) in the message.
		return nil, store.NotFound("user")
	}
	return u, err
}

// checkUserUnique reports which unique user field u would duplicate.
func (s *Store) checkUserUnique(ctx context.Context, tx *sql.Tx, u *identity.User, self string) error {
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE login_name = ? AND id <> ?", u.LoginName, self); err != nil {
		return err
	} else if ok {
		return store.Conflict("login name already exists")
	}
	if u.FeatureCode != "" {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE feature_code = ? AND id <> ?", u.FeatureCode, self); err != nil {
			return err
		} else if ok {
			return store.Conflict("feature code already exists")
		}
	}
	return nil
}

func (s *Store) checkOrg(ctx context.Context, tx *sql.Tx, orgID string) error {
	if orgID == "" {
		return nil
	}
	ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM orgs WHERE id = ?"+s.db.ForShare(), orgID)
	if err != nil {
		return err
	}
	if !ok {
		return store.NotFound("org")
	}
	return nil
}

// CreateUser inserts u with every field (including the password hash).
func (s *Store) CreateUser(ctx context.Context, u *identity.User, evs []events.Event) error {
	return s.inTx(ctx, "create user", "user", func(tx *sql.Tx) error {
		if err := s.checkOrg(ctx, tx, u.OrgID); err != nil {
			return err
		}
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?", u.ID); err != nil {
			return err
		} else if ok {
			return store.Conflict("user id already exists")
		}
		if err := s.checkUserUnique(ctx, tx, u, u.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO users ("+userCols+") VALUES "+
			"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			u.ID, u.LoginName, u.DisplayName, int(u.IDType), u.IDNumberEnc, u.IDNumberMask, u.PhoneEnc,
			u.PhoneMask, u.Email, store.NullIfEmpty(u.OrgID), int(u.Status), store.NullIfEmpty(u.FeatureCode), u.IsAdmin,
			u.PasswordHash, store.UnixMS(u.PasswordChangedAt), u.MustChange, u.NeverExpires, u.CannotChange,
			u.FailedCount, store.UnixMS(u.LockedUntil), store.UnixMS(u.CreatedAt), store.UnixMS(u.UpdatedAt), u.PasswordOnly)
		if err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// GetUser returns the user id.
func (s *Store) GetUser(ctx context.Context, id string) (*identity.User, error) {
	u, err := s.getUser(ctx, s.stmts, "id", id)
	if err != nil {
		return nil, classify(err, "get user", "user")
	}
	return u, nil
}

// GetUserByLogin returns the user whose login name is login (exact match).
func (s *Store) GetUserByLogin(ctx context.Context, login string) (*identity.User, error) {
	u, err := s.getUser(ctx, s.stmts, "login_name", login)
	if err != nil {
		return nil, classify(err, "get user by login", "user")
	}
	return u, nil
}

// ListUsers lists users by id. Query matches login name, display name and
// email.
func (s *Store) ListUsers(ctx context.Context, f identity.UserFilter, p identity.Page) ([]*identity.User, string, error) {
	var w store.Where
	if f.OrgID != "" {
		w.Add("org_id = ?", f.OrgID)
	}
	if f.Status != 0 {
		w.Add("status = ?", int(f.Status))
	}
	w.Contains(f.Query, "login_name", "display_name", "email")
	return list(ctx, s, "list users", "SELECT "+userCols+" FROM users", &w, p, "id", scanUser)
}

// UpdateUser writes every field except id, password hash and created_at.
func (s *Store) UpdateUser(ctx context.Context, u *identity.User, evs []events.Event) error {
	return s.inTx(ctx, "update user", "user", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?"+s.db.ForUpdate(), u.ID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("user")
		}
		if err := s.checkOrg(ctx, tx, u.OrgID); err != nil {
			return err
		}
		if err := s.checkUserUnique(ctx, tx, u, u.ID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET login_name = ?, display_name = ?, id_type = ?,
			id_number_enc = ?, id_number_mask = ?, phone_enc = ?, phone_mask = ?, email = ?, org_id = ?,
			status = ?, feature_code = ?, is_admin = ?, password_changed_at = ?, must_change = ?,
			never_expires = ?, cannot_change = ?, failed_count = ?, locked_until = ?, updated_at = ?,
			password_only = ?
			WHERE id = ?`),
			u.LoginName, u.DisplayName, int(u.IDType), u.IDNumberEnc, u.IDNumberMask, u.PhoneEnc, u.PhoneMask,
			u.Email, store.NullIfEmpty(u.OrgID), int(u.Status), store.NullIfEmpty(u.FeatureCode), u.IsAdmin,
			store.UnixMS(u.PasswordChangedAt), u.MustChange, u.NeverExpires, u.CannotChange, u.FailedCount,
			store.UnixMS(u.LockedUntil), store.UnixMS(u.UpdatedAt), u.PasswordOnly, u.ID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// SetPassword stores a new hash, records it in the history (keeping the
// newest keep entries; keep <= 0 keeps none) and clears failures.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, changedAt time.Time, mustChange bool, keep int, evs []events.Event) error {
	return s.inTx(ctx, "set password", "user", func(tx *sql.Tx) error {
		// The history holds replaced passwords: remember the current hash
		// (which may be the one set at creation) before overwriting it.
		var old string
		if err := tx.QueryRowContext(ctx, s.q("SELECT password_hash FROM users WHERE id = ?"), userID).Scan(&old); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return store.NotFound("user")
			}
			return err
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ?, password_changed_at = ?,
			must_change = ?, failed_count = 0, updated_at = ? WHERE id = ?`),
			hash, store.UnixMS(changedAt), mustChange, store.UnixMS(changedAt), userID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		if keep > 0 && old != "" {
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO password_history (user_id, hash, created_at) VALUES (?, ?, ?)"),
				userID, old, store.UnixMS(changedAt)); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM password_history WHERE user_id = ? AND seq NOT IN
			(SELECT seq FROM password_history WHERE user_id = ? ORDER BY seq DESC LIMIT ?)`),
			userID, userID, max(keep, 0)); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// PasswordHistory returns up to n remembered hashes, newest first.
func (s *Store) PasswordHistory(ctx context.Context, userID string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q("SELECT hash FROM password_history WHERE user_id = ? ORDER BY seq DESC LIMIT ?"),
		userID, n)
	if err != nil {
		return nil, classify(err, "password history", "")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, classify(err, "password history", "")
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "password history", "")
	}
	return out, nil
}

// RecordLoginFailure atomically adds one failure; at maxFailures (> 0) it
// locks the account until lockUntil and resets the count.
func (s *Store) RecordLoginFailure(ctx context.Context, userID string, maxFailures int, lockUntil time.Time, now time.Time, evs, onLock []events.Event) (*identity.User, error) {
	var u *identity.User
	err := s.inTx(ctx, "record login failure", "user", func(tx *sql.Tx) error {
		// One statement: the right-hand sides all see the old row, and the
		// row is write-locked until commit.
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET
			failed_count = CASE WHEN ? > 0 AND failed_count + 1 >= ? THEN 0 ELSE failed_count + 1 END,
			locked_until = CASE WHEN ? > 0 AND failed_count + 1 >= ? THEN ? ELSE locked_until END,
			updated_at = ?
			WHERE id = ?`),
			maxFailures, maxFailures, maxFailures, maxFailures, store.UnixMS(lockUntil), store.UnixMS(now), userID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		if err := s.addEvents(ctx, tx, evs); err != nil {
			return err
		}
		u, err = s.getUser(ctx, tx, "id", userID)
		if err != nil {
			return err
		}
		// The count goes back to 0 only when this failure reached the limit.
		if maxFailures > 0 && u.FailedCount == 0 && u.LockedUntil.Equal(store.FromUnixMS(store.UnixMS(lockUntil))) {
			return s.addEvents(ctx, tx, onLock)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// RecordLoginSuccess clears failures and, when rehash != "", replaces the
// password hash.
func (s *Store) RecordLoginSuccess(ctx context.Context, userID, rehash string, now time.Time, evs []events.Event) error {
	return s.inTx(ctx, "record login success", "user", func(tx *sql.Tx) error {
		var (
			res sql.Result
			err error
		)
		if rehash != "" {
			res, err = tx.ExecContext(ctx, s.q("UPDATE users SET failed_count = 0, password_hash = ?, updated_at = ? WHERE id = ?"),
				rehash, store.UnixMS(now), userID)
		} else {
			res, err = tx.ExecContext(ctx, s.q("UPDATE users SET failed_count = 0 WHERE id = ?"), userID)
		}
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}
