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

func TestRememberAcrossReplicas(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats not ready")
	}
	defer srv.Shutdown()
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
	err = a.Remember(ctx, caller.NonceKey("app/one", "zzzzzzzzzzzzzzzzzz"), 10*time.Minute)
	if err == nil || errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("NATS down: %v", err)
	}
}
