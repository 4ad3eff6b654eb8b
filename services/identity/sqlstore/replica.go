package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// ApplyReplica implements identity.ReplicaStore: the writes of one batch
// in one transaction, each in a savepoint so that one that collides with a
// row of this centre is left out (CONFLICT) without the others. The
// statements a change runs are prepared once per batch; the people's
// search rows (SQLite) and the local events are written once per batch,
// after the changes, in a few statements whatever the batch's size.
func (s *Store) ApplyReplica(ctx context.Context, ws []identity.ReplicaWrite) ([]identity.ReplicaOutcome, error) {
	out := make([]identity.ReplicaOutcome, len(ws))
	err := s.inTx(ctx, "apply replica", "", func(tx *sql.Tx) error {
		r := &replicaTx{tx: tx, ps: store.NewTxStmts(tx)}
		defer r.ps.Close()
		version := s.q("SELECT version, event_id, refused FROM replica_versions WHERE kind = ? AND id = ?" + s.db.ForUpdate())
		record := s.q(`INSERT INTO replica_versions (kind, id, origin, version, event_id, refused)
				VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET origin = excluded.origin,
				version = excluded.version, event_id = excluded.event_id, refused = excluded.refused`)
		var evs []events.Event
		for i := range ws {
			w := &ws[i]
			var (
				cur     int64
				curEv   string
				refused int
			)
			err := r.ps.QueryRowContext(ctx, version, w.Kind, w.ID).Scan(&cur, &curEv, &refused)
			switch {
			case err == nil && uint64(cur) == w.Version && curEv == w.EventID && refused >= 0:
				// the very change again: what it did then (-1: recorded
				// before that was kept, STALE alone)
				out[i] = identity.ReplicaReplayed
				if refused == 1 {
					out[i] = identity.ReplicaReplayedConflict
				}
				continue
			case err == nil && uint64(cur) >= w.Version:
				out[i] = identity.ReplicaStale
				continue
			case err != nil && !errors.Is(err, sql.ErrNoRows):
				return err
			}
			if w.Op == identity.ReplicaRefuse {
				// left out as a CONFLICT by the service: only its version
				// (and the events saying why)
				out[i] = identity.ReplicaConflict
				if _, err := r.ps.ExecContext(ctx, record, w.Kind, w.ID, w.Origin, int64(w.Version), w.EventID, 1); err != nil {
					return err
				}
				evs = append(evs, w.Events...)
				continue
			}
			if _, err := tx.ExecContext(ctx, "SAVEPOINT replica_write"); err != nil {
				return err
			}
			out[i] = identity.ReplicaApplied
			mark := len(r.reindex)
			if aerr := s.applyReplicaWrite(ctx, r, w); aerr != nil {
				c := classify(aerr, "apply replica", "")
				if !errors.Is(c, store.ErrConflict) && !errors.Is(c, store.ErrNotFound) {
					return aerr
				}
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT replica_write"); err != nil {
					return err
				}
				r.reindex = r.reindex[:mark]
				out[i] = identity.ReplicaConflict
			} else {
				if w.Event != nil {
					evs = append(evs, *w.Event)
				}
				evs = append(evs, w.Events...)
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT replica_write"); err != nil {
				return err
			}
			refusedNow := 0
			if out[i] == identity.ReplicaConflict {
				refusedNow = 1
			}
			if _, err := r.ps.ExecContext(ctx, record, w.Kind, w.ID, w.Origin, int64(w.Version), w.EventID, refusedNow); err != nil {
				return err
			}
		}
		if err := s.reindexUsers(ctx, r.ps, r.reindex); err != nil {
			return err
		}
		return s.addAllEvents(ctx, r.ps, evs)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// replicaTx is the transaction of one ApplyReplica batch: its statements,
// each prepared once for the batch (SQLite compiles a table's triggers
// into every UPDATE it prepares: a third of a batch's time was parsing),
// and the people whose searched fields the batch changed, whose search
// rows are rewritten once, after the batch's changes (reindexUsers).
type replicaTx struct {
	tx      *sql.Tx
	ps      *store.TxStmts
	reindex []string
	// orgPaths are the org paths read for the batch's people (most name
	// the same few orgs), forgotten at any org write.
	orgPaths map[string]string
}

// orgPath is checkOrg read once per org per batch.
func (s *Store) orgPath(ctx context.Context, r *replicaTx, orgID string) (string, error) {
	if p, ok := r.orgPaths[orgID]; ok {
		return p, nil
	}
	p, err := s.checkOrg(ctx, r.ps, orgID)
	if err != nil {
		return "", err
	}
	if r.orgPaths == nil {
		r.orgPaths = map[string]string{}
	}
	r.orgPaths[orgID] = p
	return p, nil
}

func (s *Store) applyReplicaWrite(ctx context.Context, r *replicaTx, w *identity.ReplicaWrite) error {
	tx := r.tx
	if w.Kind == "org" {
		r.orgPaths = nil // a created or moved org changes paths
	}
	// A person's finger, app or certificate whose person is not held here
	// (their creation was left out as a CONFLICT) is one too, not a
	// failure of the batch.
	if person := personOfWrite(w); person != "" {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?", person); err != nil {
			return err
		} else if !ok {
			return store.NotFound("user")
		}
	}
	switch {
	case w.Kind == "org" && w.Op == identity.ReplicaDelete:
		// Deleted empty at its home: what is under it here came from there
		// and went first, but for what this centre kept in it (a person
		// whose move it refused): a CONFLICT, never a failure of the batch,
		// which would stall the link (review sec15 H2).
		for _, q := range []string{"SELECT 1 FROM users WHERE org_id = ?", "SELECT 1 FROM orgs WHERE parent_id = ?",
			"SELECT 1 FROM groups WHERE org_id = ?"} {
			if held, err := s.db.Exists(ctx, tx, q, w.ID); err != nil {
				return err
			} else if held {
				return store.Conflict("the org still holds people, orgs or groups here")
			}
		}
		_, err := tx.ExecContext(ctx, s.q("DELETE FROM orgs WHERE id = ?"), w.ID)
		return err
	case w.Kind == "group" && w.Op == identity.ReplicaDelete:
		_, err := tx.ExecContext(ctx, s.q("DELETE FROM groups WHERE id = ?"), w.ID)
		return err
	case w.Kind == "app" && w.Op == identity.ReplicaDelete:
		// Its account links and fingerprint bypass setting go with it (the
		// schema's cascades).
		_, err := tx.ExecContext(ctx, s.q("DELETE FROM apps WHERE id = ?"), w.ID)
		return err
	case w.Kind == "org" && w.Op == identity.ReplicaMove:
		_, err := s.moveOrgTx(ctx, tx, w.ID, w.Org.ParentID, w.Org.UpdatedAt)
		return err
	case w.Kind == "org" && w.Org != nil:
		return s.replicaOrg(ctx, tx, w)
	case w.Kind == "user" && w.Op == identity.ReplicaDelete:
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM admin_appointments WHERE user_id = ?"), w.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("DELETE FROM users WHERE id = ?"), w.ID)
		return err
	case w.Kind == "user" && w.User != nil:
		return s.replicaUser(ctx, r, w)
	case w.Kind == "admintokens":
		// The tokens issued after the home's revocation are the person's
		// new logins (this centre's clock against the home's; the same
		// millisecond counts as before).
		_, err := tx.ExecContext(ctx, s.q("DELETE FROM admin_tokens WHERE user_id = ? AND created_at <= ?"), w.ID,
			store.UnixMS(w.TokensBefore))
		return err
	case w.Kind == "lock" && w.CentreDisable != nil:
		return s.setCentreDisabled(ctx, tx, w.ID, *w.CentreDisable)
	case w.Kind == "lock" && w.MustChange:
		_, err := tx.ExecContext(ctx, s.q("UPDATE users SET must_change = ? WHERE id = ?"), true, w.ID)
		return err
	case w.Kind == "lock":
		lock := store.UnixMS(w.Lock)
		_, err := tx.ExecContext(ctx, s.q("UPDATE users SET locked_until = "+laterLock+" WHERE id = ?"), lock, lock, w.ID)
		return err
	case w.Kind == "finger" && w.Finger != nil:
		f := w.Finger
		if w.Op == identity.ReplicaDelete {
			_, err := tx.ExecContext(ctx, s.q("DELETE FROM user_fingers WHERE user_id = ? AND position = ?"), f.UserID, f.Position)
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO user_fingers (user_id, position, quality, format, minutiae,
			template_enc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, position) DO UPDATE SET
			quality = excluded.quality, format = excluded.format, minutiae = excluded.minutiae,
			template_enc = excluded.template_enc, created_at = excluded.created_at, updated_at = excluded.updated_at`),
			f.UserID, f.Position, f.Quality, f.Format, f.Minutiae, f.TemplateEnc, store.UnixMS(f.CreatedAt), store.UnixMS(f.UpdatedAt))
		return err
	case w.Kind == "cert" && w.Cert != nil:
		c := w.Cert
		if w.Op == identity.ReplicaDelete {
			_, err := tx.ExecContext(ctx, s.q("DELETE FROM user_certs WHERE sha256 = ? AND user_id = ? AND origin = ?"), c.SHA256, c.UserID, w.Origin)
			return err
		}
		// The origin's binding stands over its own earlier one (it may have
		// moved the certificate from one of its people to another), never
		// over a binding made here or at another centre: that is a
		// CONFLICT, left as it is.
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO user_certs (sha256, user_id, not_after, created_at, origin) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sha256) DO UPDATE SET user_id = excluded.user_id, not_after = excluded.not_after, created_at = excluded.created_at
			WHERE user_certs.origin = excluded.origin`),
			c.SHA256, c.UserID, store.UnixMS(c.NotAfter), store.UnixMS(c.CreatedAt), w.Origin)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return store.Conflict("the certificate is bound here, or by another centre")
		}
		return nil
	case w.Kind == "totp" && w.TOTP != nil:
		if w.Op == identity.ReplicaDelete {
			_, err := tx.ExecContext(ctx, s.q("DELETE FROM user_totp WHERE user_id = ?"), w.ID)
			return err
		}
		// The later of the two last steps stays: a code accepted here
		// meanwhile is not accepted again.
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO user_totp (user_id, secret_enc, last_step, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, created_at = excluded.created_at,
			last_step = CASE WHEN excluded.last_step > user_totp.last_step THEN excluded.last_step ELSE user_totp.last_step END`),
			w.ID, w.TOTP.SecretEnc, w.TOTP.LastStep, store.UnixMS(w.TOTP.CreatedAt))
		return err
	case w.Kind == "group" && (w.Op == identity.ReplicaMemberAdd || w.Op == identity.ReplicaMemberRemove):
		if w.Op == identity.ReplicaMemberRemove {
			_, err := tx.ExecContext(ctx, s.q("DELETE FROM group_members WHERE group_id = ? AND user_id = ?"), w.ID, w.Member)
			return err
		}
		if err := s.checkGroupAndUser(ctx, tx, w.ID, w.Member); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO group_members (group_id, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
			w.ID, w.Member)
		return err
	case w.Kind == "group" && w.Group != nil:
		if err := s.replicaGroup(ctx, tx, w.Group); err != nil || !w.WithMembers {
			return err
		}
		// a resend: the home's members, those of them held here (a large
		// group's later items add to them)
		if !w.MembersAppend {
			if _, err := tx.ExecContext(ctx, s.q("DELETE FROM group_members WHERE group_id = ?"), w.ID); err != nil {
				return err
			}
		}
		for _, m := range w.Members {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO group_members (group_id, user_id) SELECT ?, id FROM users WHERE id = ?
				ON CONFLICT DO NOTHING`), w.ID, m); err != nil {
				return err
			}
		}
		return nil
	case w.Kind == "app" && w.App != nil:
		return s.replicaApp(ctx, tx, w)
	case w.Kind == "link" && w.Op == identity.ReplicaDelete:
		// only the named person's link (a peer names its own people's;
		// review sec15 L7)
		q, args := "DELETE FROM account_links WHERE id = ?", []any{w.ID}
		if w.Link != nil {
			q, args = q+" AND user_id = ?", append(args, w.Link.UserID)
		}
		_, err := tx.ExecContext(ctx, s.q(q), args...)
		return err
	case w.Kind == "link" && w.Link != nil:
		ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM account_links WHERE id = ?", w.ID)
		if err != nil || !ok {
			if err == nil {
				err = s.createLinkTx(ctx, tx, w.Link)
			}
			return err
		}
		if mine, err := s.db.Exists(ctx, tx, "SELECT 1 FROM account_links WHERE id = ? AND user_id = ?", w.ID, w.Link.UserID); err != nil {
			return err
		} else if !mine {
			return store.Conflict("the account link is another person's here")
		}
		_, err = tx.ExecContext(ctx, s.q("UPDATE account_links SET app_account_id = ?, status = ? WHERE id = ?"),
			w.Link.AppAccountID, int(w.Link.Status), w.ID)
		return err
	}
	return nil
}

