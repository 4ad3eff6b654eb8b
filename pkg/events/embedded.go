package events

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartInProcessNATS starts an embedded NATS server with JetStream storing
// under storeDir that accepts no network connections at all: no port is
// opened, so no other process of the machine can connect, publish a forged
// record or purge a stream. Clients of this process connect with
// nats.InProcessServer(s). It does not log and does not install signal
// handlers. Stop it with Shutdown (and WaitForShutdown).
func StartInProcessNATS(storeDir string) (*server.Server, error) {
	return startNATS(storeDir, &server.Options{DontListen: true}, "in process")
}

// StartEmbeddedNATS starts an in-process NATS server with JetStream storing under
// storeDir, listening on host:port (port -1 picks a free port; an empty host means
// 127.0.0.1). It does not log and does not install signal handlers. Stop it with
// Shutdown (and WaitForShutdown); its client URL is s.ClientURL().
//
// The listener accepts anyone who can reach it: UIAS itself uses
// StartInProcessNATS; this one stands in for an external NATS in tests.
func StartEmbeddedNATS(storeDir string, host string, port int) (*server.Server, error) {
	if host == "" {
		host = "127.0.0.1"
	}
	if port > 0 {
		// The server does not report a failed listen (it only logs, and we disable logs),
		// so check the address first for a clear error instead of a 10s timeout.
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("events: embedded NATS cannot listen on %s:%d: %w", host, port, err)
		}
		_ = l.Close()
	}
	return startNATS(storeDir, &server.Options{Host: host, Port: port}, fmt.Sprintf("on %s:%d", host, port))
}

// StartNATS starts a NATS server with the given options (e.g. read from a
// server configuration file with server.ProcessConfigFile) after forcing
// JetStream on under storeDir, no logging and no signal handlers. Tests use
// it to run a server with the accounts and permissions operators deploy.
func StartNATS(storeDir string, opts *server.Options) (*server.Server, error) {
	return startNATS(storeDir, opts, fmt.Sprintf("on %s:%d", opts.Host, opts.Port))
}

func startNATS(storeDir string, opts *server.Options, where string) (*server.Server, error) {
	if storeDir == "" {
		return nil, errors.New("events: embedded NATS needs a JetStream store directory")
	}
	if opts.ServerName == "" {
		opts.ServerName = "uias-embedded"
	}
	opts.JetStream, opts.StoreDir, opts.NoLog, opts.NoSigs = true, storeDir, true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("events: configure embedded NATS: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("events: embedded NATS did not become ready %s within 10s (port in use or store directory %q unusable?)", where, storeDir)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("events: embedded NATS started without JetStream (store directory %q)", storeDir)
	}
	return s, nil
}
