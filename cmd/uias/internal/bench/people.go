package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity/sqlstore"
)

// Generated people for the scale rows: written straight into an identity
// database in bulk SQL (no service calls, no hashes), about what a large
// deployment holds. The org tree is a root, 10 orgs under it and 1000
// under those (100 each); person n (0 <= n < count) is in org n % 1000, 1%
// of them disabled, each linked to one application. Display names are
// Chinese: surname, then two given-name characters (4000 combinations, so
// a three-character name matches about count/4000 people).
const (
	genRoot    = "o-root"
	genL1      = 10
	genL2      = 1000
	genApp     = "a-bench"
	genSurname = "张王李赵刘陈杨黄周吴"
	genGiven   = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平"
)

// genOrgID and genUser name the generated rows (for the queries).
func genL1ID(i int) string     { return fmt.Sprintf("o1-%02d", i) }
func genL2ID(i int) string     { return fmt.Sprintf("o2-%04d", i) }
func genUserID(n int) string   { return fmt.Sprintf("u%08d", n) }
func genLogin(n int) string    { return fmt.Sprintf("p%08d", n) }
func genLinkAcct(n int) string { return fmt.Sprintf("acct-%08d", n) }

// genDisplay is the display name of person n.
func genDisplay(n int) string {
	s, g := []rune(genSurname), []rune(genGiven)
	return string([]rune{s[n%10], g[(n/10)%20], g[(n/200)%20]})
}

// generatePeople adds the org tree (if missing), the application appID (if
// missing; "" for genApp) and people [from, to) to the migrated identity
// database db, in transactions of 100 000 people, through the indexes as
// they are and with their search rows, the search file brought up to date
// at the end (the floor of the import row).
func generatePeople(ctx context.Context, db *store.DB, appID string, from, to int) error {
	root, err := generateOrgs(ctx, db, appID)
	if err != nil {
		return err
	}
	users, links := peopleSQL(db, root)
	q := db.Rebind
	now := time.Now().UnixMilli()
	if appID == "" {
		appID = genApp
	}
	const chunk = 100_000
	for lo := from; lo < to; lo += chunk {
		hi := min(lo+chunk, to)
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, q(users), lo, hi, now, now); err != nil {
				return fmt.Errorf("users: %w", err)
			}
			if err := indexGenerated(ctx, db, tx, lo, hi); err != nil {
				return fmt.Errorf("search index: %w", err)
			}
			if _, err := tx.ExecContext(ctx, q(links), lo, hi, appID, now); err != nil {
				return fmt.Errorf("links: %w", err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("generate people %d-%d: %w", lo, hi, err)
		}
	}
	if err := sqlstore.BuildSearchIndex(ctx, db, nil); err != nil {
		return fmt.Errorf("generate people: search file: %w", err)
	}
	_, err = db.ExecContext(ctx, "ANALYZE")
	return err
}

// indexGenerated lists people [lo, hi), just inserted, for the search
// index on SQLite, as the store does for the users it inserts: one
// statement for their search keys, one for their queue entries
// (generatePeople then writes the search file: sqlstore.BuildSearchIndex).
func indexGenerated(ctx context.Context, db *store.DB, tx *sql.Tx, lo, hi int) error {
	if db.Dialect != store.SQLite || lo >= hi {
		return nil
	}
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(n), 0) FROM users_search_keys").Scan(&last); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO users_search_keys (row_id) SELECT id FROM users WHERE id >= ? AND id <= ? ORDER BY id",
		genUserID(lo), genUserID(hi-1)); err != nil {
		return err
	}
	return sqlstore.ListNewPeople(ctx, tx, last)
}

