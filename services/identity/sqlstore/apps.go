package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

const appCols = "id, app_type, app_code, name, status, ip_allow_list, rate_limit, rate_burst, secret_hash, " +
	"prev_secret_hash, prev_secret_expires, created_at, updated_at, client_cert_sha256, home, " +
	"secret_lifetime_s, secret_issued_at, secret_expires, signing_keys, require_signatures, granted_apis, access_from, access_until, security_level, min_auth_level, max_concurrent, legacy_ip_only, name_release"

func scanApp(sc store.Scanner) (*identity.App, string, error) {
	var (
		a                         identity.App
		status, burst             int64
		ips                       string
		prevExp, created, updated int64
		lifetime, issued, expires int64
		keys, apis                string
		from, until, level        int64
		minLevel, maxConcurrent   int64
	)
	if err := sc.Scan(&a.ID, &a.Type, &a.Code, &a.Name, &status, &ips, &a.RateLimit, &burst, &a.SecretHash,
		&a.PrevSecretHash, &prevExp, &created, &updated, &a.ClientCertSHA256, &a.Home,
		&lifetime, &issued, &expires, &keys, &a.RequireSignatures, &apis, &from, &until, &level, &minLevel, &maxConcurrent, &a.LegacyIPOnly, &a.NameRelease); err != nil {
		return nil, "", err
	}
	if apis != "" {
		a.GrantedAPIs = strings.Split(apis, ",")
	}
	a.AccessFrom, a.AccessUntil, a.SecurityLevel = store.FromUnixMS(from), store.FromUnixMS(until), int(level)
	a.Status, a.RateBurst, a.MinAuthLevel = identity.AppStatus(status), int(burst), int(minLevel)
	a.MaxConcurrent = int(maxConcurrent)
	if ips != "" {
		if err := json.Unmarshal([]byte(ips), &a.IPAllowList); err != nil {
			return nil, "", errors.New("corrupt ip allow list")
		}
	}
	if len(a.IPAllowList) == 0 {
		a.IPAllowList = nil
	}
	a.PrevSecretExpires, a.CreatedAt, a.UpdatedAt = store.FromUnixMS(prevExp), store.FromUnixMS(created), store.FromUnixMS(updated)
	a.SecretLifetime = time.Duration(lifetime) * time.Second
	a.SecretIssuedAt, a.SecretExpires = store.FromUnixMS(issued), store.FromUnixMS(expires)
	if keys != "" && keys != "[]" {
		var stored []storedKey
		if err := json.Unmarshal([]byte(keys), &stored); err != nil {
			return nil, "", errors.New("corrupt signing keys")
		}
		for _, k := range stored {
			a.SigningKeys = append(a.SigningKeys, identity.SigningKey{PEM: k.PEM, AddedAt: store.FromUnixMS(k.AddedAt),
				ExpiresAt: store.FromUnixMS(k.Expires)})
		}
	}
	return &a, a.ID, nil
}

// storedKey is a signing key as the signing_keys column holds it (a JSON
// list): the PEM, when it was added and when it expires (Unix ms; 0 or
// absent: never).
type storedKey struct {
	PEM     string `json:"pem"`
	AddedAt int64  `json:"added_at"`
	Expires int64  `json:"expires,omitempty"`
}

// signingKeys is the signing_keys column of keys.
func signingKeys(keys []identity.SigningKey) string {
	if len(keys) == 0 {
		return "[]"
	}
	stored := make([]storedKey, len(keys))
	for i, k := range keys {
		stored[i] = storedKey{PEM: k.PEM, AddedAt: store.UnixMS(k.AddedAt), Expires: store.UnixMS(k.ExpiresAt)}
	}
	b, _ := json.Marshal(stored) // strings and numbers: never fails
	return string(b)
}

// appValues are the placeholders of appCols.
const appValues = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"

