package crypto

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOverloaded is returned by Hash and Verify when every worker is busy and
// the call's projected wait for one does not fit its budget (HasherConfig.
// MaxWait and the context's deadline). It is returned at once, without
// waiting. Callers should map it to ResourceExhausted and let the client
// retry later.
var ErrOverloaded = errors.New("password hashing overloaded")

// NoQueue as HasherConfig.Queue means "never wait": when all workers are busy
// Hash/Verify return ErrOverloaded at once.
const NoQueue = -1

// DefaultMaxHashWait is HasherConfig.MaxWait when it is 0: the longest a
// password check may expect to wait for a hash worker (identity.max_hash_wait).
const DefaultMaxHashWait = 3 * time.Second

// cpuSampleEvery: one timed hash in this many reads its thread's CPU clock
// (HashTimes.CPU is the median of those in the estimate's window).
const cpuSampleEvery = 4

// estimateWindow is how many recent hash durations the estimate looks at.
// A login storm's own request work slows the first hashes of the storm for
// a moment; it must not move the estimate, while a lasting change should
// within a second or so of hashing.
const estimateWindow = 64

// busyMin is how many back-to-back hashes (see observe) the hasher must
// have seen before their pace corrects the estimate: the first ones of
// the first storm run beside its arrivals and are slow for a moment.
const busyMin = estimateWindow / 4

// busyLoneAge and busyLoneMin: a back-to-back hash's pace is its time
// over the median of the lone hashes that ended within busyLoneAge before
// it, and counts only when there are at least busyLoneMin of them. A lone
// median older than that may be another host's: on a shared host the hash
// rate moves by a quarter within a minute, and back-to-back hashes of a
// slow stretch over lone ones of a fast one learnt a pace of 1.70 that the
// next burst, its lone hashes fast again, paid for (ADR 0010). Within a
// burst the lone hashes of the quiet stretch before it (a login now and
// then, and each burst's first ones) are seconds old.
const (
	busyLoneAge = 10 * time.Second
	busyLoneMin = 4
)

// busyRatioMin and busyRatioMax bound the correction of the estimate by
// the workers' pace when busy: a host whose busy pace strays further from
// its lone hashes is more likely measuring something else.
const (
	busyRatioMin = 0.5
	busyRatioMax = 2.0
)

// HasherConfig configures a Hasher.
//
// Workers bounds the number of concurrent argon2 computations (<= 0 means
// GOMAXPROCS); only a call holding a worker holds argon2 memory, so the hash
// memory is about Workers*Params.MemoryKiB however many calls wait.
//
// A call that finds every worker busy waits for one only while its projected
// wait fits: the work ahead of it (the hashes running and the calls waiting
// before it) divided by Workers, times the running estimate of one hash's
// duration, must be at most MaxWait (0 means DefaultMaxHashWait) and a
// quarter of it for the estimate's error (estimateSlack), and that
// wait plus its own hash must end before the context's deadline, if any.
// Otherwise it gets ErrOverloaded at once. Queue optionally caps the number
// of waiting calls as well (0: no cap besides the wait budget; NoQueue (any
// negative value): never wait). Zero fields of Params are filled from
// DefaultArgon2.
type HasherConfig struct {
	Params  Argon2Params
	Workers int
	Queue   int
	MaxWait time.Duration
	// OwnThreads runs the hashes on Workers goroutines of their own, each
	// locked to an OS thread whose nice value is ThreadNice (1..19; 0 means
	// DefaultThreadNice) above the process's, at most 19, instead of on the
	// calling goroutines: the kernel
	// then gives every other thread of the process the CPU first when it
	// wants it (a woken request preempts a hash at once), and the hashes
	// all of the rest. Meant for the libargon2 build, whose hashes run in C
	// outside the Go scheduler; a pure-Go hash gives up its processor often
	// instead (argon2Memory.yield). Linux only: elsewhere, and where the
	// nice value cannot be set, the threads run at the process's priority.
	// Close stops the threads.
	OwnThreads bool
	ThreadNice int
	// Waiters, when set, is told of every call that starts waiting in the
	// queue (Add(1)) and of every one that stops waiting, taken by a
	// worker or gone (Add(-1)): background work gives way to them
	// (pkg/giveway.Signal). Add is called with the queue's lock held.
	Waiters interface{ Add(delta int) }
	// Testing, when set, makes the hasher deterministic for tests of its
	// callers: see HasherTesting. Leave it nil in production.
	Testing *HasherTesting
}

