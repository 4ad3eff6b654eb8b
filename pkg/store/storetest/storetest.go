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
	defer func() { _ = admin.Close() }()
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
		defer func() { _ = a.Close() }()
		if _, err := a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Logf("drop test schema %s: %v", schema, err)
		}
	})
	db, err := store.Open(ctx, "postgres", store.WithSearchPath(dsn, schema))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	return db
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

// Opener opens a fresh database for one test: OpenSQLite, or Postgres(t).
type Opener func(tb testing.TB) *store.DB

// Postgres is the Opener of OpenPG on UIAS_TEST_PG_DSN; without it, t is
// skipped (a store's PostgreSQL conformance run: scripts/test.sh starts a
// throwaway server and sets the variable).
func Postgres(t *testing.T) Opener {
	t.Helper()
	dsn := os.Getenv(EnvPGDSN)
	if dsn == "" {
		t.Skip(EnvPGDSN + " not set")
	}
	return func(tb testing.TB) *store.DB { return OpenPG(tb, dsn) }
}

// Migrate is a store package's migration function.
type Migrate func(context.Context, *store.DB) error

// Migrated runs migrate on db, failing tb when it fails, and returns db.
func Migrated(tb testing.TB, db *store.DB, migrate Migrate) *store.DB {
	tb.Helper()
	if err := migrate(context.Background(), db); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return db
}

// MigrateTwice checks that migrate can run again on a migrated database
// (a restart runs it at every start).
func MigrateTwice(t *testing.T, migrate Migrate) {
	t.Helper()
	db := OpenSQLite(t)
	for range 2 {
		if err := migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
}

// Count returns the number of rows of table (a name from the test, never
// from input), failing tb when it cannot be read.
func Count(tb testing.TB, db *store.DB, table string) int {
	tb.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}
