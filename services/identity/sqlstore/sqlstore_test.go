package sqlstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
	istoretest "github.com/uias/uias/services/identity/storetest"
)

// conformance runs the store's conformance suite on the databases open gives.
func conformance(t *testing.T, open storetest.Opener) {
	istoretest.RunWithOutbox(t, func(t *testing.T) istoretest.Subject {
		db := storetest.Migrated(t, open(t), sqlstore.Migrate)
		return istoretest.Subject{Store: sqlstore.New(db),
			CountOutbox: func(t *testing.T) int { return storetest.Count(t, db, "events_outbox") }}
	})
}

func TestSQLite(t *testing.T)   { conformance(t, storetest.OpenSQLite) }
func TestPostgres(t *testing.T) { conformance(t, storetest.Postgres(t)) }

func TestMigrateIsIdempotent(t *testing.T) { storetest.MigrateTwice(t, sqlstore.Migrate) }

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
