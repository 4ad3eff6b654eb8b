package module

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/x509cert"
)

// The HTTP edge (REST API, CAS and portal pages) asks for client
// certificates without letting the TLS handshake judge them
// (tls.RequestClientCert, with the same acceptable CAs named to the
// client) and verifies them in code, once per connection, as the
// handshake would have (x509cert.VerifyClient against the same pool: chain,
// validity, client-authentication usage; the handshake itself still proves
// the client holds the key). A certificate that passes is seen by the
// handlers exactly as before (VerifiedChains set, x509cert.VerifiedPeer);
// one that does not is dropped from the request's TLS state, as if none
// had been presented, and the request carries why
// (x509cert.RejectionFrom): a person whose USB key expired gets the login
// page saying so, with the password form, where the handshake used to
// fail and the browser showed only its own TLS error. The gRPC listener
// keeps tls.VerifyClientCertIfGiven (its callers are programs).

// edgeTLS is the HTTP edge's TLS configuration made from the server's:
// client certificates requested, not verified by the handshake; pool is
// what verifies them (nil when the server verifies none), and check what
// the server's handshake asks of a verified connection besides (the
// revocation lists of tls.crl_file; nil when nothing), asked of the
// chains verified in code.
func edgeTLS(server *tls.Config) (edge *tls.Config, pool *x509.CertPool, check func([][]*x509.Certificate) error) {
	if server == nil || server.ClientAuth != tls.VerifyClientCertIfGiven || server.ClientCAs == nil {
		return server, nil, nil
	}
	edge = server.Clone()
	edge.ClientAuth = tls.RequestClientCert
	if vc := server.VerifyConnection; vc != nil {
		check = func(chains [][]*x509.Certificate) error { return vc(tls.ConnectionState{VerifiedChains: chains}) }
	}
	return edge, server.ClientCAs, check
}

// peerCheck is one connection's verdict on its client certificate.
type peerCheck struct {
	once    sync.Once
	chains  [][]*x509.Certificate
	reject  *x509cert.Rejection
	revoked sync.Once // logs a revocation found after the connection's first verdict
}

type peerCheckKey struct{}

// peerConnContext gives each connection its peerCheck (http.Server's
// ConnContext).
func peerConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, peerCheckKey{}, &peerCheck{})
}

// verifyPeers verifies the client certificate of each connection against
// pool, then with check when not nil (see above), before h sees the
// request.
func verifyPeers(h http.Handler, pool *x509.CertPool, check func([][]*x509.Certificate) error,
	now func() time.Time, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			h.ServeHTTP(w, r)
			return
		}
		pc, _ := r.Context().Value(peerCheckKey{}).(*peerCheck)
		if pc == nil { // a server without peerConnContext: per request
			pc = &peerCheck{}
		}
		pc.once.Do(func() {
			at := now()
			chains, err := x509cert.VerifyClient(r.TLS.PeerCertificates, pool, at)
			if err == nil && check != nil {
				err = check(chains)
			}
			if err != nil {
				pc.reject = x509cert.RejectionOf(r.TLS.PeerCertificates[0], err, at)
				// The thumbprint only: a certificate's subject names a
				// person (and may carry an ID number).
				log.Info("client certificate not accepted; the connection continues without it",
					zap.String("reason", pc.reject.Kind), zap.String("sha256", pc.reject.Thumbprint))
				return
			}
			pc.chains = chains
		})
		reject := pc.reject
		if reject == nil && check != nil {
			// The lists may have changed since the connection's verdict
			// (a keep-alive connection outlives a CRL update): asked on
			// every request, which costs a lookup per chain certificate.
			if err := check(pc.chains); err != nil {
				reject = x509cert.RejectionOf(r.TLS.PeerCertificates[0], err, now())
				pc.revoked.Do(func() {
					log.Info("client certificate revoked during the connection; its requests continue without it",
						zap.String("reason", reject.Kind), zap.String("sha256", reject.Thumbprint))
				})
			}
		}
		cs := *r.TLS
		ctx := r.Context()
		if reject != nil {
			cs.PeerCertificates, cs.VerifiedChains = nil, nil
			ctx = x509cert.WithRejection(ctx, reject)
		} else {
			cs.VerifiedChains = pc.chains
		}
		r = r.WithContext(ctx)
		r.TLS = &cs
		h.ServeHTTP(w, r)
	})
}
