package crypto

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"runtime"
	"sync/atomic"
)

// ErrOverloaded is returned by Hash and Verify when all workers are busy and
// the waiting queue is full. Callers should map it to ResourceExhausted /
// Unavailable and let the client retry later.
var ErrOverloaded = errors.New("password hashing overloaded")

// NoQueue as HasherConfig.Queue means "never wait": when all workers are busy
// Hash/Verify return ErrOverloaded at once.
const NoQueue = -1

// HasherConfig configures a Hasher.
//
// Workers bounds the number of concurrent argon2 computations (<= 0 means
// GOMAXPROCS). Queue bounds the number of callers waiting for a worker
// (0 means the default 4*Workers; NoQueue (any negative value) means no
// waiting). Peak memory is therefore about base + Workers*Params.MemoryKiB.
// Zero fields of Params are filled from DefaultArgon2.
type HasherConfig struct {
	Params  Argon2Params
	Workers int
	Queue   int
}

// Hasher hashes and verifies passwords with argon2id, with bounded
// concurrency and a bounded waiting queue. It is safe for concurrent use.
type Hasher struct {
	params Argon2Params
	// slots holds one argon2Memory per idle worker: taking one is starting
	// a hash, and its memory is reused by the next hash, so the hash memory
	// stays at Workers x MemoryKiB however many logins come.
	slots   chan *argon2Memory
	queue   int64
	waiting atomic.Int64

	// derive is argon2idKey; tests replace it to hold a worker deterministically.
	derive func(mem *argon2Memory, password, salt []byte, p Argon2Params) []byte
}

// NewHasher returns a Hasher for cfg.
func NewHasher(cfg HasherConfig) *Hasher {
	workers := cfg.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	queue := cfg.Queue
	switch {
	case queue == 0:
		queue = 4 * workers
	case queue < 0:
		queue = 0
	}
	slots := make(chan *argon2Memory, workers)
	for range workers {
		slots <- new(argon2Memory) // allocated by its first hash
	}
	return &Hasher{
		params: cfg.Params.withDefaults(),
		slots:  slots,
		queue:  int64(queue),
		derive: argon2idKey,
	}
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() Argon2Params { return h.params }

// Workers returns the maximum number of concurrent hash computations.
func (h *Hasher) Workers() int { return cap(h.slots) }

// QueueLen returns the maximum number of callers that may wait for a worker.
func (h *Hasher) QueueLen() int { return int(h.queue) }

// Waiting returns the number of callers currently waiting for a worker.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// Saturated reports whether a Hash or Verify started now would most likely
// get ErrOverloaded: every worker busy and the queue full. It is a hint for
// shedding load before doing other work (it may race with calls finishing).
func (h *Hasher) Saturated() bool {
	return len(h.slots) == 0 && h.waiting.Load() >= h.queue
}

// acquire takes a worker slot, waiting in the bounded queue if needed.
func (h *Hasher) acquire(ctx context.Context) (*argon2Memory, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case m := <-h.slots:
		return m, nil
	default:
	}
	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
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

// run derives a key in the worker's memory. A stored hash made with more
// memory than the current parameters (before a rehash) gets memory of its
// own, so one old or hostile row cannot make a worker keep it.
func (h *Hasher) run(m *argon2Memory, password, salt []byte, p Argon2Params) []byte {
	if p.MemoryKiB > h.params.MemoryKiB {
		m = nil
	}
	return h.derive(m, password, salt, p)
}

// Hash returns the PHC-encoded argon2id hash of password. It returns
// ErrOverloaded when the hasher is saturated and ctx.Err() if ctx ends while
// waiting for a worker.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go >= 1.24)
	m, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	key := h.run(m, []byte(password), salt, h.params)
	h.release(m)
	return EncodePHC(h.params, salt, key), nil
}

// Verify checks password against a PHC-encoded hash in constant time. ok
// reports a match; needsRehash is true when the password matched but the hash
// was made with parameters other than h.Params() (store a fresh Hash then).
// A malformed encoded hash is an error wrapping ErrMalformedHash.
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
