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
	params  Argon2Params
	sem     chan struct{}
	queue   int64
	waiting atomic.Int64

	// derive is RawArgon2id; tests replace it to hold a worker deterministically.
	derive func(password, salt []byte, p Argon2Params) []byte
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
	return &Hasher{
		params: cfg.Params.withDefaults(),
		sem:    make(chan struct{}, workers),
		queue:  int64(queue),
		derive: RawArgon2id,
	}
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() Argon2Params { return h.params }

// Workers returns the maximum number of concurrent hash computations.
func (h *Hasher) Workers() int { return cap(h.sem) }

// QueueLen returns the maximum number of callers that may wait for a worker.
func (h *Hasher) QueueLen() int { return int(h.queue) }

// Waiting returns the number of callers currently waiting for a worker.
func (h *Hasher) Waiting() int { return int(h.waiting.Load()) }

// Saturated reports whether a Hash or Verify started now would most likely
// get ErrOverloaded: every worker busy and the queue full. It is a hint for
// shedding load before doing other work (it may race with calls finishing).
func (h *Hasher) Saturated() bool {
	return len(h.sem) == cap(h.sem) && h.waiting.Load() >= h.queue
}

// acquire takes a worker slot, waiting in the bounded queue if needed.
func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > h.queue {
		h.waiting.Add(-1)
		return ErrOverloaded
	}
	defer h.waiting.Add(-1)
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

// Hash returns the PHC-encoded argon2id hash of password. It returns
// ErrOverloaded when the hasher is saturated and ctx.Err() if ctx ends while
// waiting for a worker.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go >= 1.24)
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := h.derive([]byte(password), salt, h.params)
	h.release()
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
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	got := h.derive([]byte(password), salt, p)
	h.release()
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params, nil
}
