//go:build linux

package sched_test

import (
	"runtime"
	"testing"

	"github.com/uias/uias/pkg/sched"
)

// LowerThread lowers the priority of the calling thread alone.
func TestLowerThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before, err := sched.ThreadNice()
	if err != nil {
		t.Fatal(err)
	}
	if before >= 19 {
		t.Skipf("the test runs at nice %d already", before)
	}
	type answer struct {
		set, read int
		err       error
	}
	done := make(chan answer, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		set, err := sched.LowerThread(5)
		if err != nil {
			done <- answer{err: err}
			return
		}
		read, err := sched.ThreadNice()
		done <- answer{set, read, err}
	}()
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	if want := min(before+5, 19); a.set != want || a.read != want {
		t.Fatalf("thread nice set %d, read %d, want %d", a.set, a.read, want)
	}
	if now, err := sched.ThreadNice(); err != nil || now != before {
		t.Fatalf("this thread's nice %d (%v), want %d: LowerThread changed another thread", now, err, before)
	}
	for _, bad := range []int{0, -1, 20} {
		if _, err := sched.LowerThread(bad); err == nil {
			t.Errorf("LowerThread(%d) accepted", bad)
		}
	}
}
