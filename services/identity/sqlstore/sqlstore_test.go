package sqlstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
	"github.com/uias/uias/services/identity/storetest"
)

const envPGDSN = "UIAS_TEST_PG_DSN"

func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// openPG opens dsn inside a fresh schema dropped at the end of the test.
func openPG(t *testing.T, dsn string) *store.DB {
	t.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, "postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		a, err := store.Open(context.Background(), "postgres", dsn)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Fatalf("%s must be a postgres:// URL", envPGDSN)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := store.Open(ctx, "postgres", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func subject(t *testing.T, db *store.DB) storetest.Subject {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return storetest.Subject{
		Store: sqlstore.New(db),
		CountOutbox: func(t *testing.T) int {
			t.Helper()
			var n int
			if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM events_outbox").Scan(&n); err != nil {
				t.Fatalf("count outbox: %v", err)
			}
			return n
		},
	}
}

func TestSQLite(t *testing.T) {
	storetest.RunWithOutbox(t, func(t *testing.T) storetest.Subject { return subject(t, openSQLite(t)) })
}

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(envPGDSN)
	if dsn == "" {
		t.Skip(envPGDSN + " not set")
	}
	storetest.RunWithOutbox(t, func(t *testing.T) storetest.Subject { return subject(t, openPG(t, dsn)) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := openSQLite(t)
	for range 2 {
		if err := sqlstore.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClosedDBIsUnavailable(t *testing.T) {
	dbs := map[string]func(t *testing.T) *store.DB{"sqlite": openSQLite}
	if dsn := os.Getenv(envPGDSN); dsn != "" {
		dbs["postgres"] = func(t *testing.T) *store.DB { return openPG(t, dsn) }
	}
	for name, open := range dbs {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			if err := sqlstore.Migrate(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			s := sqlstore.New(db)
			_ = db.Close()
			ctx := context.Background()
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, identity.ErrUnavailable) {
					t.Errorf("%s: error = %v, want ErrUnavailable", what, err)
				}
			}
			check("Ping", s.Ping(ctx))
			_, err := s.GetUser(ctx, "u")
			check("GetUser", err)
			_, _, err = s.ListOrgs(ctx, identity.OrgFilter{}, identity.Page{})
			check("ListOrgs", err)
			check("CreateOrg", s.CreateOrg(ctx, &identity.Org{ID: "o", Code: "o", Name: "o", Status: identity.StatusActive}, nil))
			_, err = s.RecordLoginFailure(ctx, "u", 3, time.Now(), time.Now(), nil, nil)
			check("RecordLoginFailure", err)
			_, err = s.CountOrgs(ctx)
			check("CountOrgs", err)
			check("DeleteExpiredAdminTokens", s.DeleteExpiredAdminTokens(ctx, time.Now()))
		})
	}
}
