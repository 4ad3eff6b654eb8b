package grpcx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	"github.com/uias/uias/pkg/caller"
)

// Metadata keys of a signed request (pkg/reqsig). Over HTTP the same names
// are the request headers X-Uias-Timestamp, X-Uias-Nonce and
// X-Uias-Signature, which the REST edge forwards as this metadata.
const (
	MetadataTimestamp = "x-uias-timestamp"
	MetadataNonce     = "x-uias-nonce"
	MetadataSignature = "x-uias-signature"
	// MetadataHTTPRequest is the REST edge's account of the HTTP request
	// it turned into the call: "<HTTP method> <request target> <lower case
	// hex SHA-256 of the body>", what a REST client signs. It is part of
	// the origin (Origin.HTTPRequest): believed only over a trusted
	// channel, like the client address.
	MetadataHTTPRequest = "x-uias-http-request"
)

// Request bytes of signed gRPC calls.
//
// A gRPC client signs the SHA-256 of the request message's protobuf bytes
// as it sends them; the server must hash the bytes it received, never a
// re-encoding (protobuf encodings are not canonical: field order, unknown
// fields, packed or not). grpc-go decodes a unary request inside the
// method's handler, before any interceptor, and only the codec sees the
// bytes; its stats handlers no longer do (InPayload has no Data since
// v1.7x). So a method of a service registered through SignedBodies hands
// its codec, for a call that carries x-uias-signature, the message wrapped
// (digestTarget): requestCodec hashes the bytes and decodes into the
// message, and the digest waits in the call's context for caller auth
// (RequestSignature). An unsigned call is decoded as before, with nothing
// more than one metadata lookup.

// bodyDigest is the lower case hex SHA-256 of a signed call's request
// bytes, once decoded ("" before, or when no bytes were seen: a direct
// call).
type bodyDigest struct{ sum string }

type bodyDigestKey struct{}

// digestTarget is what a signed call's handler decodes into: the message
// and where its bytes' digest goes.
type digestTarget struct {
	msg any
	d   *bodyDigest
}

// hashBuffers is the lower case hex SHA-256 of data.
func hashBuffers(data mem.BufferSlice) string {
	h := sha256.New()
	for _, b := range data {
		h.Write(b.ReadOnlyData())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SignedBodies returns a copy of desc whose unary methods keep, for a call
// that carries a request signature (x-uias-signature), the SHA-256 of the
// request bytes received, for RequestSignature. Register through it the
// services whose callers may sign (identity's AuthService).
func SignedBodies(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		d.Methods[i] = grpc.MethodDesc{MethodName: m.MethodName, Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			if IncomingValue(ctx, MetadataSignature) == "" {
				return h(srv, ctx, dec, ic)
			}
			bd := new(bodyDigest)
			ctx = context.WithValue(ctx, bodyDigestKey{}, bd)
			return h(srv, ctx, func(v any) error { return dec(digestTarget{msg: v, d: bd}) }, ic)
		}}
	}
	return &d
}

// RequestSignature is the signature the call in ctx to method presents
// (the zero value for an unsigned call): the values sent, and what they
// sign: for a REST call the HTTP request the edge received (asserted over
// a trusted channel, Origin.HTTPRequest), else the gRPC method and the
// SHA-256 of the request bytes this server received (SignedBodies; none
// for a service not registered through it, or a direct call).
func RequestSignature(ctx context.Context, method string) caller.SignedRequest {
	sig := IncomingValue(ctx, MetadataSignature)
	if sig == "" {
		// Unsigned; the other two values, if sent, make it half signed
		// (refused, never taken for unsigned).
		return caller.SignedRequest{Timestamp: IncomingValue(ctx, MetadataTimestamp), Nonce: IncomingValue(ctx, MetadataNonce)}
	}
	r := caller.SignedRequest{Signature: sig, Timestamp: IncomingValue(ctx, MetadataTimestamp), Nonce: IncomingValue(ctx, MetadataNonce)}
	if h := OriginFrom(ctx).HTTPRequest; h != "" {
		if i := strings.LastIndexByte(h, ' '); i > 0 {
			r.Target, r.BodySHA256 = h[:i], h[i+1:]
		}
		return r
	}
	if IncomingValue(ctx, MetadataHTTPRequest) != "" {
		// A REST edge's account this server does not believe (no shared
		// internal key): what was signed is unknown.
		r.Untrusted = true
		return r
	}
	if d, ok := ctx.Value(bodyDigestKey{}).(*bodyDigest); ok && d.sum != "" {
		r.Target, r.BodySHA256 = method, d.sum
	}
	return r
}
