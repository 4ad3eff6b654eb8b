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

// estimateWindow is how many recent hash durations the estimate looks at.
const estimateWindow = 16

// HasherConfig configures a Hasher.
//
// Workers bounds the number of concurrent argon2 computations (<= 0 means
// GOMAXPROCS); only a call holding a worker holds argon2 memory, so the hash
// memory is about Workers*Params.MemoryKiB however many calls wait.
//
// A call that finds every worker busy waits for one only while its projected
// wait fits: the work ahead of it (the hashes running and the calls waiting
// before it) divided by Workers, times the running estimate of one hash's
// duration, must be at most MaxWait (0 means DefaultMaxHashWait), and that
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
	// Testing, when set, makes the hasher deterministic for tests of its
	// callers: see HasherTesting. Leave it nil in production.
	Testing *HasherTesting
}

// HasherTesting lets tests outside this package drive a Hasher without
// timing: a fixed hash duration estimate and a hook that can hold workers.
type HasherTesting struct {
	// HashTime, when positive, is the estimate of one hash's duration,
	// fixed: NewHasher times no hash and hashes do not change it.
	HashTime time.Duration
	// BeforeHash, when set, runs on the worker before every hash, with the
	// worker taken: blocking in it keeps that worker busy.
	BeforeHash func()
}

// Hasher hashes and verifies passwords with argon2id, with bounded
// concurrency and admission by wait budget (see HasherConfig). It is safe
// for concurrent use.
type Hasher struct {
	params  Argon2Params
	maxWait time.Duration
	// waitCap is the most calls that may wait; < 0: no cap.
	waitCap int64
	// slots holds one argon2Memory per idle worker: taking one is starting
	// a hash, and its memory is reused by the next hash, so the hash memory
	// stays at Workers x MemoryKiB however many logins come. Waiting calls
	// block on it and are served in arrival order.
	slots   chan *argon2Memory
	waiting atomic.Int64

	// estimate is the running estimate of one hash's duration (ns): the
	// median of the last estimateWindow hashes at the current parameters.
	estimate atomic.Int64
	fixed    bool // Testing.HashTime: estimate never changes
	mu       sync.Mutex
	recent   [estimateWindow]time.Duration
	next     int

	before func()
	now    func() time.Time
	// derive is argon2idKey; tests replace it to hold a worker deterministically.
	derive func(mem *argon2Memory, password, salt []byte, p Argon2Params) []byte
}

// NewHasher returns a Hasher for cfg. Unless cfg.Testing fixes the
// estimate, it times two hashes to seed the estimate of one hash's duration.
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
	slots := make(chan *argon2Memory, workers)
	for range workers {
		slots <- new(argon2Memory) // allocated by its first hash
	}
	h := &Hasher{
		params:  cfg.Params.withDefaults(),
		maxWait: maxWait,
		waitCap: waitCap,
		slots:   slots,
		now:     time.Now,
		derive:  argon2idKey,
	}
	if t := cfg.Testing; t != nil {
		h.before = t.BeforeHash
		if t.HashTime > 0 {
			h.fixed = true
			h.estimate.Store(int64(t.HashTime))
		}
	}
	if !h.fixed {
		h.calibrate()
	}
	return h
}

