//go:build linux

package sched_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/uias/uias/pkg/sched"
)

// onThread runs f on a thread of its own and keeps that thread (in state
// set by f) until the returned stop is called; the thread then exits.
func onThread(t *testing.T, f func(tid int) error) (tid int, stop func()) {
	t.Helper()
	ready, done := make(chan error, 1), make(chan struct{})
	tidc := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		tidc <- unix.Gettid()
		ready <- f(unix.Gettid())
		<-done
	}()
	tid = <-tidc
	if err := <-ready; err != nil {
		close(done)
		t.Fatalf("thread setup: %v", err)
	}
	var once sync.Once
	return tid, func() { once.Do(func() { close(done) }) }
}

func TestBatchSwitchesEveryThreadAndNewOnesInherit(t *testing.T) {
	// A thread the operator put under SCHED_IDLE keeps it, and a thread's
	// nice value survives the switch.
	idleTid, stopIdle := onThread(t, func(tid int) error {
		return unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0)
	})
	defer stopIdle()
	niceTid, stopNice := onThread(t, func(tid int) error {
		return unix.Setpriority(unix.PRIO_PROCESS, tid, 5)
	})
	defer stopNice()

	n, err := sched.Batch()
	if err != nil {
		t.Fatalf("Batch: %v", err)
	}
	if n < 2 {
		t.Fatalf("Batch reports %d SCHED_BATCH threads; a Go process has several", n)
	}
	pol, err := sched.Policies()
	if err != nil {
		t.Fatal(err)
	}
	for tid, p := range pol {
		want := "batch"
		if tid == idleTid {
			want = "idle"
		}
		if p != want {
			t.Errorf("thread %d: policy %s, want %s", tid, p, want)
		}
	}
	attr, err := unix.SchedGetAttr(niceTid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if attr.Nice != 5 {
		t.Errorf("nice of a switched thread = %d, want 5 (kept)", attr.Nice)
	}

	// Threads the runtime starts afterwards (here: for goroutines locked to
	// threads while others block in syscalls) inherit SCHED_BATCH.
	before := len(pol)
	var wg sync.WaitGroup
	stops := make(chan func(), 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, stop := onThread(t, func(int) error { return nil })
			stops <- stop
			_ = unix.Nanosleep(&unix.Timespec{Nsec: int64(20 * time.Millisecond)}, nil)
		}()
	}
	wg.Wait()
	close(stops)
	pol, err = sched.Policies()
	if err != nil {
		t.Fatal(err)
	}
	if len(pol) <= before {
		t.Fatalf("expected new threads: %d before, %d after", before, len(pol))
	}
	for tid, p := range pol {
		if tid != idleTid && p != "batch" {
			t.Errorf("thread %d started after Batch: policy %s, want batch", tid, p)
		}
	}
	for stop := range stops {
		stop()
	}

	// Idempotent: a second call changes nothing and still succeeds.
	if _, err := sched.Batch(); err != nil {
		t.Fatalf("second Batch: %v", err)
	}

	// Normal undoes it, except for the thread the operator put under SCHED_IDLE.
	if _, err := sched.Normal(); err != nil {
		t.Fatalf("Normal: %v", err)
	}
	pol, err = sched.Policies()
	if err != nil {
		t.Fatal(err)
	}
	for tid, p := range pol {
		want := "other"
		if tid == idleTid {
			want = "idle"
		}
		if p != want {
			t.Errorf("after Normal: thread %d policy %s, want %s", tid, p, want)
		}
	}
}
