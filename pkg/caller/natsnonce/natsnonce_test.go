package natsnonce_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/caller/natsnonce"
)

// startNATS starts an embedded NATS server with JetStream.
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

func TestRememberAcrossReplicas(t *testing.T) {
	srv := startNATS(t)
	store := func() *natsnonce.Store {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return natsnonce.New(js, natsnonce.Options{})
	}
	a, b := store(), store()
	ctx := context.Background()
	key := caller.NonceKey("app/one", "abcdefghijklmnop")
	if err := a.Remember(ctx, key, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.Remember(ctx, key, 10*time.Minute); !errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("the same nonce at another replica: %v", err)
	}
	if err := b.Remember(ctx, caller.NonceKey("app/two", "abcdefghijklmnop"), 10*time.Minute); err != nil {
		t.Fatalf("the same nonce of another app: %v", err)
	}
	// NATS down: an error that is not ErrNonceSeen (the caller fails closed).
	srv.Shutdown()
	err := a.Remember(ctx, caller.NonceKey("app/one", "zzzzzzzzzzzzzzzzzz"), 10*time.Minute)
	if err == nil || errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("NATS down: %v", err)
	}
}

// Another bucket of things seen once (identity's fingerprint probes): its
// own name and TTL, longer than the nonces'; a key kept longer than the
// bucket's TTL is refused.
func TestOtherBucket(t *testing.T) {
	srv := startNATS(t)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s := natsnonce.New(js, natsnonce.Options{Bucket: "UIAS_FINGER_PROBES", TTL: 720 * time.Hour, Description: "probes"})
	ctx := context.Background()
	if err := s.Remember(ctx, "f.u1.00ff", 720*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, "f.u1.00ff", 720*time.Hour); !errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("a probe presented again: %v", err)
	}
	if err := s.Remember(ctx, "f.u1.00fe", 721*time.Hour); err == nil {
		t.Fatal("kept longer than the bucket's TTL")
	}
	kv, err := js.KeyValue(ctx, "UIAS_FINGER_PROBES")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil || st.TTL() != 720*time.Hour {
		t.Fatalf("bucket TTL %v %v", st, err)
	}
	if _, err := js.KeyValue(ctx, natsnonce.Bucket); err == nil {
		t.Fatal("the nonces' bucket made too")
	}
}
