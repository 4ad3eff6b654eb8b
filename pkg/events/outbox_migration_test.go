package events_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
)

// A component's migrations get the outbox from this package: a placeholder
// file keeps its version and is replaced, or the migration is added.
func TestWithOutboxMigration(t *testing.T) {
	own := func(table string) fstest.MapFS {
		return fstest.MapFS{
			"0001_things.sql": {Data: []byte("CREATE TABLE " + table + " (id TEXT PRIMARY KEY);")},
			"0003_more.sql":   {Data: []byte("ALTER TABLE " + table + " ADD COLUMN n INTEGER NOT NULL DEFAULT 0;")},
			"README.md":       {Data: []byte("not a migration")},
			"sub/0009_x.sql":  {Data: []byte("not read: below the root")},
		}
	}
	placeholder := own("things_p")
	placeholder["0002_events_outbox.sql"] = &fstest.MapFile{Data: []byte("-- placeholder")}
	for name, db := range storetest.DBs(t) {
		for variant, fsys := range map[string]fstest.MapFS{"placeholder": placeholder, "added": own("things_a")} {
			t.Run(name+"/"+variant, func(t *testing.T) {
				ctx := context.Background()
				comp := "comp_" + variant
				migs, err := events.WithOutboxMigration(fsys, db.Dialect, "0002_events_outbox.sql")
				if err != nil {
					t.Fatal(err)
				}
				loaded, err := store.LoadMigrations(migs)
				if err != nil {
					t.Fatal(err)
				}
				if len(loaded) != 3 || loaded[1].Name != "0002_events_outbox.sql" || loaded[1].SQL != events.OutboxMigrationSQL(db.Dialect) {
					t.Fatalf("migrations %+v", loaded)
				}
				for range 2 { // idempotent, and both variants share one database
					if err := store.Migrate(ctx, db, comp, migs); err != nil {
						t.Fatal(err)
					}
				}
				if err := db.InTx(ctx, func(tx *sql.Tx) error {
					return events.AddToOutbox(ctx, tx, db, events.Event{ID: events.NewID(), Subject: "uias.changes.comp.x", Type: "x"})
				}); err != nil {
					t.Fatalf("the migrated outbox refuses an event: %v", err)
				}
			})
		}
	}
	for _, bad := range []string{"", "0002_outbox.txt", "dir/0002_outbox.sql"} {
		if _, err := events.WithOutboxMigration(placeholder, store.SQLite, bad); err == nil {
			t.Errorf("file name %q accepted", bad)
		}
	}
}

// MigrateWithOutbox migrates a component's migrations/<dialect> folder
// with the outbox: what the services' Migrate functions do.
func TestMigrateWithOutbox(t *testing.T) {
	fsys := fstest.MapFS{}
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		dir := "migrations/" + d.String() + "/"
		fsys[dir+"0001_things.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE things_m (id TEXT PRIMARY KEY);")}
		fsys[dir+"0002_events_outbox.sql"] = &fstest.MapFile{Data: []byte("-- placeholder")}
	}
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for range 2 { // idempotent
				if err := events.MigrateWithOutbox(ctx, db, "comp_m", fsys, "0002_events_outbox.sql"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.ExecContext(ctx, db.Rebind("INSERT INTO things_m (id) VALUES (?)"), "a"); err != nil {
				t.Fatalf("the component's own migration: %v", err)
			}
			if err := db.InTx(ctx, func(tx *sql.Tx) error {
				return events.AddToOutbox(ctx, tx, db, events.Event{ID: events.NewID(), Subject: "uias.changes.comp.x", Type: "x"})
			}); err != nil {
				t.Fatalf("the migrated outbox refuses an event: %v", err)
			}
			// The caller names the component (module.Env.MigratedSQL):
			// not again here.
			if err := events.MigrateWithOutbox(ctx, db, "comp_none", fstest.MapFS{}, "0002_events_outbox.sql"); err == nil {
				t.Error("no migrations folder: accepted")
			} else if strings.Contains(err.Error(), "comp_none migrations") {
				t.Errorf("the error names the component: %v", err)
			}
		})
	}
}
