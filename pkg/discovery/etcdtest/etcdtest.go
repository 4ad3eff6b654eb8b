// Package etcdtest starts an embedded single-node etcd server for tests. Only
// _test.go files may import it: the etcd server is large, and the uias binary
// only ever talks to etcd as a client (cmd/uias has a test that fails if the
// server is linked in).
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// ReadyTimeout bounds how long Start waits for the server.
const ReadyTimeout = 20 * time.Second

// Start starts a single-node etcd with its data in dir, listening on random
// loopback ports, and waits until it is ready. It returns the server (Close it
// when done) and its client endpoints. etcd's own logging is discarded.
func Start(dir string) (*embed.Etcd, []string, error) {
	var lastErr error
	// Ports are picked by listening on :0 and closing, so another process may
	// grab one in between; retry a few times with fresh ports.
	for attempt := 0; attempt < 3; attempt++ {
		e, eps, err := start(dir, 0)
		if err == nil {
			return e, eps, nil
		}
		lastErr = err
	}
	return nil, nil, lastErr
}

// StartOn is Start with the client endpoint on 127.0.0.1:clientPort, e.g. to
// bring etcd up (or back) where processes already look for it.
func StartOn(dir string, clientPort int) (*embed.Etcd, []string, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		e, eps, err := start(dir, clientPort)
		if err == nil {
			return e, eps, nil
		}
		lastErr = err
	}
	return nil, nil, lastErr
}

func start(dir string, clientPort int) (*embed.Etcd, []string, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, nil, err
	}
	if clientPort != 0 {
		ports[0] = clientPort
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports[1])}

	cfg := embed.NewConfig()
	cfg.Name = "uias"
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("etcdtest: start embedded etcd: %w", err)
	}
	timer := time.NewTimer(ReadyTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
		return e, []string{clientURL.String()}, nil
	case err := <-e.Err():
		e.Close()
		return nil, nil, fmt.Errorf("etcdtest: embedded etcd: %w", err)
	case <-timer.C:
		e.Close()
		return nil, nil, errors.New("etcdtest: embedded etcd not ready within " + ReadyTimeout.String())
	}
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var lis []net.Listener
	defer func() {
		for _, l := range lis {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: pick a free port: %w", err)
		}
		lis = append(lis, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
