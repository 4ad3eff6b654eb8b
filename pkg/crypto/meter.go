package crypto

import (
	"runtime"
	"time"
)

// hashMeter times the hash running in one worker's memory. Besides the
// hash's wall time it keeps the part of it that the hash's goroutine spent
// on an OS thread: a pure-Go hash gives its processor away every
// yieldEvery blocks (argon2Memory.yield), and the time it then waits for
// one is the process's other work running, not the hash; between two
// yields its goroutine holds a thread, which runs it or waits for the
// kernel to run it. It also keeps the thread CPU time of those parts
// (CLOCK_THREAD_CPUTIME_ID where there is one). See Hasher.observe for
// which of them the duration estimate uses.
//
// A hash's memory is used by one hash at a time, so the meter needs no
// lock; a hash whose lanes run on goroutines of their own (Threads > 1) is
// not split (unsplit).
type hashMeter struct {
	now func() time.Time
	cpu func() (time.Duration, bool)

	running  bool
	split    bool // the hash paused the meter at least once
	start    time.Time
	segStart time.Time     // start of the current part on a thread
	segCPU   time.Duration // the thread's CPU clock then
	cpuOK    bool          // every read of the CPU clock worked
	onThread time.Duration
	cpuUsed  time.Duration
}

// hashTimes is what a hashMeter measured of one hash.
type hashTimes struct {
	wall     time.Duration // start to end
	onThread time.Duration // wall minus the waits for a processor at its yields
	cpu      time.Duration // thread CPU time of the parts on a thread (cpuOK)
	cpuOK    bool
	split    bool // the hash yielded: onThread leaves out the waits after it
	// backToBack: the hash was queued and its worker took it the moment
	// its hash before ended (set by Hasher.run)
	backToBack bool
}

// begin starts timing a hash with the wall clock now and the thread CPU
// clock cpu (threadCPU; nil: the CPU time is not read).
func (t *hashMeter) begin(now func() time.Time, cpu func() (time.Duration, bool)) {
	t.now, t.cpu = now, cpu
	t.running, t.split, t.cpuOK = true, false, cpu != nil
	t.onThread, t.cpuUsed = 0, 0
	t.start = now()
	t.resume()
}

// pause ends a part of the hash on a thread: the hash is about to yield
// its processor.
func (t *hashMeter) pause() {
	if !t.running {
		return
	}
	t.split = true
	t.endPart()
}

func (t *hashMeter) endPart() {
	wall := t.now().Sub(t.segStart)
	t.onThread += wall
	if !t.cpuOK {
		return
	}
	c, ok := t.cpu()
	if !ok {
		t.cpuOK = false
		return
	}
	// Bounded by the part's wall time: should the goroutine have moved to
	// another thread within the part (a rare preemption), the two reads
	// are of different clocks.
	t.cpuUsed += min(max(c-t.segCPU, 0), wall)
}

// resume starts a part of the hash on a thread: the hash has its
// processor back.
func (t *hashMeter) resume() {
	if !t.running {
		return
	}
	t.segStart = t.now()
	if t.cpuOK {
		t.segCPU, t.cpuOK = t.cpu()
	}
}

// unsplit makes the running hash count as one part (its lanes run on
// goroutines of their own, whose yields are not this goroutine's).
func (t *hashMeter) unsplit() { t.running = false }

// end stops timing and returns what was measured.
func (t *hashMeter) end() hashTimes {
	end := t.now()
	if !t.running {
		// unsplit: the whole hash is one part; its CPU is not known.
		return hashTimes{wall: end.Sub(t.start), onThread: end.Sub(t.start)}
	}
	t.endPart()
	t.running = false
	return hashTimes{wall: end.Sub(t.start), onThread: t.onThread, cpu: t.cpuUsed, cpuOK: t.cpuOK, split: t.split}
}

// yieldProcessor is a pure-Go hash in m giving its processor to the
// goroutines waiting for one (argon2Memory.yield), with m's meter paused
// meanwhile (unless unsplit: then the lanes of the hash call it at once
// and the meter, not running, is only read).
func (m *argon2Memory) yieldProcessor() {
	m.meter.pause()
	runtime.Gosched()
	m.meter.resume()
}
