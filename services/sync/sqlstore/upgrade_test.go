package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/sqlstore"
)

// Conflicts recorded before migration 0003 named no object: 0003 and 0004 name
// identity's and authz's objects by kind and id (not a group's: those were
// memberships), and resolves those whose object had a later change applied
// since; the rest are open (review sec16 M3, sec17).
func TestConflictsRecordedBeforeTheUpgrade(t *testing.T) {
	for name, open := range map[string]storetest.Opener{"sqlite": storetest.OpenSQLite, "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			// the schema as it was (0001, 0002)
			old := fstest.MapFS{}
			for _, f := range []string{"0001_sync.sql", "0002_duplicates.sql"} {
				b, err := os.ReadFile(filepath.Join("migrations", db.Dialect.String(), f))
				if err != nil {
					t.Fatal(err)
				}
				old[f] = &fstest.MapFile{Data: b}
			}
			if err := store.Migrate(ctx, db, sqlstore.Component, old); err != nil {
				t.Fatal(err)
			}
			exec := func(q string, args ...any) {
				t.Helper()
				if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
					t.Fatal(err)
				}
			}
			skip := func(ev, kind, id string, version int) {
				exec(`INSERT INTO sync_skipped (event_id, origin, kind, object_id, version, applied_version, reason, at_ms)
					VALUES (?, 'l2a', ?, ?, ?, 0, 'CONFLICT', 1000)`, ev, kind, id, version)
			}
			skip("e1", "identity.user", "u1", 5)  // applied later: resolved
			skip("e2", "identity.user", "u2", 6)  // open
			skip("e3", "identity.group", "g1", 7) // a membership: open, no object
			skip("e4", "authz.grant", "gr1", 8)   // open
			exec(`INSERT INTO sync_objects (kind, id, home, version, event_id, op, deleted, data, updated_ms)
				VALUES ('identity.user', 'u1', 'l2a', 9, 'e9', 'created', 0, '{}', 2000)`)
			exec(`INSERT INTO sync_objects (kind, id, home, version, event_id, op, deleted, data, updated_ms)
				VALUES ('identity.group', 'g1', 'l2a', 10, 'e10', 'updated', 0, '{}', 2000)`)
			if err := sqlstore.Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			st := sqlstore.New(db)
			sk, _, err := st.ListSkipped(ctx, usync.SkippedFilter{}, 10, "")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, k := range sk {
				state := "open"
				if !k.Resolved.IsZero() {
					state = k.ResolvedBy
				}
				got[k.EventID] = k.Object + " " + state
			}
			want := map[string]string{"e1": "user:u1 upgrade", "e2": "user:u2 open", "e3": " open", "e4": "grant:gr1 open"}
			for ev, w := range want {
				if got[ev] != w {
					t.Fatalf("after the upgrade: %v, want %v", got, want)
				}
			}
			if n, err := st.OpenConflicts(ctx); err != nil || n["l2a"] != 3 {
				t.Fatalf("open conflicts after the upgrade: %v %v", n, err)
			}
		})
	}
}
