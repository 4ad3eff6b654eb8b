package crypto

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClocks is a wall clock and a thread CPU clock that a fake hash
// advances: run is time on a thread that the thread gets (both clocks),
// steal time on a thread that the kernel gives to others (wall only), and
// descheduled the wait for a processor at a yield (wall only, meter paused).
type fakeClocks struct {
	now   time.Time
	cpu   time.Duration
	cpuOK bool
}

func (c *fakeClocks) install(h *Hasher) {
	c.cpuOK = true
	h.cpuEvery = 1 // every hash reads the CPU clock
	h.now = func() time.Time { return c.now }
	h.cpu = func() (time.Duration, bool) { return c.cpu, c.cpuOK }
}

// hashOf makes h's hashes take parts: each part runs for run (with steal
// more on the wall clock) and then, if yield, waits descheduled at a yield.
func (c *fakeClocks) hashOf(h *Hasher, parts int, run, steal, descheduled time.Duration, yield bool) {
	h.derive = func(m *argon2Memory, pw, salt []byte, p Argon2Params) []byte {
		for i := range parts {
			c.now = c.now.Add(run + steal)
			c.cpu += run
			if yield && i < parts-1 {
				m.meter.pause()
				c.now = c.now.Add(descheduled)
				m.meter.resume()
			}
		}
		return argon2idKey(nil, pw, salt, p)
	}
}

