package grpcx

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/test/bufconn"

	"github.com/uias/uias/pkg/x509cert"
)

// Metadata keys by which one UIAS component tells another on whose behalf
// it calls: the original client address and caller. A server believes them
// only over a trusted channel (see ServerOptions.InternalKey); from anyone
// else they are ignored.
const (
	MetadataClientIP        = "x-uias-client-ip"
	MetadataOriginApp       = "x-uias-origin-app"
	MetadataOriginPrincipal = "x-uias-origin-principal"
	// MetadataClientCert is the SHA-256 fingerprint (hex) of the client
	// certificate the edge verified for the original client.
	MetadataClientCert = "x-uias-client-cert"
	// MetadataOriginSig is HMAC-SHA256 under the internal key of the other
	// origin values and the request id (base64url), so that a component
	// reached over the network knows the assertion comes from a peer that
	// holds the key.
	MetadataOriginSig = "x-uias-origin-sig"
	// MetadataOriginTime is when the origin was signed (Unix seconds),
	// signed with it: a signature serves only within OriginMaxAge of it,
	// and only for the method it was made for.
	MetadataOriginTime = "x-uias-origin-time"
)

// OriginMaxAge bounds how far a signed origin's time may be from the
// server's clock (either way: the components' clocks differ a little):
// a captured signature cannot be replayed later, nor at another method.
const OriginMaxAge = 2 * time.Minute

// Origin is who a call is made for: the client address the edge saw and the
// caller a component authenticated (an App_ID, an administrator). It travels
// with calls between components.
type Origin struct {
	ClientIP  netip.Addr
	App       string // App_ID of the calling application, if any
	Principal string // the authenticated person (e.g. admin user id), if any
	// ClientCert is the SHA-256 fingerprint (lower case hex of the DER) of
	// the client certificate the original client presented and the server
	// that terminated its TLS verified; "" if none.
	ClientCert string
	// HTTPRequest is, for a call the REST edge made of an HTTP request
	// that carries a request signature, that request as signed: "<HTTP
	// method> <request target> <hex SHA-256 of the body>"
	// (MetadataHTTPRequest). It is not passed on to the calls made while
	// serving the call.
	HTTPRequest string
}

// ClientCertSHA256 returns the fingerprint of the verified client
// certificate of the call in ctx ("" if none): from the TLS connection of
// the call, or, for a call a trusted component made on behalf of a client
// (the edge), the certificate that client presented to it.
func ClientCertSHA256(ctx context.Context) string { return OriginFrom(ctx).ClientCert }

// peerCert is the fingerprint of the client certificate of the TLS
// connection of ctx, if the server verified it against its client CAs.
func peerCert(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	if c := x509cert.VerifiedPeer(&ti.State); c != nil {
		return x509cert.Thumbprint(c.Raw)
	}
	return ""
}

type originKey struct{}

// WithOrigin returns ctx carrying o (and o.ClientIP as the client address).
func WithOrigin(ctx context.Context, o Origin) context.Context {
	ctx = context.WithValue(ctx, originKey{}, o)
	if o.ClientIP.IsValid() && ClientIP(ctx) != o.ClientIP { // the chain's origin often carries the same
		ctx = WithClientIP(ctx, o.ClientIP)
	}
	return ctx
}

// OriginFrom returns the origin of ctx: the one set by WithOrigin, with the
// client address of ctx when it has none.
func OriginFrom(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	if !o.ClientIP.IsValid() {
		o.ClientIP = ClientIP(ctx)
	}
	return o
}

// originSig signs the origin values, the request id, the method called
// and the time of signing (and the nested mark, when set).
func originSig(key []byte, requestID string, o Origin, nested bool, method, at string) string {
	m := hmac.New(sha256.New, key)
	ip := ""
	if o.ClientIP.IsValid() {
		ip = o.ClientIP.String()
	}
	parts := []string{requestID, ip, o.App, o.Principal, o.ClientCert, method, at}
	if nested {
		parts = append(parts, MetadataNested)
	}
	if o.HTTPRequest != "" { // signed only when set: origins without it sign as before
		parts = append(parts, MetadataHTTPRequest, o.HTTPRequest)
	}
	for _, s := range parts {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// outgoingOrigin adds the request id and origin of ctx to its outgoing
// metadata (replacing any the caller set), signed with key when given for
// a call of method.
func outgoingOrigin(ctx context.Context, key []byte, method string) context.Context {
	return metadata.NewOutgoingContext(ctx, originMD(ctx, key, method))
}

// originMD is the outgoing metadata of ctx (a copy of its own) with the
// request id (unless it carries one) and origin of ctx, as outgoingOrigin
// sends them: one copy of the metadata per call.
func originMD(ctx context.Context, key []byte, method string) metadata.MD {
	md, _ := metadata.FromOutgoingContext(ctx) // a copy
	if md == nil {
		md = metadata.MD{}
	}
	if id := RequestID(ctx); id != "" && len(md[MetadataRequestID]) == 0 {
		md[MetadataRequestID] = []string{id}
	} else if key != nil && len(md[MetadataRequestID]) == 0 {
		// A component's own call (no request serves it): one of its own,
		// so that its signature is of this call only.
		md[MetadataRequestID] = []string{NewRequestID()}
	}
	// Only the server chain marks a call nested, never the caller's own
	// metadata.
	nested := Serving(ctx)
	if nested {
		md[MetadataNested] = []string{"1"}
	} else {
		delete(md, MetadataNested)
	}
	o := OriginFrom(ctx)
	if nested {
		o.HTTPRequest = "" // the edge's request is the outer call's
	}
	delete(md, MetadataHTTPRequest)
	if key == nil && o.empty() {
		return md
	}
	// With the key, an origin is asserted even when the call acts for
	// nobody (a component's own background work: an appointment, a
	// status refresh): the signature alone tells the server a component
	// calls (FromComponent).
	if o.ClientIP.IsValid() {
		md[MetadataClientIP] = []string{o.ClientIP.String()}
	} else {
		delete(md, MetadataClientIP)
	}
	setOrDelete(md, MetadataOriginApp, o.App)
	setOrDelete(md, MetadataOriginPrincipal, o.Principal)
	setOrDelete(md, MetadataClientCert, o.ClientCert)
	setOrDelete(md, MetadataHTTPRequest, o.HTTPRequest)
	delete(md, MetadataOriginSig)
	delete(md, MetadataOriginTime)
	if key != nil {
		at := strconv.FormatInt(time.Now().Unix(), 10)
		md[MetadataOriginTime] = []string{at}
		md[MetadataOriginSig] = []string{originSig(key, firstValue(md, MetadataRequestID), o, nested, method, at)}
	}
	return md
}

func setOrDelete(md metadata.MD, k, v string) {
	if v == "" {
		md.Delete(k)
		return
	}
	md.Set(k, v)
}

// UnaryClientOrigin propagates the request id and origin of the calling
// context to the server, signed with key (nil: unsigned, for in-process
// connections, which servers trust by construction).
func UnaryClientOrigin(key []byte) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(outgoingOrigin(ctx, key, method), method, req, reply, cc, opts...)
	}
}

