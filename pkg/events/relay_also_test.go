package events_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
)

// A relay drains its further outboxes (RelayOptions.Also) too: every event
// of both is published once, both are emptied, and Pending counts both.
func TestRelayDrainsAlso(t *testing.T) {
	ctx := context.Background()
	main, side := storetest.OpenSQLite(t), storetest.OpenSQLite(t)
	migrate(t, main)
	migrate(t, side)
	s := startNATS(t, t.TempDir(), -1)
	_, js := connect(t, s)
	r := events.NewRelay(main, js, zap.NewNop(), events.RelayOptions{BatchSize: 2, Also: []*store.DB{side, nil}})

	fromMain, fromSide := makeEvents("main", 3), makeEvents("side", 5)
	addEvents(t, main, fromMain, false)
	addEvents(t, side, fromSide, false)
	if n, err := r.Pending(ctx); err != nil || n != 8 {
		t.Fatalf("Pending = %d, %v; want 8 (both outboxes)", n, err)
	}
	if n, err := r.Flush(ctx); err != nil || n != 8 {
		t.Fatalf("Flush = %d, %v; want 8", n, err)
	}
	if n, err := r.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("Pending after Flush = %d, %v; want 0", n, err)
	}
	// The main outbox first, each in its order.
	checkStream(t, js, events.StreamChanges, append(fromMain, fromSide...))
}

// An outbox whose event cannot be published (no stream takes its
// subject) does not hold up the others: Flush drains them and reports
// the failure; the failed event stays for the next try.
func TestRelayAlsoDrainedPastAFailure(t *testing.T) {
	ctx := context.Background()
	main, side := storetest.OpenSQLite(t), storetest.OpenSQLite(t)
	migrate(t, main)
	migrate(t, side)
	s := startNATS(t, t.TempDir(), -1)
	_, js := connect(t, s)
	r := events.NewRelay(main, js, zap.NewNop(), events.RelayOptions{PublishTimeout: 2 * time.Second, Also: []*store.DB{side}})

	addEvents(t, main, []events.Event{{ID: events.NewID(), Subject: "uias.nostream.anywhere", Type: "x", Payload: []byte(`{}`)}}, false)
	fromSide := makeEvents("side", 3)
	addEvents(t, side, fromSide, false)
	n, err := r.Flush(ctx)
	if err == nil || n != 3 {
		t.Fatalf("Flush = %d, %v; want the 3 events of the login outbox and the main outbox's failure", n, err)
	}
	checkStream(t, js, events.StreamChanges, fromSide)
	if left, err := r.Pending(ctx); err != nil || left != 1 {
		t.Fatalf("Pending = %d, %v; want the failed event kept", left, err)
	}
}