// generateOrgs adds the org tree and the application appID ("" for
// genApp) if missing and returns the root org's id.
func generateOrgs(ctx context.Context, db *store.DB, appID string) (string, error) {
	if appID == "" {
		appID = genApp
	}
	now := time.Now().UnixMilli()
	q := db.Rebind
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		var root string
		err := tx.QueryRowContext(ctx, "SELECT id FROM orgs WHERE parent_id IS NULL").Scan(&root)
		if errors.Is(err, sql.ErrNoRows) {
			root = genRoot
			if _, err := tx.ExecContext(ctx, q("INSERT INTO orgs (id, code, name, parent_id, path, status, created_at, updated_at) VALUES (?, ?, ?, NULL, ?, 1, ?, ?)"),
				root, root, "Root", "/"+root+"/", now, now); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if ok, err := db.Exists(ctx, tx, "SELECT 1 FROM orgs WHERE id = ?", genL1ID(0)); err != nil || ok {
			return err
		}
		for i := range genL1 {
			id := genL1ID(i)
			if _, err := tx.ExecContext(ctx, q("INSERT INTO orgs (id, code, name, parent_id, path, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"),
				id, id, fmt.Sprintf("航运局%02d", i), root, "/"+root+"/"+id+"/", now, now); err != nil {
				return err
			}
		}
		for i := range genL2 {
			id, parent := genL2ID(i), genL1ID(i%genL1)
			if _, err := tx.ExecContext(ctx, q("INSERT INTO orgs (id, code, name, parent_id, path, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)"),
				id, id, fmt.Sprintf("海事处%04d", i), parent, "/"+root+"/"+parent+"/"+id+"/", now, now); err != nil {
				return err
			}
		}
		if ok, err := db.Exists(ctx, tx, "SELECT 1 FROM apps WHERE id = ?", appID); err != nil || ok {
			return err
		}
		_, err = tx.ExecContext(ctx, q("INSERT INTO apps (id, app_type, app_code, name, status, created_at, updated_at) VALUES (?, 'OA', 'gen', 'Generated', 1, ?, ?)"),
			appID, now, now)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("generate orgs: %w", err)
	}
	var root string
	err = db.QueryRowContext(ctx, "SELECT id FROM orgs WHERE parent_id IS NULL").Scan(&root)
	return root, err
}

// peopleSQL returns the statements that insert people [?, ?) (users, then
// their links) of the tree under root: one statement per chunk, a series of
// n, each person's columns computed in SQL.
func peopleSQL(db *store.DB, root string) (users, links string) {
	series := "WITH RECURSIVE s(n) AS (SELECT ? UNION ALL SELECT n + 1 FROM s WHERE n + 1 < ?) "
	if db.Dialect == store.Postgres {
		series = "WITH s(n) AS (SELECT generate_series(?::bigint, ?::bigint - 1)) "
	}
	pad := func(e string) string { return "lpad(CAST(" + e + " AS TEXT), 8, '0')" }
	if db.Dialect != store.Postgres {
		pad = func(e string) string { return "printf('%08d', " + e + ")" }
	}
	orgOf := "'o2-' || substr(" + pad("s.n % 1000") + ", 5)"
	l1Of := "'o1-' || substr(" + pad("(s.n % 1000) % 10") + ", 7)"
	display := "substr('" + genSurname + "', s.n % 10 + 1, 1) || substr('" + genGiven + "', (s.n / 10) % 20 + 1, 1) || substr('" +
		genGiven + "', (s.n / 200) % 20 + 1, 1)"
	if db.Dialect == store.Postgres {
		display = "substr('" + genSurname + "', (s.n % 10)::int + 1, 1) || substr('" + genGiven + "', ((s.n / 10) % 20)::int + 1, 1) || substr('" +
			genGiven + "', ((s.n / 200) % 20)::int + 1, 1)"
	}
	// A feature code as the service makes (a keyed hash: random keys into
	// its unique index), so that the import row's floor writes what an
	// import writes.
	feature := "lower(hex(randomblob(16)))"
	if db.Dialect == store.Postgres {
		feature = "md5(random()::text || s.n::text)"
	}
	users = series + "INSERT INTO users (id, login_name, display_name, email, feature_code, org_id, org_path, status, password_hash, created_at, updated_at) " +
		"SELECT 'u' || " + pad("s.n") + ", 'p' || " + pad("s.n") + ", " + display + ", 'p' || " + pad("s.n") + " || '@example.com', " + feature + ", " +
		orgOf + ", '/" + root + "/' || " + l1Of + " || '/' || " + orgOf + " || '/', " +
		"CASE WHEN s.n % 100 = 7 THEN 2 ELSE 1 END, '{SSHA}generated', ?, ? FROM s"
	links = series + "INSERT INTO account_links (id, user_id, app_id, app_account_id, status, created_at, org_path) " +
		"SELECT 'l' || " + pad("s.n") + ", 'u' || " + pad("s.n") + ", ?, 'acct-' || " + pad("s.n") + ", 1, ?, " +
		"'/" + root + "/' || " + l1Of + " || '/' || " + orgOf + " || '/' FROM s"
	return users, links
}
