package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/store/storetest"
)

// TestRelayPublishesItsOwnSubjects: components sharing one database (one
// PostgreSQL outbox table) each relay their own events only: a relay with
// Subjects leaves the others' rows to their relays (a component's NATS
// user may publish only its own subjects; review sec20 L6).
func TestRelayPublishesItsOwnSubjects(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	migrate(t, db)
	_, js := connect(t, startNATS(t, t.TempDir(), -1))
	mine, theirs := makeEvents("sync", 2), makeEvents("identity", 3)
	for i := range mine {
		mine[i].Subject = "uias.audit.sync.sync.skipped.resolve"
	}
	addEvents(t, db, append(append([]events.Event{}, theirs...), mine...), false)
	opts := events.RelayOptions{PollInterval: 20 * time.Millisecond, Subjects: module.OwnSubjects("sync")}
	r := events.NewRelay(db, js, nil, opts)
	if n, err := r.Pending(ctx); err != nil || n != len(mine) {
		t.Fatalf("Pending = %d, %v; want the sync relay's %d", n, err, len(mine))
	}
	runRelay(t, r)
	left := func() int {
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM events_outbox").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// published, then deleted once acknowledged: identity's rows stay
	eventually(t, "the sync relay to publish its rows", func() bool {
		return streamMsgs(t, js, events.StreamAudit) == uint64(len(mine)) && left() == len(theirs)
	})
	time.Sleep(100 * time.Millisecond) // a few more of its polls
	if n := left(); n != len(theirs) {
		t.Fatalf("rows left %d; want identity's %d", n, len(theirs))
	}
	if n := streamMsgs(t, js, events.StreamChanges); n != 0 {
		t.Fatalf("the sync relay published %d of identity's changes", n)
	}
	// identity's relay publishes them
	runRelay(t, events.NewRelay(db, js, nil, events.RelayOptions{PollInterval: 20 * time.Millisecond, Subjects: module.OwnSubjects("identity")}))
	eventually(t, "identity's relay to publish its rows", func() bool { return streamMsgs(t, js, events.StreamChanges) == uint64(len(theirs)) })
}

// TestRelaysOfComponentsDoNotWaitForEachOther: on PostgreSQL the relays of
// two components take advisory locks of their own: while one holds its
// lock (stuck on failing publishes) the other publishes (review sec21
// M1).
func TestRelaysOfComponentsDoNotWaitForEachOther(t *testing.T) {
	db := storetest.Postgres(t)(t)
	ctx := context.Background()
	migrate(t, db)
	_, js := connect(t, startNATS(t, t.TempDir(), -1))
	mine := makeEvents("sync", 2)
	for i := range mine {
		mine[i].Subject = "uias.audit.sync.sync.skipped.resolve"
	}
	addEvents(t, db, mine, false)
	// identity's relay holds its lock
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, events.LockKeyOf(module.OwnSubjects("identity"))); err != nil {
		t.Fatal(err)
	}
	runRelay(t, events.NewRelay(db, js, nil, events.RelayOptions{PollInterval: 20 * time.Millisecond, Subjects: module.OwnSubjects("sync")}))
	eventually(t, "the sync relay to publish while identity's holds its lock", func() bool {
		return streamMsgs(t, js, events.StreamAudit) == uint64(len(mine))
	})
}