func (s *Store) replicaOrg(ctx context.Context, tx *sql.Tx, w *identity.ReplicaWrite) error {
	o := *w.Org
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM orgs WHERE code = ? AND id <> ?", o.Code, o.ID); err != nil {
		return err
	} else if ok {
		return store.Conflict("org code already exists")
	}
	ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM orgs WHERE id = ?", o.ID)
	if err != nil {
		return err
	}
	if ok {
		_, err := tx.ExecContext(ctx, s.q("UPDATE orgs SET code = ?, name = ?, status = ?, updated_at = ? WHERE id = ?"),
			o.Code, o.Name, int(o.Status), store.UnixMS(o.UpdatedAt), o.ID)
		return err
	}
	if w.AttachToRoot {
		o.ParentID = ""
		var root string
		err := tx.QueryRowContext(ctx, "SELECT id FROM orgs WHERE parent_id IS NULL ORDER BY created_at, id LIMIT 1").Scan(&root)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		o.ParentID = root
		w.AttachedUnder(root)
	}
	return s.createOrgTx(ctx, tx, &o)
}

// laterLock sets locked_until to the later of its value and the
// argument (given twice).
const laterLock = "CASE WHEN locked_until < ? THEN ? ELSE locked_until END"

func (s *Store) replicaUser(ctx context.Context, r *replicaTx, w *identity.ReplicaWrite) error {
	u := *w.User
	var (
		oldPath, oldLogin, oldDisplay, oldEmail string
		oldOrg, oldFeature                      sql.NullString
		oldStatus                               int64
	)
	err := r.ps.QueryRowContext(ctx, s.q("SELECT org_path, login_name, display_name, email, feature_code, org_id, status "+
		"FROM users WHERE id = ?"), u.ID).Scan(&oldPath, &oldLogin, &oldDisplay, &oldEmail, &oldFeature, &oldOrg, &oldStatus)
	if errors.Is(err, sql.ErrNoRows) {
		return s.createUserTx(ctx, r.tx, &u)
	}
	if err != nil {
		return err
	}
	orgPath, err := s.orgPath(ctx, r, u.OrgID)
	if err != nil {
		return err
	}
	// The login name and feature code are unique (constraints): one the
	// person already holds is nobody else's.
	if u.LoginName != oldLogin || u.FeatureCode != "" && u.FeatureCode != oldFeature.String {
		if err := s.checkUserUnique(ctx, r.ps, &u, u.ID, u.IDKey); err != nil {
			return err
		}
	}
	// The indexed columns are set only when they change: SQLite rewrites
	// the entries of every index whose column an UPDATE sets, changed or
	// not (nine indexes on users; most changes rename a person or change
	// a flag).
	var set []string
	var args []any
	changed := func(col string, differs bool, v any) {
		if differs {
			set, args = append(set, col+" = ?"), append(args, v)
		}
	}
	changed("login_name", u.LoginName != oldLogin, u.LoginName)
	changed("display_name", u.DisplayName != oldDisplay, u.DisplayName)
	changed("org_id", oldOrg.Valid != (u.OrgID != "") || oldOrg.String != u.OrgID, store.NullIfEmpty(u.OrgID))
	changed("org_path", orgPath != oldPath, orgPath)
	changed("status", int64(u.Status) != oldStatus, int(u.Status))
	changed("feature_code", oldFeature.Valid != (u.FeatureCode != "") || oldFeature.String != u.FeatureCode,
		store.NullIfEmpty(u.FeatureCode))
	// The replica keeps the later of its lock and the home's, unless the
	// home unlocked the person (identity/replica_lock.go).
	lock := store.UnixMS(u.LockedUntil)
	lockSet, lockArgs := "locked_until = "+laterLock, []any{lock, lock}
	if w.Unlocked {
		lockSet, lockArgs = "locked_until = ?", []any{lock}
	}
	q := "UPDATE users SET " + strings.Join(append(set, ""), ", ") + `id_type = ?, id_number_mask = ?, phone_mask = ?, email = ?,
		must_change = ?, never_expires = ?, cannot_change = ?, password_only = ?, min_auth_level = ?, user_type = ?, ` + lockSet + `, updated_at = ?`
	args = append(args, int(u.IDType), u.IDNumberMask, u.PhoneMask, u.Email, u.MustChange, u.NeverExpires,
		u.CannotChange, u.PasswordOnly, u.MinAuthLevel, int(identity.StoredUserType(u.UserType)))
	args = append(append(args, lockArgs...), store.UnixMS(u.UpdatedAt))
	if w.WithPassword {
		q += ", password_hash = ?, password_changed_at = ?, password_by_other = ?"
		args = append(args, u.PasswordHash, store.UnixMS(u.PasswordChangedAt), u.PasswordByOther)
	}
	if w.WithSealed {
		q += ", id_number_enc = ?, phone_enc = ?, centres_key = ?"
		args = append(args, u.IDNumberEnc, u.PhoneEnc, store.NullIfEmpty(u.CentresKey))
	}
	if _, err := r.ps.ExecContext(ctx, s.q(q+" WHERE id = ?"), append(args, u.ID)...); err != nil {
		return err
	}
	if u.LoginName != oldLogin || u.DisplayName != oldDisplay || u.Email != oldEmail {
		r.reindex = append(r.reindex, u.ID)
	}
	if orgPath == oldPath {
		return nil
	}
	return s.setLinksPath(ctx, r.ps, u.ID, orgPath)
}

