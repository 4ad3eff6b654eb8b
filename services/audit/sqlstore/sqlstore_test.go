package sqlstore_test

import (
	"context"
	"testing"

	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// conformance runs the store's conformance suite on the databases open gives.
func conformance(t *testing.T, open pstoretest.Opener) {
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		db := pstoretest.Migrated(t, open(t), sqlstore.Migrate)
		return storetest.Subject{
			Store: sqlstore.New(db),
			Exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(context.Background(), db.Rebind(q), args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
		}
	})
}

func TestSQLite(t *testing.T)   { conformance(t, pstoretest.OpenSQLite) }
func TestPostgres(t *testing.T) { conformance(t, pstoretest.Postgres(t)) }

func TestMigrateIsIdempotent(t *testing.T) { pstoretest.MigrateTwice(t, sqlstore.Migrate) }
