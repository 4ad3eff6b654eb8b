package sqlstore

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store/storetest"
)

// appSecretColumns are the columns migration 0051 adds to apps.
var appSecretColumns = []string{"secret_lifetime_s", "secret_issued_at", "secret_expires"}

// An application registered before secret validity periods keeps a secret
// that does not expire, issued (as far as anyone can tell) at the upgrade.
func TestAppSecretMigration(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := migrateBefore(ctx, db, 51); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO apps (id, app_type, app_code, name, status, secret_hash,
				created_at, updated_at) VALUES ('old', 'oa', 'old', 'Old', 1, 'h', 1000, 2000)`)); err != nil {
				t.Fatal(err)
			}
			before := time.Now().Truncate(time.Second)
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			a, err := New(db).GetApp(ctx, "old")
			if err != nil {
				t.Fatal(err)
			}
			if !a.SecretExpires.IsZero() || a.SecretLifetime != 0 {
				t.Fatalf("an existing secret: expires %v, lifetime %v; want none", a.SecretExpires, a.SecretLifetime)
			}
			if a.SecretIssuedAt.Before(before) || a.SecretIssuedAt.After(time.Now().Add(time.Second)) {
				t.Fatalf("an existing secret counts as issued at %v, want the upgrade (%v)", a.SecretIssuedAt, before)
			}
		})
	}
}
