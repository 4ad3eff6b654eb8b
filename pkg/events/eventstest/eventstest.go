// Package eventstest starts the embedded NATS server (JetStream on) that
// tests across UIAS use in place of an external one, and connects clients to
// it. Everything it starts is stopped when the test ends.
package eventstest

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
)

// NATS starts an embedded NATS server with JetStream storing under a fresh
// temporary directory, on a free loopback port. It is shut down (and waited
// for) when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	return NATSIn(t, filepath.Join(t.TempDir(), "nats"), -1)
}

// Centres starts two embedded NATS servers, each its own JetStream
// domain (hub, leaf), the second joined to the first as a leaf node with
// uias.> kept off the link (as deploy/centres), and waits for the link: a
// stream at the hub may source a stream of the leaf's domain, as a peer
// stream (events.SourcedStream) does between centres. Both are shut down
// when the test ends.
func Centres(t testing.TB, hub, leaf string) (*server.Server, *server.Server) {
	t.Helper()
	start := func(name string, opts *server.Options) *server.Server {
		opts.ServerName, opts.Host, opts.Port, opts.JetStreamDomain = name, "127.0.0.1", -1, name
		s, err := events.StartNATS(filepath.Join(t.TempDir(), "nats"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		return s
	}
	hopts := &server.Options{LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: -1}}
	h := start(hub, hopts) // the server writes the leaf-node port it took back into hopts
	u, err := url.Parse(fmt.Sprintf("nats-leaf://127.0.0.1:%d", hopts.LeafNode.Port))
	if err != nil {
		t.Fatal(err)
	}
	deny := []string{"uias.>"}
	l := start(leaf, &server.Options{LeafNode: server.LeafNodeOpts{ReconnectInterval: 200 * time.Millisecond,
		Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, DenyImports: deny, DenyExports: deny}}}})
	deadline := time.Now().Add(time.Minute)
	for l.NumLeafNodes() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("eventstest: the leaf node %s did not join %s in a minute", leaf, hub)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h, l
}

// NATSIn is NATS with the JetStream store in dir and the given port (-1: a
// free one): a test that stops the server and starts it again on the same
// store and port calls it twice. Each server is shut down when the test
// ends, whether or not the test stopped it already.
func NATSIn(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	s, err := events.StartEmbeddedNATS(dir, "127.0.0.1", port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Connect connects a client to s that reconnects for ever (every 20 ms), so
// that it outlives a restart of the server, and returns it with its
// JetStream context. The connection is closed when the test ends. Extra
// options come after these and win.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(20 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(s.ClientURL(), opts...)
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

// Fresh starts an embedded NATS server with JetStream storing under dir on a
// free loopback port, connects a client to it and ensures the UIAS streams,
// for one iteration of a benchmark's b.N loop (NATS and Connect clean up
// when the benchmark ends, not after each iteration). stop closes the
// client and shuts the server down, waiting for it.
func Fresh(t testing.TB, dir string) (js jetstream.JetStream, stop func()) {
	t.Helper()
	s, err := events.StartEmbeddedNATS(dir, "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	stop = func() { s.Shutdown(); s.WaitForShutdown() }
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		stop()
		t.Fatal(err)
	}
	stop = func() { nc.Close(); s.Shutdown(); s.WaitForShutdown() }
	if js, err = jetstream.New(nc); err == nil {
		err = events.EnsureStreams(context.Background(), js)
	}
	if err != nil {
		stop()
		t.Fatal(err)
	}
	return js, stop
}