// DefaultThreadNice is HasherConfig.ThreadNice when it is 0: with the
// kernel's weights a hash thread 10 nice levels below the process's other
// threads gets about a tenth of a CPU that one of them wants as well.
const DefaultThreadNice = 10

// HasherTesting lets tests outside this package drive a Hasher without
// timing: a fixed hash duration estimate and a hook that can hold workers.
type HasherTesting struct {
	// HashTime, when positive, is the estimate of one hash's duration,
	// fixed: NewHasher times no hash and hashes do not change it.
	HashTime time.Duration
	// BeforeHash, when set, runs on the worker before every hash, with the
	// worker taken: blocking in it keeps that worker busy.
	BeforeHash func()
	// Now, when set, is the hasher's clock (Active, Contended and the
	// duration estimate read it) instead of time.Now.
	Now func() time.Time
}

// Hasher hashes and verifies passwords with argon2id, with bounded
// concurrency and admission by wait budget (see HasherConfig). It is safe
// for concurrent use.
//
// Each of its Workers has argon2 memory it keeps from one hash to the next,
// so the hash memory stays at Workers x MemoryKiB however many logins come.
// A call that finds a worker free hashes at once, on its own goroutine, in
// that worker's memory (with OwnThreads: on that worker's thread, while the
// call waits). A call that finds every worker busy waits in a
// queue, served in arrival order: the worker that finishes a hash then goes
// on with the queued hashes on a goroutine of its own until the queue is
// empty, handing each result to its waiting caller, so no worker stays idle
// while a woken caller waits for a CPU (on a busy machine that can take
// milliseconds a hash).
type Hasher struct {
	params  Argon2Params
	maxWait time.Duration
	// waitCap is the most calls that may wait; < 0: no cap.
	waitCap int64
	mems    []*argon2Memory // one per worker (tests inspect them)

	mu     sync.Mutex
	free   []*argon2Memory // the memory of every idle worker
	queue  []*job          // admitted, not yet taken by a worker, oldest first
	own    bool            // OwnThreads: each memory's thread hashes in it
	closed bool            // Close was called (own threads stop when idle)
	// waiters counts the queue's calls for others (HasherConfig.Waiters).
	waiters interface{ Add(delta int) }

	// estimate is the running estimate of one hash's duration (ns): the
	// median of the last estimateWindow hashes at the current parameters,
	// times the workers' pace when busy against it (see observe).
	estimate atomic.Int64
	fixed    bool // Testing.HashTime: estimate never changes
	estMu    sync.Mutex
	recent   [estimateWindow]time.Duration
	next     int
	// the wall and CPU times of the same hashes (HashTimes); a CPU time
	// of 0: not known
	recentWall, recentCPU [estimateWindow]time.Duration
	// recentAt is when each of them ended (h.now, unix ns)
	recentAt [estimateWindow]int64
	// busy holds, for the last estimateWindow back-to-back hashes, each
	// one's time over the median of the lone hashes of the moment
	// (busyLoneAge), counted as observe says (in millionths); nextBusy
	// counts them (wrapCount).
	busy     [estimateWindow]int64
	nextBusy int

	// running counts the hashes (and Run's work) in progress; lastDone
	// is when the last one ended (h.now, unix ns): see Active.
	running  atomic.Int64
	lastDone atomic.Int64
	// lastWait is when a call last found every worker busy (h.now, unix
	// ns), whether it then waited or got ErrOverloaded: see Contended.
	lastWait atomic.Int64

	before func()
	now    func() time.Time
	// cpu reads the calling thread's CPU clock (threadCPU; tests replace
	// it); timed counts the hashes timed, of which every cpuEvery-th
	// (cpuSampleEvery; tests set 1) reads it.
	cpu      func() (time.Duration, bool)
	cpuEvery int64
	timed    atomic.Int64
	// derive is argon2idKey; tests replace it to hold a worker deterministically.
	derive func(mem *argon2Memory, password, salt []byte, p Argon2Params) []byte
}

