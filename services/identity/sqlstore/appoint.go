package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// PendingAppointments implements identity.Store.
func (s *Store) PendingAppointments(ctx context.Context) ([]identity.Appointment, error) {
	var out []identity.Appointment
	rows, err := s.db.QueryContext(ctx, s.q("SELECT id FROM users WHERE is_admin = TRUE ORDER BY id"))
	if err != nil {
		return nil, classify(err, "list appointments", "user")
	}
	for rows.Next() {
		a := identity.Appointment{Role: identity.RoleSystemAdmin, Legacy: true}
		if err := rows.Scan(&a.UserID); err != nil {
			_ = rows.Close()
			return nil, classify(err, "list appointments", "user")
		}
		out = append(out, a)
	}
	if err := errorsOf(rows); err != nil {
		return nil, classify(err, "list appointments", "user")
	}
	rows, err = s.db.QueryContext(ctx, s.q("SELECT user_id, role FROM admin_appointments ORDER BY created_at, user_id"))
	if err != nil {
		return nil, classify(err, "list appointments", "appointment")
	}
	for rows.Next() {
		var a identity.Appointment
		if err := rows.Scan(&a.UserID, &a.Role); err != nil {
			_ = rows.Close()
			return nil, classify(err, "list appointments", "appointment")
		}
		out = append(out, a)
	}
	if err := errorsOf(rows); err != nil {
		return nil, classify(err, "list appointments", "appointment")
	}
	return out, nil
}

func errorsOf(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// AddAppointment implements identity.Store (recording an appointment that
// is already recorded changes nothing).
func (s *Store) AddAppointment(ctx context.Context, a identity.Appointment) error {
	return s.inTx(ctx, "add appointment", "appointment", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM admin_appointments WHERE user_id = ? AND role = ?", a.UserID, a.Role); err != nil || ok {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO admin_appointments (user_id, role, created_at) VALUES (?, ?, ?)"),
			a.UserID, a.Role, store.UnixMS(time.Now()))
		return err
	})
}

// CreateFirstAdmins implements identity.Store: the first start's
// administrators and their recorded appointments, in one transaction.
func (s *Store) CreateFirstAdmins(ctx context.Context, users []*identity.User, appoint []identity.Appointment, evs []events.Event) error {
	return s.inTx(ctx, "create first administrators", "user", func(tx *sql.Tx) error {
		for _, u := range users {
			if err := s.createUserTx(ctx, tx, u); err != nil {
				return err
			}
		}
		now := store.UnixMS(time.Now())
		for _, a := range appoint {
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO admin_appointments (user_id, role, created_at) VALUES (?, ?, ?)"),
				a.UserID, a.Role, now); err != nil {
				return err
			}
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// FinishAppointment implements identity.Store: the is_admin flag is
// cleared without touching the user's admin tokens (unlike UpdateUser).
func (s *Store) FinishAppointment(ctx context.Context, a identity.Appointment, now time.Time, evs []events.Event) (bool, error) {
	done := false
	err := s.inTx(ctx, "finish appointment", "appointment", func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if a.Legacy {
			res, err = tx.ExecContext(ctx, s.q("UPDATE users SET is_admin = ?, updated_at = ? WHERE id = ? AND is_admin = ?"),
				false, store.UnixMS(now), a.UserID, true)
		} else {
			res, err = tx.ExecContext(ctx, s.q("DELETE FROM admin_appointments WHERE user_id = ? AND role = ?"), a.UserID, a.Role)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n == 0 {
			return err
		}
		done = true
		return s.addEvents(ctx, tx, evs)
	})
	return done, err
}