func (s *Store) replicaGroup(ctx context.Context, tx *sql.Tx, g *identity.Group) error {
	orgPath, err := s.checkOrg(ctx, tx, g.OrgID)
	if err != nil {
		return err
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM groups WHERE code = ? AND id <> ?", g.Code, g.ID); err != nil {
		return err
	} else if ok {
		return store.Conflict("group code already exists")
	}
	_, err = tx.ExecContext(ctx, s.q("INSERT INTO groups ("+groupCols+", org_path) VALUES (?, ?, ?, ?, ?, ?) "+
		"ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name, org_id = excluded.org_id, org_path = excluded.org_path"),
		g.ID, g.Code, g.Name, store.NullIfEmpty(g.OrgID), store.UnixMS(g.CreatedAt), orgPath)
	return err
}

func (s *Store) replicaApp(ctx context.Context, tx *sql.Tx, w *identity.ReplicaWrite) error {
	a := w.App
	if err := s.checkAppUnique(ctx, tx, a); err != nil {
		return err
	}
	ips, err := ipList(a.IPAllowList)
	if err != nil {
		return err
	}
	ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE id = ?", a.ID)
	if err != nil {
		return err
	}
	if !ok {
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO apps ("+appCols+") VALUES "+appValues), appArgs(a, ips)...)
		return err
	}
	q := `UPDATE apps SET app_type = ?, app_code = ?, name = ?, status = ?, ip_allow_list = ?, rate_limit = ?,
		rate_burst = ?, client_cert_sha256 = ?, updated_at = ?, home = ?, secret_lifetime_s = ?, secret_issued_at = ?,
		secret_expires = ?, signing_keys = ?, require_signatures = ?, granted_apis = ?, access_from = ?, access_until = ?, security_level = ?, min_auth_level = ?, max_concurrent = ?, legacy_ip_only = ?, name_release = ?`
	// The secret's lifetime and expiry come with every change of the
	// application (a lifetime update recomputes the expiry), its hashes
	// only with the changes that set them.
	args := []any{a.Type, a.Code, a.Name, int(a.Status), ips, a.RateLimit, a.RateBurst, a.ClientCertSHA256,
		store.UnixMS(a.UpdatedAt), a.Home, int64(a.SecretLifetime / time.Second), store.UnixMS(a.SecretIssuedAt),
		store.UnixMS(a.SecretExpires), signingKeys(a.SigningKeys), a.RequireSignatures, strings.Join(a.GrantedAPIs, ","),
		store.UnixMS(a.AccessFrom), store.UnixMS(a.AccessUntil), level(a.SecurityLevel), a.MinAuthLevel, a.MaxConcurrent, a.LegacyIPOnly, a.NameRelease}
	if w.WithSecrets {
		q += ", secret_hash = ?, prev_secret_hash = ?, prev_secret_expires = ?"
		args = append(args, a.SecretHash, a.PrevSecretHash, store.UnixMS(a.PrevSecretExpires))
	}
	_, err = tx.ExecContext(ctx, s.q(q+" WHERE id = ?"), append(args, a.ID)...)
	return err
}

// ReplicaOrigin returns the centre whose change of object (kind, id) was
// last recorded here.
func (s *Store) ReplicaOrigin(ctx context.Context, kind, id string) (string, bool, error) {
	var origin string
	err := s.stmts.QueryRowContext(ctx, s.q("SELECT origin FROM replica_versions WHERE kind = ? AND id = ?"), kind, id).Scan(&origin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, classify(err, "replica origin", "")
	}
	return origin, true, nil
}

// personOfWrite is the person whose row an upsert of a finger, an
// authenticator app or a certificate binding needs ("" for other writes).
func personOfWrite(w *identity.ReplicaWrite) string {
	if w.Op == identity.ReplicaDelete {
		return ""
	}
	switch {
	case w.Kind == "finger" && w.Finger != nil:
		return w.Finger.UserID
	case w.Kind == "totp" && w.TOTP != nil:
		return w.ID
	case w.Kind == "cert" && w.Cert != nil:
		return w.Cert.UserID
	}
	return ""
}
