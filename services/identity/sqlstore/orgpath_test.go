package sqlstore

import (
	"context"
	"io/fs"
	"maps"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
)

// orgPathMigration is the migration that gave groups and account links
// their org_path.
const orgPathMigration = 45

// migrateBefore applies the identity migrations older than version only
// (a database as an older release left it).
func migrateBefore(ctx context.Context, db *store.DB, version int) error {
	dir, err := events.OutboxMigrations(migrationFiles, db.Dialect, outboxMigration)
	if err != nil {
		return err
	}
	old := fstest.MapFS{}
	err = fs.WalkDir(dir, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if v := fileVersion(p); v < 0 || v >= version {
			return nil // not a migration, or a later one
		}
		b, err := fs.ReadFile(dir, p)
		old[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		return err
	}
	return store.Migrate(ctx, db, Component, old)
}

// fileVersion is the NNNN of "NNNN_name.sql" (-1 for other names).
func fileVersion(name string) int {
	num, _, _ := strings.Cut(name, "_")
	v, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return v
}

// TestOrgPathBackfill: groups and account links written before their
// org_path existed get their org's (person's) path from the migration, and
// the subtree listings find them.
func TestOrgPathBackfill(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := migrateBefore(ctx, db, orgPathMigration); err != nil {
				t.Fatal(err)
			}
			// Today's store lists new people for the search file in
			// users_search_queue (0048), which the schema before 0045
			// lacks: a stand-in while it writes the people below.
			queue := db.Dialect == store.SQLite
			if queue {
				if _, err := db.ExecContext(ctx, "CREATE TABLE users_search_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, fresh INTEGER NOT NULL DEFAULT 0, login_name TEXT, display_name TEXT, email TEXT)"); err != nil {
					t.Fatal(err)
				}
			}
			// And the ID key of each person (0050): a stand-in column.
			if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN id_key TEXT NULL"); err != nil {
				t.Fatal(err)
			}
			// And whether another set the password (0056): a stand-in column.
			if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN password_by_other BOOLEAN NOT NULL DEFAULT FALSE"); err != nil {
				t.Fatal(err)
			}
			// And the person's level (0061): a stand-in column.
			if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN min_auth_level INTEGER NOT NULL DEFAULT 0"); err != nil {
				t.Fatal(err)
			}
			// And the centres key (0066): a stand-in column.
			if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN centres_key TEXT NULL"); err != nil {
				t.Fatal(err)
			}
			// And the user type (0069): a stand-in column.
			if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN user_type INTEGER NOT NULL DEFAULT 0"); err != nil {
				t.Fatal(err)
			}
			// And the account's state time (0071): a stand-in column.
			if _, err := db.ExecContext(ctx, "ALTER TABLE users ADD COLUMN state_changed_at BIGINT NOT NULL DEFAULT 0"); err != nil {
				t.Fatal(err)
			}
			// And the secret validity columns of each application (0051).
			for _, c := range appSecretColumns {
				if _, err := db.ExecContext(ctx, "ALTER TABLE apps ADD COLUMN "+c+" BIGINT NOT NULL DEFAULT 0"); err != nil {
					t.Fatal(err)
				}
			}
			// And the signing key columns of each application (0053), its
			// grants and access period (0058), its levels (0061) and its
			// concurrency limit (0065), its legacy IP-only mode (0067) and its name release (0068).
			for _, c := range []string{"signing_keys TEXT NOT NULL DEFAULT '[]'", "require_signatures BOOLEAN NOT NULL DEFAULT FALSE",
				"granted_apis TEXT NOT NULL DEFAULT ''", "access_from BIGINT NOT NULL DEFAULT 0", "access_until BIGINT NOT NULL DEFAULT 0",
				"security_level INTEGER NOT NULL DEFAULT 1", "min_auth_level INTEGER NOT NULL DEFAULT 0",
				"max_concurrent INTEGER NOT NULL DEFAULT 0", "legacy_ip_only BOOLEAN NOT NULL DEFAULT FALSE",
				"name_release TEXT NOT NULL DEFAULT ''"} {
				if _, err := db.ExecContext(ctx, "ALTER TABLE apps ADD COLUMN "+c); err != nil {
					t.Fatal(err)
				}
			}
			s := New(db)
			at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			org := func(id, parent string) *identity.Org {
				o := &identity.Org{ID: id, Code: id, Name: id, ParentID: parent, Status: identity.StatusActive, CreatedAt: at, UpdatedAt: at}
				if err := s.CreateOrg(ctx, o, nil); err != nil {
					t.Fatal(err)
				}
				return o
			}
			root := org("root", "")
			a := org("a", root.ID)
			b := org("b", root.ID)
			for _, u := range []string{"ua", "ub"} {
				org := a.ID
				if u == "ub" {
					org = b.ID
				}
				if err := s.CreateUser(ctx, &identity.User{ID: u, LoginName: u, DisplayName: u, OrgID: org,
					Status: identity.StatusActive, PasswordHash: "h", CreatedAt: at, UpdatedAt: at}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CreateApp(ctx, &identity.App{ID: "app", Type: "oa", Code: "oa", Name: "OA", Status: identity.AppActive,
				SecretHash: "s", CreatedAt: at, UpdatedAt: at}, nil); err != nil {
				t.Fatal(err)
			}
			// Written as the release before the migration wrote them.
			for _, q := range []struct {
				sql  string
				args []any
			}{
				{"INSERT INTO groups (id, code, name, org_id, created_at) VALUES (?, ?, ?, ?, 0)", []any{"ga", "ga", "ga", a.ID}},
				{"INSERT INTO groups (id, code, name, org_id, created_at) VALUES (?, ?, ?, ?, 0)", []any{"gb", "gb", "gb", b.ID}},
				{"INSERT INTO groups (id, code, name, org_id, created_at) VALUES (?, ?, ?, NULL, 0)", []any{"gnone", "gnone", "gnone"}},
				{"INSERT INTO account_links (id, user_id, app_id, app_account_id, status, created_at) VALUES (?, ?, ?, ?, 1, 0)", []any{"la", "ua", "app", "acct-a"}},
				{"INSERT INTO account_links (id, user_id, app_id, app_account_id, status, created_at) VALUES (?, ?, ?, ?, 1, 0)", []any{"lb", "ub", "app", "acct-b"}},
			} {
				if _, err := db.ExecContext(ctx, s.q(q.sql), q.args...); err != nil {
					t.Fatal(err)
				}
			}
			if queue {
				if _, err := db.ExecContext(ctx, "DROP TABLE users_search_queue"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, "ALTER TABLE users DROP COLUMN id_key"); err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"password_by_other", "min_auth_level", "centres_key", "user_type", "state_changed_at"} {
				if _, err := db.ExecContext(ctx, "ALTER TABLE users DROP COLUMN "+c); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range append(appSecretColumns, "signing_keys", "require_signatures", "granted_apis", "access_from", "access_until", "security_level", "min_auth_level", "max_concurrent", "legacy_ip_only", "name_release") {
				if _, err := db.ExecContext(ctx, "ALTER TABLE apps DROP COLUMN "+c); err != nil {
					t.Fatal(err)
				}
			}
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			paths := func(table string) map[string]string {
				rows, err := db.QueryContext(ctx, "SELECT id, org_path FROM "+table)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				out := map[string]string{}
				for rows.Next() {
					var id, p string
					if err := rows.Scan(&id, &p); err != nil {
						t.Fatal(err)
					}
					out[id] = p
				}
				if err := rows.Err(); err != nil {
					t.Fatal(err)
				}
				return out
			}
			want := map[string]string{"ga": "/root/a/", "gb": "/root/b/", "gnone": ""}
			if got := paths("groups"); !maps.Equal(got, want) {
				t.Fatalf("groups' org paths after the migration: %v, want %v", got, want)
			}
			want = map[string]string{"la": "/root/a/", "lb": "/root/b/"}
			if got := paths("account_links"); !maps.Equal(got, want) {
				t.Fatalf("links' org paths after the migration: %v, want %v", got, want)
			}
			gs, _, err := s.ListGroups(ctx, identity.GroupFilter{Within: []string{a.ID}}, identity.Page{})
			if err != nil || len(gs) != 1 || gs[0].ID != "ga" {
				t.Fatalf("groups within a: %v %v", gs, err)
			}
			ls, _, err := s.ListLinks(ctx, identity.LinkFilter{Within: []string{root.ID}}, identity.Page{})
			if err != nil || len(ls) != 2 {
				t.Fatalf("links within root: %v %v", ls, err)
			}
		})
	}
}
