package ticket

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
)

// indexStore is a Store with a SessionIndex and nothing else (ListSessions
// reads only the index).
type indexStore struct {
	Store
	idx *SessionIndex
}

func (s indexStore) LiveSessions() *SessionIndex { return s.idx }
func (indexStore) Replica() string               { return "test" }

// indexFixture is a Service listing from an index of n sessions over orgs
// orgs and n/3 people; start times repeat (three sessions a millisecond),
// one session in ten has expired.
type indexFixture struct {
	svc  *Service
	idx  *SessionIndex
	now  time.Time
	all  map[string]*Session
	rev  uint64
	next int
}

func newIndexFixture(t testing.TB, n, orgs int) *indexFixture {
	t.Helper()
	f := &indexFixture{idx: NewSessionIndex(), now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC), all: map[string]*Session{}}
	svc, err := New(Deps{Store: indexStore{idx: f.idx}, MAC: crypto.NewSigner("k", map[string][]byte{"k": []byte("index test key")}), Registry: NewRegistry(nil, 0, nil),
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	for range n {
		f.add(orgs, n/3+1)
	}
	return f
}

// add indexes a new session (started later than every other).
func (f *indexFixture) add(orgs, people int) *Session {
	i := f.next
	f.next++
	start := f.now.Add(-time.Hour).Add(time.Duration(i/3) * time.Millisecond)
	s := &Session{ID: fmt.Sprintf("s%07d", (i*7919)%10000019), UserID: fmt.Sprintf("u%d", i%people),
		OrgID: fmt.Sprintf("o%d", (i/2)%orgs), CreatedAt: start, LastUsedAt: start, HardExpiry: start.Add(8 * time.Hour)}
	if i%10 == 9 {
		s.LastUsedAt = f.now.Add(-3 * time.Hour) // idle past 2h
	}
	f.rev++
	f.idx.Put(s, f.rev)
	f.all[s.ID] = s
	return s
}

func (f *indexFixture) remove(id string) {
	f.rev++
	f.idx.Remove(id, f.rev, f.now)
	delete(f.all, id)
}

// want is what a listing of q returns over every page, by brute force.
func (f *indexFixture) want(q SessionQuery) []string {
	var list []*Session
	for _, s := range f.all {
		if f.now.Before(s.Expiry(DefaultTGTIdle)) && (q.UserID == "" || s.UserID == q.UserID) && (q.Orgs == nil || q.Orgs[s.OrgID]) {
			list = append(list, s)
		}
	}
	slices.SortFunc(list, func(a, b *Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	return ids
}

// listAll pages through q; between two pages, between(page) may change
// the index.
func (f *indexFixture) listAll(t *testing.T, q SessionQuery, between func(int)) []string {
	t.Helper()
	var ids []string
	for page := 0; ; page++ {
		list, next, err := f.svc.ListSessions(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > q.PageSize || next != "" && len(list) != q.PageSize {
			t.Fatalf("page %d: %d sessions (page size %d), next %q", page, len(list), q.PageSize, next)
		}
		for _, s := range list {
			ids = append(ids, s.ID)
		}
		if next == "" {
			return ids
		}
		if page > 10000 {
			t.Fatal("pages without end")
		}
		q.PageToken = next
		if between != nil {
			between(page)
		}
	}
}

// TestSessionIndexPages: 3000 sessions over 40 orgs and 1000 people, start
// times shared by three sessions each; every listing (everyone, a subtree,
// no org, a person, a person within a subtree), paged 7 and 100 at a time,
// returns exactly the live sessions a full read returns, in its order.
func TestSessionIndexPages(t *testing.T) {
	f := newIndexFixture(t, 3000, 40)
	subtree := map[string]bool{"o3": true, "o4": true, "o17": true, "o39": true, "none": true}
	for _, q := range []SessionQuery{
		{}, {Orgs: subtree}, {Orgs: map[string]bool{}}, {UserID: "u7"}, {UserID: "u6", Orgs: subtree},
		{Orgs: map[string]bool{"o0": true}}, {UserID: "nobody"},
	} {
		for _, size := range []int{7, 100} {
			q.PageSize = size
			want := f.want(q)
			if got := f.listAll(t, q, nil); !slices.Equal(got, want) {
				t.Fatalf("query %+v: %d sessions listed, want %d (first differences at %v)", q, len(got), len(want), firstDiff(got, want))
			}
			if q.UserID == "" && q.Orgs == nil && len(want) != 2700 {
				t.Fatalf("every live session: %d, want 2700", len(want))
			}
		}
	}
	// Updates keep their place; an older revision and a removed session's
	// late copy change nothing.
	s := *f.all["s0007919"]
	s.LastUsedAt = s.LastUsedAt.Add(time.Minute)
	f.rev++
	f.idx.Put(&s, f.rev)
	stale := s
	stale.OrgID = "o39"
	f.idx.Put(&stale, f.rev-1)
	f.all[s.ID] = &s
	if got, want := f.listAll(t, SessionQuery{PageSize: 50}, nil), f.want(SessionQuery{}); !slices.Equal(got, want) {
		t.Fatalf("after an update: %v", firstDiff(got, want))
	}
	rev := f.rev
	f.remove(s.ID)
	f.idx.Put(&s, rev)
	if f.idx.Len() != len(f.all) {
		t.Fatalf("index of %d sessions after a removal and a late copy, want %d", f.idx.Len(), len(f.all))
	}
	if _, _, err := f.svc.ListSessions(context.Background(), SessionQuery{PageToken: "bad"}); err == nil {
		t.Fatal("a bad page token was taken")
	}
}

// TestSessionIndexPagesUnderChange: logins and logouts between pages
// neither repeat nor skip a session that lived throughout, and keep the
// order.
func TestSessionIndexPagesUnderChange(t *testing.T) {
	f := newIndexFixture(t, 3000, 40)
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, q := range []SessionQuery{{PageSize: 25}, {PageSize: 25, Orgs: map[string]bool{"o1": true, "o2": true, "o30": true}}} {
		before := f.want(q)
		removed := map[string]bool{}
		got := f.listAll(t, q, func(int) {
			for range 5 {
				f.add(40, 1001) // new logins: started after the listing began
			}
			ids := f.want(SessionQuery{})
			for range 3 {
				id := ids[rnd.IntN(len(ids))]
				removed[id] = true
				f.remove(id)
			}
		})
		pos := map[string]int{}
		for i, id := range before {
			pos[id] = i
		}
		seen := map[string]bool{}
		last := -1
		for _, id := range got {
			p, ok := pos[id]
			if !ok || seen[id] {
				t.Fatalf("query %+v: session %s listed that did not live throughout, or twice", q, id)
			}
			if p < last {
				t.Fatalf("query %+v: session %s out of order", q, id)
			}
			seen[id], last = true, p
		}
		for _, id := range before {
			if !seen[id] && !removed[id] {
				t.Fatalf("query %+v: session %s lived throughout and was not listed", q, id)
			}
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%d: %s vs %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// BenchmarkSessionPage: one page of 100 live sessions, the second page of
// each listing (a page token to seek), from indexes of 1 000 to 100 000
// sessions over 500 orgs: everyone's, a 100-org subtree's, a person's.
// The time per page should not grow with the sessions indexed.
func BenchmarkSessionPage(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		f := newIndexFixture(b, n, 500)
		subtree := map[string]bool{} // a fifth of the orgs
		for o := 0; o < 500; o += 5 {
			subtree[fmt.Sprintf("o%d", o)] = true
		}
		for _, c := range []struct {
			name string
			q    SessionQuery
		}{{"all", SessionQuery{}}, {"subtree", SessionQuery{Orgs: subtree}}, {"person", SessionQuery{UserID: "u5"}}} {
			b.Run(fmt.Sprintf("%s/sessions=%d", c.name, n), func(b *testing.B) {
				q := c.q
				q.PageSize = 100
				ctx := context.Background()
				first, next, err := f.svc.ListSessions(ctx, q)
				if err != nil || len(first) == 0 {
					b.Fatal(len(first), err)
				}
				q.PageToken = next
				b.ResetTimer()
				for range b.N {
					if _, _, err := f.svc.ListSessions(ctx, q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