// job is one queued hash (or other work, see Run); its result goes to key.
type job struct {
	work  func(m *argon2Memory) []byte
	key   chan []byte // buffered: the worker never waits for the caller
	taken bool        // a worker has it (guarded by Hasher.mu)
	// queued: it waited in the queue, so a worker took it the moment its
	// hash before ended (back to back; see observe)
	queued bool
}

// NewHasher returns a Hasher for cfg. Unless cfg.Testing fixes the
// estimate, it times two hashes to seed the estimate of one hash's
// duration.
func NewHasher(cfg HasherConfig) *Hasher {
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	waitCap := int64(-1)
	switch {
	case cfg.Queue > 0:
		waitCap = int64(cfg.Queue)
	case cfg.Queue < 0:
		waitCap = 0
	}
	maxWait := cfg.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxHashWait
	}
	h := &Hasher{
		params:   cfg.Params.withDefaults(),
		maxWait:  maxWait,
		waitCap:  waitCap,
		waiters:  cfg.Waiters,
		now:      time.Now,
		cpu:      threadCPU,
		cpuEvery: cpuSampleEvery,
		derive:   argon2idKey,
	}
	for range workers {
		// Allocated by its first hash. A pure-Go hash on a calling
		// goroutine yields its processor often; one on a thread of its own
		// leaves that to the kernel.
		h.mems = append(h.mems, &argon2Memory{yield: !cfg.OwnThreads})
	}
	h.free = append([]*argon2Memory(nil), h.mems...)
	if cfg.OwnThreads {
		nice := cfg.ThreadNice
		if nice <= 0 {
			nice = DefaultThreadNice
		}
		h.own = true
		for _, m := range h.mems {
			m.jobs = make(chan *job, 1)
			go h.thread(m, m.jobs, nice)
		}
	}
	if t := cfg.Testing; t != nil {
		h.before = t.BeforeHash
		if t.Now != nil {
			h.now = t.Now
		}
		if t.HashTime > 0 {
			h.fixed = true
			h.estimate.Store(int64(t.HashTime))
		}
	}
	if !h.fixed {
		// Two hashes in the first worker's memory (the first one also
		// faults it in; the estimate of two is the shorter), so that the
		// estimate is known before the first call.
		salt := make([]byte, h.params.SaltLen)
		for range 2 {
			_, _ = h.admit(context.Background(), true, func(m *argon2Memory) []byte {
				return h.run(m, []byte("calibration"), salt, h.params)
			})
		}
	}
	return h
}

// thread is the OS thread of worker memory m (OwnThreads): it runs the
// jobs handed to it, and the queued ones after them, until Close.
func (h *Hasher) thread(m *argon2Memory, jobs <-chan *job, nice int) {
	// Never unlocked: the thread's priority stays lowered, and it ends
	// with this goroutine.
	runtime.LockOSThread()
	_ = lowerThreadPriority(nice) // not fatal: then it runs at the process's priority
	for j := range jobs {
		h.drain(m, j)
	}
}

// Close stops the worker threads of OwnThreads once their hashes are done;
// later calls hash on the calling goroutines. It does not wait.
func (h *Hasher) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	if h.own {
		for _, m := range h.free {
			close(m.jobs)
			m.jobs = nil
		}
	}
}

