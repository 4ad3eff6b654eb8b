package events_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
)

// TestAddAllToOutbox: a batch of events (more than one INSERT's worth)
// lands in the outbox in its order, with its fields, on both databases;
// an invalid event writes none of them; a duplicate id is a unique
// violation.
func TestAddAllToOutbox(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			migrate(t, db)
			ctx := context.Background()
			evs := makeEvents("all", 230)
			evs[5].Payload = nil
			err := db.InTx(ctx, func(tx *sql.Tx) error {
				return events.AddAllToOutbox(ctx, store.NewTxStmts(tx), db, evs)
			})
			if err != nil {
				t.Fatal(err)
			}
			rows, err := db.QueryContext(ctx, "SELECT id, subject, type, payload FROM events_outbox ORDER BY seq")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var ids []string
			for rows.Next() {
				var id, subject, typ string
				var payload []byte
				if err := rows.Scan(&id, &subject, &typ, &payload); err != nil {
					t.Fatal(err)
				}
				ev := evs[len(ids)]
				if subject != ev.Subject || typ != ev.Type || string(payload) != string(ev.Payload) && !(ev.Payload == nil && len(payload) == 0) {
					t.Fatalf("row %d = %s %s %q, want %+v", len(ids), subject, typ, payload, ev)
				}
				ids = append(ids, id)
			}
			want := make([]string, len(evs))
			for i, ev := range evs {
				want[i] = ev.ID
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("outbox holds %d events out of order or missing (want %d)", len(ids), len(want))
			}

			bad := makeEvents("bad", 3)
			bad[2].Subject = "has space"
			if err := db.InTx(ctx, func(tx *sql.Tx) error { return events.AddAllToOutbox(ctx, tx, db, bad) }); err == nil {
				t.Fatal("an invalid event was accepted")
			}
			err = db.InTx(ctx, func(tx *sql.Tx) error {
				return events.AddAllToOutbox(ctx, tx, db, append(makeEvents("new", 2), evs[3]))
			})
			if !store.IsUniqueViolation(err) {
				t.Fatalf("duplicate id: IsUniqueViolation(%v) = false", err)
			}
			var n int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox").Scan(&n); err != nil || n != len(evs) {
				t.Fatalf("outbox holds %d events after the refused batches, want %d (%v)", n, len(evs), err)
			}
		})
	}
}
