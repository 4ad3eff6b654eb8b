package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// PutFinger stores f, replacing the finger of the same position.
func (s *Store) PutFinger(ctx context.Context, f *identity.StoredFinger, max int, evs []events.Event) error {
	return s.inTx(ctx, "put finger", "finger", func(tx *sql.Tx) error {
		// The user row's lock serialises enrolments of one person, so two
		// at once cannot pass the count together.
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?"+s.db.ForUpdate(), f.UserID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("user")
		}
		var n int
		var created int64
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM user_fingers WHERE user_id = ? AND position <> ?"),
			f.UserID, f.Position).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return store.Conflict("the person has the most fingers allowed")
		}
		err := tx.QueryRowContext(ctx, s.q("SELECT created_at FROM user_fingers WHERE user_id = ? AND position = ?"),
			f.UserID, f.Position).Scan(&created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO user_fingers (user_id, position, quality, format, minutiae,
				template_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
				f.UserID, f.Position, f.Quality, f.Format, f.Minutiae, f.TemplateEnc,
				store.UnixMS(f.CreatedAt), store.UnixMS(f.UpdatedAt))
		case err == nil:
			f.CreatedAt = store.FromUnixMS(created)
			_, err = tx.ExecContext(ctx, s.q(`UPDATE user_fingers SET quality = ?, format = ?, minutiae = ?,
				template_enc = ?, updated_at = ? WHERE user_id = ? AND position = ?`),
				f.Quality, f.Format, f.Minutiae, f.TemplateEnc, store.UnixMS(f.UpdatedAt), f.UserID, f.Position)
		}
		if err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// ListFingers returns a user's fingers by position.
func (s *Store) ListFingers(ctx context.Context, userID string) ([]*identity.StoredFinger, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT user_id, position, quality, format, minutiae, template_enc,
		created_at, updated_at FROM user_fingers WHERE user_id = ? ORDER BY position`), userID)
	if err != nil {
		return nil, classify(err, "list fingers", "")
	}
	defer rows.Close()
	var out []*identity.StoredFinger
	for rows.Next() {
		f := &identity.StoredFinger{}
		var created, updated int64
		if err := rows.Scan(&f.UserID, &f.Position, &f.Quality, &f.Format, &f.Minutiae, &f.TemplateEnc,
			&created, &updated); err != nil {
			return nil, classify(err, "list fingers", "")
		}
		f.CreatedAt, f.UpdatedAt = store.FromUnixMS(created), store.FromUnixMS(updated)
		out = append(out, f)
	}
	return out, classify(rows.Err(), "list fingers", "")
}

// DeleteFinger deletes one finger.
func (s *Store) DeleteFinger(ctx context.Context, userID string, position int, evs []events.Event) error {
	return s.inTx(ctx, "delete finger", "finger", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM user_fingers WHERE user_id = ? AND position = ?"), userID, position)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "finger"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// GetFingerBypass returns an application's bypass switch (off when never set).
func (s *Store) GetFingerBypass(ctx context.Context, appID string) (*identity.FingerBypass, error) {
	b := &identity.FingerBypass{AppID: appID}
	var updated int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT enabled, reason, set_by, updated_at FROM app_finger_bypass WHERE app_id = ?"),
		appID).Scan(&b.Enabled, &b.Reason, &b.SetBy, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return nil, classify(err, "get finger bypass", "")
	}
	b.UpdatedAt = store.FromUnixMS(updated)
	return b, nil
}

// SetFingerBypass writes an application's bypass switch.
func (s *Store) SetFingerBypass(ctx context.Context, b *identity.FingerBypass, evs []events.Event) error {
	return s.inTx(ctx, "set finger bypass", "", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE id = ?"+s.db.ForShare(), b.AppID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("application")
		}
		res, err := tx.ExecContext(ctx, s.q("UPDATE app_finger_bypass SET enabled = ?, reason = ?, set_by = ?, updated_at = ? WHERE app_id = ?"),
			b.Enabled, b.Reason, b.SetBy, store.UnixMS(b.UpdatedAt), b.AppID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO app_finger_bypass (app_id, enabled, reason, set_by, updated_at) VALUES (?, ?, ?, ?, ?)"),
				b.AppID, b.Enabled, b.Reason, b.SetBy, store.UnixMS(b.UpdatedAt)); err != nil {
				return err
			}
		}
		return s.addEvents(ctx, tx, evs)
	})
}