// nextJob is what a worker whose hash is done does with its memory m: it takes
// the oldest queued job, or, with the queue empty, becomes idle (and
// returns nil). Doing this before handing over a result means a caller
// that has its result finds the worker available.
func (h *Hasher) nextJob(m *argon2Memory) *job {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queue) == 0 {
		h.free = append(h.free, m)
		if h.own && h.closed && m.jobs != nil {
			close(m.jobs) // its thread ends
			m.jobs = nil
		}
		return nil
	}
	j := h.queue[0]
	h.queue[0] = nil
	h.queue = h.queue[1:]
	j.taken, j.queued = true, true
	h.waited(-1)
	return j
}

// drain is a worker going on with queued jobs j, ... in memory m until the
// queue is empty.
func (h *Hasher) drain(m *argon2Memory, j *job) {
	for j != nil {
		m.backToBack = j.queued
		key := j.work(m)
		next := h.nextJob(m)
		j.key <- key
		j = next
	}
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() Argon2Params { return h.params }

// Workers returns the maximum number of concurrent hash computations.
func (h *Hasher) Workers() int { return len(h.mems) }

// MaxWait returns the longest projected wait for a worker a call accepts.
func (h *Hasher) MaxWait() time.Duration { return h.maxWait }

// HashTime returns the current estimate of one hash's duration.
func (h *Hasher) HashTime() time.Duration { return time.Duration(h.estimate.Load()) }

// Waiting returns the number of calls waiting for a worker.
func (h *Hasher) Waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.queue)
}

// projectedWait is how long a call that finds every worker busy, with
// ahead calls already waiting, is expected to wait for a worker: the work
// ahead of it (Workers running hashes plus ahead waiting ones) spread over
// the workers.
func (h *Hasher) projectedWait(ahead int64) time.Duration {
	est := h.estimate.Load()
	return time.Duration(est + ahead*est/int64(len(h.mems)))
}

// estimateSlack is how far (a fraction of MaxWait, as its divisor) a
// projected wait may pass MaxWait and still wait. A projection is the
// estimate of one hash times the work ahead, and the burst it must admit is
// sized by another measurement: the bench's N is MaxWait x the raw hash
// rate measured right before the burst. On a shared host the two differ
// from one second to the next, and a login also costs some CPU besides
// its hash: in quiet bench runs the server's estimate stood at 0.92-1.14x
// the raw hash a worker, and the calls at a burst's end, projected up to
// 14% past MaxWait, were refused although the workers cleared the burst
// within 3.1-3.5 s (docs/benchmarks.md, ADR 0010); with a fifth, two
// make bench runs on a noisier host had a pure-Go round whose estimate
// stood at 1.22-1.23x the raw hash and refused 2 and 5 calls of a burst
// whose slowest answer came at 3.2-3.3 s. A refusal is final; a wait a
// quarter longer than planned is not (3.75 s of waiting at most, then one
// hash of 20-40 ms and the request's own few milliseconds: still an answer
// within the 4 s the fingerprint server design asks for, which a third
// would not leave). The caller's deadline gets no slack: a call that
// would miss it is better refused at once.
const estimateSlack = 4

// fits reports whether a wait of wait (and then one hash) fits the budget
// of a call with ctx.
func (h *Hasher) fits(ctx context.Context, wait time.Duration) bool {
	if wait > h.maxWait+h.maxWait/estimateSlack {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && h.now().Add(wait+h.HashTime()).After(dl) {
		return false
	}
	return true
}

// Admits reports whether a hash asked for now by a call with ctx would be
// admitted: a worker is free, or the call's projected wait fits its budget
// (as Hash and Verify decide). It reserves nothing, so the hash itself may
// still be refused; it lets a caller refuse at once, cheaply, before work
// that would be wasted on a refusal (the login gate's store writes).
func (h *Hasher) Admits(ctx context.Context) bool {
	if ctx.Err() != nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.free) > 0 {
		return true
	}
	ahead := int64(len(h.queue))
	return (h.waitCap < 0 || ahead < h.waitCap) && h.fits(ctx, h.projectedWait(ahead))
}

