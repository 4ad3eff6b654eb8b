package uniqpeer_test

import (
	"context"
	"fmt"
	"net/url"
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

// TestLeafUserBindsCentre checks the leaf-user permissions that
// deploy/centres/nats-l1.conf documents (review sec29b M1): a level-2
// centre's leaf user at level 1, denied publishing the other centres'
// subjects, asks as its own centre only. (A subscribe deny does not keep
// the others' questions from it: denying centres.identity.uniqueness.>
// also stops its own questions reaching level 1, and denying the others'
// subjects does not filter its wildcard subscription; that remains, see
// ADR 0032.)
func TestLeafUserBindsCentre(t *testing.T) {
	hubOpts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "identity", Password: "pw"},
			{Username: "leaf-l2a", Password: "pw", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Deny: []string{uniqpeer.SubjectOf("l1"), uniqpeer.SubjectOf("l2b")}},
			}},
		},
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: -1}}
	hub, err := server.NewServer(hubOpts)
	if err != nil {
		t.Fatal(err)
	}
	go hub.Start()
	if !hub.ReadyForConnections(5 * time.Second) {
		t.Fatal("hub not ready")
	}
	t.Cleanup(hub.Shutdown)
	u, err := url.Parse(fmt.Sprintf("nats-leaf://leaf-l2a:pw@127.0.0.1:%d", hubOpts.LeafNode.Port))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		LeafNode: server.LeafNodeOpts{Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}}}}})
	if err != nil {
		t.Fatal(err)
	}
	go leaf.Start()
	if !leaf.ReadyForConnections(5 * time.Second) {
		t.Fatal("leaf not ready")
	}
	t.Cleanup(leaf.Shutdown)
	for hub.NumLeafNodes() == 0 {
		time.Sleep(10 * time.Millisecond)
	}

	l1conn, err := nats.Connect(hub.ClientURL(), nats.UserInfo("identity", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l1conn.Close)
	l1 := &fakeLevel1{taken: map[string]bool{}}
	if _, err := uniqpeer.Serve(l1conn, l1, zap.NewNop(), uniqpeer.Options{Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	_ = l1conn.Flush()
	l2conn, err := nats.Connect(leaf.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l2conn.Close)

	ctx := context.Background()
	ask := func(nc *nats.Conn, centre string) error {
		c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err := uniqpeer.NewClient(nc, centre).Claim(c, identity.UniqueClaim{PersonID: "p", Login: "pilot"})
		return err
	}
	// Its own centre's subject crosses; the interest of level 1 reaches
	// the leaf once propagated.
	deadline := time.Now().Add(5 * time.Second)
	for ask(l2conn, "l2a") != nil {
		if time.Now().After(deadline) {
			t.Fatal("l2a's own question never answered")
		}
	}
	for _, other := range []string{"l2b", "l1"} {
		if err := ask(l2conn, other); err == nil {
			t.Fatalf("l2a asked as %s", other)
		}
	}
	l1.mu.Lock()
	for _, q := range l1.asked {
		if q.Centre != "l2a" {
			t.Fatalf("level 1 answered %s", q.Centre)
		}
	}
	l1.mu.Unlock()
}
