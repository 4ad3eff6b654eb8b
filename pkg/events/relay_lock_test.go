package events_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store/storetest"
)

// TestRelayQuietWhileAnotherHoldsTheLock: after a failed publish, a relay
// whose PostgreSQL outbox lock is held by another replica's relay neither
// claims "publishing recovered" (it published nothing) nor fails; once the
// lock is free and NATS is back it drains and recovers.
func TestRelayQuietWhileAnotherHoldsTheLock(t *testing.T) {
	db := storetest.Postgres(t)(t)
	ctx := context.Background()
	migrate(t, db)
	storeDir := t.TempDir()
	s := startNATS(t, storeDir, -1)
	nc, js := connect(t, s)
	core, logs := observer.New(zapcore.DebugLevel)
	r := events.NewRelay(db, js, zap.New(core), events.RelayOptions{
		PublishTimeout: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
	})
	runRelay(t, r)

	// A failure first: NATS is down.
	s.Shutdown()
	s.WaitForShutdown()
	eventually(t, "the client to notice the outage", func() bool { return !nc.IsConnected() })
	evs := makeEvents("locked", 3)
	addEvents(t, db, evs, false)
	r.Kick()
	eventually(t, "a failed publish", func() bool {
		return logs.FilterMessage("outbox relay: publishing failed; events stay in the outbox and will be retried").Len() > 0
	})

	// Another replica's relay takes the lock.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, events.RelayLockKey); err != nil {
		t.Fatal(err)
	}
	held := logs.FilterMessage("outbox relay: another relay holds the outbox lock").Len()
	eventually(t, "the relay to find the lock held three times", func() bool {
		return logs.FilterMessage("outbox relay: another relay holds the outbox lock").Len() >= held+3
	})
	if n := logs.FilterMessage("outbox relay: publishing recovered").Len(); n != 0 {
		t.Fatalf("\"publishing recovered\" logged %d times while another relay held the lock and NATS was down", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Pending(ctx); err != nil || n != len(evs) {
		t.Fatalf("Pending = %d, %v; want %d", n, err, len(evs))
	}
}
