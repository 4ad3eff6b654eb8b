package sqlstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/sqlstore"
	astoretest "github.com/uias/uias/services/authz/storetest"
)

// conformance runs the store's conformance suite on the databases open gives.
func conformance(t *testing.T, open storetest.Opener) {
	astoretest.Run(t, func(t *testing.T) astoretest.Subject {
		db := storetest.Migrated(t, open(t), sqlstore.Migrate)
		return astoretest.Subject{Store: sqlstore.New(db),
			CountOutbox: func(t *testing.T) int { return storetest.Count(t, db, "events_outbox") }}
	})
}

func TestSQLite(t *testing.T)   { conformance(t, storetest.OpenSQLite) }
func TestPostgres(t *testing.T) { conformance(t, storetest.Postgres(t)) }

func TestMigrateIsIdempotent(t *testing.T) { storetest.MigrateTwice(t, sqlstore.Migrate) }

func TestClosedDBIsUnavailable(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	s := sqlstore.New(db)
	_ = db.Close()
	ctx := context.Background()
	_, err := s.Revision(ctx)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Revision: %v", err)
	}
	_, err = s.Write(ctx, 0, authz.Change{Obj: authz.ObjRole, Op: authz.OpPut, ID: "r", Data: []byte(`{}`)}, nil)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Write: %v", err)
	}
}
