package sqlstore_test

import (
	"testing"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/ticket/sqlstore"
	"github.com/uias/uias/services/ticket/storetest"
)

// conformance runs the store's conformance suite on the databases open gives.
func conformance(t *testing.T, open pstoretest.Opener) {
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		db := pstoretest.Migrated(t, open(t), sqlstore.Migrate)
		st := sqlstore.New(db)
		return storetest.Subject{Store: st, Credentials: st, Consents: st,
			CountOutbox: func(t *testing.T) int { return pstoretest.Count(t, db, "events_outbox") }}
	})
}

func TestSQLite(t *testing.T)   { conformance(t, pstoretest.OpenSQLite) }
func TestPostgres(t *testing.T) { conformance(t, pstoretest.Postgres(t)) }

func TestMigrateIsIdempotent(t *testing.T) { pstoretest.MigrateTwice(t, sqlstore.Migrate) }
