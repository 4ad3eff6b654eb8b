package ticket_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
)

// listed pages through every live session svc lists (100 a page).
func listed(t *testing.T, svc *ticket.Service, q ticket.SessionQuery) map[string]*ticket.Session {
	t.Helper()
	out := map[string]*ticket.Session{}
	q.PageSize = 100
	for {
		list, next, err := svc.ListSessions(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if out[s.ID] != nil {
				t.Fatalf("session %s on two pages", s.ID)
			}
			out[s.ID] = s
		}
		if q.PageToken = next; next == "" {
			return out
		}
	}
}

// eventually polls cond for 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watched starts st's index of live sessions and waits until it is loaded.
func watched(t *testing.T, st *kvstore.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); st.WatchSessions(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the index of live sessions is loaded", func() bool { return st.LiveSessions() != nil })
}

// TestLiveSessionsAcrossReplicas: two instances on one NATS, each listing
// from its index of live sessions fed by a watch of the sessions bucket.
// 1000 sessions started at A (over 10 orgs) are listed at A at once and
// at B when its watch brings them; a logout at A leaves both listings; a
// session written at B (a new service) reaches A's listing; an instance
// started later loads every session; one without an index reads the
// bucket and lists the same.
func TestLiveSessionsAcrossReplicas(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	stA, a := f.instance(t)
	stB, b := f.instance(t)
	watched(t, stA)
	watched(t, stB)
	ctx := context.Background()
	const n = 1000
	tgts := make([]string, n)
	for i := range tgts {
		tgt, _, err := a.CreateSession(ctx, ticket.NewSession{UserID: fmt.Sprintf("u%d", i%300), Login: "p",
			OrgID: fmt.Sprintf("o%d", i%10), AuthLevel: 1})
		if err != nil {
			t.Fatal(err)
		}
		tgts[i] = tgt
	}
	if got := len(listed(t, a, ticket.SessionQuery{})); got != n {
		t.Fatalf("A lists %d of the %d sessions it started", got, n)
	}
	eventually(t, fmt.Sprintf("B lists the %d sessions started at A", n), func() bool { return len(listed(t, b, ticket.SessionQuery{})) == n })
	sub := ticket.SessionQuery{Orgs: map[string]bool{"o3": true, "o7": true}}
	if got := len(listed(t, b, sub)); got != n/5 {
		t.Fatalf("B lists %d sessions of two orgs, want %d", got, n/5)
	}
	if got := len(listed(t, b, ticket.SessionQuery{UserID: "u42"})); got != 4 {
		t.Fatalf("B lists %d sessions of a person with 4, want 4", got)
	}

	gone := ticket.SessionID(tgts[17])
	if ended, err := a.DestroySession(ctx, tgts[17]); err != nil || !ended {
		t.Fatalf("logout at A: %v %v", ended, err)
	}
	if l := listed(t, a, ticket.SessionQuery{}); len(l) != n-1 || l[gone] != nil {
		t.Fatalf("A lists %d sessions after a logout there", len(l))
	}
	eventually(t, "B drops the session ended at A", func() bool { return listed(t, b, ticket.SessionQuery{})[gone] == nil })

	used := ticket.SessionID(tgts[5])
	if _, _, err := b.IssueServiceTicket(ctx, tgts[5], svcA, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A lists the service B recorded in a session", func() bool {
		s := listed(t, a, ticket.SessionQuery{UserID: "u5"})[used]
		return s != nil && len(s.AppIDs()) == 1 && s.AppIDs()[0] == "app1"
	})

	stC, c := f.instance(t)
	if got := len(listed(t, c, ticket.SessionQuery{})); got != n-1 {
		t.Fatalf("an instance without its index lists %d sessions, want %d", got, n-1)
	}
	watched(t, stC)
	if got := len(listed(t, c, ticket.SessionQuery{})); got != n-1 || stC.LiveSessions().Len() != n-1 {
		t.Fatalf("an instance started later lists %d sessions (%d indexed), want %d", got, stC.LiveSessions().Len(), n-1)
	}
}

// TestLiveSessionsExpire: a session's idle end removes it from the index
// (JetStream's marker of the expired key reaches the watch), not only
// from the listing.
func TestLiveSessionsExpire(t *testing.T) {
	f := newFixture(t, ticket.Config{TGTIdle: 2 * time.Second, TGTHard: time.Hour})
	st, svc := f.instance(t)
	watched(t, st)
	if _, _, err := svc.CreateSession(context.Background(), ticket.NewSession{UserID: "u1", Login: "p", AuthLevel: 1}); err != nil {
		t.Fatal(err)
	}
	if st.LiveSessions().Len() != 1 {
		t.Fatalf("%d sessions indexed, want 1", st.LiveSessions().Len())
	}
	eventually(t, "the expired session leaves the index", func() bool { return st.LiveSessions().Len() == 0 })
}
