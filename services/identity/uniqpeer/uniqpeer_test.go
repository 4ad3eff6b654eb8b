package uniqpeer_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/uniqpeer"
)

func startNATS(t *testing.T) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func connect(t *testing.T, srv *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// fakeLevel1 answers from a map of taken logins, or fails; block, when
// set, holds each answer until it is closed.
type fakeLevel1 struct {
	mu    sync.Mutex
	taken map[string]bool
	err   error
	asked []identity.UniqueClaim
	block chan struct{}
	began chan struct{}
}

func (f *fakeLevel1) AnswerPeerClaim(_ context.Context, centre string, c identity.UniqueClaim) (identity.UniqueVerdict, error) {
	if f.began != nil {
		f.began <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.Centre = centre
	f.asked = append(f.asked, c)
	if f.err != nil {
		return identity.UniqueVerdict{}, f.err
	}
	return identity.UniqueVerdict{LoginTaken: f.taken[c.Login]}, nil
}

// TestClaimOverNATS: the question and its answer travel; level 1's error
// and no level 1 at all are errors of the client (the service then
// applies peer_unreachable).
func TestClaimOverNATS(t *testing.T) {
	srv := startNATS(t)
	nc1, _ := connect(t, srv)
	nc2, _ := connect(t, srv)
	client := uniqpeer.NewClient(nc2, "l2a")
	ctx := context.Background()

	// Nobody serves: an error at once (no responders) or at the wait.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if _, err := client.Claim(wctx, identity.UniqueClaim{PersonID: "p1", Login: "pilot"}); err == nil {
		t.Fatal("no level 1: answered")
	}
	cancel()

	l1 := &fakeLevel1{taken: map[string]bool{"pilot": true}}
	sub, err := uniqpeer.Serve(nc1, l1, zap.NewNop(), uniqpeer.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc1.Flush(); err != nil {
		t.Fatal(err)
	}
	// The centre is the client's (the subject), whatever the question says.
	v, err := client.Claim(ctx, identity.UniqueClaim{PersonID: "p1", Centre: "l2b", Login: "pilot", IDKey: "k"})
	if err != nil || !v.LoginTaken {
		t.Fatalf("taken: %+v %v", v, err)
	}
	if got := l1.asked[0]; got.PersonID != "p1" || got.Centre != "l2a" || got.IDKey != "k" {
		t.Fatalf("level 1 was asked %+v", got)
	}
	if v, err := client.Claim(ctx, identity.UniqueClaim{PersonID: "p1", Login: "purser"}); err != nil || v.LoginTaken {
		t.Fatalf("free: %+v %v", v, err)
	}
	l1.mu.Lock()
	l1.err = apierr.New(apierr.Unavailable, "STORAGE_UNAVAILABLE", "storage is unavailable")
	l1.mu.Unlock()
	if _, err := client.Claim(ctx, identity.UniqueClaim{PersonID: "p1", Login: "purser"}); err == nil {
		t.Fatal("level 1's storage down: answered")
	}
	_ = sub.Unsubscribe()
}

// TestReservations: a key is one person's until the bucket forgets it;
// the same person reserves it again freely; two instances share them.
func TestReservations(t *testing.T) {
	srv := startNATS(t)
	_, js1 := connect(t, srv)
	_, js2 := connect(t, srv)
	a, b := uniqpeer.NewReservations(js1, time.Minute, 1), uniqpeer.NewReservations(js2, time.Minute, 1)
	ctx := context.Background()
	if h, err := a.Reserve(ctx, "login.abc", "p1"); err != nil || h != "p1" {
		t.Fatalf("first: %q %v", h, err)
	}
	if h, err := b.Reserve(ctx, "login.abc", "p2"); err != nil || h != "p1" {
		t.Fatalf("another person at another instance: %q %v", h, err)
	}
	if h, err := b.Reserve(ctx, "login.abc", "p1"); err != nil || h != "p1" {
		t.Fatalf("the same person again: %q %v", h, err)
	}
	if h, err := b.Reserve(ctx, "id.abc", "p2"); err != nil || h != "p2" {
		t.Fatalf("another key: %q %v", h, err)
	}
	srv.Shutdown()
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := a.Reserve(dctx, "login.xyz", "p3"); err == nil {
		t.Fatal("NATS down: reserved")
	}
}

// TestServeSheds (review sec29b M2): level 1 answers Concurrent questions
// at once; one more while they are all busy is answered "busy" at once
// (the asker applies peer_unreachable) and counted, not queued.
func TestServeSheds(t *testing.T) {
	srv := startNATS(t)
	nc1, _ := connect(t, srv)
	nc2, _ := connect(t, srv)
	l1 := &fakeLevel1{block: make(chan struct{}), began: make(chan struct{}, 4)}
	var mu sync.Mutex
	shed := map[string]int{}
	sub, err := uniqpeer.Serve(nc1, l1, zap.NewNop(), uniqpeer.Options{Timeout: time.Minute, Concurrent: 1,
		Observe: func(centre, outcome string) { mu.Lock(); shed[centre+" "+outcome]++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc1.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := uniqpeer.NewClient(nc2, "l2a").Claim(ctx, identity.UniqueClaim{PersonID: "p1", Login: "a"})
		first <- err
	}()
	<-l1.began // the one answerer is busy
	_, err = uniqpeer.NewClient(nc2, "l2b").Claim(ctx, identity.UniqueClaim{PersonID: "p2", Login: "b"})
	if err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("a question while busy: %v", err)
	}
	close(l1.block)
	if err := <-first; err != nil {
		t.Fatalf("the first question: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if shed["l2b shed"] != 1 {
		t.Fatalf("counted %v", shed)
	}
}
