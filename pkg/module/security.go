package module

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
)

// checkPlaintext refuses a listener bound beyond loopback without TLS
// (passwords, App secrets and admin tokens would cross the network in
// clear: JR/T 0185-2020 9.2.2 asks for TLS), unless tls.allow_plaintext
// says the network is trusted: then it logs each such listener, loudly.
// It says when metrics or reflection are off because of the address.
func checkPlaintext(log *zap.Logger, cfg config.Config, run config.Run, withTLS bool) error {
	type listener struct{ name, field, addr string }
	var ls []listener
	if run.GRPC {
		ls = append(ls, listener{"gRPC", "grpc_addr", cfg.GRPCAddr})
	}
	if cfg.HTTPAddr != "" {
		ls = append(ls, listener{"HTTP", "http_addr", cfg.HTTPAddr})
	}
	for _, l := range ls {
		if config.Loopback(l.addr) {
			continue
		}
		if !withTLS && !cfg.TLS.AllowPlaintext {
			return fmt.Errorf("%s (%s %s) listens beyond loopback without TLS: passwords, application secrets and "+
				"admin tokens would cross the network in clear text. Set tls.cert_file and tls.key_file "+
				"(UIAS_TLS_CERT_FILE, UIAS_TLS_KEY_FILE), or bind %s to 127.0.0.1 behind a TLS-terminating proxy; "+
				"on a network you trust, tls.allow_plaintext: true (UIAS_TLS_ALLOW_PLAINTEXT=true, --tls-allow-plaintext) "+
				"serves in clear text anyway", l.name, l.field, l.addr, l.field)
		}
		if !withTLS {
			log.Warn("SECURITY WARNING: "+l.name+" listens beyond loopback WITHOUT TLS (tls.allow_plaintext): passwords, "+
				"application secrets and admin tokens cross the network in clear text. Set tls.cert_file and tls.key_file "+
				"(or bind "+l.field+" to 127.0.0.1 behind a TLS-terminating proxy).",
				zap.String("listener", l.name), zap.String(l.field, l.addr))
		}
		if l.field == "http_addr" && !cfg.MetricsOn() {
			log.Info("/metrics is not served: http_addr is not a loopback address (set metrics.enabled=true to serve it)")
		}
		if l.field == "grpc_addr" && !cfg.ReflectionOn() {
			log.Info("gRPC reflection is off: grpc_addr is not a loopback address (set grpc.reflection=true to turn it on)")
		}
	}
	return nil
}

// etcdReconnect bounds the back-off between the etcd client's attempts to
// reconnect. gRPC's default grows to 120 s: after an etcd outage of a
// minute, a component would then try again only 10–40 s after etcd came
// back, by which time etcd has expired its registration lease (TTL 10 s)
// and clients routing through etcd see no endpoint for it. With at most
// 2 s between attempts the keep-alive renews the lease well within its TTL.
var etcdReconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 3 * time.Second,
}

// EtcdConfig is the etcd client configuration of cfg: endpoints, username
// and password (etcd.password_file or UIAS_ETCD_PASSWORD), and TLS when an
// endpoint is https:// or etcd.tls is set (the client certificate is read
// again when its files change). The client reconnects at most 2 s apart
// (etcdReconnect) and probes an idle connection every 10 s, so a restarted
// etcd is seen again within seconds.
func EtcdConfig(cfg config.Config) (clientv3.Config, error) {
	ec := clientv3.Config{Endpoints: cfg.Etcd.Endpoints, DialTimeout: cfg.Etcd.DialTimeout, Logger: zap.NewNop(),
		Username:             cfg.Etcd.Username,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		DialOptions:          []grpc.DialOption{grpc.WithConnectParams(etcdReconnect)},
	}
	pw, err := cfg.EtcdPassword()
	if err != nil {
		return ec, err
	}
	ec.Password = pw
	t := cfg.Etcd.TLS
	secure := t.CAFile != "" || t.CertFile != ""
	for _, ep := range cfg.Etcd.Endpoints {
		secure = secure || strings.HasPrefix(ep, "https://") || strings.HasPrefix(ep, "unixs://")
	}
	if !secure {
		return ec, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: grpcx.TLS12CipherSuites}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return ec, &config.FieldError{Field: "etcd.tls.ca_file", Msg: fmt.Sprintf("cannot read: %v", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return ec, &config.FieldError{Field: "etcd.tls.ca_file", Msg: t.CAFile + ": no PEM certificates found"}
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		r, err := NewCertReloader(t.CertFile, t.KeyFile, nil)
		if err != nil {
			return ec, &config.FieldError{Field: "etcd.tls.cert_file", Msg: err.Error()}
		}
		tc.GetClientCertificate = r.GetClientCertificate
	}
	ec.TLS = tc
	return ec, nil
}

// SecurityHeaders sets the security headers on every HTTP answer of next,
// unless the handler set them itself (a page with its own
// Content-Security-Policy, a static asset that may be cached):
//
//	X-Content-Type-Options: nosniff         (no MIME sniffing of answers)
//	X-Frame-Options: DENY and
//	Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
//	                                         (nothing may frame us: no clickjacking)
//	Cache-Control: no-store                  (tokens and personal data stay out of caches)
//	Referrer-Policy: no-referrer
//	Strict-Transport-Security: max-age=31536000
//	                                         (only under TLS: on a TLS connection, or
//	                                         X-Forwarded-Proto https from a trusted proxy)
//
// The handlers learn the same verdict from RequestHTTPS (cookies are
// Secure exactly when the answer carries Strict-Transport-Security).
func SecurityHeaders(next http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secure := underTLS(r, trusted)
		hw := &headerWriter{ResponseWriter: w, hsts: secure}
		if secure && r.TLS == nil {
			r = r.WithContext(context.WithValue(r.Context(), httpsKey{}, true))
		}
		next.ServeHTTP(hw, r)
		hw.fill() // an answer without a body: the server writes the headers now
	})
}

type httpsKey struct{}

// RequestHTTPS reports whether the client reached us over HTTPS: a TLS
// connection, or (behind SecurityHeaders) X-Forwarded-Proto https from a
// trusted proxy that terminates TLS. Cookies set for r are Secure then.
func RequestHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	v, _ := r.Context().Value(httpsKey{}).(bool)
	return v
}

// underTLS reports whether the client reached us over TLS.
func underTLS(r *http.Request, trusted []netip.Prefix) bool {
	if r.TLS != nil {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return strings.EqualFold(strings.TrimSpace(r.Header.Get("X-Forwarded-Proto")), "https")
		}
	}
	return false
}

// headerWriter fills in the security headers the handler left unset when
// the answer starts.
type headerWriter struct {
	http.ResponseWriter
	hsts bool
	done bool
}

var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"},
	{"Cache-Control", "no-store"},
	{"Referrer-Policy", "no-referrer"},
}

func (w *headerWriter) fill() {
	if w.done {
		return
	}
	w.done = true
	h := w.Header()
	for _, kv := range securityHeaders {
		if _, ok := h[kv[0]]; !ok {
			h.Set(kv[0], kv[1])
		}
	}
	if w.hsts {
		if _, ok := h["Strict-Transport-Security"]; !ok {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
	}
}

func (w *headerWriter) WriteHeader(code int) {
	w.fill()
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWriter) Write(b []byte) (int, error) {
	w.fill()
	return w.ResponseWriter.Write(b)
}

func (w *headerWriter) Flush() {
	w.fill()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *headerWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
