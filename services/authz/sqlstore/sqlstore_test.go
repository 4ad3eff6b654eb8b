package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/sqlstore"
	astoretest "github.com/uias/uias/services/authz/storetest"
)

func subject(t *testing.T, db *store.DB) astoretest.Subject {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return astoretest.Subject{
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
	astoretest.Run(t, func(t *testing.T) astoretest.Subject { return subject(t, storetest.OpenSQLite(t)) })
}

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(storetest.EnvPGDSN)
	if dsn == "" {
		t.Skip(storetest.EnvPGDSN + " not set")
	}
	astoretest.Run(t, func(t *testing.T) astoretest.Subject { return subject(t, storetest.OpenPG(t, dsn)) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	db := storetest.OpenSQLite(t)
	for range 2 {
		if err := sqlstore.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
}

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
