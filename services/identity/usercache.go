package identity

import (
	"context"
	"sync"
	"time"

	"github.com/uias/uias/pkg/events"
)

// userCache holds recently read users for the administrator read path
// (Service.GetUser). Decisions that must see the stored state (Authenticate,
// lockout, every read-modify-write) read the store, never the cache.
//
// Coherence: every user write made through this instance drops the user and
// bumps a generation; a read that started before a drop does not put what it
// read (it may predate the write). Writes made by another instance reach this
// one as CHANGES events (ForgetUser, wired by the binary) or expire after ttl.
type userCache struct {
	mu  sync.RWMutex
	ttl time.Duration
	max int
	gen uint64
	m   map[string]userEntry
}

type userEntry struct {
	u   User
	exp time.Time
}

// get returns a copy of the cached user id, if fresh.
func (c *userCache) get(id string, now time.Time) (*User, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		return nil, false
	}
	u := e.u
	return &u, true
}

// generation is read before a store read whose result may be put.
func (c *userCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches a copy of u unless a user was dropped since gen was read.
func (c *userCache) put(u *User, gen uint64, now time.Time) {
	if c.ttl <= 0 || u == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil {
		c.m = map[string]userEntry{}
	}
	if len(c.m) >= c.max {
		// Full: drop expired entries, and if that is not enough, everything
		// (cheaper than LRU bookkeeping on every read; refills on demand).
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[u.ID] = userEntry{u: *u, exp: now.Add(c.ttl)}
}

// forget drops id and invalidates reads in flight.
func (c *userCache) forget(id string) {
	c.mu.Lock()
	c.gen++
	delete(c.m, id)
	c.mu.Unlock()
}

// userCachingStore is the Store with every user write dropping the user
// from the cache after it (whether it failed or not: a failed write may
// still have committed before the error reached us).
type userCachingStore struct {
	Store
	c *userCache
}

func (s userCachingStore) UpdateUser(ctx context.Context, u *User, evs []events.Event) error {
	defer s.c.forget(u.ID)
	return s.Store.UpdateUser(ctx, u, evs)
}

func (s userCachingStore) SetPassword(ctx context.Context, userID, hash string, changedAt time.Time, mustChange bool, keep int, evs []events.Event) error {
	defer s.c.forget(userID)
	return s.Store.SetPassword(ctx, userID, hash, changedAt, mustChange, keep, evs)
}

func (s userCachingStore) RecordLoginFailure(ctx context.Context, userID string, maxFailures int, lockUntil, now time.Time, evs []events.Event) (*User, error) {
	defer s.c.forget(userID)
	return s.Store.RecordLoginFailure(ctx, userID, maxFailures, lockUntil, now, evs)
}

func (s userCachingStore) RecordLoginSuccess(ctx context.Context, userID, rehash string, now time.Time, evs []events.Event) error {
	defer s.c.forget(userID)
	return s.Store.RecordLoginSuccess(ctx, userID, rehash, now, evs)
}

// ForgetUser drops a user from this instance's caches. The binary calls it
// for every user CHANGES event, so a change made through another instance
// is seen here at once rather than after the cache TTL.
func (s *Service) ForgetUser(id string) {
	s.users.forget(id)
	// Administrator tokens cache the administrator's user record.
	s.tokens.clear()
}
