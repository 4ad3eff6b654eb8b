package events

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartEmbeddedNATS starts an in-process NATS server with JetStream storing under
// storeDir, listening on host:port (port -1 picks a free port; an empty host means
// 127.0.0.1). It does not log and does not install signal handlers. Stop it with
// Shutdown (and WaitForShutdown); its client URL is s.ClientURL().
func StartEmbeddedNATS(storeDir string, host string, port int) (*server.Server, error) {
	if storeDir == "" {
		return nil, errors.New("events: embedded NATS needs a JetStream store directory")
	}
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
	opts := &server.Options{
		ServerName: "uias-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoLog:      true,
		NoSigs:     true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("events: configure embedded NATS: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("events: embedded NATS did not become ready on %s:%d within 10s (port in use or store directory %q unusable?)", host, port, storeDir)
	}
	if !s.JetStreamEnabled() {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("events: embedded NATS started without JetStream (store directory %q)", storeDir)
	}
	return s, nil
}
