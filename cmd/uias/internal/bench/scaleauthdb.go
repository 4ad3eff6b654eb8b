package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// adoptPeopleStore makes the generated store o.authDB (o.people people, as
// the listing rows left it) the identity database path of the UIAS that the
// Authenticate rows start (`make soak`: generating 10 M people again would
// take hours). The file is hard-linked, so the run writes into it: what an
// earlier run added is removed first (the bench application and people the
// env seeds, the administrator, the data keys of that run's key ring, which
// this run's would refuse; a new key ring is made for this run), and the
// bootstrap administrator is added with
// the legacy is_admin flag, which identity turns into authz's system_admin
// grant at start, as after a first start (a store with people gets no
// first-start bootstrap).
func adoptPeopleStore(ctx context.Context, o *scaleOptions, path string) error {
	if err := os.Link(o.authDB, path); err != nil {
		return fmt.Errorf("--auth-db: %w (the store must be on the file system of the temporary directory)", err)
	}
	// Its search file too, when it has one (else it is built below).
	if _, err := os.Stat(sqlstore.SearchFile(o.authDB)); err == nil {
		if err := os.Link(sqlstore.SearchFile(o.authDB), sqlstore.SearchFile(path)); err != nil {
			return fmt.Errorf("--auth-db: search file: %w", err)
		}
	}
	db, err := openIdentityDB(ctx, path)
	if err != nil {
		return fmt.Errorf("--auth-db: %w", err)
	}
	defer func() { _ = db.Close() }()
	busy, err := generating(ctx, db)
	if err != nil {
		return fmt.Errorf("--auth-db: %w", err)
	}
	if busy {
		return errors.New("--auth-db: the store's generation is not finished (run the listing rows on it first)")
	}
	var people int
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM users_search_keys").Scan(&people); err != nil {
		return err
	}
	if people < o.people {
		return fmt.Errorf("--auth-db: the store holds about %d people, fewer than --people %d", people, o.people)
	}
	hash, err := crypto.NewHasher(crypto.HasherConfig{Params: o.argon2}).Hash(ctx, adminPassword)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			"DELETE FROM users WHERE login_name IN ('bench', '" + identity.BootstrapAdminLogin + "') OR login_name GLOB 'bench[0-9][0-9]'",
			"DELETE FROM apps WHERE app_type = 'OA' AND app_code = 'bench'",
			"DELETE FROM data_keys",
			"DELETE FROM key_checks",
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		var root, rootPath string
		if err := tx.QueryRowContext(ctx, "SELECT id, path FROM orgs WHERE parent_id IS NULL ORDER BY id LIMIT 1").Scan(&root, &rootPath); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errors.New("--auth-db: the store has no root org")
			}
			return err
		}
		id := ids.New()
		if _, err := tx.ExecContext(ctx, "INSERT INTO users (id, login_name, display_name, org_id, org_path, status, is_admin, "+
			"password_hash, password_changed_at, never_expires, created_at, updated_at) VALUES (?, ?, 'System Administrator', ?, ?, 1, 1, ?, ?, 1, ?, ?)",
			id, identity.BootstrapAdminLogin, root, rootPath, hash, now, now, now); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM users_search_keys").Scan(&last); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO users_search_keys (row_id) VALUES (?)", id); err != nil {
			return err
		}
		return sqlstore.ListNewPeople(ctx, tx, last)
	})
	if err != nil {
		return err
	}
	// A store with orgs counts as holding data, for which UIAS makes no
	// key ring: this run's ring is made here, with new data keys in the
	// store (the generated people have nothing sealed).
	ring, err := crypto.NewRingFile(filepath.Join(filepath.Dir(path), "keyring.json"))
	if err != nil {
		return fmt.Errorf("--auth-db: key ring: %w", err)
	}
	if _, err := identity.OpenKeys(ctx, sqlstore.New(db), ring, false, nil); err != nil {
		return fmt.Errorf("--auth-db: data keys: %w", err)
	}
	// The search file up to date before UIAS starts on the store.
	if err := sqlstore.BuildSearchIndex(ctx, db, nil); err != nil {
		return fmt.Errorf("--auth-db: search file: %w", err)
	}
	return nil
}
