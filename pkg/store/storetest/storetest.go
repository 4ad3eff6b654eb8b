// Package storetest provides databases for tests: SQLite in a temporary directory, and
// PostgreSQL (when UIAS_TEST_PG_DSN is set) in a throwaway schema.
package storetest

import (
	"os"
	"path/filepath"

	"context"
	"crypto/rand"
	"encoding/hex"
	"github.com/uias/uias/pkg/store"
	"net/url"
	"strings"
	"testing"
)

// OpenPG opens the PostgreSQL database dsn (e.g. from UIAS_TEST_PG_DSN) inside a fresh
// schema that is dropped when the test ends, so tests of different packages and runs do not
// see each other's tables. Only for tests.
func OpenPG(tb testing.TB, dsn string) *store.DB {
	tb.Helper()
	ctx := context.Background()
	admin, err := store.Open(ctx, "postgres", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create test schema: %v", err)
	}
	tb.Cleanup(func() {
		a, err := store.Open(context.Background(), "postgres", dsn)
		if err != nil {
			tb.Logf("drop test schema %s: %v", schema, err)
			return
		}
		defer a.Close()
		if _, err := a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Logf("drop test schema %s: %v", schema, err)
		}
	})
	db, err := store.Open(ctx, "postgres", withSearchPath(dsn, schema))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// EnvPGDSN is the environment variable holding the PostgreSQL test DSN.
const EnvPGDSN = "UIAS_TEST_PG_DSN"

// OpenSQLite opens a SQLite database in tb.TempDir(), closed when the test ends.
func OpenSQLite(tb testing.TB) *store.DB {
	tb.Helper()
	db, err := store.Open(context.Background(), "sqlite", filepath.Join(tb.TempDir(), "db", "test.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
}

// DBs returns the databases to run a test against, keyed "sqlite" and (when
// UIAS_TEST_PG_DSN is set) "postgres".
func DBs(tb testing.TB) map[string]*store.DB {
	tb.Helper()
	out := map[string]*store.DB{"sqlite": OpenSQLite(tb)}
	if dsn := os.Getenv(EnvPGDSN); dsn != "" {
		out["postgres"] = OpenPG(tb, dsn)
	}
	return out
}
