package sqlstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/sqlstore"
	sstoretest "github.com/uias/uias/services/sync/storetest"
)

func open(t *testing.T, db *store.DB) usync.Store {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return sqlstore.New(db)
}

func TestSQLite(t *testing.T) {
	sstoretest.Run(t, func(t *testing.T) usync.Store { return open(t, storetest.OpenSQLite(t)) })
}

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(storetest.EnvPGDSN)
	if dsn == "" {
		t.Skip(storetest.EnvPGDSN + " not set")
	}
	sstoretest.Run(t, func(t *testing.T) usync.Store { return open(t, storetest.OpenPG(t, dsn)) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := storetest.OpenSQLite(t)
	for range 2 {
		if err := sqlstore.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
}
