package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

const userCols = "id, login_name, display_name, id_type, id_number_enc, id_number_mask, phone_enc, phone_mask, " +
	"email, org_id, status, feature_code, is_admin, password_hash, password_changed_at, must_change, " +
	"never_expires, cannot_change, failed_count, locked_until, created_at, updated_at, password_only, next_attempt_at, id_key, " +
	"password_by_other, min_auth_level, centres_key, user_type, state_changed_at"

// userReadCols are userCols and what only reads take: a disable set by
// another centre (written by SetCentreDisabled alone).
const userReadCols = userCols + ", disabled_centre, disabled_centre_at, disabled_centre_by"

func scanUser(sc store.Scanner) (*identity.User, string, error) {
	var (
		u                             identity.User
		idType, status, failed        int64
		org, feature, idKey, centres  sql.NullString
		changed, locked, created, upd int64
		next, minLevel, userType      int64
		stateAt, disabledAt           int64
	)
	err := sc.Scan(&u.ID, &u.LoginName, &u.DisplayName, &idType, &u.IDNumberEnc, &u.IDNumberMask,
		&u.PhoneEnc, &u.PhoneMask, &u.Email, &org, &status, &feature, &u.IsAdmin, &u.PasswordHash,
		&changed, &u.MustChange, &u.NeverExpires, &u.CannotChange, &failed, &locked, &created, &upd, &u.PasswordOnly, &next, &idKey,
		&u.PasswordByOther, &minLevel, &centres, &userType, &stateAt, &u.DisabledCentre, &disabledAt, &u.DisabledCentreBy)
	if err != nil {
		return nil, "", err
	}
	u.IDType, u.Status, u.FailedCount = identity.IDType(idType), identity.Status(status), int(failed)
	u.MinAuthLevel, u.UserType = int(minLevel), identity.UserType(userType)
	u.OrgID, u.FeatureCode, u.IDKey, u.CentresKey = org.String, feature.String, idKey.String, centres.String
	u.PasswordChangedAt, u.LockedUntil = store.FromUnixMS(changed), store.FromUnixMS(locked)
	u.CreatedAt, u.UpdatedAt, u.NextAttemptAt = store.FromUnixMS(created), store.FromUnixMS(upd), store.FromUnixMS(next)
	u.StateChangedAt, u.DisabledCentreAt = store.FromUnixMS(stateAt), store.FromUnixMS(disabledAt)
	return &u, u.ID, nil
}

func (s *Store) getUser(ctx context.Context, qr store.Querier, col, v string) (*identity.User, error) {
	where := col + " = ?"
	if col == "login_name" {
		// Login names differing only in case name one account (the
		// unique index users_login_name_fold_key, migration 0062).
		where = s.loginIs("login_name")
	}
	u, _, err := scanUser(qr.QueryRowContext(ctx, s.q("SELECT "+userReadCols+" FROM users WHERE "+where), v))
	if errors.Is(err, sql.ErrNoRows) {
		if col == "id" {
			return nil, store.NotFound("user")
		}
		// Do not echo a login name (personal data) in the message.
		return nil, store.NotFound("user")
	}
	return u, err
}

// checkUserUnique reports which unique user field u would duplicate; its
// ID key only when it differs from oldIDKey (what the row holds: "" for a
// new one), so that an update that keeps it costs no look-up.
func (s *Store) checkUserUnique(ctx context.Context, tx store.Querier, u *identity.User, self, oldIDKey string) error {
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE "+s.loginIs("login_name")+" AND id <> ?", u.LoginName, self); err != nil {
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
	if u.IDKey != "" && u.IDKey != oldIDKey {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id_key = ? AND id <> ?", u.IDKey, self); err != nil {
			return err
		} else if ok {
			return identity.ErrIDNumberTaken
		}
	}
	return nil
}

