package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/giveway"
	"github.com/uias/uias/pkg/store/storetest"
)

// TestRelayGivesWayToWaitingLogins: while a login waits for a hash worker
// the relay publishes nothing (the rows wait in the outbox); when the
// waiter has its worker the relay publishes them all at once.
func TestRelayGivesWayToWaitingLogins(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	migrate(t, db)
	_, js := connect(t, startNATS(t, t.TempDir(), -1))
	sig := giveway.New(time.Hour)
	sig.Add(1) // a login waits
	r := events.NewRelay(db, js, nil, events.RelayOptions{GiveWay: sig, PollInterval: 10 * time.Millisecond, Linger: -1})
	evs := makeEvents("storm", 5)
	addEvents(t, db, evs, false)
	runRelay(t, r)
	r.Kick()
	time.Sleep(200 * time.Millisecond) // twenty polls' worth
	if n, err := r.Pending(ctx); err != nil || n != len(evs) {
		t.Fatalf("Pending = %d, %v while a login waits, want %d", n, err, len(evs))
	}
	sig.Add(-1)
	eventually(t, "outbox to drain after the wait", func() bool {
		n, err := r.Pending(ctx)
		return err == nil && n == 0
	})
	checkStream(t, js, events.StreamChanges, evs)
}

// TestRelayGiveWayIsBounded: a storm that never ends delays the relay by
// at most the signal's MaxPause a round; nothing is lost.
func TestRelayGiveWayIsBounded(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	migrate(t, db)
	_, js := connect(t, startNATS(t, t.TempDir(), -1))
	sig := giveway.New(20 * time.Millisecond)
	sig.Add(1) // and never leaves
	r := events.NewRelay(db, js, nil, events.RelayOptions{GiveWay: sig, BatchSize: 3, PollInterval: 10 * time.Millisecond, Linger: -1})
	runRelay(t, r)
	var all []events.Event
	for i := range 4 {
		evs := makeEvents("endless", 5)
		all = append(all, evs...)
		addEvents(t, db, evs, false)
		r.Kick()
		if i == 1 {
			eventually(t, "the first rows out", func() bool {
				n, err := r.Pending(ctx)
				return err == nil && n <= 10
			})
		}
	}
	eventually(t, "outbox to drain during the storm", func() bool {
		n, err := r.Pending(ctx)
		return err == nil && n == 0
	})
	checkStream(t, js, events.StreamChanges, all)
}