// waited tells HasherConfig.Waiters of delta calls more (or fewer)
// waiting; h.mu is held.
func (h *Hasher) waited(delta int) {
	if h.waiters != nil {
		h.waiters.Add(delta)
	}
}

// leave takes j out of the queue if no worker has it yet; it reports
// whether it did.
func (h *Hasher) leave(j *job) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if j.taken {
		return false
	}
	for i, q := range h.queue {
		if q == j {
			h.queue = append(h.queue[:i], h.queue[i+1:]...)
			h.waited(-1)
			return true
		}
	}
	return false
}

// compute derives the key of password with salt and p: at once on this
// goroutine if a worker is free; otherwise it queues the hash if its
// projected wait fits the call's budget (wait false: never) and returns
// ErrOverloaded at once if it does not. A call whose ctx ends while it
// waits leaves the queue; once a worker has its job, it waits for the hash
// (a hash is short, and cannot be stopped).
func (h *Hasher) compute(ctx context.Context, password, salt []byte, p Argon2Params, wait bool) ([]byte, error) {
	return h.admit(ctx, wait, func(m *argon2Memory) []byte { return h.run(m, password, salt, p) })
}

// Run runs fn in a hash worker, with the admission of a password hash
// (ErrOverloaded at once when its projected wait does not fit, ctx.Err()
// if ctx ends while it waits): for CPU work that costs about as much as a
// hash, such as verifying a password against a legacy bcrypt or PBKDF2
// hash, so that it shares the workers' CPUs instead of adding to them.
func (h *Hasher) Run(ctx context.Context, fn func()) error {
	_, err := h.admit(ctx, true, func(*argon2Memory) []byte {
		if h.before != nil {
			h.before()
		}
		fn()
		return nil
	})
	return err
}

// Active reports whether a hash runs now or one ended within the last
// within: long background work (an import) gives the CPUs to logins while
// they hash.
func (h *Hasher) Active(within time.Duration) bool {
	if h.running.Load() > 0 {
		return true
	}
	last := h.lastDone.Load()
	return last != 0 && h.now().UnixNano()-last < int64(within)
}

// Contended reports whether hashes wait for workers: a call waits in the
// queue now, every worker is busy now, or a call found every worker busy
// within the last within. Logins served without waiting (a free worker
// for each) are not contention, however many there are: other work
// (an import) may then run at full speed, and should give way only while
// this is true.
func (h *Hasher) Contended(within time.Duration) bool {
	if h.running.Load() >= int64(len(h.mems)) {
		return true
	}
	h.mu.Lock()
	queued := len(h.queue) > 0
	h.mu.Unlock()
	if queued {
		return true
	}
	last := h.lastWait.Load()
	return last != 0 && h.now().UnixNano()-last < int64(within)
}

// admit runs work in a worker's memory: at once on this goroutine if a
// worker is free, otherwise queued as compute describes.
func (h *Hasher) admit(ctx context.Context, wait bool, work func(m *argon2Memory) []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	inner := work
	work = func(m *argon2Memory) []byte {
		h.running.Add(1)
		defer func() {
			h.lastDone.Store(h.now().UnixNano())
			h.running.Add(-1)
		}()
		return inner(m)
	}
	h.mu.Lock()
	if n := len(h.free); n > 0 {
		m := h.free[n-1]
		h.free = h.free[:n-1]
		if h.own && !h.closed {
			// The worker's thread hashes (and goes on with the queue).
			j := &job{work: work, key: make(chan []byte, 1), taken: true}
			h.mu.Unlock()
			m.jobs <- j
			return <-j.key, nil
		}
		h.mu.Unlock()
		m.backToBack = false
		key := work(m)
		if j := h.nextJob(m); j != nil {
			go h.drain(m, j)
		}
		return key, nil
	}
	h.lastWait.Store(h.now().UnixNano())
	ahead := int64(len(h.queue))
	if !wait || (h.waitCap >= 0 && ahead >= h.waitCap) || !h.fits(ctx, h.projectedWait(ahead)) {
		h.mu.Unlock()
		return nil, ErrOverloaded
	}
	j := &job{work: work, key: make(chan []byte, 1)}
	h.queue = append(h.queue, j)
	h.waited(1)
	h.mu.Unlock()
	select {
	case key := <-j.key:
		return key, nil
	case <-ctx.Done():
		if h.leave(j) {
			return nil, ctx.Err()
		}
		return <-j.key, nil
	}
}