func hashN(t *testing.T, h *Hasher, n int) {
	t.Helper()
	for range n {
		if _, err := h.Hash(context.Background(), "pw"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEstimateLeavesOutWaitsForAProcessor: a hash whose goroutine waits for
// a processor at its yields (the process's other goroutines run) counts
// only its time on a thread; its wall time is reported beside it.
func TestEstimateLeavesOutWaitsForAProcessor(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var c fakeClocks
	c.install(h)
	// 4 parts of 5 ms, 20 ms descheduled after each of the first 3.
	c.hashOf(h, 4, 5*time.Millisecond, 0, 20*time.Millisecond, true)
	hashN(t, h, estimateWindow)
	got := h.HashTimes()
	want := HashTimes{Estimate: 20 * time.Millisecond, Lone: 20 * time.Millisecond, Wall: 80 * time.Millisecond, CPU: 20 * time.Millisecond}
	if got != want {
		t.Fatalf("HashTimes = %+v, want %+v", got, want)
	}
}

// TestEstimateKeepsTimeTheKernelGaveOthers: a busy host or a CPU quota
// (the thread waits for the kernel to run it between yields) is real lost
// capacity: the estimate keeps it, while the CPU time does not show it.
func TestEstimateKeepsTimeTheKernelGaveOthers(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var c fakeClocks
	c.install(h)
	c.hashOf(h, 4, 5*time.Millisecond, 5*time.Millisecond, time.Millisecond, true)
	hashN(t, h, estimateWindow)
	got := h.HashTimes()
	want := HashTimes{Estimate: 40 * time.Millisecond, Lone: 40 * time.Millisecond, Wall: 43 * time.Millisecond, CPU: 20 * time.Millisecond}
	if got != want {
		t.Fatalf("HashTimes = %+v, want %+v", got, want)
	}
}

// TestEstimateWithoutThreadCPUClock: where the thread CPU clock cannot be
// read (not Linux) the estimate is the same (it is read on the wall clock)
// and the CPU median is 0 (unknown).
func TestEstimateWithoutThreadCPUClock(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var c fakeClocks
	c.install(h)
	c.cpuOK = false
	c.hashOf(h, 4, 5*time.Millisecond, 0, 20*time.Millisecond, true)
	hashN(t, h, estimateWindow)
	got := h.HashTimes()
	want := HashTimes{Estimate: 20 * time.Millisecond, Lone: 20 * time.Millisecond, Wall: 80 * time.Millisecond}
	if got != want {
		t.Fatalf("HashTimes = %+v, want %+v", got, want)
	}
}

// TestEstimateOfAHashThatDoesNotYield: a hash that never gives its
// processor away (OwnThreads, libargon2) counts its wall time.
func TestEstimateOfAHashThatDoesNotYield(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var c fakeClocks
	c.install(h)
	c.hashOf(h, 1, 20*time.Millisecond, 10*time.Millisecond, 0, false)
	hashN(t, h, estimateWindow)
	got := h.HashTimes()
	want := HashTimes{Estimate: 30 * time.Millisecond, Lone: 30 * time.Millisecond, Wall: 30 * time.Millisecond, CPU: 20 * time.Millisecond}
	if got != want {
		t.Fatalf("HashTimes = %+v, want %+v", got, want)
	}
}

// TestEstimateWithMoreWorkersThanProcessors: with twice as many workers as
// processors a burst's hashes share them, so a yielding hash counts twice
// its time on a thread.
func TestEstimateWithMoreWorkersThanProcessors(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	h := NewHasher(HasherConfig{Params: testParams, Workers: 2})
	var c fakeClocks
	c.install(h)
	c.hashOf(h, 4, 5*time.Millisecond, 0, 20*time.Millisecond, true)
	hashN(t, h, estimateWindow)
	if got := h.HashTime(); got != 40*time.Millisecond {
		t.Fatalf("estimate with 2 workers on 1 processor = %v, want 2 × 20 ms", got)
	}
}

// TestEstimateWhileOtherGoroutinesHogTheProcessors: real clocks. Hashes
// run on one processor while four goroutines keep it busy (each spins for
// a millisecond, then yields): at each yield of a hash all four run first,
// so its wall time grows many times over, and the estimate (time on a
// thread) does not follow it.
func TestEstimateWhileOtherGoroutinesHogTheProcessors(t *testing.T) {
	if testing.Short() {
		t.Skip("spins the CPU")
	}
	if !strings.HasPrefix(Argon2Implementation, "pkg/crypto") {
		// libargon2 hashes in C without yielding: its estimate is the
		// wall time (TestEstimateOfAHashThatDoesNotYield's case).
		t.Skip("the hash does not yield in this build: ", Argon2Implementation)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	// One pass over 4 segments of 2048 blocks (yieldEvery, which the
	// libargon2 build, skipped above, does not define): a yield in each.
	p := Argon2Params{MemoryKiB: 4 * 2048, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := NewHasher(HasherConfig{Params: p, Workers: 1})
	h.cpuEvery = 1
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				for start := time.Now(); time.Since(start) < time.Millisecond; {
				}
				runtime.Gosched()
			}
		})
	}
	runtime.Gosched() // the spinning goroutines start
	hashN(t, h, 16)   // and the 2 of NewHasher, before the spinning
	stop.Store(true)
	wg.Wait()
	got := h.HashTimes()
	t.Logf("while hogged: %+v", got)
	if got.Estimate <= 0 || got.Wall <= 0 {
		t.Fatalf("HashTimes = %+v", got)
	}
	if got.Estimate*2 > got.Wall {
		t.Errorf("estimate %v follows the wall time %v of hashes that waited for a processor", got.Estimate, got.Wall)
	}
	// The CPU median and the estimate are read by different clocks at the
	// hash's yields: the CPU may exceed the estimate by the readings' own
	// cost (CI saw 0.5%), never by the waits the wall time holds.
	if _, ok := threadCPU(); ok && (got.CPU <= 0 || got.CPU > got.Estimate+got.Estimate/10) {
		t.Errorf("CPU median %v, want in (0, estimate %v + 10%%]", got.CPU, got.Estimate)
	}
}

// BenchmarkThreadCPU: one read of the thread CPU clock (a hashMeter that
// reads it does so twice at each yield of a pure-Go hash, about 76 yields
// a default hash; one hash in cpuSampleEvery reads it).
func BenchmarkThreadCPU(b *testing.B) {
	for b.Loop() {
		threadCPU()
	}
}

// TestCPUClockSampled: one hash in cpuSampleEvery reads the CPU clock; the
// CPU median is that of those, the estimate that of all.
func TestCPUClockSampled(t *testing.T) {
	h := NewHasher(HasherConfig{Params: testParams, Workers: 1})
	var c fakeClocks
	c.install(h)
	h.cpuEvery = cpuSampleEvery
	var reads int
	h.cpu = func() (time.Duration, bool) { reads++; return c.cpu, true }
	c.hashOf(h, 4, 5*time.Millisecond, 0, 20*time.Millisecond, true)
	hashN(t, h, 4*cpuSampleEvery)
	// 4 parts: a read at the start and at the end of each.
	if want := 4 * 8; reads != want {
		t.Errorf("%d reads of the CPU clock in %d hashes, want %d", reads, 4*cpuSampleEvery, want)
	}
	got := h.HashTimes()
	if want := (HashTimes{Estimate: 20 * time.Millisecond, Lone: 20 * time.Millisecond, Wall: 80 * time.Millisecond, CPU: 20 * time.Millisecond}); got != want {
		t.Fatalf("HashTimes = %+v, want %+v", got, want)
	}
}
