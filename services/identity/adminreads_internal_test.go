package identity

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
)

// TestAdminReadsGiveWayToWaitingLogins: while logins wait for a hash
// worker, a slot stays taken after a read for nine times the read's time
// (it reads a tenth of the time), at most adminReadPauseMax, with the
// read's answer already returned; without waiting logins the slot is free
// at once.
func TestAdminReadsGiveWayToWaitingLogins(t *testing.T) {
	var (
		mu        sync.Mutex
		clock     = time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
		contended = true
		pauses    []time.Duration
	)
	wake := make(chan struct{})
	a := newAdminReads(1, time.Minute)
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	a.contended = func() bool { mu.Lock(); defer mu.Unlock(); return contended }
	a.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		pauses = append(pauses, d)
		mu.Unlock()
		<-wake
		return nil
	}
	readTaking := func(d time.Duration) func(context.Context) error {
		return func(context.Context) error {
			mu.Lock()
			clock = clock.Add(d)
			mu.Unlock()
			return nil
		}
	}
	ctx := context.Background()

	// Logins wait: the read answers, its slot stays taken for 9 × 40 ms.
	if err := a.run(ctx, readTaking(40*time.Millisecond)); err != nil {
		t.Fatalf("read: %v", err)
	}
	busy := func() error {
		short := &adminReads{slots: a.slots, timeout: 50 * time.Millisecond, now: a.now, sleep: a.sleep}
		return short.run(ctx, readTaking(0))
	}
	if e, ok := apierr.As(busy()); !ok || e.Reason != ReasonAdminReadsBusy {
		t.Fatalf("a read during the pause: %v, want %s", busy(), ReasonAdminReadsBusy)
	}
	wake <- struct{}{} // the pause ends
	mu.Lock()
	got := pauses
	mu.Unlock()
	if len(got) != 1 || got[0] != 360*time.Millisecond {
		t.Fatalf("pauses %v, want [360ms]", got)
	}

	// A long read: the pause is capped.
	if err := a.run(ctx, readTaking(10*time.Second)); err != nil {
		t.Fatalf("long read: %v", err)
	}
	wake <- struct{}{}
	mu.Lock()
	got = pauses
	mu.Unlock()
	if len(got) != 2 || got[1] != adminReadPauseMax {
		t.Fatalf("pauses %v, want the second capped at %v", got, adminReadPauseMax)
	}

	// No login waits: reads run back to back, no pause.
	mu.Lock()
	contended = false
	mu.Unlock()
	for i := range 3 {
		if err := a.run(ctx, readTaking(40*time.Millisecond)); err != nil {
			t.Fatalf("read %d without waiting logins: %v", i, err)
		}
		if err := busy(); err != nil {
			t.Fatalf("read %d: the slot was not free at once: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pauses) != 2 {
		t.Fatalf("pauses without waiting logins: %v", pauses[2:])
	}
}