// run derives a key in the worker's memory and, for hashes at the current
// parameters, updates the duration estimate. A stored hash made with more
// memory than the current parameters (before a rehash) gets memory of its
// own, so one old or hostile row cannot make a worker keep it.
func (h *Hasher) run(m *argon2Memory, password, salt []byte, p Argon2Params) []byte {
	if h.before != nil {
		h.before()
	}
	if p.MemoryKiB > h.params.MemoryKiB {
		m = nil
	}
	if m == nil {
		return h.derive(m, password, salt, p) // other parameters: not timed
	}
	// The CPU clock costs a system call, about 1 µs, at each of the
	// ~150 ends of a default hash's parts (0.3-0.5% of its CPU); the CPU
	// time is only reported (HashTimes), so one hash in cpuSampleEvery
	// reads it.
	var cpu func() (time.Duration, bool)
	if h.timed.Add(1)%h.cpuEvery == 0 || !m.yield {
		// (a hash that does not yield reads it every time, at its begin
		// and end alone: a back-to-back one's pace is its CPU time over
		// the CPU median of the lone ones of the moment, see observe)
		cpu = h.cpu
	}
	m.meter.begin(h.now, cpu)
	key := h.derive(m, password, salt, p)
	t := m.meter.end()
	t.backToBack = m.backToBack
	if p == h.params {
		h.observe(t)
	}
	return key
}

