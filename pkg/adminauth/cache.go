package adminauth

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// The decision cache: a component whose administrator RPCs are hot (identity:
// every admin read asks authz CheckAdmin) keeps authz's recent "allowed"
// answers for a short time instead of asking again for every call.
//
// Only allowed answers are kept (a refusal is always asked again), never the
// answers of a membership change (JoinGroup / JoinOrg, separation of duty),
// and an answer is keyed by everything the question holds: the
// administrator, the permission, the target person, every org, and the legacy
// flag. Who holds the token is not cached (Authenticate asks identity on
// every call: a logged-out, locked or disabled administrator is refused at
// once). A kept answer is used only while all of these hold:
//
//   - it is younger than the TTL (CacheOptions.TTL, identity.admin_decision_ttl,
//     default 1 s): the bound for everything below that cannot be seen
//     sooner, e.g. a revocation on an authz replica in another process, or a
//     grant reaching its valid_until;
//   - no answer seen since came from a newer authz revision (every
//     CheckAdmin answer carries the revision it was computed at);
//   - when authz runs in the same process (target all), its index has not
//     changed since the answer was asked for (CacheOptions.Local: the
//     index's generation, which moves with every grant, role, resource and
//     exclusion change and every org, membership or legacy-flag change
//     mirrored from identity). A revocation on this process's authz is
//     therefore seen by the very next call;
//   - no authz replica has said, since the answer was asked for, that it
//     applied a change of identity's org tree, of a person's org or of a
//     group's members that may take something away (DropDecisions,
//     revwatch.go).
//
// A listing's answer (which org subtrees the administrator may list) is kept
// the same way, with its subtrees.

// DefaultDecisionTTL is the decision cache's default TTL.
const DefaultDecisionTTL = time.Second

// maxCachedDecisions bounds the cache; when full it starts again empty.
const maxCachedDecisions = 16384

// LocalDecisions is what an authz component running in the same process
// offers the cache: a number that moves whenever any of its answers may
// change.
type LocalDecisions interface {
	DecisionGeneration() uint64
}