// checkOrg checks that orgID ("" for none) exists and returns its path ("" for
// none), the org_path of its users.
func (s *Store) checkOrg(ctx context.Context, tx store.Querier, orgID string) (string, error) {
	if orgID == "" {
		return "", nil
	}
	var path string
	err := tx.QueryRowContext(ctx, s.q("SELECT path FROM orgs WHERE id = ?"+s.db.ForShare()), orgID).Scan(&path)
	if errors.Is(err, sql.ErrNoRows) {
		return "", store.NotFound("org")
	}
	return path, err
}

// CreateUser inserts u with every field (including the password hash).
func (s *Store) CreateUser(ctx context.Context, u *identity.User, evs []events.Event) error {
	return s.inTx(ctx, "create user", "user", func(tx *sql.Tx) error {
		if err := s.createUserTx(ctx, tx, u); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// createUserTx is CreateUser within tx, without events.
func (s *Store) createUserTx(ctx context.Context, tx *sql.Tx, u *identity.User) error {
	orgPath, err := s.checkOrg(ctx, tx, u.OrgID)
	if err != nil {
		return err
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?", u.ID); err != nil {
		return err
	} else if ok {
		return store.Conflict("user id already exists")
	}
	if err := s.checkUserUnique(ctx, tx, u, u.ID, ""); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, s.q("INSERT INTO users ("+userCols+", org_path) VALUES "+
		"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		u.ID, u.LoginName, u.DisplayName, int(u.IDType), u.IDNumberEnc, u.IDNumberMask, u.PhoneEnc,
		u.PhoneMask, u.Email, store.NullIfEmpty(u.OrgID), int(u.Status), store.NullIfEmpty(u.FeatureCode), u.IsAdmin,
		u.PasswordHash, store.UnixMS(u.PasswordChangedAt), u.MustChange, u.NeverExpires, u.CannotChange,
		u.FailedCount, store.UnixMS(u.LockedUntil), store.UnixMS(u.CreatedAt), store.UnixMS(u.UpdatedAt), u.PasswordOnly, store.UnixMS(u.NextAttemptAt),
		store.NullIfEmpty(u.IDKey), u.PasswordByOther, u.MinAuthLevel, store.NullIfEmpty(u.CentresKey), int(identity.StoredUserType(u.UserType)), store.UnixMS(u.StateChangedAt), orgPath)
	if err != nil {
		return err
	}
	return s.indexUsers(ctx, tx, []string{u.ID})
}

// UserOrg implements identity.ReplicaStore: one column of one row, read
// with a statement kept prepared.
func (s *Store) UserOrg(ctx context.Context, id string) (string, error) {
	var org sql.NullString
	err := s.stmts.QueryRowContext(ctx, s.q("SELECT org_id FROM users WHERE id = ?"), id).Scan(&org)
	if errors.Is(err, sql.ErrNoRows) {
		return "", classify(store.NotFound("user"), "user org", "user")
	}
	if err != nil {
		return "", classify(err, "user org", "user")
	}
	return org.String, nil
}

// GetUser returns the user id.
func (s *Store) GetUser(ctx context.Context, id string) (*identity.User, error) {
	u, err := s.getUser(ctx, s.stmts, "id", id)
	if err != nil {
		return nil, classify(err, "get user", "user")
	}
	return u, nil
}

// GetUserByIDKey returns the person whose ID key is key (the unique
// index users_id_key_idx); ErrNotFound when none.
func (s *Store) GetUserByIDKey(ctx context.Context, key string) (*identity.User, error) {
	if key == "" {
		return nil, store.NotFound("user")
	}
	u, err := s.getUser(ctx, s.stmts, "id_key", key)
	if err != nil {
		return nil, classify(err, "get user by id key", "user")
	}
	return u, nil
}

// loginFold is the login name column folded to lower case, ASCII letters
// only, as the unique index users_login_name_fold_key (migration 0062)
// has it: SQLite's lower() folds ASCII alone; PostgreSQL's follows the
// database's locale (a Kelvin sign would fold to k, a Turkish locale
// folds I to ı), unless under the "C" collation (review sec25 L4).
func (s *Store) loginFold(col string) string {
	if s.db.Dialect == store.Postgres {
		return "lower(" + col + ` COLLATE "C")`
	}
	return "lower(" + col + ")"
}

// loginIs matches the users whose login name is the argument's, case
// aside (ASCII letters: login names are ASCII, uias.code); the look-up
// uses the index.
func (s *Store) loginIs(col string) string {
	return s.loginFold(col) + " = " + s.loginFold("?")
}

// GetUserByLogin returns the user whose login name is login, case aside
// (ZhangSan and zhangsan are one account, as in Windows AD and Keycloak);
// the answer holds the name as it was registered.
func (s *Store) GetUserByLogin(ctx context.Context, login string) (*identity.User, error) {
	u, err := s.getUser(ctx, s.stmts, "login_name", login)
	if err != nil {
		return nil, classify(err, "get user by login", "user")
	}
	return u, nil
}

// ListUsers lists users: by id, or with f.Subtree by (org path, id), or
// with a query in search order (see search).
func (s *Store) ListUsers(ctx context.Context, f identity.UserFilter, p identity.Page) ([]*identity.User, string, error) {
	if f.Query != "" && s.loginFirst(cleanQuery(f.Query)) {
		return s.listUsersLoginFirst(ctx, f, p) // loginfirst.go
	}
	l, err := s.userListing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	return run(ctx, s, l, p, scanUser)
}

func (s *Store) userListing(ctx context.Context, f identity.UserFilter) (*listing, error) {
	l := &listing{op: "list users", cols: qualified("users", userReadCols), from: "users", keys: []keyCol{{expr: "users.id"}}}
	switch {
	case f.OrgID != "" && f.Subtree:
		o, err := s.getOrg(ctx, s.db, f.OrgID, "")
		if err != nil {
			return nil, classify(err, "list users", "org")
		}
		lo, hi := subtreeRange(o.Path)
		l.w.Add("users.org_path < ?", hi)
		l.first, l.firstArgs = "users.org_path >= ?", []any{lo}
		l.keys = []keyCol{{expr: "users.org_path"}, {expr: "users.id"}}
	case f.OrgID != "":
		// The org's own path: the (org_path, id) index (migration 0049);
		// an unknown org has none, and lists nobody.
		l.w.Add("users.org_path = (SELECT orgs.path FROM orgs WHERE orgs.id = ?)", f.OrgID)
	default:
		lo, hi, one, err := s.withinSubtree(ctx, f.Within)
		if err != nil {
			return nil, classify(err, "list users", "org")
		}
		if one {
			l.w.Add("users.org_path < ?", hi)
			l.first, l.firstArgs = "users.org_path >= ?", []any{lo}
			l.keys = []keyCol{{expr: "users.org_path"}, {expr: "users.id"}}
			f.Within = nil
		}
	}
	if err := s.within(ctx, l, f.Within, "users.org_path"); err != nil {
		return nil, err
	}
	if f.Status != 0 {
		l.w.Add("users.status = ?", int(f.Status))
	}
	if !f.PasswordChangedBefore.IsZero() {
		// A report an administrator asks now and then: the filter is
		// checked on the rows of the listing's order (no index of its
		// own, which every import and password change would pay for).
		l.w.Add("users.password_changed_at > 0 AND users.password_changed_at < ? AND users.never_expires = ?",
			store.UnixMS(f.PasswordChangedBefore), false)
	}
	if f.HasPassword {
		l.w.Add("users.password_hash <> ''")
	}
	if f.UserType != 0 {
		// Checked on the rows of the listing's order, as the other
		// filters without an index of their own (units are few; a listing
		// of units alone over a million people walks them all).
		l.w.Add("users.user_type = ?", int(identity.StoredUserType(f.UserType)))
	}
	if f.Query != "" {
		s.search(l, "users", "display_name", []string{"login_name", "display_name", "email"}, f.Query)
	}
	return l, nil
}

// UpdateUser writes every field except id, password hash and created_at.
// DeleteUser deletes user id; the schema's cascades take the account links,
// fingerprints, group memberships, password history, admin tokens and
// per-source failure counts with it (and its delete trigger the search
// entries).
func (s *Store) DeleteUser(ctx context.Context, id string, evs []events.Event) error {
	return s.inTx(ctx, "delete user", "user", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM admin_appointments WHERE user_id = ?"), id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM users WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// A change of status or admin rights, or a new lock, deletes the user's
// admin tokens; a failure count of 0 forgets the per-source counts.
func (s *Store) UpdateUser(ctx context.Context, u *identity.User, evs []events.Event) error {
	return s.inTx(ctx, "update user", "user", func(tx *sql.Tx) error {
		var (
			oldStatus int64
			oldAdmin  bool
			oldLock   int64
			oldPath   string
			oldState  int64
		)
		var oldLogin, oldDisplay, oldEmail string
		var oldIDKey sql.NullString
		err := tx.QueryRowContext(ctx, s.q("SELECT status, is_admin, locked_until, org_path, login_name, display_name, email, id_key, state_changed_at "+
			"FROM users WHERE id = ?"+s.db.ForUpdate()), u.ID).
			Scan(&oldStatus, &oldAdmin, &oldLock, &oldPath, &oldLogin, &oldDisplay, &oldEmail, &oldIDKey, &oldState)
		if errors.Is(err, sql.ErrNoRows) {
			return store.NotFound("user")
		}
		if err != nil {
			return err
		}
		if u.IfStateChangedAt != nil && store.UnixMS(*u.IfStateChangedAt) != oldState {
			// the account changed state since u was read: the caller
			// re-reads it (ADR 0047)
			return store.Conflict("the account's state changed since it was read")
		}
		orgPath, err := s.checkOrg(ctx, tx, u.OrgID)
		if err != nil {
			return err
		}
		if err := s.checkUserUnique(ctx, tx, u, u.ID, oldIDKey.String); err != nil {
			return err
		}
		// The password's time is SetPassword's, must_change only an update
		// that sets it (u.WriteMustChange) writes (SetPassword clears it),
		// and the login gate's fields only an update that sets them
		// (u.WriteGate): the row's stand otherwise (u was read before this
		// transaction).
		set := `UPDATE users SET login_name = ?, display_name = ?, id_type = ?,
			id_number_enc = ?, id_number_mask = ?, phone_enc = ?, phone_mask = ?, email = ?, org_id = ?,
			status = ?, feature_code = ?, is_admin = ?,
			never_expires = ?, cannot_change = ?, updated_at = ?,
			password_only = ?, org_path = ?, id_key = ?, min_auth_level = ?, centres_key = ?, user_type = ?`
		args := []any{u.LoginName, u.DisplayName, int(u.IDType), u.IDNumberEnc, u.IDNumberMask, u.PhoneEnc, u.PhoneMask,
			u.Email, store.NullIfEmpty(u.OrgID), int(u.Status), store.NullIfEmpty(u.FeatureCode), u.IsAdmin,
			u.NeverExpires, u.CannotChange, store.UnixMS(u.UpdatedAt), u.PasswordOnly, orgPath,
			store.NullIfEmpty(u.IDKey), u.MinAuthLevel, store.NullIfEmpty(u.CentresKey), int(identity.StoredUserType(u.UserType))}
		if u.WriteMustChange {
			set += `, must_change = ?`
			args = append(args, u.MustChange)
		}
		if at := store.UnixMS(u.StateChangedAt); at != 0 {
			// never lowered: a copy read before another state change
			// leaves that change's time (ADR 0047)
			set += `, state_changed_at = CASE WHEN state_changed_at < ? THEN ? ELSE state_changed_at END`
			args = append(args, at, at)
		}
		if u.WriteGate {
			set += `, failed_count = ?, locked_until = ?, next_attempt_at = ?`
			args = append(args, u.FailedCount, store.UnixMS(u.LockedUntil), store.UnixMS(u.NextAttemptAt))
		}
		res, err := tx.ExecContext(ctx, s.q(set+` WHERE id = ?`), append(args, u.ID)...)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		if u.LoginName != oldLogin || u.DisplayName != oldDisplay || u.Email != oldEmail {
			if err := s.reindexUsers(ctx, tx, []string{u.ID}); err != nil {
				return err
			}
		}
		if orgPath != oldPath {
			if err := s.setLinksPath(ctx, tx, u.ID, orgPath); err != nil {
				return err
			}
		}
		newLock := store.UnixMS(u.LockedUntil)
		locked := u.WriteGate && newLock != 0 && newLock != oldLock
		if int64(u.Status) != oldStatus || u.IsAdmin != oldAdmin || locked {
			if err := s.deleteUserTokens(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		if u.WriteGate && u.FailedCount == 0 {
			if err := s.clearSources(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// SetCentreDisabled implements identity.Store.
func (s *Store) SetCentreDisabled(ctx context.Context, id string, d identity.CentreDisable, evs []events.Event) error {
	return s.inTx(ctx, "set centre disable", "user", func(tx *sql.Tx) error {
		if err := s.setCentreDisabled(ctx, tx, id, d); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// SetMustChange implements identity.Store.
func (s *Store) SetMustChange(ctx context.Context, id string, evs []events.Event) error {
	return s.inTx(ctx, "set must change", "user", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE users SET must_change = ? WHERE id = ?"), true, id)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// setCentreDisabled writes d of person id in tx (SetCentreDisabled, and a
// replica's lock.disabled and lock.enabled changes).
func (s *Store) setCentreDisabled(ctx context.Context, tx *sql.Tx, id string, d identity.CentreDisable) error {
	at := store.UnixMS(d.At)
	where, args := "id = ?", []any{d.Centre, at, d.By, at, at, id}
	if d.IfStateAt != nil {
		where += " AND state_changed_at = ?"
		args = append(args, store.UnixMS(*d.IfStateAt))
	}
	res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET disabled_centre = ?, disabled_centre_at = ?, disabled_centre_by = ?,
		state_changed_at = CASE WHEN state_changed_at < ? THEN ? ELSE state_changed_at END WHERE `+where), args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 && d.IfStateAt != nil {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?", id); err != nil {
			return err
		} else if ok {
			return store.Conflict("the account's state changed meanwhile")
		}
	}
	if err := mustAffect(res, "user"); err != nil {
		return err
	}
	if d.Centre != "" {
		return s.deleteUserTokens(ctx, tx, id)
	}
	return nil
}

// setLinksPath gives the account links of userID the person's new org
// path (their listing's order key).
func (s *Store) setLinksPath(ctx context.Context, tx store.Querier, userID, orgPath string) error {
	_, err := tx.ExecContext(ctx, s.q("UPDATE account_links SET org_path = ? WHERE user_id = ? AND org_path <> ?"), orgPath, userID, orgPath)
	return err
}

func (s *Store) deleteUserTokens(ctx context.Context, tx *sql.Tx, userID string) error {
	_, err := tx.ExecContext(ctx, s.q("DELETE FROM admin_tokens WHERE user_id = ?"), userID)
	return err
}

func (s *Store) clearSources(ctx context.Context, q store.Querier, userID string) error {
	_, err := q.ExecContext(ctx, s.q("DELETE FROM login_failure_sources WHERE user_id = ?"), userID)
	return err
}

// SetPassword stores a new hash, records it in the history (keeping the
// newest keep entries; keep <= 0 keeps none) and clears failures.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, changedAt time.Time, set identity.PasswordSet, keep int, evs []events.Event) error {
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
		cond, args := "", []any{hash, store.UnixMS(changedAt), set.MustChange, set.ByOther, store.UnixMS(changedAt), userID}
		if set.IfChangedAt != nil {
			// in the one statement: a change made since the caller read
			// the person is not overwritten
			cond, args = " AND password_changed_at = ?", append(args, store.UnixMS(*set.IfChangedAt))
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE users SET password_hash = ?, password_changed_at = ?,
			must_change = ?, password_by_other = ?, failed_count = 0, next_attempt_at = 0, updated_at = ? WHERE id = ?`+cond), args...)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "user"); err != nil {
			if set.IfChangedAt != nil {
				return fmt.Errorf("the password changed meanwhile: %w", store.ErrConflict)
			}
			return err
		}
		if err := s.clearSources(ctx, tx, userID); err != nil {
			return err
		}
		if err := s.deleteUserTokens(ctx, tx, userID); err != nil {
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

// ReplacePasswordHash replaces userID's hash old by new with evs.
func (s *Store) ReplacePasswordHash(ctx context.Context, userID, old, new string, evs []events.Event) error {
	return s.inTx(ctx, "replace password hash", "user", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?"), new, userID, old)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?", userID); err != nil {
				return err
			} else if !ok {
				return store.NotFound("user")
			}
			return store.Conflict("the password hash changed")
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

// ReadLoginGate reads the login gate of userID as seen from source in one
// statement (one snapshot, no transaction, prepared once per connection).
func (s *Store) ReadLoginGate(ctx context.Context, userID, source string) (identity.LoginGate, error) {
	var (
		c    gateColumns
		srcN int64
	)
	err := s.stmts.QueryRowContext(ctx, s.q(`SELECT u.failed_count, u.next_attempt_at, u.locked_until, u.login_pending, u.login_pending_at,
		COALESCE((SELECT f.failures FROM login_failure_sources f WHERE f.user_id = u.id AND f.source = ?), 0)
		FROM users u WHERE u.id = ?`), source, userID).Scan(append(c.dest(), &srcN)...)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.LoginGate{}, store.NotFound("user")
	}
	if err != nil {
		return identity.LoginGate{}, classify(err, "read login gate", "user")
	}
	g := c.gate()
	if source != "" {
		g.SourceFailures = int(srcN)
	}
	return g, nil
}

// gateColumns are the login gate's columns of a users row, as read.
type gateColumns struct {
	failed, next, lockedUntil, pending, pendingAt int64
}

// dest is what to Scan failed_count, next_attempt_at, locked_until,
// login_pending, login_pending_at into.
func (c *gateColumns) dest() []any {
	return []any{&c.failed, &c.next, &c.lockedUntil, &c.pending, &c.pendingAt}
}

// gate is the login gate those columns hold (SourceFailures left 0).
func (c *gateColumns) gate() identity.LoginGate {
	return identity.LoginGate{FailedCount: int(c.failed), NextAttemptAt: store.FromUnixMS(c.next),
		LockedUntil: store.FromUnixMS(c.lockedUntil), Pending: int(c.pending), PendingAt: store.FromUnixMS(c.pendingAt)}
}

// writeColumns are the columns a gate write w leaves in the row.
func writeColumns(w identity.LoginGateWrite) gateColumns {
	return gateColumns{failed: int64(w.FailedCount), next: store.UnixMS(w.NextAttemptAt), lockedUntil: store.UnixMS(w.LockedUntil),
		pending: int64(w.Pending), pendingAt: store.UnixMS(w.PendingAt)}
}

// UpdateLoginGate reads the login gate of userID (as seen from source)
// under the row's write lock, asks decide and writes its answer with its
// events, all in one transaction (with a login outbox, an answer that
// writes only events is written there instead, without that transaction:
// gateWithoutWrite). Its statements (a few fixed shapes) are
// prepared once per connection, not in each transaction (s.stmts.InTx):
// a login ran this twice (now once on a clean gate, loginguard.go rule 3),
// and parsing them was 16% of a saturated login's CPU besides its hash
// (ADR 0005).
func (s *Store) UpdateLoginGate(ctx context.Context, userID, source string, decide func(identity.LoginGate) (identity.LoginGateWrite, bool)) error {
	if s.logins != nil {
		// A write of events only goes to the login outbox (loginoutbox.go).
		if done, err := s.gateWithoutWrite(ctx, userID, source, decide); done || err != nil {
			return err
		}
	}
	return s.inTx(ctx, "update login gate", "user", func(tx *sql.Tx) error {
		q := s.stmts.InTx(tx)
		var c gateColumns
		var stateAt, created int64
		err := q.QueryRowContext(ctx, s.q("SELECT failed_count, next_attempt_at, locked_until, login_pending, login_pending_at, state_changed_at, created_at FROM users WHERE id = ?"+
			s.db.ForUpdate()), userID).Scan(append(c.dest(), &stateAt, &created)...)
		if errors.Is(err, sql.ErrNoRows) {
			return store.NotFound("user")
		}
		if err != nil {
			return err
		}
		g := c.gate()
		g.StateAt = (&identity.User{StateChangedAt: store.FromUnixMS(stateAt), CreatedAt: store.FromUnixMS(created)}).StateAt()
		if source != "" {
			var n int64
			err := q.QueryRowContext(ctx, s.q("SELECT failures FROM login_failure_sources WHERE user_id = ? AND source = ?"), userID, source).Scan(&n)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			g.SourceFailures = int(n)
		}
		w, ok := decide(g)
		if !ok {
			return nil
		}
		next := writeColumns(w)
		// A row the write leaves as it is (a right password on a clean
		// gate: most logins) is not rewritten: the transaction then
		// writes its events alone, one page fewer to the log.
		if next != c || w.Rehash != "" || !w.StateChangedAt.IsZero() {
			set, args := "failed_count = ?, next_attempt_at = ?, locked_until = ?, login_pending = ?, login_pending_at = ?",
				[]any{next.failed, next.next, next.lockedUntil, next.pending, next.pendingAt}
			if !w.StateChangedAt.IsZero() {
				set, args = set+", state_changed_at = ?", append(args, store.UnixMS(w.StateChangedAt))
			}
			if w.Rehash != "" {
				set, args = set+", password_hash = ?", append(args, w.Rehash)
			}
			if _, err := q.ExecContext(ctx, s.q("UPDATE users SET "+set+" WHERE id = ?"), append(args, userID)...); err != nil {
				return err
			}
		}
		switch {
		case w.ClearSources:
			err = s.clearSources(ctx, q, userID)
		case source != "" && w.SourceFailures > 0:
			_, err = q.ExecContext(ctx, s.q(`INSERT INTO login_failure_sources (user_id, source, failures) VALUES (?, ?, ?)
				ON CONFLICT (user_id, source) DO UPDATE SET failures = excluded.failures`), userID, source, w.SourceFailures)
		case source != "":
			_, err = q.ExecContext(ctx, s.q("DELETE FROM login_failure_sources WHERE user_id = ? AND source = ?"), userID, source)
		}
		if err != nil {
			return err
		}
		// One event an INSERT: one statement shape to keep.
		for i := range w.Events {
			if err := s.addAllEvents(ctx, q, w.Events[i:i+1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// CentresKeyHeld implements identity.Store: whether a person other than
// self (of this centre or a replica) has the centres key key.
func (s *Store) CentresKeyHeld(ctx context.Context, key, self string) (bool, error) {
	ok, err := s.db.Exists(ctx, s.stmts, "SELECT 1 FROM users WHERE centres_key = ? AND id <> ?", key, self)
	return ok, classify(err, "centres key", "user")
}
