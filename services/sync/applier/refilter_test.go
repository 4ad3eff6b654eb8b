package applier_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/synctest"
)

// TestChangedFiltersReplayIsNoFailure: a deployment whose peer link was
// made with other filters (those of an earlier version: one '>' per entity)
// gets the link's current filters. JetStream takes the changed source for a
// new one and copies the peer's changes into the stream again from the
// start; the applier records each copy as a replay (DUPLICATE), applies
// nothing twice, counts no skipped change (no failure), and applies what
// the peer writes next.
func TestChangedFiltersReplayIsNoFailure(t *testing.T) {
	const n = 40
	l1 := synctest.StartLevel1(t, "l1")
	l2 := synctest.StartLevel2(t, "l2a", l1)
	_, js1 := l1.Connect(t)
	_, js2 := l2.Connect(t)
	ensureChanges(t, js1)
	ensureChanges(t, js2)
	for i := range n {
		publish(t, js2, "uias.changes.identity.user.updated", fmt.Sprintf("u%d", i%5), map[string]any{"n": i})
	}
	st := newStore(t)
	old := applier.PeerLink("l2a", []string{"uias.changes.identity.user.>", "uias.changes.identity.org.>"})
	runUntil := func(l applier.Link, what string, want func(c usync.Cursor) error) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		a := applier.New(js1, st, []applier.Link{l}, applier.Options{Logger: zaptest.NewLogger(t), SourceRetry: time.Second})
		go func() { a.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		eventually(t, what, func() error {
			c, err := st.Cursor(context.Background(), l.Name)
			if err != nil {
				return err
			}
			return want(c)
		})
	}
	runUntil(old, "the old link applies the peer's changes", func(c usync.Cursor) error {
		if c.Applied != n || c.Skipped != 0 || c.Duplicates != 0 {
			return fmt.Errorf("cursor %+v", c)
		}
		return nil
	})
	before, err := st.Digest(context.Background(), usync.DigestFilter{})
	if err != nil {
		t.Fatal(err)
	}

	// The new version's filters: the source starts over.
	runUntil(applier.PeerLink("l2a", applier.Up), "the copies are recorded as replays", func(c usync.Cursor) error {
		if c.Applied != n || c.Skipped != 0 || c.Duplicates != n {
			return fmt.Errorf("cursor %+v", c)
		}
		return nil
	})
	after, err := st.Digest(context.Background(), usync.DigestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the replay changed the replica:\n%v\n%v", before, after)
	}
	publish(t, js2, "uias.changes.identity.user.updated", "u1", map[string]any{"n": "next"})
	runUntil(applier.PeerLink("l2a", applier.Up), "the next change applies", func(c usync.Cursor) error {
		if c.Applied != n+1 || c.Skipped != 0 || c.Duplicates != n {
			return fmt.Errorf("cursor %+v", c)
		}
		return nil
	})
}