// observe records the times of one hash at the current parameters. The
// estimate is the median of the recent lone ones (the lower middle one of
// an even count), corrected by the pace of the back-to-back ones: it
// follows lasting changes (a busier machine, fewer CPUs, slower memory)
// within a few hashes, so the projected wait tracks what the workers
// really deliver, and a single hash stalled by a garbage collection or
// another process does not move it.
//
// What counts of a lone hash (one that found its worker idle) is its time
// on a thread (hashTimes.onThread): its wall time less the waits for a
// processor after each of its yields, in which the process's other
// goroutines ran (the callers' requests, the background work that gives
// way to waiting logins: pkg/giveway). A burst of logins keeps every
// worker hashing and most of that other work waits, so a hash then takes
// about its time on a thread, not the wall time it took beside that work.
// The kernel's time given to other threads while the hash's thread waits
// to run stays in: on a busy host or under a CPU quota the workers really
// get less than a CPU each (docs/adr/0005). And when there are more
// workers than processors (GOMAXPROCS), the hashes of a burst share the
// processors: the time counts Workers÷GOMAXPROCS times. A hash that does
// not yield (OwnThreads, libargon2, several lanes) counts its wall time.
//
// A queued hash, which its worker began the moment the one before it
// ended, is what the projected wait is about: the pace of busy workers.
// Lone hashes, one now and then on a quiet server, run slower or faster
// than that by a margin of the host's (each starts on a CPU that was idle
// or ran something else: its caches and clock are not the hashing
// loop's; on a busier shared host the libargon2 build's lone estimate
// stood 23-31% above the raw parallel hash while its bursts ran within
// about 10% of it, ADR 0010). So each back-to-back hash records its time,
// counted as a lone one's, over the median of the lone hashes of the
// moment: those that ended within busyLoneAge before it, at least
// busyLoneMin of them, else the hash teaches no pace (or, for a hash that
// does not yield, whose thread the other threads of a storm preempt, its
// thread's CPU time over those lone hashes' CPU median). Once there are
// busyMin such ratios the estimate is the lone median times their median
// (within busyRatioMin..busyRatioMax): the first burst after a quiet
// night is admitted at the pace the workers kept in the last one, scaled
// by how lone hashes run now. A ratio compares hashes of one stretch of
// the host's: lone hashes a minute older than the back-to-back ones may
// have run on a faster or slower host, and their ratio would carry that
// into every later estimate. A saturated server that runs no lone hash
// learns no pace meanwhile; its estimate stays the lone median times the
// pace of its last stretch with both. The callers' own work in a burst is
// not in it, as it is not in the lone time: the slack covers it
// (estimateSlack).
func (h *Hasher) observe(t hashTimes) {
	if h.fixed {
		return
	}
	d := t.onThread
	if t.split {
		if procs := runtime.GOMAXPROCS(0); len(h.mems) > procs {
			d = d * time.Duration(len(h.mems)) / time.Duration(procs)
		}
	}
	if d <= 0 {
		return
	}
	now := h.now().UnixNano()
	h.estMu.Lock()
	defer h.estMu.Unlock()
	if t.backToBack {
		lone, lcpu := h.freshLoneLocked(now)
		num, den := d, lone
		if !t.split && t.cpuOK && t.cpu > 0 && lcpu > 0 {
			// A hash that does not yield runs in a thread of its own,
			// which any other thread of the process preempts
			// (OwnThreads): in a storm its wall time is the handling
			// of every call of it, not the hash's pace. Its CPU time
			// is compared with the lone hashes' CPU time (like with
			// like: the time the kernel gives to other processes stays
			// in the lone wall time the pace multiplies).
			num, den = t.cpu, lcpu
		}
		if den <= 0 {
			return
		}
		h.busy[h.nextBusy%estimateWindow] = max(int64(num)*1e6/int64(den), 1)
		h.nextBusy = wrapCount(h.nextBusy + 1)
		h.estimate.Store(int64(h.estimateLocked()))
		return
	}
	cpu := time.Duration(0)
	if t.cpuOK {
		cpu = max(t.cpu, 1)
	}
	k := h.next % estimateWindow
	h.recent[k], h.recentWall[k], h.recentCPU[k], h.recentAt[k] = d, t.wall, cpu, now
	h.next = wrapCount(h.next + 1)
	h.estimate.Store(int64(h.estimateLocked()))
}

// freshLoneLocked returns the median time of the lone hashes that ended
// within busyLoneAge before now (unix ns), and the median CPU time of those
// whose CPU time is known (0 for fewer than busyLoneMin of them); both 0
// for fewer than busyLoneMin lone hashes. h.estMu is held.
func (h *Hasher) freshLoneLocked(now int64) (lone, cpu time.Duration) {
	var times, cpus [estimateWindow]time.Duration
	nt, nc := 0, 0
	for i := range min(h.next, estimateWindow) {
		if h.recent[i] <= 0 || now-h.recentAt[i] > int64(busyLoneAge) {
			continue
		}
		times[nt] = h.recent[i]
		nt++
		if h.recentCPU[i] > 0 {
			cpus[nc] = h.recentCPU[i]
			nc++
		}
	}
	if nt < busyLoneMin {
		return 0, 0
	}
	if nc >= busyLoneMin {
		cpu = median(cpus[:nc])
	}
	return median(times[:nt]), cpu
}

// wrapCount keeps a count of recorded hashes from overflowing: past two
// windows it drops one (the position in the window and min(n, window)
// stay the same).
func wrapCount(n int) int {
	if n >= 2*estimateWindow {
		return n - estimateWindow
	}
	return n
}

