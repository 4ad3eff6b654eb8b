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
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
)

func TestRecordsExpireByKeyTTL(t *testing.T) {
	ns, err := events.StartEmbeddedNATS(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st := kvstore.New(js, kvstore.Options{})
	ctx := context.Background()
	now := time.Now()
	sess := &ticket.Session{ID: "s1", UserID: "u1", CreatedAt: now, LastUsedAt: now, HardExpiry: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, sess, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.PutTicket(ctx, "k1", &ticket.Ticket{Kind: ticket.KindST, Service: "x"}, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := st.PutTicket(ctx, "k2", &ticket.Ticket{Kind: ticket.KindST, Service: "x"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// The buckets are set up for per-key TTL; service tickets are kept in
	// memory, sessions and proxy-granting tickets on file.
	for bucket, storage := range map[string]jetstream.StorageType{kvstore.BucketServiceTickets: jetstream.MemoryStorage,
		kvstore.BucketSessions: jetstream.FileStorage, kvstore.BucketTickets: jetstream.FileStorage} {
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		status, _ := kv.Status(ctx)
		if status.LimitMarkerTTL() <= 0 {
			t.Fatalf("bucket %s without LimitMarkerTTL: %+v", bucket, status)
		}
		if got := status.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage; got != storage {
			t.Fatalf("bucket %s: storage %v, want %v", bucket, got, storage)
		}
	}
	kv, err := js.KeyValue(ctx, kvstore.BucketServiceTickets)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, _, errS := st.GetSession(ctx, "s1")
		_, errT := kv.Get(ctx, "t.k1")
		if errors.Is(errS, ticket.ErrNotFound) && errT != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records with a 1 s TTL still there after 15 s: %v %v", errS, errT)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := st.ConsumeTicket(ctx, "k2"); err != nil {
		t.Fatalf("a ticket with a long TTL went too: %v", err)
	}
	if _, err := st.ConsumeTicket(ctx, "k2"); !errors.Is(err, ticket.ErrNotFound) {
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

// TestServiceTicketsAfterRestart: the memory-storage bucket of service
// tickets does not survive a restart of a NATS server that is not
// clustered; the store creates it again at once (the first ticket after
// the restart is issued), the session is still there, and a ticket from
// before the restart is refused, also by the store that issued it.
func TestServiceTicketsAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ns, err := events.StartEmbeddedNATS(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	port := ns.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st := kvstore.New(js, kvstore.Options{Timeout: 5 * time.Second})
	ctx := context.Background()
	now := time.Now()
	sess := &ticket.Session{ID: "s1", UserID: "u1", Login: "l", CreatedAt: now, LastUsedAt: now, HardExpiry: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := st.PutTicket(ctx, "before", &ticket.Ticket{Kind: ticket.KindST, Service: "x"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	ns, err = events.StartEmbeddedNATS(dir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	deadline := time.Now().Add(30 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("no reconnection")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// the store answers UNAVAILABLE (retry later) while JetStream recovers
	// its streams after the reconnection; a caller retries
	for {
		err := st.PutTicket(ctx, "after", &ticket.Ticket{Kind: ticket.KindST, Service: "y"}, time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first ticket after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, _, err := st.GetSession(ctx, "s1"); err != nil || got.UserID != "u1" {
		t.Fatalf("session after the restart: %+v %v", got, err)
	}
	if _, err := st.ConsumeTicket(ctx, "before"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("ticket from before the restart: %v", err)
	}
	if got, err := st.ConsumeTicket(ctx, "after"); err != nil || got.Service != "y" {
		t.Fatalf("ticket after the restart: %+v %v", got, err)
	}
}

// TestServiceTicketsBucketLost: the bucket of service tickets is deleted
// (or lost with its stream) between issue and validation, with no ticket
// issued since: validation, at the store that issued the ticket and at
// another replica alike, answers "not found" (the application gets
// INVALID_TICKET and sends the browser to log in again), never "store
// unavailable"; the bucket is there again for the next ticket, and a
// ticket still in a bucket recreated meanwhile is consumed.
func TestServiceTicketsBucketLost(t *testing.T) {
	ns, err := events.StartEmbeddedNATS(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	issuer := kvstore.New(js, kvstore.Options{Timeout: 5 * time.Second})
	other := kvstore.New(js, kvstore.Options{Timeout: 5 * time.Second})
	ctx := context.Background()
	for _, k := range []string{"mine", "theirs"} {
		if err := issuer.PutTicket(ctx, k, &ticket.Ticket{Kind: ticket.KindST, Service: "x"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Ping(ctx); err != nil { // the other replica has its bucket handles
		t.Fatal(err)
	}
	if err := js.DeleteKeyValue(ctx, kvstore.BucketServiceTickets); err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.ConsumeTicket(ctx, "mine"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("issuing store, bucket lost: %v, want not found", err)
	}
	if _, err := js.KeyValue(ctx, kvstore.BucketServiceTickets); err != nil {
		t.Fatalf("bucket not created again: %v", err)
	}
	if err := js.DeleteKeyValue(ctx, kvstore.BucketServiceTickets); err != nil {
		t.Fatal(err)
	}
	if _, err := other.ConsumeTicket(ctx, "theirs"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("other replica, bucket lost: %v, want not found", err)
	}
	// Issued at one replica into the bucket the other made again: consumed
	// once, from either.
	if err := issuer.PutTicket(ctx, "new", &ticket.Ticket{Kind: ticket.KindST, Service: "y"}, time.Minute); err != nil {
		t.Fatalf("ticket after the loss: %v", err)
	}
	if got, err := other.ConsumeTicket(ctx, "new"); err != nil || got.Service != "y" {
		t.Fatalf("ticket after the loss: %+v %v", got, err)
	}
	if _, err := issuer.ConsumeTicket(ctx, "new"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("consumed twice: %v", err)
	}
}
