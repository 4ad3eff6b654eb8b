package identity

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// adminTokenCache keeps, for Config.AdminTokenCacheTTL, what an
// administrator token resolved to (the token row and its administrator), so
// that a burst of administrator calls does not read both from the store on
// every call. It follows the admin decision cache of pkg/adminauth (the
// same TTL, identity.admin_decision_ttl): what this instance changes ends
// the reuse at once, what another instance changes is bounded by the TTL.
//
//   - A logout through this instance drops its token (AdminLogout); its
//     CHANGES event (uias.changes.identity.admin_token.revoked, with the
//     administrator's id, never the token or its hash) makes every other
//     instance drop the administrator's tokens (ForgetRevokedTokens).
//   - Every write of a user through this instance (status, lock, password,
//     the login gate, the is_admin flag) and every user CHANGES event from
//     another instance (ForgetUser) drops the user's tokens: the writes
//     that revoke tokens in the store are among them.
//   - The checks that depend on time (hard expiry, idle expiry) and on
//     authz (mayAdmin, with its own decision cache) run on every call.
type adminTokenCache struct {
	ttl time.Duration

	mu     sync.Mutex
	gen    uint64 // bumped by every drop (see put)
	byHash map[string]*adminTokenEntry
	byUser map[string][]string
	// reading: the store reads under way of tokens that missed (shared)
	reading map[string]*tokenRead
}

// tokenRead is what the store said of a token that missed the cache: the
// token and its administrator, or the error of the read that failed
// (userErr: the read of the token's user). As a read under way (shared),
// it also holds when it began and when it is done.
type tokenRead struct {
	t       *AdminToken
	u       *User
	err     error
	userErr bool
	gen     cacheGen
	done    chan struct{}
}

// cacheGen is what put compares: the generations of this cache and of the
// user cache, read before the store reads.
type cacheGen struct{ tokens, users uint64 }

type adminTokenEntry struct {
	token AdminToken
	user  User
	exp   time.Time // end of the reuse
}

// adminTokenCacheMax bounds the entries; at the bound everything goes (it
// refills on demand).
const adminTokenCacheMax = 4096

func newAdminTokenCache(ttl time.Duration) *adminTokenCache {
	return &adminTokenCache{ttl: ttl}
}

// get returns a copy of the token cached for hash and its user, if still
// reusable at now. The user is the entry's own, shared by every caller:
// it is never changed (put makes a new entry), and callers only read it.
func (c *adminTokenCache) get(hash []byte, now time.Time) (AdminToken, *User, bool) {
	if c.ttl <= 0 {
		return AdminToken{}, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byHash[string(hash)] // no string made for the lookup
	if !ok || !now.Before(e.exp) {
		return AdminToken{}, nil, false
	}
	return e.token, &e.user, true
}

// shared returns read's result for hash: made by this caller, or by a
// caller whose read of the same token is under way and began after the
// last drop (a burst of calls with one token when its reuse ends reads it
// once, not once per call). read must put what it read (put). The result
// is the caller's own copy. A caller whose ctx ends while it waits gets
// ctx's error.
func (c *adminTokenCache) shared(ctx context.Context, hash string, users interface{ Generation() uint64 }, read func(gen cacheGen) tokenRead) tokenRead {
	if c.ttl <= 0 {
		return read(c.generation(users))
	}
	c.mu.Lock()
	gen := cacheGen{tokens: c.gen, users: users.Generation()}
	if l, ok := c.reading[hash]; ok && l.gen == gen {
		c.mu.Unlock()
		select {
		case <-l.done:
		case <-ctx.Done():
			return tokenRead{err: ctx.Err()}
		}
		r := tokenRead{err: l.err, userErr: l.userErr}
		if l.t != nil {
			t := *l.t
			r.t = &t
		}
		if l.u != nil {
			u := *l.u
			r.u = &u
		}
		return r
	}
	l := &tokenRead{gen: gen, done: make(chan struct{})}
	if c.reading == nil {
		c.reading = map[string]*tokenRead{}
	}
	c.reading[hash] = l
	c.mu.Unlock()
	r := read(gen)
	c.mu.Lock()
	l.t, l.u, l.err, l.userErr = r.t, r.u, r.err, r.userErr
	if c.reading[hash] == l {
		delete(c.reading, hash)
	}
	c.mu.Unlock()
	close(l.done)
	if r.t != nil { // the waiters copy what they read: this copy is the caller's
		t := *r.t
		r.t = &t
	}
	if r.u != nil {
		u := *r.u
		r.u = &u
	}
	return r
}

// generation is read before the store reads whose result goes to put.
func (c *adminTokenCache) generation(users interface{ Generation() uint64 }) cacheGen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cacheGen{tokens: c.gen, users: users.Generation()}
}

// put caches t and u, read from the store at now, unless gen (read
// before the store reads) shows that a token or a user was dropped
// meanwhile: what was read may be stale, so it is not kept.
func (c *adminTokenCache) put(t *AdminToken, u *User, gen cacheGen, users interface{ Generation() uint64 }, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen.tokens || users.Generation() != gen.users {
		return
	}
	if len(c.byHash) >= adminTokenCacheMax {
		c.byHash, c.byUser = nil, nil
	}
	if c.byHash == nil {
		c.byHash, c.byUser = map[string]*adminTokenEntry{}, map[string][]string{}
	}
	if _, dup := c.byHash[t.Hash]; !dup {
		c.byUser[u.ID] = append(c.byUser[u.ID], t.Hash)
	}
	c.byHash[t.Hash] = &adminTokenEntry{token: *t, user: *u, exp: now.Add(c.ttl)}
}

// touched records a use of the token written to the store at now, so the
// next calls do not write it again.
func (c *adminTokenCache) touched(hash string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byHash[hash]; ok {
		e.token.LastUsedAt = now
	}
}

// dropToken forgets one token (logout).
func (c *adminTokenCache) dropToken(hash string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.byHash, hash)
}

// dropUser forgets every token of a user.
func (c *adminTokenCache) dropUser(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, h := range c.byUser[userID] {
		delete(c.byHash, h)
	}
	delete(c.byUser, userID)
}

// adminTokenEntity is the entity of the CHANGES events of administrator
// tokens: uias.changes.identity.admin_token.revoked on a logout, id the
// administrator's user id. Only identity's instances read them (they are
// not replicated between centres, nor provisioned).
const adminTokenEntity = "admin_token"

// AdminTokenChangesSubject matches the CHANGES events of administrator
// tokens (wired by the binary to ForgetRevokedTokens).
const AdminTokenChangesSubject = changesSubjectPrefix + adminTokenEntity + ".>"

// ForgetRevokedTokens drops, for the payload of a CHANGES event on
// AdminTokenChangesSubject, what this instance keeps of the
// administrator's tokens: the next call with one reads it from the store,
// where a logged-out token is gone. A payload without an id is ignored.
func (s *Service) ForgetRevokedTokens(payload []byte) {
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(payload, &ev) == nil && ev.ID != "" {
		s.adminTokens.dropUser(ev.ID)
	}
}