// appArgs are a's values of appCols, ips its allow-list as stored.
func appArgs(a *identity.App, ips string) []any {
	return []any{a.ID, a.Type, a.Code, a.Name, int(a.Status), ips, a.RateLimit, a.RateBurst, a.SecretHash,
		a.PrevSecretHash, store.UnixMS(a.PrevSecretExpires), store.UnixMS(a.CreatedAt), store.UnixMS(a.UpdatedAt),
		a.ClientCertSHA256, a.Home, int64(a.SecretLifetime / time.Second), store.UnixMS(a.SecretIssuedAt),
		store.UnixMS(a.SecretExpires), signingKeys(a.SigningKeys), a.RequireSignatures, strings.Join(a.GrantedAPIs, ","),
		store.UnixMS(a.AccessFrom), store.UnixMS(a.AccessUntil), level(a.SecurityLevel), a.MinAuthLevel, a.MaxConcurrent, a.LegacyIPOnly, a.NameRelease}
}

// level is the security_level column of a level (0: 1).
func level(l int) int { return max(l, 1) }

func ipList(ips []string) (string, error) {
	if len(ips) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(ips)
	return string(b), err
}

func (s *Store) checkAppUnique(ctx context.Context, tx *sql.Tx, a *identity.App) error {
	ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE app_type = ? AND app_code = ? AND id <> ?", a.Type, a.Code, a.ID)
	if err != nil {
		return err
	}
	if ok {
		return store.Conflict("app type and code already exist")
	}
	return nil
}

// CreateApp inserts a.
func (s *Store) CreateApp(ctx context.Context, a *identity.App, evs []events.Event) error {
	return s.inTx(ctx, "create app", "app", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE id = ?", a.ID); err != nil {
			return err
		} else if ok {
			return store.Conflict("app id already exists")
		}
		if err := s.checkAppUnique(ctx, tx, a); err != nil {
			return err
		}
		ips, err := ipList(a.IPAllowList)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO apps ("+appCols+") VALUES "+appValues),
			appArgs(a, ips)...); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

func (s *Store) getApp(ctx context.Context, where string, args ...any) (*identity.App, error) {
	a, _, err := scanApp(s.stmts.QueryRowContext(ctx, s.q("SELECT "+appCols+" FROM apps WHERE "+where), args...))
	return a, err
}

// GetApp returns the app id.
func (s *Store) GetApp(ctx context.Context, id string) (*identity.App, error) {
	a, err := s.getApp(ctx, "id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("application")
	}
	if err != nil {
		return nil, classify(err, "get app", "app")
	}
	return a, nil
}

// GetAppByCode returns the app of appType with code appCode.
func (s *Store) GetAppByCode(ctx context.Context, appType, appCode string) (*identity.App, error) {
	a, err := s.getApp(ctx, "app_type = ? AND app_code = ?", appType, appCode)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("application")
	}
	if err != nil {
		return nil, classify(err, "get app by code", "app")
	}
	return a, nil
}

// ListApps lists apps by id, or with a query in search order (see
// search): code and name.
func (s *Store) ListApps(ctx context.Context, f identity.AppFilter, p identity.Page) ([]*identity.App, string, error) {
	l, err := s.appListing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	return run(ctx, s, l, p, scanApp)
}

func (s *Store) appListing(_ context.Context, f identity.AppFilter) (*listing, error) {
	l := &listing{op: "list apps", cols: qualified("apps", appCols), from: "apps", keys: []keyCol{{expr: "apps.id"}}}
	if f.Type != "" {
		l.w.Add("apps.app_type = ?", f.Type)
	}
	if f.Status != 0 {
		l.w.Add("apps.status = ?", int(f.Status))
	}
	if !f.SecretExpiresBefore.IsZero() {
		l.w.Add("apps.secret_expires <> 0 AND apps.secret_expires <= ?", store.UnixMS(f.SecretExpiresBefore))
	}
	if f.Query != "" {
		s.search(l, "apps", "name", []string{"app_code", "name"}, f.Query)
	}
	return l, nil
}

