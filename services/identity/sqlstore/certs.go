package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// BindCert stores a certificate binding.
func (s *Store) BindCert(ctx context.Context, c *identity.UserCert, max int, evs []events.Event) error {
	return s.inTx(ctx, "bind certificate", "certificate binding", func(tx *sql.Tx) error {
		// The user row's lock serialises bindings of one person, so two at
		// once cannot pass the count together.
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?"+s.db.ForUpdate(), c.UserID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("user")
		}
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM user_certs WHERE sha256 = ?", c.SHA256); err != nil {
			return err
		} else if ok {
			return store.Conflict("the certificate is already bound")
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM user_certs WHERE user_id = ?"), c.UserID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return store.Conflict("the person has the most certificates allowed")
		}
		// A binding made meanwhile by another transaction fails on the
		// primary key: a conflict too.
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO user_certs (sha256, user_id, not_after, created_at) VALUES (?, ?, ?, ?)"),
			c.SHA256, c.UserID, store.UnixMS(c.NotAfter), store.UnixMS(c.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM user_certs_unbound WHERE sha256 = ?"), c.SHA256); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

const certCols = "sha256, user_id, not_after, created_at, origin"

func scanCert(sc interface{ Scan(...any) error }) (*identity.UserCert, error) {
	c := &identity.UserCert{}
	var notAfter, created int64
	if err := sc.Scan(&c.SHA256, &c.UserID, &notAfter, &created, &c.Origin); err != nil {
		return nil, err
	}
	if notAfter != 0 {
		c.NotAfter = store.FromUnixMS(notAfter)
	}
	c.CreatedAt = store.FromUnixMS(created)
	return c, nil
}

// GetCert returns the binding of a thumbprint.
func (s *Store) GetCert(ctx context.Context, sha string) (*identity.UserCert, error) {
	c, err := scanCert(s.db.QueryRowContext(ctx, s.q("SELECT "+certCols+" FROM user_certs WHERE sha256 = ?"), sha))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("certificate binding")
	}
	if err != nil {
		return nil, classify(err, "get certificate", "")
	}
	return c, nil
}

// ListCerts returns a person's bindings, oldest first.
func (s *Store) ListCerts(ctx context.Context, userID string) ([]*identity.UserCert, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+certCols+" FROM user_certs WHERE user_id = ? ORDER BY created_at, sha256"), userID)
	if err != nil {
		return nil, classify(err, "list certificates", "")
	}
	defer rows.Close()
	var out []*identity.UserCert
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, classify(err, "list certificates", "")
		}
		out = append(out, c)
	}
	return out, classify(rows.Err(), "list certificates", "")
}

// UnbindCert deletes a person's binding.
func (s *Store) UnbindCert(ctx context.Context, userID, sha string, evs []events.Event) error {
	return s.inTx(ctx, "unbind certificate", "certificate binding", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM user_certs WHERE user_id = ? AND sha256 = ?"), userID, sha)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "certificate binding"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO user_certs_unbound (sha256, user_id) VALUES (?, ?) "+
			"ON CONFLICT (sha256) DO UPDATE SET user_id = excluded.user_id"), sha, userID); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// CertUnbound implements identity.CertStore.
func (s *Store) CertUnbound(ctx context.Context, sha string) (bool, error) {
	ok, err := s.db.Exists(ctx, s.stmts, "SELECT 1 FROM user_certs_unbound WHERE sha256 = ?", sha)
	if err != nil {
		return false, classify(err, "read unbound certificates", "certificate")
	}
	return ok, nil
}