// StreamClientOrigin is the streaming counterpart of UnaryClientOrigin.
func StreamClientOrigin(key []byte) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoingOrigin(ctx, key, method), desc, cc, method, opts...)
	}
}

// incomingOrigin returns the origin asserted by the peer when the channel is
// trusted: an in-process connection, or a signature valid under key.
func incomingOrigin(ctx context.Context, key []byte) (Origin, bool) {
	return originOf(ctx, callMD(ctx), key)
}

// originOf is incomingOrigin with the call's metadata given.
func originOf(ctx context.Context, md metadata.MD, key []byte) (Origin, bool) {
	if md == nil {
		return Origin{}, false
	}
	first := func(k string) string { return firstValue(md, k) }
	var o Origin
	if s := first(MetadataClientIP); s != "" {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return Origin{}, false
		}
		o.ClientIP = ip.Unmap()
	}
	o.App, o.Principal = first(MetadataOriginApp), first(MetadataOriginPrincipal)
	o.ClientCert = first(MetadataClientCert)
	o.HTTPRequest = first(MetadataHTTPRequest)
	sig := first(MetadataOriginSig)
	if o.empty() && (sig == "" || InProcess(ctx)) {
		// Nothing asserted (an in-process call is a component's anyway:
		// FromComponent).
		return Origin{}, false
	}
	if InProcess(ctx) {
		return o, true
	}
	if key == nil || sig == "" {
		return Origin{}, false
	}
	at := first(MetadataOriginTime)
	secs, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return Origin{}, false
	}
	if d := time.Since(time.Unix(secs, 0)); d > OriginMaxAge || d < -OriginMaxAge {
		return Origin{}, false
	}
	method, _ := grpc.Method(ctx)
	want := originSig(key, first(MetadataRequestID), o, first(MetadataNested) != "", method, at)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return Origin{}, false
	}
	return o, true
}

// empty reports whether o asserts nothing.
func (o Origin) empty() bool {
	return !o.ClientIP.IsValid() && o.App == "" && o.Principal == "" && o.ClientCert == "" && o.HTTPRequest == ""
}

// componentKey marks a call whose origin a trusted channel asserted.
type componentKey struct{}

// FromComponent reports whether the call in ctx came from a UIAS component:
// over an in-process connection, or asserting its origin under a valid
// signature of the internal key (a component reached over the network).
// Only code of this process or a holder of the key passes. Methods that
// only components may call (and that have no REST mapping, which the edge
// would call in-process on anyone's behalf) check it.
func FromComponent(ctx context.Context) bool {
	return InProcess(ctx) || ctx.Value(componentKey{}) != nil
}

// ---- in-process connections ----

// InprocAddr is the address of both ends of an in-process connection.
type InprocAddr struct{}

// Network implements net.Addr.
func (InprocAddr) Network() string { return "uias-inproc" }

// String implements net.Addr.
func (InprocAddr) String() string { return "in-process" }

// InProcess reports whether the call in ctx came over an in-process
// connection (NewInprocListener), which only code of this process can open.
func InProcess(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	_, ok = p.Addr.(InprocAddr)
	return ok
}

// InprocListener is an in-memory listener: a gRPC server serves it like a
// TCP listener, and Dial hands out connections to it without any socket.
type InprocListener struct{ l *bufconn.Listener }

// NewInprocListener returns an in-memory listener.
func NewInprocListener() *InprocListener {
	return &InprocListener{l: bufconn.Listen(1 << 20)}
}

// Accept implements net.Listener.
func (l *InprocListener) Accept() (net.Conn, error) {
	c, err := l.l.Accept()
	if err != nil {
		return nil, err
	}
	return inprocConn{c}, nil
}

// Close implements net.Listener.
func (l *InprocListener) Close() error { return l.l.Close() }

// Addr implements net.Listener.
func (l *InprocListener) Addr() net.Addr { return InprocAddr{} }

// Dial opens a connection to the listener (for grpc.WithContextDialer).
func (l *InprocListener) Dial(ctx context.Context, _ string) (net.Conn, error) {
	c, err := l.l.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	return inprocConn{c}, nil
}

type inprocConn struct{ net.Conn }

func (inprocConn) LocalAddr() net.Addr  { return InprocAddr{} }
func (inprocConn) RemoteAddr() net.Addr { return InprocAddr{} }