// estimateLocked is the estimate from the recorded hashes (see observe);
// h.estMu is held.
func (h *Hasher) estimateLocked() time.Duration {
	lone := median(h.recent[:min(h.next, estimateWindow)])
	r := h.busyRatioLocked()
	if r == 0 {
		return lone
	}
	return time.Duration(float64(lone) * r)
}

// busyRatioLocked is the median of the back-to-back hashes' ratios to the
// lone estimate, within busyRatioMin..busyRatioMax, or 0 while there are
// fewer than busyMin of them; h.estMu is held.
func (h *Hasher) busyRatioLocked() float64 {
	if h.nextBusy < busyMin {
		return 0
	}
	r := float64(median(h.busy[:min(h.nextBusy, estimateWindow)])) / 1e6
	return min(max(r, busyRatioMin), busyRatioMax)
}

// median returns the lower middle one of xs (0 if empty), ignoring zeros;
// xs is not changed.
func median[T time.Duration | int64](xs []T) T {
	var sorted [estimateWindow]T
	n := 0
	for _, x := range xs {
		if x > 0 && n < len(sorted) {
			sorted[n] = x
			n++
		}
	}
	if n == 0 {
		return 0
	}
	slices.Sort(sorted[:n])
	return sorted[(n-1)/2]
}

// HashTimes are the medians of the last hashes at the current parameters
// (as many as the duration estimate looks at).
type HashTimes struct {
	// Estimate is HashTime: what the projected wait counts a hash as.
	Estimate time.Duration
	// Lone is the median time of the last lone hashes (those that found
	// their worker idle), as observe counts them.
	Lone time.Duration
	// BusyPace is the median ratio of the back-to-back hashes' times to
	// the lone ones' (see observe; the estimate is Lone times it), or 0
	// while too few hashes have run back to back for it to count.
	BusyPace float64
	// Wall is the median wall time of a lone hash, from its start to its
	// end.
	Wall time.Duration
	// CPU is the median CPU time of a lone hash's thread while it hashed,
	// of the hashes that read it (one in cpuSampleEvery of those that
	// yield, every one of those that do not); 0 where the
	// thread CPU clock cannot be read (not Linux) or the hash's lanes ran
	// on goroutines of their own (Threads > 1).
	CPU time.Duration
}

// HashTimes returns the medians of the last hashes' times.
func (h *Hasher) HashTimes() HashTimes {
	h.estMu.Lock()
	defer h.estMu.Unlock()
	n := min(h.next, estimateWindow)
	return HashTimes{Estimate: h.HashTime(), Lone: median(h.recent[:n]), BusyPace: h.busyRatioLocked(),
		Wall: median(h.recentWall[:n]), CPU: median(h.recentCPU[:n])}
}

// Hash returns the PHC-encoded argon2id hash of password. It returns
// ErrOverloaded when the hasher has no room for the call (see HasherConfig)
// and ctx.Err() if ctx ends while waiting for a worker.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	return h.hash(ctx, password, true)
}

// HashIfIdle is Hash for work that may be skipped, such as re-hashing a
// password under new parameters after a login: it hashes only if a worker
// is idle now and returns ErrOverloaded otherwise, never waiting.
func (h *Hasher) HashIfIdle(ctx context.Context, password string) (string, error) {
	return h.hash(ctx, password, false)
}

func (h *Hasher) hash(ctx context.Context, password string, wait bool) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go >= 1.24)
	key, err := h.compute(ctx, []byte(password), salt, h.params, wait)
	if err != nil {
		return "", err
	}
	return EncodePHC(h.params, salt, key), nil
}

// Verify checks password against a PHC-encoded hash in constant time. ok
// reports a match; needsRehash is true when the password matched but the hash
// was made with parameters other than h.Params() (store a fresh Hash then).
// A malformed encoded hash is an error wrapping ErrMalformedHash. Like Hash
// it may return ErrOverloaded or ctx.Err().
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, needsRehash bool, err error) {
	p, salt, want, err := ParsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.compute(ctx, []byte(password), salt, p, true)
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}
