package ticket

import (
	"container/heap"
	"slices"
	"sort"
	"sync"
	"time"
)

// SessionIndex keeps the live sessions in memory, ordered as ListSessions
// lists them (the latest started first, then by id) and by org and by
// person, so that a page costs what it returns: a binary search to the
// page token, then the page's entries (merged over the orgs of a subtree
// with a heap). The kvstore feeds it from a watch of its sessions bucket
// and with its own writes at once (Put, Remove).
//
// Entries are replaced, never changed: the sessions a page returns must
// not be modified by the caller.
type SessionIndex struct {
	mu     sync.RWMutex
	byID   map[string]*indexedSession
	all    sessionSet
	byOrg  map[string]*sessionSet
	byUser map[string]map[string]*indexedSession
	// gone remembers sessions removed, at the revision removed, so that a
	// late copy of an older revision (the watch delivering a write that
	// came before this instance's delete) does not bring one back.
	gone    map[string]goneSession
	removes int
}

type indexedSession struct {
	s   *Session
	rev uint64
	key sessionKey
}

type goneSession struct {
	rev uint64
	at  time.Time
}

// goneKeep is how long a removed session's revision is remembered.
const goneKeep = 2 * time.Minute

// sessionKey orders the listing: start time, then id.
type sessionKey struct {
	ns int64
	id string
}

func keyOfSession(s *Session) sessionKey { return sessionKey{ns: s.CreatedAt.UnixNano(), id: s.ID} }

// stored is the order of a sessionSet's slice: the listing order reversed
// (the latest started last, so that a new session is appended).
func stored(a, b sessionKey) bool {
	if a.ns != b.ns {
		return a.ns < b.ns
	}
	return a.id > b.id
}

// sessionSet is a slice of sessions in stored order.
type sessionSet []*indexedSession

// search is the position of k in the set, or where it would go.
func (s sessionSet) search(k sessionKey) int {
	return sort.Search(len(s), func(i int) bool { return !stored(s[i].key, k) })
}

func (s *sessionSet) put(e *indexedSession) {
	i := s.search(e.key)
	if i < len(*s) && (*s)[i].key == e.key {
		(*s)[i] = e
		return
	}
	*s = slices.Insert(*s, i, e)
}

func (s *sessionSet) remove(k sessionKey) {
	if i := s.search(k); i < len(*s) && (*s)[i].key == k {
		*s = slices.Delete(*s, i, i+1)
	}
}

// NewSessionIndex returns an empty index.
func NewSessionIndex() *SessionIndex {
	return &SessionIndex{byID: map[string]*indexedSession{}, byOrg: map[string]*sessionSet{},
		byUser: map[string]map[string]*indexedSession{}, gone: map[string]goneSession{}}
}

