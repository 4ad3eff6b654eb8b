package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/uias/uias/services/identity"
)

// errIDKeyRace ends SetIDKeys's batch transaction: a key was taken between
// its look-up and its update (a concurrent CreateUser).
var errIDKeyRace = errors.New("an ID key was taken meanwhile")

// usersWithoutIDKey reads the people the start's backfill looks at
// through their partial index (migration 0050): its WHERE repeats the
// index's, so that SQLite uses it.
const usersWithoutIDKey = "SELECT id, id_type, id_number_enc, org_path FROM users " +
	"WHERE id > ? AND id_key IS NULL AND id_number_enc <> '' ORDER BY id LIMIT ?"

// UsersWithoutIDKey implements identity.IDKeyStore.
func (s *Store) UsersWithoutIDKey(ctx context.Context, after string, limit int) ([]identity.IDKeyPending, error) {
	return s.pendingIDKeys(ctx, usersWithoutIDKey, "list users without ID key", after, limit)
}

// pendingIDKeys reads, with query, the people after whose keys are to be
// filled (the ID key's and the centres key's backfills).
func (s *Store) pendingIDKeys(ctx context.Context, query, what, after string, limit int) ([]identity.IDKeyPending, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), after, limit)
	if err != nil {
		return nil, classify(err, what, "")
	}
	defer rows.Close()
	var out []identity.IDKeyPending
	for rows.Next() {
		var (
			p identity.IDKeyPending
			t int64
		)
		if err := rows.Scan(&p.UserID, &t, &p.IDNumberEnc, &p.OrgPath); err != nil {
			return nil, classify(err, what, "")
		}
		p.IDType = identity.IDType(t)
		out = append(out, p)
	}
	return out, classify(rows.Err(), what, "")
}

// SetIDKeys implements identity.IDKeyStore: one look-up of the keys held
// and the updates in one transaction; should a key be taken meanwhile (the
// unique index refuses it), each person again in a transaction of their
// own.
func (s *Store) SetIDKeys(ctx context.Context, sets []identity.IDKeySet) ([]string, error) {
	var taken []string
	err := s.inTx(ctx, "set ID keys", "", func(tx *sql.Tx) error {
		taken = taken[:0]
		keys := make([]string, len(sets))
		for i, v := range sets {
			keys[i] = v.Key
		}
		held, err := s.existingIn(ctx, tx, checkIDKeys, nil, keys)
		if err != nil {
			return err
		}
		for _, v := range sets {
			if held[v.Key] {
				taken = append(taken, v.UserID)
				continue
			}
			held[v.Key] = true // the first of the batch keeps it
			if _, err := tx.ExecContext(ctx, s.q("UPDATE users SET id_key = ? WHERE id = ? AND id_key IS NULL"),
				v.Key, v.UserID); err != nil {
				if isIDKeyViolation(err) {
					return errIDKeyRace
				}
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, errIDKeyRace) {
		return taken, err
	}
	taken = taken[:0]
	for _, v := range sets {
		err := s.inTx(ctx, "set ID key", "", func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.q("UPDATE users SET id_key = ? WHERE id = ? AND id_key IS NULL"), v.Key, v.UserID)
			return err
		})
		switch {
		case errors.Is(err, identity.ErrIDNumberTaken):
			taken = append(taken, v.UserID)
		case err != nil:
			return nil, err
		}
	}
	return taken, nil
}

// usersWithoutCentresKey reads the people BackfillCentresKeys looks at
// through their partial index (migration 0066; the WHERE repeats it).
const usersWithoutCentresKey = "SELECT id, id_type, id_number_enc, org_path FROM users " +
	"WHERE id > ? AND centres_key IS NULL AND id_number_enc <> '' ORDER BY id LIMIT ?"

// UsersWithoutCentresKey implements identity.IDKeyStore.
func (s *Store) UsersWithoutCentresKey(ctx context.Context, after string, limit int) ([]identity.IDKeyPending, error) {
	return s.pendingIDKeys(ctx, usersWithoutCentresKey, "list users without centres key", after, limit)
}

// SetCentresKeys implements identity.IDKeyStore: one transaction; a person
// given a key meanwhile keeps theirs (the key is not unique: nothing is
// refused).
func (s *Store) SetCentresKeys(ctx context.Context, sets []identity.IDKeySet) error {
	return s.inTx(ctx, "set centres keys", "", func(tx *sql.Tx) error {
		for _, v := range sets {
			if _, err := tx.ExecContext(ctx, s.q("UPDATE users SET centres_key = ? WHERE id = ? AND centres_key IS NULL"),
				v.Key, v.UserID); err != nil {
				return err
			}
		}
		return nil
	})
}
