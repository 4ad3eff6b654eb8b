package caller

import (
	"sync"
	"time"
)

// RateLimiter is a token bucket per key (e.g. per App_ID). Safe for
// concurrent use.
type RateLimiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	rate   float64
	burst  float64
}

// NewRateLimiter returns a limiter with every bucket full.
func NewRateLimiter() *RateLimiter { return &RateLimiter{buckets: map[string]*bucket{}} }

// Allow takes one token from key's bucket at now and reports whether there
// was one. The bucket refills at rate tokens per second up to burst (< 1:
// rate, at least 1); rate <= 0 means unlimited. A key whose rate or burst
// changed starts again with a full bucket.
func (r *RateLimiter) Allow(key string, rate float64, burst int, now time.Time) bool {
	if rate <= 0 {
		return true
	}
	b := float64(burst)
	if b < 1 {
		b = rate
		if b < 1 {
			b = 1
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bk, ok := r.buckets[key]
	if !ok || bk.rate != rate || bk.burst != b {
		bk = &bucket{tokens: b, last: now, rate: rate, burst: b}
		r.buckets[key] = bk
	}
	bk.tokens += now.Sub(bk.last).Seconds() * bk.rate
	if bk.tokens > bk.burst {
		bk.tokens = bk.burst
	}
	bk.last = now
	if bk.tokens < 1 {
		return false
	}
	bk.tokens--
	return true
}
