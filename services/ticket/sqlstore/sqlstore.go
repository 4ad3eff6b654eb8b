// Package sqlstore implements the ticket component's SQL store (the
// service registry) on SQLite and PostgreSQL through pkg/store. Every
// change writes its events into the outbox (pkg/events) in the same
// transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/ticket"
)

// Component is the name under which the ticket migrations are recorded.
const Component = "ticket"

const outboxMigration = "0002_events_outbox.sql"

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// Store is the SQL store of the ticket component.
type Store struct {
	db *store.DB
}

var (
	_ ticket.ServiceStore = (*Store)(nil)
	_ ticket.ConsentStore = (*Store)(nil)
)

// New returns a Store on db. Run Migrate first.
func New(db *store.DB) *Store { return &Store{db: db} }

// Migrate brings the ticket schema (and its events outbox) up to date.
func Migrate(ctx context.Context, db *store.DB) error {
	return events.MigrateWithOutbox(ctx, db, Component, migrationFiles, outboxMigration)
}

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error {
	return classify(s.db.PingContext(ctx), "ping")
}

func classify(err error, op string) error {
	if err == nil {
		return nil
	}
	if _, ok := apierr.As(err); ok {
		return err
	}
	c := store.Classify(err)
	if _, ok := apierr.As(c); ok {
		return c
	}
	return fmt.Errorf("ticket store %s: %w", op, err)
}