// CacheOptions configure Verifier.CacheDecisions.
type CacheOptions struct {
	// TTL is the longest an allowed answer is used (0 or less: no cache).
	TTL time.Duration
	// Local, when not nil, finds the authz component of this process (nil
	// while it is not started: then nothing is cached). Set it exactly when
	// authz runs in this process (the connection given to New is then
	// in-process).
	Local func() LocalDecisions
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

type decision struct {
	at     time.Time
	rev    int64
	gen    uint64
	epoch  uint64
	scopes []string // a listing's subtrees
}

type decisionCache struct {
	ttl   time.Duration
	now   func() time.Time
	local func() LocalDecisions
	found atomic.Pointer[LocalDecisions] // local, once found

	// maxRev: the newest revision any answer came from.
	maxRev atomic.Int64
	// epoch moves with every DropDecisions; mirrorSeq is the highest
	// stream sequence given to it.
	epoch     atomic.Uint64
	mirrorSeq atomic.Int64

	mu sync.RWMutex
	m  map[string]decision
}

// CacheDecisions makes v keep authz's allowed answers as described above.
// Call it once, before v is used.
func (v *Verifier) CacheDecisions(o CacheOptions) {
	if o.TTL <= 0 {
		v.cache = nil
		return
	}
	c := &decisionCache{ttl: o.TTL, now: o.Now, local: o.Local, m: map[string]decision{}}
	if c.now == nil {
		c.now = time.Now
	}
	v.cache = c
}

// generation returns the local authz's generation; ok is false when the
// cache must not be used (authz is local but not started).
func (c *decisionCache) generation() (uint64, bool) {
	if c.local == nil {
		return 0, true
	}
	if p := c.found.Load(); p != nil {
		return (*p).DecisionGeneration(), true
	}
	l := c.local()
	if l == nil {
		return 0, false
	}
	c.found.Store(&l)
	return l.DecisionGeneration(), true
}

// appendKey appends req's cache key to b; ok is false when the answer is
// never kept (a membership change).
func appendKey(b []byte, r *authzv1.CheckAdminRequest) ([]byte, bool) {
	if r.GetJoinGroup() != "" || r.GetJoinOrg() != "" {
		return b, false
	}
	return appendKeyOf(b, r.GetPerson(), r.GetResource(), r.GetOperation(), r.GetTargetPerson(),
		r.GetSystemAdminFlag(), r.GetListing(), r.GetOrgs(), false), true
}

// appendKeyOf is appendKey of a question given by its fields; skipEmpty
// leaves out the empty orgs, as Check leaves them out of its question.
func appendKeyOf(b []byte, person, resource, operation, target string, systemAdmin, listing bool, orgs []string, skipEmpty bool) []byte {
	flag := "0"
	switch {
	case systemAdmin && listing:
		flag = "3"
	case listing:
		flag = "2"
	case systemAdmin:
		flag = "1"
	}
	for _, s := range [...]string{person, resource, operation, target, flag} {
		b = append(b, s...)
		b = append(b, 0)
	}
	for _, o := range orgs {
		if o == "" && skipEmpty {
			continue
		}
		b = append(b, o...)
		b = append(b, 0)
	}
	return b
}

// allowedKept reports whether the cache holds a usable allowed answer
// (with no separation-of-duty conflict: only those are kept) to the
// question Check would ask for a and rq, without building it (the common
// path of every administrator call).
func (c *decisionCache) allowedKept(a *Admin, rq Request) bool {
	if rq.JoinGroup != "" || rq.JoinOrg != "" {
		return false
	}
	var buf [160]byte
	key := appendKeyOf(buf[:0], a.ID, rq.Perm.Resource, rq.Perm.Operation, rq.Target, a.SystemAdminFlag, false, rq.Orgs, true)
	_, ok := c.lookup(key)
	return ok
}

// lookup returns the usable allowed answer key holds, if any (key: as
// appendKey builds it; the map is read without a string copy).
func (c *decisionCache) lookup(key []byte) (decision, bool) {
	gen, ok := c.generation()
	if !ok {
		return decision{}, false
	}
	c.mu.RLock()
	d, found := c.m[string(key)]
	c.mu.RUnlock()
	if !found {
		return decision{}, false
	}
	age := c.now().Sub(d.at)
	return d, age >= 0 && age < c.ttl && d.gen == gen && d.epoch == c.epoch.Load() && d.rev >= c.maxRev.Load()
}

// observe records the revision of an answer (any answer: a refusal or an
// answer not kept still tells that authz moved on).
func (c *decisionCache) observe(rev int64) {
	for {
		cur := c.maxRev.Load()
		if rev <= cur || c.maxRev.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// drop ends the reuse of every kept answer and of every answer being asked
// for; seq (if higher) becomes mirrorSeq, after the drop.
func (c *decisionCache) drop(seq int64) {
	c.epoch.Add(1)
	for {
		cur := c.mirrorSeq.Load()
		if seq <= cur || c.mirrorSeq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

// store keeps an allowed answer asked for at start (its clock and local
// generation read before the question was sent).
func (c *decisionCache) store(key string, d decision) {
	c.mu.Lock()
	if len(c.m) >= maxCachedDecisions {
		c.m = make(map[string]decision)
	}
	c.m[key] = d
	c.mu.Unlock()
}

// cachedCheckAdmin answers req from the cache or asks authz (ask) and
// keeps an allowed answer.
func (c *decisionCache) cachedCheckAdmin(req *authzv1.CheckAdminRequest,
	ask func() (*authzv1.CheckAdminResponse, error)) (*authzv1.CheckAdminResponse, error) {
	var buf [160]byte // most keys: no allocation on a hit
	key, cacheable := appendKey(buf[:0], req)
	if cacheable {
		if d, ok := c.lookup(key); ok {
			return &authzv1.CheckAdminResponse{Allowed: true, Revision: c.maxRev.Load(), ScopeOrgs: d.scopes}, nil
		}
	}
	// The clock, the generation and the epoch are read before asking:
	// whatever changes meanwhile makes the kept answer stale, never the
	// reverse.
	at := c.now()
	gen, genOK := c.generation()
	epoch := c.epoch.Load()
	r, err := ask()
	if err != nil {
		return r, err
	}
	c.observe(r.GetRevision())
	if cacheable && genOK && r.GetAllowed() && r.GetSodConflict() == "" {
		c.store(string(key), decision{at: at, rev: r.GetRevision(), gen: gen, epoch: epoch, scopes: slices.Clone(r.GetScopeOrgs())})
	}
	return r, nil
}