// calibrate times two hashes in a worker's memory (the first one also
// faults that memory in; the estimate of two is the shorter) so that the
// estimate is known before the first call.
func (h *Hasher) calibrate() {
	m := <-h.slots
	salt := make([]byte, h.params.SaltLen)
	for range 2 {
		h.run(m, []byte("calibration"), salt, h.params)
	}
	h.release(m)
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() Argon2Params { return h.params }

// Workers returns the maximum number of concurrent hash computations.
func (h *Hasher) Workers() int { return cap(h.slots) }

// MaxWait returns the longest projected wait for a worker a call accepts.
func (h *Hasher) MaxWait() time.Duration { return h.maxWait }

// HashTime returns the current estimate of one hash's duration.
func (h *Hasher) HashTime() time.Duration { return time.Duration(h.estimate.Load()) }

// Waiting returns the number of callers currently waiting for a worker.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// projectedWait is how long a call that finds every worker busy, with
// ahead calls already waiting, is expected to wait for a worker: the work
// ahead of it (Workers running hashes plus ahead waiting ones) spread over
// the workers.
func (h *Hasher) projectedWait(ahead int64) time.Duration {
	est := h.estimate.Load()
	w := int64(cap(h.slots))
	return time.Duration(est + ahead*est/w)
}

// fits reports whether a wait of wait (and then one hash) fits the budget
// of a call with ctx.
func (h *Hasher) fits(ctx context.Context, wait time.Duration) bool {
	if wait > h.maxWait {
		return false
	}
	if dl, ok := ctx.Deadline(); ok && h.now().Add(wait+h.HashTime()).After(dl) {
		return false
	}
	return true
}

// tryAcquire takes an idle worker's slot if there is one.
func (h *Hasher) tryAcquire() (*argon2Memory, bool) {
	select {
	case m := <-h.slots:
		return m, true
	default:
		return nil, false
	}
}

// acquire takes a worker slot, waiting for one while the projected wait
// fits the call's budget; when it does not, it returns ErrOverloaded at once.
func (h *Hasher) acquire(ctx context.Context) (*argon2Memory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if m, ok := h.tryAcquire(); ok {
		return m, nil
	}
	ahead := h.waiting.Add(1) - 1
	if (h.waitCap >= 0 && ahead >= h.waitCap) || !h.fits(ctx, h.projectedWait(ahead)) {
		h.waiting.Add(-1)
		// A worker may have come free since the first look.
		if m, ok := h.tryAcquire(); ok {
			return m, nil
		}
		return nil, ErrOverloaded
	}
	defer h.waiting.Add(-1)
	select {
	case m := <-h.slots:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *Hasher) release(m *argon2Memory) { h.slots <- m }

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
	start := h.now()
	key := h.derive(m, password, salt, p)
	if p == h.params {
		h.observe(h.now().Sub(start))
	}
	return key
}

// observe records the duration of one hash at the current parameters. The
// estimate is the median of the recent ones (the lower middle one of an
// even count): it follows lasting changes (a busier machine, fewer CPUs,
// slower memory) within a few hashes, so the projected wait tracks what the
// workers really deliver, and a single hash stalled by a garbage collection
// or another process does not move it.
func (h *Hasher) observe(d time.Duration) {
	if h.fixed || d <= 0 {
		return
	}
	h.mu.Lock()
	h.recent[h.next%estimateWindow] = d
	h.next++
	n := min(h.next, estimateWindow)
	var sorted [estimateWindow]time.Duration
	copy(sorted[:], h.recent[:n])
	slices.Sort(sorted[:n])
	h.mu.Unlock()
	h.estimate.Store(int64(sorted[(n-1)/2]))
}

// Hash returns the PHC-encoded argon2id hash of password. It returns
// ErrOverloaded when the hasher has no room for the call (see HasherConfig)
// and ctx.Err() if ctx ends while waiting for a worker.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	m, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	return h.hashIn(m, password), nil
}

// HashIfIdle is Hash for work that may be skipped, such as re-hashing a
// password under new parameters after a login: it hashes only if a worker
// is idle now and returns ErrOverloaded otherwise, never waiting.
func (h *Hasher) HashIfIdle(ctx context.Context, password string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m, ok := h.tryAcquire()
	if !ok {
		return "", ErrOverloaded
	}
	return h.hashIn(m, password), nil
}

func (h *Hasher) hashIn(m *argon2Memory, password string) string {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go >= 1.24)
	key := h.run(m, []byte(password), salt, h.params)
	h.release(m)
	return EncodePHC(h.params, salt, key)
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
	m, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	got := h.run(m, []byte(password), salt, p)
	h.release(m)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}
