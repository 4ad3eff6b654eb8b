// Package synctest starts the NATS side of a multi-centre deployment for
// tests: one embedded NATS server per centre, each with JetStream in a
// domain named after the centre, level-2 servers joined to the level-1
// server as leaf nodes through a TCP relay that a test can cut and heal.
package synctest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/events"
)

// Centre is one centre's NATS server.
type Centre struct {
	Name   string
	Server *server.Server
	// LeafAddr is the level-1 server's leaf-node listener (host:port).
	LeafAddr string
	// Link is a level-2 centre's relay to level 1 (nil at level 1).
	Link *Relay
}

// URL is the centre's client URL.
func (c *Centre) URL() string { return c.Server.ClientURL() }

// Connect returns a client connection and JetStream context, closed with
// the test.
func (c *Centre) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1))
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

func start(t testing.TB, name string, opts *server.Options) *server.Server {
	t.Helper()
	opts.ServerName, opts.Host, opts.Port, opts.JetStreamDomain = name, "127.0.0.1", -1, name
	s, err := events.StartNATS(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// load reads a nats-server configuration file (e.g. deploy/centres/*.conf).
func load(t testing.TB, file string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("synctest: %s: %v", file, err)
	}
	return opts
}

// StartLevel1 starts the level-1 centre's server with a leaf-node listener.
func StartLevel1(t testing.TB, name string) *Centre {
	t.Helper()
	return startLevel1(t, name, &server.Options{})
}

// StartLevel1File is StartLevel1 with the options of a nats-server
// configuration file (its ports and store directory replaced).
func StartLevel1File(t testing.TB, file string) *Centre {
	t.Helper()
	opts := load(t, file)
	if opts.JetStreamDomain == "" || opts.ServerName != opts.JetStreamDomain {
		t.Fatalf("synctest: %s: server_name and jetstream.domain must both be the centre's name", file)
	}
	return startLevel1(t, opts.ServerName, opts)
}

func startLevel1(t testing.TB, name string, opts *server.Options) *Centre {
	t.Helper()
	opts.LeafNode.Host, opts.LeafNode.Port = "127.0.0.1", -1
	// Level 2 reaches level 1 only through its relay: the hub must not
	// advertise its own leaf-node address, which a leaf would use to
	// reconnect around a cut relay.
	opts.LeafNode.NoAdvertise = true
	s := start(t, name, opts)
	if opts.LeafNode.Port <= 0 {
		t.Fatal("synctest: the leaf-node listener has no port")
	}
	return &Centre{Name: name, Server: s, LeafAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.LeafNode.Port))}
}

// LeafDeny are the subjects kept off the leaf-node link: UIAS events,
// which travel between centres only through JetStream sourcing (otherwise
// each centre's CHANGES stream would also capture the other's publishes).
var LeafDeny = []string{"uias.>"}

// StartLevel2 starts a level-2 centre's server joined to parent as a leaf
// node through a relay (Centre.Link) and waits for the link.
func StartLevel2(t testing.TB, name string, parent *Centre) *Centre {
	t.Helper()
	opts := &server.Options{LeafNode: server.LeafNodeOpts{
		Remotes: []*server.RemoteLeafOpts{{DenyImports: LeafDeny, DenyExports: LeafDeny}}}}
	return startLevel2(t, name, opts, parent)
}

// StartLevel2File is StartLevel2 with the options of a nats-server
// configuration file with one leaf-node remote (its name, ports, store
// directory and remote address replaced).
func StartLevel2File(t testing.TB, file, name string, parent *Centre) *Centre {
	t.Helper()
	opts := load(t, file)
	if len(opts.LeafNode.Remotes) != 1 {
		t.Fatalf("synctest: %s: want one leaf-node remote (the level-1 centre), got %d", file, len(opts.LeafNode.Remotes))
	}
	return startLevel2(t, name, opts, parent)
}

func startLevel2(t testing.TB, name string, opts *server.Options, parent *Centre) *Centre {
	t.Helper()
	r := NewRelay(t, parent.LeafAddr)
	u, _ := url.Parse("nats-leaf://" + r.Addr())
	opts.LeafNode.ReconnectInterval = 200 * time.Millisecond
	opts.LeafNode.Remotes[0].URLs = []*url.URL{u}
	s := start(t, name, opts)
	c := &Centre{Name: name, Server: s, Link: r}
	WaitLeaf(t, s, true)
	return c
}

// WaitLeaf waits (up to a minute) until s has a leaf-node connection
// (connected) or none.
func WaitLeaf(t testing.TB, s *server.Server, connected bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for (s.NumLeafNodes() > 0) != connected {
		if time.Now().After(deadline) {
			t.Fatalf("synctest: leaf-node link of %s: connected=%v not reached in a minute", s.Name(), connected)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Relay forwards TCP connections to a target until cut.
type Relay struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

// NewRelay listens on a free loopback port and forwards to target.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() { _ = ln.Close(); r.Cut() })
	go r.serve()
	return r
}

// Addr is the relay's address.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Cut closes every relayed connection and refuses new ones until Heal.
func (r *Relay) Cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = true
	for c := range r.conns {
		_ = c.Close()
	}
	clear(r.conns)
}

// Heal lets connections through again.
func (r *Relay) Heal() {
	r.mu.Lock()
	r.cut = false
	r.mu.Unlock()
}

func (r *Relay) serve() {
	for {
		in, err := r.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		r.mu.Lock()
		cut := r.cut
		r.mu.Unlock()
		if cut {
			_ = in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", r.target, 5*time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			continue
		}
		r.conns[in], r.conns[out] = struct{}{}, struct{}{}
		r.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			r.mu.Lock()
			delete(r.conns, dst)
			delete(r.conns, src)
			r.mu.Unlock()
		}
		go pipe(in, out)
		go pipe(out, in)
	}
}