func (s *Store) inTx(ctx context.Context, op string, evs []events.Event, fn func(tx *sql.Tx) error) error {
	var fnErr error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if fnErr = fn(tx); fnErr != nil {
			return fnErr
		}
		for _, ev := range evs {
			if fnErr = events.AddToOutbox(ctx, tx, s.db, ev); fnErr != nil {
				if store.IsUniqueViolation(fnErr) {
					fnErr = errors.New("ticket store: duplicate event id")
				}
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return classify(fnErr, op)
	}
	return classify(err, op)
}

const serviceCols = "id, app_id, name, url, pattern, logout_url, min_auth_level, allow_proxy, enabled, created_at, updated_at, " +
	"legacy_scheme, legacy_require_secret, require_account_link, required_permission, certificate_required, release_roles, release_permissions, " +
	"consent_required, consent_ttl_seconds, release_attributes, masked_attributes"

// joinNames and splitNames keep a list of attribute names in one column
// (names have no commas; empty: none).
func joinNames(n []string) string { return strings.Join(n, ",") }

func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateService implements ticket.ServiceStore.
func (s *Store) CreateService(ctx context.Context, r *ticket.RegisteredService, evs ...events.Event) error {
	return s.inTx(ctx, "create service", evs, func(tx *sql.Tx) error {
		if ok, err := s.db.Exists(ctx, tx, "SELECT 1 FROM ticket_services WHERE id = ?", r.ID); err != nil {
			return err
		} else if ok {
			return store.Conflict("service id already exists")
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO ticket_services ("+serviceCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			r.ID, r.AppID, r.Name, r.URL, r.Pattern, r.LogoutURL, r.MinAuthLevel, b2i(r.AllowProxy), b2i(r.Enabled),
			store.UnixMS(r.CreatedAt), store.UnixMS(r.UpdatedAt), r.LegacyScheme, b2i(r.LegacyRequireSecret),
			b2i(r.RequireAccountLink), r.RequiredPermission, b2i(r.CertificateRequired), b2i(r.ReleaseRoles), b2i(r.ReleasePermissions),
			b2i(r.ConsentRequired), int64(r.ConsentTTL/time.Second),
			joinNames(r.ReleaseAttributes), joinNames(r.MaskedAttributes))
		return err
	})
}

type scanner interface{ Scan(dest ...any) error }

func scanService(row scanner) (*ticket.RegisteredService, error) {
	var r ticket.RegisteredService
	var proxy, enabled, secret, link, cert, roles, perms, consent int
	var created, updated, consentTTL int64
	var release, masked string
	if err := row.Scan(&r.ID, &r.AppID, &r.Name, &r.URL, &r.Pattern, &r.LogoutURL, &r.MinAuthLevel, &proxy, &enabled,
		&created, &updated, &r.LegacyScheme, &secret, &link, &r.RequiredPermission, &cert, &roles, &perms, &consent, &consentTTL, &release, &masked); err != nil {
		return nil, err
	}
	r.ConsentRequired, r.ConsentTTL = consent != 0, time.Duration(consentTTL)*time.Second
	r.ReleaseAttributes, r.MaskedAttributes = splitNames(release), splitNames(masked)
	r.AllowProxy, r.Enabled, r.LegacyRequireSecret, r.RequireAccountLink = proxy != 0, enabled != 0, secret != 0, link != 0
	r.CertificateRequired, r.ReleaseRoles, r.ReleasePermissions = cert != 0, roles != 0, perms != 0
	r.CreatedAt, r.UpdatedAt = store.FromUnixMS(created), store.FromUnixMS(updated)
	return &r, nil
}

// GetService implements ticket.ServiceStore.
func (s *Store) GetService(ctx context.Context, id string) (*ticket.RegisteredService, error) {
	r, err := scanService(s.db.QueryRowContext(ctx, s.db.Rebind("SELECT "+serviceCols+" FROM ticket_services WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("service")
	}
	return r, classify(err, "get service")
}

// ListServices implements ticket.ServiceStore.
func (s *Store) ListServices(ctx context.Context, appID string) ([]*ticket.RegisteredService, error) {
	q, args := "SELECT "+serviceCols+" FROM ticket_services ORDER BY id", []any(nil)
	if appID != "" {
		q, args = "SELECT "+serviceCols+" FROM ticket_services WHERE app_id = ? ORDER BY id", []any{appID}
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q), args...)
	if err != nil {
		return nil, classify(err, "list services")
	}
	defer rows.Close()
	var out []*ticket.RegisteredService
	for rows.Next() {
		r, err := scanService(rows)
		if err != nil {
			return nil, classify(err, "list services")
		}
		out = append(out, r)
	}
	return out, classify(rows.Err(), "list services")
}

// UpdateService implements ticket.ServiceStore.
func (s *Store) UpdateService(ctx context.Context, r *ticket.RegisteredService, evs ...events.Event) error {
	return s.inTx(ctx, "update service", evs, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind("UPDATE ticket_services SET app_id = ?, name = ?, url = ?, pattern = ?, "+
			"logout_url = ?, min_auth_level = ?, allow_proxy = ?, enabled = ?, updated_at = ?, legacy_scheme = ?, "+
			"legacy_require_secret = ?, require_account_link = ?, required_permission = ?, certificate_required = ?, release_roles = ?, release_permissions = ?, "+
			"consent_required = ?, consent_ttl_seconds = ?, release_attributes = ?, masked_attributes = ? WHERE id = ?"),
			r.AppID, r.Name, r.URL, r.Pattern, r.LogoutURL, r.MinAuthLevel, b2i(r.AllowProxy), b2i(r.Enabled),
			store.UnixMS(r.UpdatedAt), r.LegacyScheme, b2i(r.LegacyRequireSecret), b2i(r.RequireAccountLink),
			r.RequiredPermission, b2i(r.CertificateRequired), b2i(r.ReleaseRoles), b2i(r.ReleasePermissions),
			b2i(r.ConsentRequired), int64(r.ConsentTTL/time.Second),
			joinNames(r.ReleaseAttributes), joinNames(r.MaskedAttributes), r.ID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

// DeleteService implements ticket.ServiceStore.
func (s *Store) DeleteService(ctx context.Context, id string, evs ...events.Event) error {
	return s.inTx(ctx, "delete service", evs, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind("DELETE FROM ticket_services WHERE id = ?"), id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
}

func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.NotFound("service")
	}
	return nil
}

// PutCredential implements ticket.CredentialStore.
func (s *Store) PutCredential(ctx context.Context, c *ticket.AppCredential) error {
	return s.inTx(ctx, "put credential", nil, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.db.Rebind("DELETE FROM ticket_app_credentials WHERE user_id = ? AND app_id = ?"),
			c.UserID, c.AppID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO ticket_app_credentials (user_id, app_id, account, secret_enc, updated_at) "+
			"VALUES (?, ?, ?, ?, ?)"), c.UserID, c.AppID, c.Account, c.SecretEnc, store.UnixMS(c.UpdatedAt))
		return err
	})
}

// GetCredential implements ticket.CredentialStore.
func (s *Store) GetCredential(ctx context.Context, userID, appID string) (*ticket.AppCredential, error) {
	c := ticket.AppCredential{UserID: userID, AppID: appID}
	var updated int64
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT account, secret_enc, updated_at FROM ticket_app_credentials "+
		"WHERE user_id = ? AND app_id = ?"), userID, appID).Scan(&c.Account, &c.SecretEnc, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("credential")
	}
	if err != nil {
		return nil, classify(err, "get credential")
	}
	c.UpdatedAt = store.FromUnixMS(updated)
	return &c, nil
}

