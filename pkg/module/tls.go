package module

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
)

// certCheckInterval is how often, at most, a handshake looks whether the
// certificate files changed.
var certCheckInterval = time.Second

// LoadTLS builds the server TLS config from the configured certificate, and
// the client config internal hops use to dial it: trusting
// tls.client_ca_file when set (which also verifies client certificates),
// else the system roots plus our own certificate. Both are nil without
// tls.cert_file. The CAs of tls.people_ca_file verify client certificates
// too (browsers are asked for them), but are never roots of the internal
// hops: a people's CA (a commercial CA issuing USB keys) vouches for no
// UIAS server.
//
// Both serve the certificate through a CertReloader: when cert_file or
// key_file change on disk (a renewal by cert-manager or an operator), new
// connections get the new certificate without a restart. The server accepts
// TLS 1.2 or newer and, for TLS 1.2, only grpcx.TLS12CipherSuites.
func LoadTLS(cfg config.Config, log *zap.Logger) (server, client *tls.Config, err error) {
	if cfg.TLS.CertFile == "" {
		return nil, nil, nil
	}
	r, err := NewCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, log)
	if err != nil {
		return nil, nil, err
	}
	cert := r.Certificate()
	server = grpcx.ServerTLS(&tls.Config{GetCertificate: r.GetCertificate})
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	clientCAs, err := readCAs("TLS client CA", cfg.TLS.ClientCAFile)
	if err != nil {
		return nil, nil, err
	}
	people, err := readCAs("TLS people's CA", cfg.TLS.PeopleCAFile)
	if err != nil {
		return nil, nil, err
	}
	if len(clientCAs)+len(people) > 0 {
		pool := x509.NewCertPool()
		for _, c := range append(clientCAs, people...) {
			pool.AddCert(c)
		}
		server.ClientCAs, server.ClientAuth = pool, tls.VerifyClientCertIfGiven
		if cfg.TLS.CRLFile != "" {
			crls, err := newCRLFile(cfg.TLS.CRLFile, append(clientCAs, people...), log)
			if err != nil {
				return nil, nil, err
			}
			server.VerifyConnection = crls.verifyConnection
		}
	}
	if len(clientCAs) > 0 {
		pool := x509.NewCertPool()
		for _, c := range clientCAs {
			pool.AddCert(c)
		}
		roots = pool
	} else {
		for _, der := range cert.Certificate {
			if c, err := x509.ParseCertificate(der); err == nil {
				roots.AddCert(c)
			}
		}
	}
	client = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: grpcx.TLS12CipherSuites, RootCAs: roots,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			// Our certificate goes only to a server that would accept it:
			// a server asking for people's certificates only
			// (tls.people_ca_file without tls.client_ca_file) gets none,
			// which it accepts (VerifyClientCertIfGiven), instead of one
			// that fails the handshake.
			c, err := r.GetClientCertificate(cri)
			if err != nil {
				return nil, err
			}
			if !issuedByOneOf(c, cri.AcceptableCAs) {
				return &tls.Certificate{}, nil
			}
			return c, nil
		}}
	// Internal hops dial an etcd target ("uias/identity") or a wildcard
	// listen address, neither of which names the peer. UIAS components share
	// a certificate name: verify the peer against the first DNS name of our
	// own certificate (e.g. uias.internal) when it has one.
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil && len(leaf.DNSNames) > 0 {
		client.ServerName = leaf.DNSNames[0]
	}
	return server, client, nil
}

// issuedByOneOf reports whether a certificate of c's chain is issued by
// one of the CAs named (distinguished names, DER), or cas is empty (a
// server that names none takes any).
func issuedByOneOf(c *tls.Certificate, cas [][]byte) bool {
	if len(cas) == 0 {
		return true
	}
	for _, der := range c.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return false
		}
		for _, ca := range cas {
			if bytes.Equal(x.RawIssuer, ca) {
				return true
			}
		}
	}
	return false
}

// PeopleCAs is the pool of tls.people_ca_file: the CAs whose certificates
// sign people in at the CAS login page; nil when the file is not set.
func PeopleCAs(cfg config.Config) (*x509.CertPool, error) {
	cs, err := readCAs("TLS people's CA", cfg.TLS.PeopleCAFile)
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cs {
		pool.AddCert(c)
	}
	return pool, nil
}

// readCAs reads the PEM certificates of file (none when file is "");
// what names the file in errors.
func readCAs(what, file string) ([]*x509.Certificate, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var out []*x509.Certificate
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" || len(blk.Headers) != 0 {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", what, file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %s: no PEM certificates found", what, file)
	}
	return out, nil
}

// CertReloader serves a certificate and key from files and loads them again
// when either file changes (size or modification time, looked at during a
// handshake at most once a second). A pair that does not load (a renewal
// half written, a key that does not match) is logged and the previous
// certificate kept until the files load again.
type CertReloader struct {
	certFile, keyFile string
	log               *zap.Logger
	// every is how often at most the files are looked at (0: on every
	// handshake, for tests).
	every time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp
	checked time.Time
	failed  [2]fileStamp // the stamp that failed to load (logged once)
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// NewCertReloader loads certFile and keyFile (an error if they do not load).
func NewCertReloader(certFile, keyFile string, log *zap.Logger) (*CertReloader, error) {
	if log == nil {
		log = zap.NewNop()
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log, every: certCheckInterval}
	st, err := r.stamps()
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	r.cert, r.stamp, r.checked = &cert, st, time.Now()
	return r, nil
}

func (r *CertReloader) stamps() ([2]fileStamp, error) {
	var out [2]fileStamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, err
		}
		out[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

// Certificate returns the certificate in use, loading the files again first
// if they changed.
func (r *CertReloader) Certificate() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < r.every {
		return r.cert
	}
	r.checked = now
	st, err := r.stamps()
	if err != nil || st == r.stamp {
		if err != nil && st != r.failed {
			r.failed = st
			r.log.Warn("TLS certificate files unreadable; serving the previous certificate", zap.Error(err))
		}
		return r.cert
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if st != r.failed {
			r.failed = st
			r.log.Warn("TLS certificate files changed but do not load; serving the previous certificate until they do",
				zap.String("cert_file", r.certFile), zap.Error(err))
		}
		return r.cert
	}
	r.cert, r.stamp = &cert, st
	fields := []zap.Field{zap.String("cert_file", r.certFile)}
	if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
		fields = append(fields, zap.Time("not_after", leaf.NotAfter), zap.String("serial", leaf.SerialNumber.String()))
	}
	r.log.Info("TLS certificate reloaded", fields...)
	return r.cert
}

// GetCertificate is tls.Config.GetCertificate.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate.
func (r *CertReloader) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return r.Certificate(), nil
}

// OpsHandler serves /metrics (when metrics is true), /healthz and /readyz
// for a process without the REST edge.
func OpsHandler(reg prometheus.Gatherer, metrics bool, ready func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	if metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+NotReadyWords(err), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