// Len is the number of sessions indexed (some may have expired since).
func (x *SessionIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

// Put records s at revision rev, unless the index holds that revision or
// a later one, or removed the session at it or later. The index keeps s:
// the caller must not change it afterwards.
func (x *SessionIndex) Put(s *Session, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if g, ok := x.gone[s.ID]; ok && rev <= g.rev {
		return
	}
	old := x.byID[s.ID]
	if old != nil && rev <= old.rev {
		return
	}
	e := &indexedSession{s: s, rev: rev, key: keyOfSession(s)}
	if old != nil && old.key == e.key && old.s.OrgID == s.OrgID && old.s.UserID == s.UserID {
		// The usual update (last use, services): same place everywhere.
		x.byID[s.ID] = e
		x.all.put(e)
		x.byOrg[s.OrgID].put(e)
		x.byUser[s.UserID][s.ID] = e
		return
	}
	if old != nil {
		x.unlink(old)
	}
	x.byID[s.ID] = e
	x.all.put(e)
	set := x.byOrg[s.OrgID]
	if set == nil {
		set = &sessionSet{}
		x.byOrg[s.OrgID] = set
	}
	set.put(e)
	u := x.byUser[s.UserID]
	if u == nil {
		u = map[string]*indexedSession{}
		x.byUser[s.UserID] = u
	}
	u[s.ID] = e
}

// Remove drops session id, removed at revision rev (its last revision
// known or the delete's own).
func (x *SessionIndex) Remove(id string, rev uint64, now time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if g, ok := x.gone[id]; !ok || rev > g.rev {
		x.gone[id] = goneSession{rev: rev, at: now}
	}
	if old := x.byID[id]; old != nil && old.rev <= rev {
		x.unlink(old)
		delete(x.byID, id)
	}
	if x.removes++; x.removes%1024 == 0 {
		for k, g := range x.gone {
			if now.Sub(g.at) > goneKeep {
				delete(x.gone, k)
			}
		}
	}
}

// unlink removes e from the ordered sets and the person's map.
func (x *SessionIndex) unlink(e *indexedSession) {
	x.all.remove(e.key)
	if set := x.byOrg[e.s.OrgID]; set != nil {
		if set.remove(e.key); len(*set) == 0 {
			delete(x.byOrg, e.s.OrgID)
		}
	}
	if u := x.byUser[e.s.UserID]; u != nil {
		if delete(u, e.s.ID); len(u) == 0 {
			delete(x.byUser, e.s.UserID)
		}
	}
}

// page returns up to n sessions matching q that are live at now (idle:
// the idle timeout), after the key after (nil: from the first), in
// listing order, and whether more follow.
func (x *SessionIndex) page(q SessionQuery, after *sessionKey, now time.Time, idle time.Duration, n int) ([]*Session, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	live := func(e *indexedSession) bool {
		return now.Before(e.s.Expiry(idle)) && (q.UserID == "" || e.s.UserID == q.UserID) &&
			(q.Orgs == nil || q.Orgs[e.s.OrgID])
	}
	var out []*Session
	if q.UserID != "" {
		// A person's sessions are few: sort them.
		var list []*indexedSession
		for _, e := range x.byUser[q.UserID] {
			if live(e) && (after == nil || stored(e.key, *after)) {
				list = append(list, e)
			}
		}
		slices.SortFunc(list, func(a, b *indexedSession) int {
			switch {
			case stored(b.key, a.key):
				return -1
			case stored(a.key, b.key):
				return 1
			}
			return 0
		})
		for _, e := range list {
			if len(out) == n {
				return out, true
			}
			out = append(out, e.s)
		}
		return out, false
	}
	var m merge
	add := func(set sessionSet) {
		end := len(set)
		if after != nil {
			end = set.search(*after) // the entries stored before it come after it in the listing
		}
		if end > 0 {
			m = append(m, cursor{set: set, pos: end - 1})
		}
	}
	switch {
	case q.Orgs == nil:
		add(x.all)
	case len(q.Orgs) <= len(x.byOrg):
		for org := range q.Orgs {
			if set := x.byOrg[org]; set != nil {
				add(*set)
			}
		}
	default:
		for org, set := range x.byOrg {
			if q.Orgs[org] {
				add(*set)
			}
		}
	}
	heap.Init(&m)
	for len(m) > 0 {
		c := &m[0]
		e := c.set[c.pos]
		if c.pos--; c.pos < 0 {
			heap.Pop(&m)
		} else {
			heap.Fix(&m, 0)
		}
		if !live(e) {
			continue
		}
		if len(out) == n {
			return out, true
		}
		out = append(out, e.s)
	}
	return out, false
}

// cursor walks a sessionSet from pos down (in listing order).
type cursor struct {
	set sessionSet
	pos int
}

// merge is a heap of cursors, the one whose next entry comes first in the
// listing on top.
type merge []cursor

func (m merge) Len() int           { return len(m) }
func (m merge) Less(i, j int) bool { return stored(m[j].set[m[j].pos].key, m[i].set[m[i].pos].key) }
func (m merge) Swap(i, j int)      { m[i], m[j] = m[j], m[i] }
func (m *merge) Push(v any)        { *m = append(*m, v.(cursor)) }
func (m *merge) Pop() any {
	old := *m
	v := old[len(old)-1]
	*m = old[:len(old)-1]
	return v
}
