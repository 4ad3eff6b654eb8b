package kvstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
)

// twoInstances starts NATS and two stores on their own connections.
func twoInstances(t *testing.T) (a, b *kvstore.Store, ncA *nats.Conn, jsB jetstream.JetStream) {
	t.Helper()
	ns := eventstest.NATS(t)
	ncA, jsA := eventstest.Connect(t, ns, nats.ReconnectWait(50*time.Millisecond))
	_, jsB = eventstest.Connect(t, ns, nats.ReconnectWait(50*time.Millisecond))
	o := kvstore.Options{Timeout: 10 * time.Second, SessionCache: time.Minute}
	return kvstore.New(jsA, o), kvstore.New(jsB, o), ncA, jsB
}

func guarded(session, service string) *ticket.Ticket {
	return &ticket.Ticket{Kind: ticket.KindST, SessionID: session, Service: service, UserID: "u1", Guarded: true}
}

// TestEndTickets: a session's end, told by another instance, removes the
// tickets of that session the instance keeps (and no other) and makes it
// refuse new ones for the session, before EndTickets returns; an instance
// named that does not run (no answerer) is no error; the end also drops
// the instance's copy of the session.
func TestEndTickets(t *testing.T) {
	a, b, _, _ := twoInstances(t)
	ctx := context.Background()
	sess := &ticket.Session{ID: "s1", UserID: "u1", HardExpiry: time.Now().Add(time.Hour), LastUsedAt: time.Now()}
	if err := a.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k1", "k2"} {
		if err := a.PutTicket(ctx, k, guarded("s1", k), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.PutTicket(ctx, "other", guarded("s2", "other"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.CachedSession("s1"); !ok {
		t.Fatal("A keeps no copy of the session it created")
	}
	if _, err := b.EndTickets(ctx, "s1", []string{a.Replica(), b.Replica(), "000000000000"}); err != nil {
		t.Fatalf("end told to A, B and a stopped instance: %v", err)
	}
	for _, k := range []string{"k1", "k2"} {
		if got, err := a.ConsumeTicket(ctx, a.Replica(), k); !errors.Is(err, ticket.ErrNotFound) {
			t.Fatalf("ticket %s of the ended session: %+v %v", k, got, err)
		}
	}
	if err := a.PutTicket(ctx, "k3", guarded("s1", "k3"), time.Minute); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("a new ticket of the ended session (issued from a stale copy): %v, want ErrNotFound", err)
	}
	if _, _, ok := a.CachedSession("s1"); ok {
		t.Fatal("A still answers its copy of the ended session")
	}
	if got, err := b.ConsumeTicket(ctx, a.Replica(), "other"); err != nil || !got.Guarded {
		t.Fatalf("another session's ticket: %+v %v", got, err)
	}
}

// TestEndSeenByTheWatch: a session ended where this instance could not be
// told (its record deleted by another process) still removes this
// instance's tickets of it once the watch of the sessions bucket brings
// the delete.
func TestEndSeenByTheWatch(t *testing.T) {
	a, _, _, jsB := twoInstances(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.WatchSessions(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	sess := &ticket.Session{ID: "s1", UserID: "u1", HardExpiry: time.Now().Add(time.Hour), LastUsedAt: time.Now()}
	if err := a.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.PutTicket(ctx, "k1", guarded("s1", "k1"), time.Minute); err != nil {
		t.Fatal(err)
	}
	kv, err := jsB.KeyValue(ctx, kvstore.BucketSessions)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "s.s1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Probe: a new ticket of the session is refused once the end is seen.
		err := a.PutTicket(ctx, "probe", guarded("s1", "probe"), time.Minute)
		if errors.Is(err, ticket.ErrNotFound) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("the watch did not bring the end: %v", err)
		}
		if _, err := a.ConsumeTicket(ctx, a.Replica(), "probe"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := a.ConsumeTicket(ctx, a.Replica(), "k1"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("the ticket of a session whose end the watch brought: %+v %v", got, err)
	}
}

// TestGuardLostWithTheConnection: an instance whose NATS connection broke
// after it kept a ticket may have missed its session's end (nobody could
// tell it): the ticket comes out unguarded (validation reads the session),
// and its copies of sessions are no longer used.
func TestGuardLostWithTheConnection(t *testing.T) {
	a, _, ncA, _ := twoInstances(t)
	ctx := context.Background()
	sess := &ticket.Session{ID: "s1", UserID: "u1", HardExpiry: time.Now().Add(time.Hour), LastUsedAt: time.Now()}
	if err := a.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"before", "kept"} {
		if err := a.PutTicket(ctx, k, guarded("s1", k), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := a.ConsumeTicket(ctx, a.Replica(), "before"); err != nil || !got.Guarded {
		t.Fatalf("before the break: %+v %v", got, err)
	}
	reconnected := make(chan struct{}, 1)
	ncA.SetReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} })
	if err := ncA.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reconnected:
	case <-time.After(30 * time.Second):
		t.Fatal("no reconnection")
	}
	if got, err := a.ConsumeTicket(ctx, a.Replica(), "kept"); err != nil || got.Guarded {
		t.Fatalf("a ticket kept before the break: %+v %v, want it unguarded", got, err)
	}
	if _, _, ok := a.CachedSession("s1"); ok {
		t.Fatal("a copy of a session from before the break is used")
	}
}

// TestEndTicketsHandsOverNotedUses: the uses an instance noted for a
// session (the latest ticket per service, NoteUse) are handed over by the
// session's end, told there or at another instance, once; a note past its
// time is dropped, and an instance that does not run hands nothing.
func TestEndTicketsHandsOverNotedUses(t *testing.T) {
	a, b, _, _ := twoInstances(t)
	ctx := context.Background()
	now := time.Now()
	later := now.Add(time.Hour)
	// An instance subscribes its answers when it keeps its first ticket.
	for _, st := range []*kvstore.Store{a, b} {
		if err := st.PutTicket(ctx, "k", guarded("s0", "k"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	a.NoteUse("s1", ticket.ServiceUse{Service: "https://x/", Ticket: "ST-1", At: now}, later)
	a.NoteUse("s1", ticket.ServiceUse{Service: "https://x/", Ticket: "ST-3", At: now.Add(2 * time.Second)}, later)
	a.NoteUse("s1", ticket.ServiceUse{Service: "https://x/", Ticket: "ST-2", At: now.Add(time.Second)}, later) // older: kept out
	a.NoteUse("s1", ticket.ServiceUse{Service: "https://y/", Ticket: "ST-9", At: now}, later)
	a.NoteUse("s2", ticket.ServiceUse{Service: "https://x/", Ticket: "ST-other", At: now}, later)
	b.NoteUse("s1", ticket.ServiceUse{Service: "https://z/", Ticket: "ST-b", At: now}, later)
	b.NoteUse("s3", ticket.ServiceUse{Service: "https://z/", Ticket: "ST-gone", At: now}, now.Add(-time.Second))
	uses, err := b.EndTickets(ctx, "s1", []string{a.Replica(), "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range uses {
		got[u.Service] = u.Ticket
	}
	if len(uses) != 3 || got["https://x/"] != "ST-3" || got["https://y/"] != "ST-9" || got["https://z/"] != "ST-b" {
		t.Fatalf("uses handed over: %+v", uses)
	}
	if uses, _ := b.EndTickets(ctx, "s1", []string{a.Replica()}); len(uses) != 0 {
		t.Fatalf("handed over twice: %+v", uses)
	}
	if uses, _ := a.EndTickets(ctx, "s3", []string{b.Replica()}); len(uses) != 0 {
		t.Fatalf("a note past its time: %+v", uses)
	}
	if uses, _ := b.EndTickets(ctx, "s2", []string{a.Replica()}); len(uses) != 1 || uses[0].Ticket != "ST-other" {
		t.Fatalf("another session's note: %+v", uses)
	}
}
