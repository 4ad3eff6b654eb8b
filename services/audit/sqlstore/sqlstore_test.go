package sqlstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

func subject(t *testing.T, db *store.DB) storetest.Subject {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return storetest.Subject{
		Store: sqlstore.New(db),
		Exec: func(t *testing.T, q string, args ...any) {
			t.Helper()
			if _, err := db.ExecContext(context.Background(), db.Rebind(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
	}
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Subject { return subject(t, pstoretest.OpenSQLite(t)) })
}

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(pstoretest.EnvPGDSN)
	if dsn == "" {
		t.Skip(pstoretest.EnvPGDSN + " not set")
	}
	storetest.Run(t, func(t *testing.T) storetest.Subject { return subject(t, pstoretest.OpenPG(t, dsn)) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := pstoretest.OpenSQLite(t)
	for range 2 {
		if err := sqlstore.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
}
