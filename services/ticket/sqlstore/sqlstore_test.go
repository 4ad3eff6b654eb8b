package sqlstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/ticket/sqlstore"
	"github.com/uias/uias/services/ticket/storetest"
)

func subject(t *testing.T, db *store.DB) storetest.Subject {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	st := sqlstore.New(db)
	return storetest.Subject{Store: st, Credentials: st, CountOutbox: func(t *testing.T) int {
		var n int
		if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM events_outbox").Scan(&n); err != nil {
			t.Fatalf("count outbox: %v", err)
		}
		return n
	}}
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
