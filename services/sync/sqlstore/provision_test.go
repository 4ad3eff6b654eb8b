package sqlstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/sqlstore"
	sstoretest "github.com/uias/uias/services/sync/storetest"
)

func openProvision(t *testing.T, db *store.DB) (provision.Store, func(string) string) {
	t.Helper()
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	box, err := ring.PurposeSealer("sync provisioning secrets")
	if err != nil {
		t.Fatal(err)
	}
	raw := func(id string) string {
		var s string
		if err := db.QueryRowContext(context.Background(), db.Rebind("SELECT secret_sealed FROM prov_subscriptions WHERE id = ?"), id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	return sqlstore.NewProvision(db, box), raw
}

func TestProvisionSQLite(t *testing.T) {
	sstoretest.RunProvision(t, func(t *testing.T) (provision.Store, func(string) string) {
		return openProvision(t, storetest.OpenSQLite(t))
	})
}

func TestProvisionPostgres(t *testing.T) {
	dsn := os.Getenv(storetest.EnvPGDSN)
	if dsn == "" {
		t.Skip(storetest.EnvPGDSN + " not set")
	}
	sstoretest.RunProvision(t, func(t *testing.T) (provision.Store, func(string) string) {
		return openProvision(t, storetest.OpenPG(t, dsn))
	})
}
