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

// PutTOTP stores a person's authenticator app enrolment.
func (s *Store) PutTOTP(ctx context.Context, t *identity.UserTOTP, evs []events.Event) error {
	return s.inTx(ctx, "enrol authenticator app", "authenticator app", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?"+s.db.ForUpdate(), t.UserID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("user")
		}
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM user_totp WHERE user_id = ?", t.UserID); err != nil {
			return err
		} else if ok {
			return store.Conflict("an authenticator app is enrolled already")
		}
		// One enrolled meanwhile by another transaction fails on the
		// primary key: a conflict too.
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO user_totp (user_id, secret_enc, last_step, created_at) VALUES (?, ?, ?, ?)"),
			t.UserID, t.SecretEnc, t.LastStep, store.UnixMS(t.CreatedAt)); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// GetTOTP returns a person's enrolment.
func (s *Store) GetTOTP(ctx context.Context, userID string) (*identity.UserTOTP, error) {
	t := &identity.UserTOTP{}
	var created int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT user_id, secret_enc, last_step, created_at FROM user_totp WHERE user_id = ?"), userID).
		Scan(&t.UserID, &t.SecretEnc, &t.LastStep, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("authenticator app")
	}
	if err != nil {
		return nil, classify(err, "get authenticator app", "")
	}
	t.CreatedAt = store.FromUnixMS(created)
	return t, nil
}

// UseTOTPStep raises the last accepted step in one statement.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	used := false
	err := s.inTx(ctx, "use authenticator code", "authenticator app", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE user_totp SET last_step = ?, code_failures = 0, code_lockouts = 0, code_blocked_until = 0 "+
			"WHERE user_id = ? AND last_step < ?"), step, userID, step)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			used = true
			return nil
		}
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM user_totp WHERE user_id = ?", userID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("authenticator app")
		}
		return nil
	})
	return used, err
}

// AdmitTOTPCode counts a code about to be checked (the row locked for the
// transaction: parallel checks count one after the other).
func (s *Store) AdmitTOTPCode(ctx context.Context, userID string, now time.Time, max int, block func(n int) time.Duration) (bool, time.Time, error) {
	var (
		ok    bool
		until time.Time
	)
	err := s.inTx(ctx, "count authenticator code", "authenticator app", func(tx *sql.Tx) error {
		var failures, lockouts int
		var blocked int64
		err := tx.QueryRowContext(ctx, s.q("SELECT code_failures, code_lockouts, code_blocked_until FROM user_totp WHERE user_id = ?"+s.db.ForUpdate()), userID).
			Scan(&failures, &lockouts, &blocked)
		if errors.Is(err, sql.ErrNoRows) {
			return store.NotFound("authenticator app")
		}
		if err != nil {
			return err
		}
		if nowMS := store.UnixMS(now); blocked > nowMS {
			until = store.FromUnixMS(blocked)
			return nil
		}
		failures++
		if failures > max {
			lockouts++
			until = now.Add(block(lockouts))
			_, err := tx.ExecContext(ctx, s.q("UPDATE user_totp SET code_failures = 0, code_lockouts = ?, code_blocked_until = ? WHERE user_id = ?"),
				lockouts, store.UnixMS(until), userID)
			return err
		}
		ok = true
		_, err = tx.ExecContext(ctx, s.q("UPDATE user_totp SET code_failures = ? WHERE user_id = ?"), failures, userID)
		return err
	})
	return ok, until, err
}

// DeleteTOTP removes a person's enrolment.
func (s *Store) DeleteTOTP(ctx context.Context, userID string, evs []events.Event) error {
	return s.inTx(ctx, "remove authenticator app", "authenticator app", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM user_totp WHERE user_id = ?"), userID)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "authenticator app"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}
