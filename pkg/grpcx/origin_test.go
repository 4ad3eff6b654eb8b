package grpcx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/uias/uias/pkg/x509cert"
)

// serverSide turns what a client interceptor would send into the context a
// server handler gets from peer addr.
func serverSide(out context.Context, addr net.Addr) context.Context {
	md, _ := metadata.FromOutgoingContext(out)
	return peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{Addr: addr})
}

func TestOriginTrust(t *testing.T) {
	key := []byte("0123456789abcdef")
	o := Origin{ClientIP: netip.MustParseAddr("192.0.2.7"), App: "app-1", Principal: "u-1", ClientCert: x509cert.Thumbprint([]byte("der"))}
	ctx := WithOrigin(WithRequestID(context.Background(), "rid-1"), o)
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}

	if got, ok := incomingOrigin(serverSide(outgoingOrigin(ctx, key, ""), tcp), key); !ok || got != o {
		t.Fatalf("signed origin: %+v %v", got, ok)
	}
	if got, ok := incomingOrigin(serverSide(outgoingOrigin(ctx, nil, ""), InprocAddr{}), nil); !ok || got != o {
		t.Fatalf("in-process origin: %+v %v", got, ok)
	}
	for name, c := range map[string]context.Context{
		"unsigned over the network": serverSide(outgoingOrigin(ctx, nil, ""), tcp),
		"signed with another key":   serverSide(outgoingOrigin(ctx, []byte("another-key-0000"), ""), tcp),
	} {
		if got, ok := incomingOrigin(c, key); ok {
			t.Errorf("%s: believed %+v", name, got)
		}
	}
	// Changing any signed value breaks the signature.
	signed, _ := metadata.FromOutgoingContext(outgoingOrigin(ctx, key, ""))
	for _, k := range []string{MetadataClientIP, MetadataOriginApp, MetadataOriginPrincipal, MetadataClientCert, MetadataRequestID} {
		md := signed.Copy()
		md.Set(k, "10.0.0.1")
		c := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{Addr: tcp})
		if got, ok := incomingOrigin(c, key); ok {
			t.Errorf("altered %s believed: %+v", k, got)
		}
	}
	if got := OriginFrom(WithClientIP(context.Background(), o.ClientIP)); got.ClientIP != o.ClientIP || got.App != "" {
		t.Errorf("OriginFrom falls back to the client address: %+v", got)
	}
}

// The client certificate of a call is the verified one of its own TLS
// connection, unless a trusted channel (the edge) speaks for the client;
// an unverified certificate or an untrusted assertion counts for nothing.
func TestClientCertOfCall(t *testing.T) {
	key := []byte("0123456789abcdef")
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	leaf := &x509.Certificate{Raw: []byte("client-der")}
	withTLS := func(ctx context.Context, verified bool) context.Context {
		st := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		if verified {
			st.VerifiedChains = [][]*x509.Certificate{{leaf}}
		}
		p, _ := peer.FromContext(ctx)
		return peer.NewContext(ctx, &peer.Peer{Addr: p.Addr, AuthInfo: credentials.TLSInfo{State: st}})
	}
	c := &chain{internalKey: key}
	plain := serverSide(context.Background(), tcp)
	if got := ClientCertSHA256(c.withOrigin(withTLS(plain, true))); got != x509cert.Thumbprint(leaf.Raw) {
		t.Errorf("verified TLS peer: %q", got)
	}
	if got := ClientCertSHA256(c.withOrigin(withTLS(plain, false))); got != "" {
		t.Errorf("unverified TLS peer believed: %q", got)
	}
	// A certificate revoked after the handshake (the TLS config's
	// VerifyConnection, asked again on every call) counts as none.
	var revoked bool
	rc := &chain{internalKey: key, log: zap.NewNop(), verifyConn: func(cs tls.ConnectionState) error {
		if len(cs.VerifiedChains) == 0 || cs.VerifiedChains[0][0] != leaf {
			t.Errorf("verifyConn asked about %v", cs.VerifiedChains)
		}
		if revoked {
			return errors.New("revoked")
		}
		return nil
	}}
	if got := ClientCertSHA256(rc.withOrigin(withTLS(plain, true))); got != x509cert.Thumbprint(leaf.Raw) {
		t.Errorf("verified TLS peer, not revoked: %q", got)
	}
	revoked = true
	if got := ClientCertSHA256(rc.withOrigin(withTLS(plain, true))); got != "" {
		t.Errorf("a certificate revoked since the handshake believed: %q", got)
	}
	forged := metadata.AppendToOutgoingContext(context.Background(), MetadataClientCert, "ab")
	if got := ClientCertSHA256(c.withOrigin(serverSide(forged, tcp))); got != "" {
		t.Errorf("unsigned assertion believed: %q", got)
	}
	// The edge (signed) speaks for a client without a certificate: its own
	// TLS certificate is not the client's.
	edge := outgoingOrigin(WithOrigin(context.Background(), Origin{ClientIP: netip.MustParseAddr("192.0.2.9")}), key, "")
	if got := ClientCertSHA256(c.withOrigin(withTLS(serverSide(edge, tcp), true))); got != "" {
		t.Errorf("the edge's own certificate taken for its client's: %q", got)
	}
	edge = outgoingOrigin(WithOrigin(context.Background(), Origin{ClientIP: netip.MustParseAddr("192.0.2.9"), ClientCert: "cd"}), key, "")
	if got := ClientCertSHA256(c.withOrigin(withTLS(serverSide(edge, tcp), true))); got != "cd" {
		t.Errorf("the edge's client's certificate: %q", got)
	}
}

