package module

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/uias/uias/pkg/config"
)

// LoadTLS builds the server TLS config (TLS 1.2 at least) from the
// configured certificate, and the client config internal hops use to dial
// it: trusting tls.client_ca_file when set (which also verifies client
// certificates), else the system roots plus our own certificate. Both are
// nil without tls.cert_file.
func LoadTLS(cfg config.Config) (server, client *tls.Config, err error) {
	if cfg.TLS.CertFile == "" {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if cfg.TLS.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("TLS client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("TLS client CA %s: no PEM certificates found", cfg.TLS.ClientCAFile)
		}
		server.ClientCAs, server.ClientAuth = pool, tls.VerifyClientCertIfGiven
		roots = pool
	} else {
		for _, der := range cert.Certificate {
			if c, err := x509.ParseCertificate(der); err == nil {
				roots.AddCert(c)
			}
		}
	}
	client = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{cert}}
	// Internal hops dial an etcd target ("uias/identity") or a wildcard
	// listen address, neither of which names the peer. UIAS components share
	// a certificate name: verify the peer against the first DNS name of our
	// own certificate (e.g. uias.internal) when it has one.
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil && len(leaf.DNSNames) > 0 {
		client.ServerName = leaf.DNSNames[0]
	}
	return server, client, nil
}

// OpsHandler serves /metrics, /healthz and /readyz for a process without
// the REST edge.
func OpsHandler(reg prometheus.Gatherer, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			http.Error(w, "not ready: a component is unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