const consentCols = "user_id, client_id, scope, granted_at, expires_at, revoked_at"

// PutConsent implements ticket.ConsentStore.
func (s *Store) PutConsent(ctx context.Context, c *ticket.Consent, evs ...events.Event) error {
	return s.inTx(ctx, "put consent", evs, func(tx *sql.Tx) error {
		// One statement: the record's revocation is never moved back
		// (the later of the stored and the new one is kept), so a consent
		// written at the same moment as a removal (read before it) does
		// not restore the grants it ended (review sec30c L1).
		_, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO ticket_oidc_consents ("+consentCols+") VALUES (?, ?, ?, ?, ?, ?) "+
			"ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at, "+
			"expires_at = excluded.expires_at, revoked_at = CASE WHEN ticket_oidc_consents.revoked_at > excluded.revoked_at "+
			"THEN ticket_oidc_consents.revoked_at ELSE excluded.revoked_at END"),
			c.UserID, c.ClientID, c.Scope, store.UnixMS(c.GrantedAt), store.UnixMS(c.ExpiresAt), store.UnixMS(c.RevokedAt))
		return err
	})
}

func scanConsent(row scanner) (*ticket.Consent, error) {
	var c ticket.Consent
	var granted, expires, revoked int64
	if err := row.Scan(&c.UserID, &c.ClientID, &c.Scope, &granted, &expires, &revoked); err != nil {
		return nil, err
	}
	c.GrantedAt, c.ExpiresAt, c.RevokedAt = store.FromUnixMS(granted), store.FromUnixMS(expires), store.FromUnixMS(revoked)
	return &c, nil
}

// GetConsent implements ticket.ConsentStore.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*ticket.Consent, error) {
	c, err := scanConsent(s.db.QueryRowContext(ctx, s.db.Rebind("SELECT "+consentCols+" FROM ticket_oidc_consents "+
		"WHERE user_id = ? AND client_id = ?"), userID, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.NotFound("consent")
	}
	if err != nil {
		return nil, classify(err, "get consent")
	}
	return c, nil
}

// ListConsents implements ticket.ConsentStore.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]*ticket.Consent, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT "+consentCols+" FROM ticket_oidc_consents WHERE user_id = ? ORDER BY client_id"), userID)
	if err != nil {
		return nil, classify(err, "list consents")
	}
	defer rows.Close()
	var out []*ticket.Consent
	for rows.Next() {
		c, err := scanConsent(rows)
		if err != nil {
			return nil, classify(err, "list consents")
		}
		out = append(out, c)
	}
	return out, classify(rows.Err(), "list consents")
}