// UpdateApp writes every field but id and created_at.
func (s *Store) UpdateApp(ctx context.Context, a *identity.App, evs []events.Event) error {
	return s.inTx(ctx, "update app", "app", func(tx *sql.Tx) error {
		if err := s.checkAppUnique(ctx, tx, a); err != nil {
			return err
		}
		ips, err := ipList(a.IPAllowList)
		if err != nil {
			return err
		}
		args := []any{a.Type, a.Code, a.Name, int(a.Status), ips, a.RateLimit, a.RateBurst, a.SecretHash, a.PrevSecretHash,
			store.UnixMS(a.PrevSecretExpires), store.UnixMS(a.UpdatedAt), a.ClientCertSHA256,
			int64(a.SecretLifetime / time.Second), store.UnixMS(a.SecretIssuedAt), store.UnixMS(a.SecretExpires),
			signingKeys(a.SigningKeys), a.RequireSignatures, strings.Join(a.GrantedAPIs, ","), store.UnixMS(a.AccessFrom),
			store.UnixMS(a.AccessUntil), level(a.SecurityLevel), a.MinAuthLevel, a.MaxConcurrent, a.LegacyIPOnly, a.NameRelease, a.ID}
		cond := ""
		if a.WriteIfSecretIssuedAt != nil {
			cond, args = " AND secret_issued_at = ?", append(args, store.UnixMS(*a.WriteIfSecretIssuedAt))
		}
		res, err := tx.ExecContext(ctx, s.q(`UPDATE apps SET app_type = ?, app_code = ?, name = ?, status = ?,
			ip_allow_list = ?, rate_limit = ?, rate_burst = ?, secret_hash = ?, prev_secret_hash = ?,
			prev_secret_expires = ?, updated_at = ?, client_cert_sha256 = ?, secret_lifetime_s = ?, secret_issued_at = ?,
			secret_expires = ?, signing_keys = ?, require_signatures = ?, granted_apis = ?, access_from = ?, access_until = ?,
			security_level = ?, min_auth_level = ?, max_concurrent = ?, legacy_ip_only = ?, name_release = ? WHERE id = ?`+cond), args...)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "application"); err != nil {
			if a.WriteIfSecretIssuedAt != nil {
				return fmt.Errorf("the secret was issued again meanwhile: %w", store.ErrConflict)
			}
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// ---------------------------------------------------------------------------
// account links

const linkCols = "id, user_id, app_id, app_account_id, status, created_at"

func scanLink(sc store.Scanner) (*identity.AccountLink, string, error) {
	var (
		l               identity.AccountLink
		status, created int64
	)
	if err := sc.Scan(&l.ID, &l.UserID, &l.AppID, &l.AppAccountID, &status, &created); err != nil {
		return nil, "", err
	}
	l.Status, l.CreatedAt = identity.Status(status), store.FromUnixMS(created)
	return &l, l.ID, nil
}

// CreateLink inserts l.
func (s *Store) CreateLink(ctx context.Context, l *identity.AccountLink, evs []events.Event) error {
	return s.inTx(ctx, "create link", "account link", func(tx *sql.Tx) error {
		if err := s.createLinkTx(ctx, tx, l); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// createLinkTx is CreateLink within tx, without events.
func (s *Store) createLinkTx(ctx context.Context, tx *sql.Tx, l *identity.AccountLink) error {
	// The link carries its person's org path (locked: an org move waits
	// for this transaction, then rewrites the link's path too).
	var orgPath string
	err := tx.QueryRowContext(ctx, s.q("SELECT org_path FROM users WHERE id = ?"+s.db.ForShare()), l.UserID).Scan(&orgPath)
	if errors.Is(err, sql.ErrNoRows) {
		return store.NotFound("user")
	}
	if err != nil {
		return err
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE id = ?"+s.db.ForShare(), l.AppID); err != nil {
		return err
	} else if !ok {
		return store.NotFound("application")
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM account_links WHERE id = ?", l.ID); err != nil {
		return err
	} else if ok {
		return store.Conflict("account link id already exists")
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM account_links WHERE app_id = ? AND app_account_id = ?",
		l.AppID, l.AppAccountID); err != nil {
		return err
	} else if ok {
		return store.Conflict("app account is already linked")
	}
	if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM account_links WHERE app_id = ? AND user_id = ?",
		l.AppID, l.UserID); err != nil {
		return err
	} else if ok {
		return store.Conflict("user is already linked to this app")
	}
	if _, err := tx.ExecContext(ctx, s.q("INSERT INTO account_links ("+linkCols+", org_path) VALUES (?, ?, ?, ?, ?, ?, ?)"),
		l.ID, l.UserID, l.AppID, l.AppAccountID, int(l.Status), store.UnixMS(l.CreatedAt), orgPath); err != nil {
		return err
	}
	return nil
}

// GetLink returns the link id.
func (s *Store) GetLink(ctx context.Context, id string) (*identity.AccountLink, error) {
	l, _, err := scanLink(s.db.QueryRowContext(ctx, s.q("SELECT "+linkCols+" FROM account_links WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("account link")
	}
	if err != nil {
		return nil, classify(err, "get link", "account link")
	}
	return l, nil
}

// FindLink finds appID's link whose app account id is account, or failing
// that appID's link of the user whose login name is account.
func (s *Store) FindLink(ctx context.Context, appID, account string) (*identity.AccountLink, error) {
	l, _, err := scanLink(s.stmts.QueryRowContext(ctx,
		s.q("SELECT "+linkCols+" FROM account_links WHERE app_id = ? AND app_account_id = ?"), appID, account))
	if errors.Is(err, sql.ErrNoRows) {
		l, _, err = scanLink(s.stmts.QueryRowContext(ctx, s.q(`SELECT l.id, l.user_id, l.app_id, l.app_account_id,
			l.status, l.created_at FROM account_links l JOIN users u ON u.id = l.user_id
			WHERE l.app_id = ? AND `+s.loginIs("u.login_name")), appID, account))
	}
	if errors.Is(err, sql.ErrNoRows) {
		// The account (personal data) is not echoed.
		return nil, store.NotFound("account link")
	}
	if err != nil {
		return nil, classify(err, "find link", "account link")
	}
	return l, nil
}

// ListLinks lists links by id.
func (s *Store) ListLinks(ctx context.Context, f identity.LinkFilter, p identity.Page) ([]*identity.AccountLink, string, error) {
	l, err := s.linkListing(ctx, f)
	if err != nil {
		return nil, "", err
	}
	return run(ctx, s, l, p, scanLink)
}

func (s *Store) linkListing(ctx context.Context, f identity.LinkFilter) (*listing, error) {
	l := &listing{op: "list links", cols: qualified("account_links", linkCols), from: "account_links",
		keys: []keyCol{{expr: "account_links.id"}}}
	if f.UserID != "" {
		l.w.Add("account_links.user_id = ?", f.UserID)
	}
	if f.AppID != "" {
		l.w.Add("account_links.app_id = ?", f.AppID)
	}
	if f.UserID == "" {
		// one subtree: its people's links in (org path, id) order
		lo, hi, one, err := s.withinSubtree(ctx, f.Within)
		if err != nil {
			return nil, classify(err, "list links", "org")
		}
		if one {
			if s.db.Dialect == store.SQLite {
				// An application filter is checked on the rows of the
				// range (SQLite would rather walk the application's links
				// and sort them).
				l.from = "account_links INDEXED BY account_links_org_path_idx"
			}
			l.w.Add("account_links.org_path < ?", hi)
			l.first, l.firstArgs = "account_links.org_path >= ?", []any{lo}
			l.keys = []keyCol{{expr: "account_links.org_path"}, {expr: "account_links.id"}}
			f.Within = nil
		}
	}
	if err := s.within(ctx, l, f.Within, "account_links.org_path"); err != nil {
		return nil, err
	}
	return l, nil
}

// DeleteApp deletes application id (its secrets are columns of its row);
// the schema's cascades take its account links and fingerprint bypass
// setting with it (and its delete trigger the search entries).
func (s *Store) DeleteApp(ctx context.Context, id string, at time.Time, evs []events.Event) error {
	return s.inTx(ctx, "delete app", "application", func(tx *sql.Tx) error {
		// What is kept of it (the same row's secrets; a restored App_ID
		// deleted again replaces its tombstone), then the row.
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO app_tombstones (id, deleted_at, secret_hash, prev_secret_hash)
			SELECT id, ?, secret_hash, prev_secret_hash FROM apps WHERE id = ? AND status = ?
			ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at, secret_hash = excluded.secret_hash,
			prev_secret_hash = excluded.prev_secret_hash`), store.UnixMS(at), id, int(identity.AppSuspended)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM apps WHERE id = ? AND status = ?"), id, int(identity.AppSuspended))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Gone, or made active again since it was read.
			if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE id = ?", id); err != nil {
				return err
			} else if ok {
				return identity.ErrAppActive
			}
			return store.NotFound("application")
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// AppTombstone implements identity.Store.
func (s *Store) AppTombstone(ctx context.Context, id string) (*identity.AppTombstone, error) {
	var (
		at int64
		t  identity.AppTombstone
	)
	err := s.db.QueryRowContext(ctx, s.q("SELECT deleted_at, secret_hash, prev_secret_hash FROM app_tombstones WHERE id = ?"), id).
		Scan(&at, &t.SecretHash, &t.PrevSecretHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("application")
	}
	if err != nil {
		return nil, classify(err, "app tombstone", "")
	}
	t.DeletedAt = store.FromUnixMS(at)
	return &t, nil
}

// DeleteLink deletes the link id.
func (s *Store) DeleteLink(ctx context.Context, id string, evs []events.Event) error {
	return s.inTx(ctx, "delete link", "account link", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM account_links WHERE id = ?"), id)
		if err != nil {
			return err
		}
		if err := mustAffect(res, "account link"); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// ---------------------------------------------------------------------------
// admin tokens

// CreateAdminToken inserts t; its last use is its creation.
func (s *Store) CreateAdminToken(ctx context.Context, t *identity.AdminToken) error {
	return s.inTx(ctx, "create admin token", "admin token", func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM users WHERE id = ?"+s.db.ForShare(), t.UserID); err != nil {
			return err
		} else if !ok {
			return store.NotFound("user")
		}
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO admin_tokens (hash, user_id, expires_at, created_at, last_used_at) VALUES (?, ?, ?, ?, ?)"),
			t.Hash, t.UserID, store.UnixMS(t.ExpiresAt), store.UnixMS(t.CreatedAt), store.UnixMS(t.CreatedAt))
		return err
	})
}

// GetAdminToken returns the token whose hash is hash (expired or not).
func (s *Store) GetAdminToken(ctx context.Context, hash string) (*identity.AdminToken, error) {
	var (
		t                      identity.AdminToken
		expires, created, used int64
	)
	err := s.stmts.QueryRowContext(ctx, s.q("SELECT hash, user_id, expires_at, created_at, last_used_at FROM admin_tokens WHERE hash = ?"), hash).
		Scan(&t.Hash, &t.UserID, &expires, &created, &used)
	if errors.Is(err, sql.ErrNoRows) {
		// The hash is a credential: not echoed.
		return nil, store.NotFound("admin token")
	}
	if err != nil {
		return nil, classify(err, "get admin token", "admin token")
	}
	t.ExpiresAt, t.CreatedAt, t.LastUsedAt = store.FromUnixMS(expires), store.FromUnixMS(created), store.FromUnixMS(used)
	if t.LastUsedAt.IsZero() {
		t.LastUsedAt = t.CreatedAt // a token made before last_used_at existed
	}
	return &t, nil
}

// TouchAdminToken records a use of the token (never moving it back).
func (s *Store) TouchAdminToken(ctx context.Context, hash string, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q("UPDATE admin_tokens SET last_used_at = ? WHERE hash = ? AND last_used_at < ?"),
		store.UnixMS(now), hash, store.UnixMS(now))
	return classify(err, "touch admin token", "")
}

// DeleteAdminToken deletes one token with evs.
func (s *Store) DeleteAdminToken(ctx context.Context, hash string, evs []events.Event) error {
	return s.inTx(ctx, "delete admin token", "admin token", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q("DELETE FROM admin_tokens WHERE hash = ?"), hash)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.NotFound("admin token")
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// DeleteUserAdminTokens deletes every token of userID with evs.
func (s *Store) DeleteUserAdminTokens(ctx context.Context, userID string, evs []events.Event) error {
	return s.inTx(ctx, "delete admin tokens", "admin token", func(tx *sql.Tx) error {
		if err := s.deleteUserTokens(ctx, tx, userID); err != nil {
			return err
		}
		return s.addEvents(ctx, tx, evs)
	})
}

// DeleteExpiredAdminTokens deletes tokens that expired at or before now.
func (s *Store) DeleteExpiredAdminTokens(ctx context.Context, now time.Time) error {
	_, err := s.db.ExecContext(ctx, s.q("DELETE FROM admin_tokens WHERE expires_at <= ?"), store.UnixMS(now))
	return classify(err, "delete expired admin tokens", "")
}
