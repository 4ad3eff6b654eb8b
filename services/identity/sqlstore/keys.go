package sqlstore

import (
	"context"
	"database/sql"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

var _ identity.KeyStore = (*Store)(nil)

// ListDataKeys returns every data key by seq.
func (s *Store) ListDataKeys(ctx context.Context) ([]identity.DataKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, purpose, seq, wrapped, created_at FROM data_keys ORDER BY seq")
	if err != nil {
		return nil, classify(err, "list data keys", "")
	}
	defer rows.Close()
	var out []identity.DataKey
	for rows.Next() {
		var k identity.DataKey
		var created int64
		if err := rows.Scan(&k.ID, &k.Purpose, &k.Seq, &k.Wrapped, &created); err != nil {
			return nil, classify(err, "list data keys", "")
		}
		k.CreatedAt = store.FromUnixMS(created)
		out = append(out, k)
	}
	return out, classify(rows.Err(), "list data keys", "")
}

// AddDataKeys inserts keys and writes evs in one transaction.
func (s *Store) AddDataKeys(ctx context.Context, keys []identity.DataKey, evs []events.Event) error {
	return s.inTx(ctx, "add data keys", "data key", func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, s.q("INSERT INTO data_keys (id, purpose, seq, wrapped, created_at) VALUES (?, ?, ?, ?, ?)"),
				k.ID, k.Purpose, k.Seq, k.Wrapped, store.UnixMS(k.CreatedAt)); err != nil {
				return err
			}
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// RewrapDataKeys replaces the wrapped form of the given keys.
func (s *Store) RewrapDataKeys(ctx context.Context, wrapped map[string]string) error {
	return s.inTx(ctx, "rewrap data keys", "data key", func(tx *sql.Tx) error {
		for id, w := range wrapped {
			res, err := tx.ExecContext(ctx, s.q("UPDATE data_keys SET wrapped = ? WHERE id = ?"), w, id)
			if err != nil {
				return err
			}
			if err := mustAffect(res, "data key"); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListKeyChecks returns the key-check values by master key id.
func (s *Store) ListKeyChecks(ctx context.Context) ([]identity.KeyCheck, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT master_id, check_value, created_at FROM key_checks ORDER BY master_id")
	if err != nil {
		return nil, classify(err, "list key checks", "")
	}
	defer rows.Close()
	var out []identity.KeyCheck
	for rows.Next() {
		var c identity.KeyCheck
		var created int64
		if err := rows.Scan(&c.MasterID, &c.Value, &created); err != nil {
			return nil, classify(err, "list key checks", "")
		}
		c.CreatedAt = store.FromUnixMS(created)
		out = append(out, c)
	}
	return out, classify(rows.Err(), "list key checks", "")
}

// AddKeyCheck stores c (ErrConflict when its master id has one).
func (s *Store) AddKeyCheck(ctx context.Context, c identity.KeyCheck) error {
	_, err := s.db.ExecContext(ctx, s.q("INSERT INTO key_checks (master_id, check_value, created_at) VALUES (?, ?, ?)"),
		c.MasterID, c.Value, store.UnixMS(c.CreatedAt))
	return classify(err, "add key check", "key check")
}

// notOnKey is the condition "col holds a value sealed with another key than
// the one whose prefix ("<id>:") is bound twice: length, then prefix".
func notOnKey(col string) string {
	return "(" + col + " <> '' AND SUBSTR(" + col + ", 1, ?) <> ?)"
}

// SealedWithout returns users holding a value not sealed with keyID.
func (s *Store) SealedWithout(ctx context.Context, keyID, after string, limit int) ([]identity.SealedValues, error) {
	p := keyID + ":"
	rows, err := s.db.QueryContext(ctx, s.q("SELECT id, id_number_enc, phone_enc FROM users WHERE id > ? AND ("+
		notOnKey("id_number_enc")+" OR "+notOnKey("phone_enc")+") ORDER BY id LIMIT ?"),
		after, len(p), p, len(p), p, limit)
	if err != nil {
		return nil, classify(err, "list sealed values", "")
	}
	defer rows.Close()
	var out []identity.SealedValues
	for rows.Next() {
		var v identity.SealedValues
		if err := rows.Scan(&v.UserID, &v.IDNumberEnc, &v.PhoneEnc); err != nil {
			return nil, classify(err, "list sealed values", "")
		}
		out = append(out, v)
	}
	return out, classify(rows.Err(), "list sealed values", "")
}

// CountSealedWithout counts the values not sealed with keyID.
func (s *Store) CountSealedWithout(ctx context.Context, keyID string) (int, error) {
	p := keyID + ":"
	var a, b, c int
	err := s.db.QueryRowContext(ctx, s.q("SELECT "+
		"COALESCE(SUM(CASE WHEN "+notOnKey("id_number_enc")+" THEN 1 ELSE 0 END), 0), "+
		"COALESCE(SUM(CASE WHEN "+notOnKey("phone_enc")+" THEN 1 ELSE 0 END), 0) FROM users"),
		len(p), p, len(p), p).Scan(&a, &b)
	if err == nil {
		err = s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM user_fingers WHERE "+notOnKey("template_enc")),
			len(p), p).Scan(&c)
	}
	var d int
	if err == nil {
		err = s.db.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM user_totp WHERE "+notOnKey("secret_enc")),
			len(p), p).Scan(&d)
	}
	if err != nil {
		return 0, classify(err, "count sealed values", "")
	}
	return a + b + c + d, nil
}

// TOTPSealedWithout returns enrolments whose secret is not sealed with
// keyID, by user id.
func (s *Store) TOTPSealedWithout(ctx context.Context, keyID, afterUser string, limit int) ([]identity.UserTOTP, error) {
	p := keyID + ":"
	rows, err := s.db.QueryContext(ctx, s.q("SELECT user_id, secret_enc FROM user_totp "+
		"WHERE user_id > ? AND "+notOnKey("secret_enc")+" ORDER BY user_id LIMIT ?"), afterUser, len(p), p, limit)
	if err != nil {
		return nil, classify(err, "list sealed authenticator apps", "")
	}
	defer rows.Close()
	var out []identity.UserTOTP
	for rows.Next() {
		var t identity.UserTOTP
		if err := rows.Scan(&t.UserID, &t.SecretEnc); err != nil {
			return nil, classify(err, "list sealed authenticator apps", "")
		}
		out = append(out, t)
	}
	return out, classify(rows.Err(), "list sealed authenticator apps", "")
}

// ResealTOTP replaces a person's sealed secret if it still is from's.
func (s *Store) ResealTOTP(ctx context.Context, from identity.UserTOTP, to string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE user_totp SET secret_enc = ? WHERE user_id = ? AND secret_enc = ?"),
		to, from.UserID, from.SecretEnc)
	if err != nil {
		return false, classify(err, "reseal authenticator app", "authenticator app")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(err, "reseal authenticator app", "authenticator app")
	}
	return n == 1, nil
}

// FingersSealedWithout returns fingers whose template is not sealed with
// keyID, by user id and position.
func (s *Store) FingersSealedWithout(ctx context.Context, keyID, afterUser string, afterPosition, limit int) ([]identity.SealedFinger, error) {
	p := keyID + ":"
	rows, err := s.db.QueryContext(ctx, s.q("SELECT user_id, position, template_enc FROM user_fingers "+
		"WHERE (user_id > ? OR (user_id = ? AND position > ?)) AND "+notOnKey("template_enc")+
		" ORDER BY user_id, position LIMIT ?"), afterUser, afterUser, afterPosition, len(p), p, limit)
	if err != nil {
		return nil, classify(err, "list sealed fingers", "")
	}
	defer rows.Close()
	var out []identity.SealedFinger
	for rows.Next() {
		var f identity.SealedFinger
		if err := rows.Scan(&f.UserID, &f.Position, &f.TemplateEnc); err != nil {
			return nil, classify(err, "list sealed fingers", "")
		}
		out = append(out, f)
	}
	return out, classify(rows.Err(), "list sealed fingers", "")
}

// ResealFinger replaces a finger's template if it still is from's.
func (s *Store) ResealFinger(ctx context.Context, from identity.SealedFinger, to string) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE user_fingers SET template_enc = ? "+
		"WHERE user_id = ? AND position = ? AND template_enc = ?"), to, from.UserID, from.Position, from.TemplateEnc)
	if err != nil {
		return false, classify(err, "reseal finger", "finger")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(err, "reseal finger", "finger")
	}
	return n == 1, nil
}

// Reseal replaces a user's sealed values if they still are from.
func (s *Store) Reseal(ctx context.Context, from, to identity.SealedValues) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.q("UPDATE users SET id_number_enc = ?, phone_enc = ? "+
		"WHERE id = ? AND id_number_enc = ? AND phone_enc = ?"),
		to.IDNumberEnc, to.PhoneEnc, from.UserID, from.IDNumberEnc, from.PhoneEnc)
	if err != nil {
		return false, classify(err, "reseal user", "user")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(err, "reseal user", "user")
	}
	return n == 1, nil
}
