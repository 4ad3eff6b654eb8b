package events_test

import (
	"context"
	"testing"

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
