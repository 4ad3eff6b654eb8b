package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
	istoretest "github.com/uias/uias/services/identity/storetest"
)

func subject(t *testing.T, db *store.DB) istoretest.Subject {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return istoretest.Subject{
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
	istoretest.RunWithOutbox(t, func(t *testing.T) istoretest.Subject { return subject(t, storetest.OpenSQLite(t)) })
}

func TestPostgres(t *testing.T) {
	dsn := os.Getenv(storetest.EnvPGDSN)
	if dsn == "" {
		t.Skip(storetest.EnvPGDSN + " not set")
	}
	istoretest.RunWithOutbox(t, func(t *testing.T) istoretest.Subject { return subject(t, storetest.OpenPG(t, dsn)) })
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
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			if err := sqlstore.Migrate(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			s := sqlstore.New(db)
			_ = db.Close()
			ctx := context.Background()
			check := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, identity.ErrUnavailable) {
					t.Errorf("%s: error = %v, want ErrUnavailable", what, err)
				}
			}
			check("Ping", s.Ping(ctx))
			_, err := s.GetUser(ctx, "u")
			check("GetUser", err)
			_, _, err = s.ListOrgs(ctx, identity.OrgFilter{}, identity.Page{})
			check("ListOrgs", err)
			check("CreateOrg", s.CreateOrg(ctx, &identity.Org{ID: "o", Code: "o", Name: "o", Status: identity.StatusActive}, nil))
			check("UpdateLoginGate", s.UpdateLoginGate(ctx, "u", "s", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
				return identity.LoginGateWrite{}, true
			}))
			check("TouchAdminToken", s.TouchAdminToken(ctx, "h", time.Now()))
			_, err = s.CountOrgs(ctx)
			check("CountOrgs", err)
			check("DeleteExpiredAdminTokens", s.DeleteExpiredAdminTokens(ctx, time.Now()))
		})
	}
}