// FromComponent: in-process calls and calls with a signed origin (an empty
// one included) come from components; an unsigned or wrongly signed origin
// over the network does not.
func TestFromComponent(t *testing.T) {
	key := []byte("0123456789abcdef")
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	o := Origin{ClientIP: netip.MustParseAddr("192.0.2.7")}
	ctx := WithOrigin(WithRequestID(context.Background(), "rid-1"), o)
	c := &chain{internalKey: key}
	for name, tc := range map[string]struct {
		ctx  context.Context
		want bool
	}{
		"signed over the network":   {serverSide(outgoingOrigin(ctx, key, ""), tcp), true},
		"in process":                {serverSide(context.Background(), InprocAddr{}), true},
		"unsigned over the network": {serverSide(outgoingOrigin(ctx, nil, ""), tcp), false},
		"another key":               {serverSide(outgoingOrigin(ctx, []byte("another-key-0000"), ""), tcp), false},
		"no origin":                 {serverSide(context.Background(), tcp), false},
		// A component's own background work acts for nobody: the
		// signature of the empty origin alone makes it a component's.
		"acting for nobody, signed":   {serverSide(outgoingOrigin(WithRequestID(context.Background(), "rid-2"), key, ""), tcp), true},
		"acting for nobody, unsigned": {serverSide(outgoingOrigin(WithRequestID(context.Background(), "rid-2"), nil, ""), tcp), false},
		"acting for nobody, another key": {serverSide(outgoingOrigin(WithRequestID(context.Background(), "rid-2"),
			[]byte("another-key-0000"), ""), tcp), false},
		"acting for nobody, no request id": {serverSide(outgoingOrigin(context.Background(), key, ""), tcp), true},
	} {
		if got := FromComponent(c.withOrigin(tc.ctx)); got != tc.want {
			t.Errorf("%s: FromComponent = %v, want %v", name, got, tc.want)
		}
	}
}

// The edge's account of a signed HTTP request travels in the origin: signed
// with the internal key (any change breaks it), never passed on to nested
// calls.
func TestOriginHTTPRequest(t *testing.T) {
	key := []byte("0123456789abcdef")
	o := Origin{ClientIP: netip.MustParseAddr("192.0.2.7"), HTTPRequest: "POST /v1/auth/authenticate " + strings.Repeat("ab", 32)}
	ctx := WithOrigin(WithRequestID(context.Background(), "rid-1"), o)
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	if got, ok := incomingOrigin(serverSide(outgoingOrigin(ctx, key, ""), tcp), key); !ok || got != o {
		t.Fatalf("signed origin: %+v %v", got, ok)
	}
	signed, _ := metadata.FromOutgoingContext(outgoingOrigin(ctx, key, ""))
	md := signed.Copy()
	md.Set(MetadataHTTPRequest, "POST /v1/auth/authenticate "+strings.Repeat("cd", 32))
	if got, ok := incomingOrigin(peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{Addr: tcp}), key); ok {
		t.Fatalf("altered HTTP request believed: %+v", got)
	}
	// A client's own x-uias-http-request over the network is not believed.
	forged := metadata.NewIncomingContext(context.Background(), metadata.Pairs(MetadataHTTPRequest, o.HTTPRequest))
	if got, ok := incomingOrigin(peer.NewContext(forged, &peer.Peer{Addr: tcp}), key); ok {
		t.Fatalf("forged HTTP request believed: %+v", got)
	}
	// Nested calls do not carry it.
	nested := context.WithValue(ctx, servingKey{}, &callState{})
	if md, _ := metadata.FromOutgoingContext(outgoingOrigin(nested, key, "")); len(md.Get(MetadataHTTPRequest)) != 0 {
		t.Fatalf("nested call carries the HTTP request: %v", md)
	}
}

