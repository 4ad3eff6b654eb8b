package sqlstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/sqlstore"
)

// TestResolutionRecordedWithIt: a resolution by hand keeps its audit
// record in sync's events outbox in the same transaction (a refusal's
// too), so it is relayed whether or not the centre has links and NATS
// answers just then (review sec17 N8).
func TestResolutionRecordedWithIt(t *testing.T) {
	for name, open := range map[string]storetest.Opener{"sqlite": storetest.OpenSQLite, "postgres": storetest.Postgres(t)} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Migrated(t, open(t), sqlstore.Migrate)
			st := sqlstore.New(db)
			now := time.UnixMilli(1_700_000_000_000).UTC()
			c := &usync.Change{EventID: "e1", Origin: "l2a", Kind: "identity.user", Op: "created", ObjectID: "u1", Version: 1,
				Data: json.RawMessage(`{}`), Objects: []usync.ObjectOutcome{{Key: "user:u1", Outcome: usync.Conflict}}}
			if _, err := st.Apply(ctx, "l2a", []usync.Item{{Seq: 1, Change: c}}, now); err != nil {
				t.Fatal(err)
			}
			outbox := func() []string {
				rows, err := db.QueryContext(ctx, "SELECT id FROM events_outbox ORDER BY seq")
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var ids []string
				for rows.Next() {
					var id string
					if err := rows.Scan(&id); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, id)
				}
				return ids
			}
			record := func(id string) usync.ResolveRecord {
				return func(int64, error) events.Event {
					return events.Event{ID: id, Subject: "uias.audit.sync", Type: "audit.sync.skipped.resolve", Time: now, Payload: []byte(`{}`)}
				}
			}
			if n, err := st.ResolveConflicts(ctx, "e1", "", "admin:a1", now, record("r1")); err != nil || n != 1 {
				t.Fatalf("resolve: %d %v", n, err)
			}
			if _, err := st.ResolveConflicts(ctx, "e1", "", "admin:a1", now, record("r2")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("resolve again: %v", err)
			}
			if got := outbox(); len(got) != 2 || got[0] != "r1" || got[1] != "r2" {
				t.Fatalf("records kept %v, want [r1 r2]", got)
			}
			// a record that cannot be kept undoes the resolution
			bad := func(int64, error) events.Event { return events.Event{} }
			c2 := *c
			c2.EventID, c2.ObjectID, c2.Objects = "e2", "u2", []usync.ObjectOutcome{{Key: "user:u2", Outcome: usync.Conflict}}
			if _, err := st.Apply(ctx, "l2a", []usync.Item{{Seq: 2, Change: &c2}}, now); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ResolveConflicts(ctx, "e2", "", "admin:a1", now, bad); err == nil {
				t.Fatal("a resolution whose record was not kept")
			}
			if o, err := st.OpenConflicts(ctx); err != nil || o["l2a"] != 1 {
				t.Fatalf("open conflicts after a resolution not recorded: %v %v", o, err)
			}
		})
	}
}
