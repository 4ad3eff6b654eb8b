// Package cache holds the small in-process caches UIAS components put in
// front of hot lookups (applications and tokens on the caller
// authentication path, records served to administrators).
package cache

import (
	"sync"
	"time"
)

// DefaultMax is the number of entries a TTL cache holds when its max is 0.
const DefaultMax = 10000

// TTL is a read-through cache whose entries live for a fixed time. At max
// entries, expired entries make room first, then everything goes (cheaper
// than LRU bookkeeping on every read; it refills on demand).
//
// Drop and Clear bump a generation: PutIfCurrent with a generation read
// before a store read does not cache what a concurrent write may already
// have made stale. The zero TTL caches nothing; all methods are safe for
// concurrent use.
type TTL[V any] struct {
	mu  sync.RWMutex
	ttl time.Duration
	max int
	gen uint64
	m   map[string]entry[V]
}

type entry[V any] struct {
	v   V
	exp time.Time
}

// NewTTL returns a cache whose entries live for ttl (<= 0: nothing is
// cached) and which holds at most max entries (0: DefaultMax).
func NewTTL[V any](ttl time.Duration, max int) *TTL[V] {
	return &TTL[V]{ttl: ttl, max: max}
}

// Get returns the entry of k unless it is missing or expired at now.
func (c *TTL[V]) Get(k string, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put caches v under k from now.
func (c *TTL[V]) Put(k string, v V, now time.Time) {
	c.mu.Lock()
	c.putLocked(k, v, now)
	c.mu.Unlock()
}

// Generation is read before a store read whose result goes to
// PutIfCurrent.
func (c *TTL[V]) Generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// PutIfCurrent caches v unless something was dropped since gen was read.
func (c *TTL[V]) PutIfCurrent(k string, v V, gen uint64, now time.Time) {
	c.mu.Lock()
	if gen == c.gen {
		c.putLocked(k, v, now)
	}
	c.mu.Unlock()
}

func (c *TTL[V]) putLocked(k string, v V, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	limit := c.max
	if limit <= 0 {
		limit = DefaultMax
	}
	if c.m == nil {
		c.m = map[string]entry[V]{}
	}
	if len(c.m) >= limit {
		for old, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, old)
			}
		}
		if len(c.m) >= limit {
			clear(c.m)
		}
	}
	c.m[k] = entry[V]{v: v, exp: now.Add(c.ttl)}
}

// Drop removes k.
func (c *TTL[V]) Drop(k string) {
	c.mu.Lock()
	c.gen++
	delete(c.m, k)
	c.mu.Unlock()
}

// Clear removes every entry.
func (c *TTL[V]) Clear() {
	c.mu.Lock()
	c.gen++
	c.m = nil
	c.mu.Unlock()
}

// Len returns the number of entries held, expired ones included.
func (c *TTL[V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
