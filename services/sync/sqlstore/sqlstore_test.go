package sqlstore_test

import (
	"testing"

	"github.com/uias/uias/pkg/store/storetest"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/sqlstore"
	sstoretest "github.com/uias/uias/services/sync/storetest"
)

// conformance runs the store's conformance suite on the databases open gives.
func conformance(t *testing.T, open storetest.Opener) {
	sstoretest.Run(t, func(t *testing.T) usync.Store {
		return sqlstore.New(storetest.Migrated(t, open(t), sqlstore.Migrate))
	})
}

func TestSQLite(t *testing.T)   { conformance(t, storetest.OpenSQLite) }
func TestPostgres(t *testing.T) { conformance(t, storetest.Postgres(t)) }

func TestMigrateIsIdempotent(t *testing.T) { storetest.MigrateTwice(t, sqlstore.Migrate) }