// methodStream is the server transport stream of a call of method (what
// grpc.Method reads on the server).
type methodStream struct {
	grpc.ServerTransportStream
	method string
}

func (m methodStream) Method() string { return m.method }

// A signed origin serves for the method it was signed for, within
// OriginMaxAge of its time: a captured one cannot be replayed at another
// method or later; its time cannot be changed.
func TestOriginSignatureBoundToMethodAndTime(t *testing.T) {
	key := []byte("0123456789abcdef")
	tcp := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	const method = "/uias.identity.v1.ViewService/GetViews"
	at := func(ctx context.Context, m string) context.Context {
		return grpc.NewContextWithServerTransportStream(ctx, methodStream{method: m})
	}
	for name, o := range map[string]Origin{"acting for nobody": {}, "for a client": {ClientIP: netip.MustParseAddr("192.0.2.7")}} {
		out := outgoingOrigin(WithOrigin(context.Background(), o), key, method)
		if _, ok := incomingOrigin(at(serverSide(out, tcp), method), key); !ok && name != "" {
			t.Fatalf("%s: the signed method refused", name)
		}
		if !FromComponent((&chain{internalKey: key}).withOrigin(at(serverSide(out, tcp), method))) {
			t.Fatalf("%s: not from a component", name)
		}
		if got, ok := incomingOrigin(at(serverSide(out, tcp), "/uias.authz.v1.AuthzService/AppointAdmin"), key); ok {
			t.Errorf("%s: replayed at another method: believed %+v", name, got)
		}
		md, _ := metadata.FromOutgoingContext(out)
		for what, when := range map[string]time.Time{"old": time.Now().Add(-OriginMaxAge - time.Minute), "from the future": time.Now().Add(OriginMaxAge + time.Minute)} {
			m := md.Copy()
			m.Set(MetadataOriginTime, strconv.FormatInt(when.Unix(), 10))
			if _, ok := incomingOrigin(at(peer.NewContext(metadata.NewIncomingContext(context.Background(), m), &peer.Peer{Addr: tcp}), method), key); ok {
				t.Errorf("%s: a changed time (%s) believed", name, what)
			}
		}
		for _, bad := range []string{"", "soon", "-1"} {
			m := md.Copy()
			m.Set(MetadataOriginTime, bad)
			if _, ok := incomingOrigin(at(peer.NewContext(metadata.NewIncomingContext(context.Background(), m), &peer.Peer{Addr: tcp}), method), key); ok {
				t.Errorf("%s: time %q believed", name, bad)
			}
		}
		// A signature made long ago (its own time) is refused too.
		old := originSig(key, md.Get(MetadataRequestID)[0], o, false, method, strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
		m := md.Copy()
		m.Set(MetadataOriginTime, strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
		m.Set(MetadataOriginSig, old)
		if _, ok := incomingOrigin(at(peer.NewContext(metadata.NewIncomingContext(context.Background(), m), &peer.Peer{Addr: tcp}), method), key); ok {
			t.Errorf("%s: a signature an hour old believed", name)
		}
	}
	// A component's own call gets a request id of its own (its signature
	// is of that call only).
	a, _ := metadata.FromOutgoingContext(outgoingOrigin(context.Background(), key, method))
	b, _ := metadata.FromOutgoingContext(outgoingOrigin(context.Background(), key, method))
	if a.Get(MetadataRequestID)[0] == "" || a.Get(MetadataRequestID)[0] == b.Get(MetadataRequestID)[0] {
		t.Errorf("request ids of background calls: %v %v", a.Get(MetadataRequestID), b.Get(MetadataRequestID))
	}
}
