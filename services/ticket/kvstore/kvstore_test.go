package kvstore_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
)

func TestRecordsExpireByKeyTTL(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	st := kvstore.New(js, kvstore.Options{})
	ctx := context.Background()
	now := time.Now()
	sess := &ticket.Session{ID: "s1", UserID: "u1", CreatedAt: now, LastUsedAt: now, HardExpiry: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, sess, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.PutPGT(ctx, "p1", &ticket.PGT{UserID: "u1"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.PutTicket(ctx, "k1", &ticket.Ticket{Kind: ticket.KindST, Service: "x"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.PutTicket(ctx, "k2", &ticket.Ticket{Kind: ticket.KindST, Service: "x"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The buckets are set up for per-key TTL, on file.
	for _, bucket := range []string{kvstore.BucketSessions, kvstore.BucketTickets} {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		status, _ := kv.Status(ctx)
		if status.LimitMarkerTTL() <= 0 {
			t.Fatalf("bucket %s without LimitMarkerTTL: %+v", bucket, status)
		}
		if got := status.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage; got != jetstream.FileStorage {
			t.Fatalf("bucket %s: storage %v, want file", bucket, got)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, errS := st.GetSession(ctx, "s1")
		_, errP := st.GetPGT(ctx, "p1")
		if errors.Is(errS, ticket.ErrNotFound) && errors.Is(errP, ticket.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records with a 1 s TTL still there after 15 s: %v %v", errS, errP)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The service tickets are in this instance's memory, with their TTL.
	if _, err := st.ConsumeTicket(ctx, st.Replica(), "k1"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("a ticket with a 1 s TTL after more than 1 s: %v", err)
	}
	if _, err := st.ConsumeTicket(ctx, st.Replica(), "k2"); err != nil {
		t.Fatalf("a ticket with a long TTL went too: %v", err)
	}
	if _, err := st.ConsumeTicket(ctx, st.Replica(), "k2"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("consumed twice: %v", err)
	}
}

// A restart of NATS loses no session: the buckets are file-backed.
func TestSessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ns, err := events.StartEmbeddedNATS(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := nats.Connect(ns.ClientURL())
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	now := time.Now()
	sess := &ticket.Session{ID: "s1", UserID: "u1", Login: "l", CreatedAt: now, LastUsedAt: now, HardExpiry: now.Add(time.Hour)}
	if err := kvstore.New(js, kvstore.Options{}).CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ns.Shutdown()
	ns.WaitForShutdown()

	ns, err = events.StartEmbeddedNATS(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, _ = nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ = jetstream.New(nc)
	st := kvstore.New(js, kvstore.Options{})
	got, _, err := st.GetSession(ctx, "s1")
	if err != nil || got.UserID != "u1" {
		t.Fatalf("session after a restart: %+v %v", got, err)
	}
	ids, err := st.UserSessions(ctx, "u1")
	if err != nil || len(ids) != 1 || ids[0] != "s1" {
		t.Fatalf("index after a restart: %v %v", ids, err)
	}
}

// TestServiceTicketsAfterRestart: the service tickets an instance keeps
// survive a restart of the NATS server (they are in its memory), and
// another instance validates them through NATS again once reconnected;
// the session is still there.
func TestServiceTicketsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ns, err := events.StartEmbeddedNATS(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	port := ns.Addr().(*net.TCPAddr).Port
	conn := func() jetstream.JetStream {
		nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		return js
	}
	jsA, jsB := conn(), conn()
	st := kvstore.New(jsA, kvstore.Options{Timeout: 5 * time.Second})
	other := kvstore.New(jsB, kvstore.Options{Timeout: 5 * time.Second})
	ctx := context.Background()
	now := time.Now()
	sess := &ticket.Session{ID: "s1", UserID: "u1", Login: "l", CreatedAt: now, LastUsedAt: now, HardExpiry: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mine", "theirs"} {
		if err := st.PutTicket(ctx, k, &ticket.Ticket{Kind: ticket.KindST, Service: k}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	ns, err = events.StartEmbeddedNATS(dir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if got, err := st.ConsumeTicket(ctx, st.Replica(), "mine"); err != nil || got.Service != "mine" {
		t.Fatalf("ticket from before the restart, at its instance: %+v %v", got, err)
	}
	// Once both are connected again (a request may find no answerer while
	// the owner resubscribes: retried), the other instance gets it once.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := other.ConsumeTicket(ctx, st.Replica(), "theirs")
		if err == nil {
			if got.Service != "theirs" {
				t.Fatalf("ticket from before the restart, at another instance: %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ticket from before the restart, at another instance: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := other.ConsumeTicket(ctx, st.Replica(), "theirs"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("consumed twice: %v", err)
	}
	for {
		got, _, err := st.GetSession(ctx, "s1")
		if err == nil && got.UserID == "u1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session after the restart: %+v %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOwnedTicketsAcrossInstances: a ticket kept by one instance is
// consumed once, at that instance or at another (through NATS), whichever
// asks first; an instance that has stopped (its connection closed) takes
// its tickets with it (not found); an unknown instance likewise.
func TestOwnedTicketsAcrossInstances(t *testing.T) {
	ns := eventstest.NATS(t)
	ncA, jsA := eventstest.Connect(t, ns)
	_, jsB := eventstest.Connect(t, ns)
	a := kvstore.New(jsA, kvstore.Options{Timeout: 5 * time.Second})
	b := kvstore.New(jsB, kvstore.Options{Timeout: 5 * time.Second})
	if a.Replica() == b.Replica() || !ticket.ValidReplica(a.Replica()) {
		t.Fatalf("instance names %q and %q", a.Replica(), b.Replica())
	}
	ctx := context.Background()
	for _, k := range []string{"k1", "k2", "k3"} {
		if err := a.PutTicket(ctx, k, &ticket.Ticket{Kind: ticket.KindST, Service: k, UserID: "u1"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := b.ConsumeTicket(ctx, a.Replica(), "k1"); err != nil || got.Service != "k1" || got.UserID != "u1" {
		t.Fatalf("A's ticket at B: %+v %v", got, err)
	}
	for _, s := range []*kvstore.Store{a, b} {
		if _, err := s.ConsumeTicket(ctx, a.Replica(), "k1"); !errors.Is(err, ticket.ErrNotFound) {
			t.Fatalf("A's ticket again after B consumed it: %v", err)
		}
	}
	if _, err := a.ConsumeTicket(ctx, a.Replica(), "k2"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ConsumeTicket(ctx, a.Replica(), "k2"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("at B after A consumed it: %v", err)
	}
	if _, err := b.ConsumeTicket(ctx, "000000000000", "k3"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("an unknown instance's ticket: %v", err)
	}
	// Stopped: once the server has dropped A's subscription, not found
	// (until then a request may wait for A and time out).
	ncA.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := b.ConsumeTicket(ctx, a.Replica(), "k3")
		if errors.Is(err, ticket.ErrNotFound) {
			break
		}
		if err == nil || time.Now().After(deadline) {
			t.Fatalf("the ticket of a stopped instance: %+v %v", got, err)
		}
	}
}

// TestPeekTicket: a ticket's record is read, at its instance or another,
// without taking it out: it is consumed once after any number of peeks;
// an unknown or consumed ticket, or one of an unknown instance, is not
// found.
func TestPeekTicket(t *testing.T) {
	ns := eventstest.NATS(t)
	_, jsA := eventstest.Connect(t, ns)
	_, jsB := eventstest.Connect(t, ns)
	a := kvstore.New(jsA, kvstore.Options{Timeout: 5 * time.Second})
	b := kvstore.New(jsB, kvstore.Options{Timeout: 5 * time.Second})
	ctx := context.Background()
	if err := a.PutTicket(ctx, "k1", &ticket.Ticket{Kind: ticket.KindST, Service: "s1", UserID: "u1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*kvstore.Store{"its instance": a, "another": b} {
		for range 2 {
			if got, err := s.PeekTicket(ctx, a.Replica(), "k1"); err != nil || got.UserID != "u1" || got.Service != "s1" {
				t.Fatalf("peek at %s: %+v %v", name, got, err)
			}
		}
	}
	if got, err := b.ConsumeTicket(ctx, a.Replica(), "k1"); err != nil || got.UserID != "u1" {
		t.Fatalf("consumed after the peeks: %+v %v", got, err)
	}
	for name, s := range map[string]*kvstore.Store{"its instance": a, "another": b} {
		if _, err := s.PeekTicket(ctx, a.Replica(), "k1"); !errors.Is(err, ticket.ErrNotFound) {
			t.Fatalf("peek at %s after the consume: %v", name, err)
		}
		if _, err := s.PeekTicket(ctx, a.Replica(), "nope"); !errors.Is(err, ticket.ErrNotFound) {
			t.Fatalf("peek at %s of an unknown ticket: %v", name, err)
		}
	}
	if _, err := b.PeekTicket(ctx, "000000000000", "k1"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("an unknown instance's ticket: %v", err)
	}
}

// TestCodeGrantsAreCreateOnly: a code grant is written once (a second
// write, as a replay's mark racing the exchange's grant, is a conflict),
// read back whole and ended by its deletion; the tokens it ends read
// not found after theirs.
func TestCodeGrantsAreCreateOnly(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	st := kvstore.New(js, kvstore.Options{})
	ctx := context.Background()
	g := &ticket.CodeGrant{ClientID: "app1", UserID: "u1", OrgID: "o1"}
	if err := st.PutCodeGrant(ctx, "g1", g, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.PutCodeGrant(ctx, "g1", &ticket.CodeGrant{ClientID: "app2"}, time.Hour); !errors.Is(err, ticket.ErrConflict) {
		t.Fatalf("a second grant under the same key: %v, want ErrConflict", err)
	}
	got, err := st.GetCodeGrant(ctx, "g1")
	if err != nil || *got != *g {
		t.Fatalf("read back %+v %v, want %+v", got, err, g)
	}
	if err := st.PutAccessToken(ctx, "a1", &ticket.AccessToken{UserID: "u1", ClientID: "app1", Grant: "g1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if tok, err := st.GetAccessToken(ctx, "a1"); err != nil || tok.Grant != "g1" {
		t.Fatalf("token read back %+v %v", tok, err)
	}
	for _, del := range []func() error{
		func() error { return st.DeleteCodeGrant(ctx, "g1") },
		func() error { return st.DeleteCodeGrant(ctx, "g1") }, // gone: no error
		func() error { return st.DeleteAccessToken(ctx, "a1") },
	} {
		if err := del(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.GetCodeGrant(ctx, "g1"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("an ended grant: %v", err)
	}
	if _, err := st.GetAccessToken(ctx, "a1"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("an ended token: %v", err)
	}
}

// A person's password note keeps the latest time, and is written again
// after it expired (the key then holds a deletion marker).
func TestPasswordNote(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	st := kvstore.New(js, kvstore.Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if at, err := st.PasswordNoted(ctx, "u1"); err != nil || !at.IsZero() {
		t.Fatalf("no note: %v %v", at, err)
	}
	for _, at := range []time.Time{t0.Add(time.Hour), t0, t0.Add(time.Hour)} {
		if err := st.NotePassword(ctx, "u1", at, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if at, err := st.PasswordNoted(ctx, "u1"); err != nil || !at.Equal(t0.Add(time.Hour)) {
		t.Fatalf("note %v %v, want the latest", at, err)
	}
	if at, err := st.PasswordNoted(ctx, "u2"); err != nil || !at.IsZero() {
		t.Fatalf("another person's note: %v %v", at, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		at, err := st.PasswordNoted(ctx, "u1")
		if err != nil {
			t.Fatal(err)
		}
		if at.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a note with a 1 s TTL still there after 15 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := st.NotePassword(ctx, "u1", t0, time.Hour); err != nil {
		t.Fatalf("a note after the last expired: %v", err)
	}
	if at, err := st.PasswordNoted(ctx, "u1"); err != nil || !at.Equal(t0) {
		t.Fatalf("note %v %v", at, err)
	}
}

// A person's lock note (NoteState) and password note live in one record,
// each keeping its latest time; a note of one never drops the other, and
// a record an earlier version wrote (the password time alone) is read and
// extended (ADR 0047).
func TestStateNote(t *testing.T) {
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	st := kvstore.New(js, kvstore.Options{})
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, at := range []time.Time{t0.Add(time.Hour), t0} {
		if err := st.NoteState(ctx, "u1", at, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.NotePassword(ctx, "u1", t0.Add(time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.NoteState(ctx, "u1", t0.Add(30*time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}
	n, err := st.Noted(ctx, "u1")
	if err != nil || !n.State.Equal(t0.Add(time.Hour)) || !n.Password.Equal(t0.Add(time.Minute)) {
		t.Fatalf("notes %+v %v, want the latest of each", n, err)
	}
	if n, err := st.Noted(ctx, "u2"); err != nil || !n.State.IsZero() || !n.Password.IsZero() {
		t.Fatalf("another person's notes: %+v %v", n, err)
	}
	// An earlier version's record: the password time alone.
	if err := st.NotePassword(ctx, "u3", t0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.NoteState(ctx, "u3", t0.Add(time.Hour), time.Hour); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Noted(ctx, "u3"); err != nil || !n.State.Equal(t0.Add(time.Hour)) || !n.Password.Equal(t0) {
		t.Fatalf("notes %+v %v", n, err)
	}
}
