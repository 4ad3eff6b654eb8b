package crypto

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/giveway"
)

// TestWaitersCountTheQueue: HasherConfig.Waiters hears of every call that
// waits for a worker and of its end, whether a worker took it or it left;
// background work pausing on it (giveway) resumes when the last one ends.
func TestWaitersCountTheQueue(t *testing.T) {
	sig := giveway.New(time.Hour)
	h, started, release := blockingHasher(HasherConfig{Params: testParams, Workers: 1, Waiters: sig}, time.Millisecond)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = h.Hash(context.Background(), "running") })
	<-started // the only worker is busy; nobody waits yet
	if n := sig.Waiting(); n != 0 {
		t.Fatalf("Waiting %d with a free queue, want 0", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { _, err := h.Hash(ctx, "leaves"); left <- err }()
	wg.Go(func() { _, _ = h.Hash(context.Background(), "served") })
	waitForWaiters(h, 2)
	if n := sig.Waiting(); n != 2 {
		t.Fatalf("Waiting %d with two queued, want 2", n)
	}
	paused := make(chan struct{})
	go func() { sig.Pause(context.Background()); close(paused) }()
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled call got %v", err)
	}
	if n := sig.Waiting(); n != 1 {
		t.Fatalf("Waiting %d after one left, want 1", n)
	}
	select {
	case <-paused:
		t.Fatal("the pause ended while a call still waits")
	default:
	}
	go func() {
		for range 2 {
			release <- struct{}{}
		}
	}()
	<-started // the queued call has the worker
	<-paused  // ends when the last waiter is taken
	wg.Wait()
	if n := sig.Waiting(); n != 0 {
		t.Fatalf("Waiting %d at the end, want 0", n)
	}
}
