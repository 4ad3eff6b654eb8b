package grpcx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/reqsig"
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
type bodyDigest struct {
	sum string
	// answerApp and answerNonce: the call's signature verified
	// (SignedCall), its answer is signed over gRPC.
	answerApp, answerNonce string
}

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
//
// With a signer, the answer to a call whose signature caller auth verified
// (SignedCall) is signed too (docs/adr/0016): over gRPC the response
// message is encoded here once, its bytes signed (the trailer carries the
// signature) and sent as they are by the server codec; for a REST edge's
// call the edge, which alone sees the HTTP body, is told to sign
// (MetadataSignAnswer). An unsigned call pays one metadata lookup, as
// before.
func SignedBodies(desc *grpc.ServiceDesc, signer ResponseSigner) *grpc.ServiceDesc {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		method := "/" + desc.ServiceName + "/" + m.MethodName
		d.Methods[i] = grpc.MethodDesc{MethodName: m.MethodName, Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			if IncomingValue(ctx, MetadataSignature) == "" {
				return h(srv, ctx, dec, ic)
			}
			bd := new(bodyDigest)
			ctx = context.WithValue(ctx, bodyDigestKey{}, bd)
			resp, err := h(srv, ctx, func(v any) error { return dec(digestTarget{msg: v, d: bd}) }, ic)
			if err != nil || signer == nil || bd.answerApp == "" {
				return resp, err
			}
			return signAnswer(ctx, signer, method, bd, resp)
		}}
	}
	return &d
}

// Signed answers (pkg/reqsig: ResponseStringToSign).
const (
	// MetadataResponseSignature, MetadataResponseKeyID and
	// MetadataResponseTimestamp are the trailer of a signed gRPC answer;
	// over REST the headers X-Uias-Response-Signature, -Key-Id and
	// -Timestamp.
	MetadataResponseSignature = "x-uias-response-signature"
	MetadataResponseKeyID     = "x-uias-response-key-id"
	MetadataResponseTimestamp = "x-uias-response-timestamp"
	// MetadataSignAnswer is a service's word to the REST edge (response
	// header metadata, never forwarded to the client): the call's request
	// signature was verified for this App_ID; sign the body you send.
	MetadataSignAnswer = "x-uias-sign-answer"
)

// ResponseSigner signs answers with UIAS's response signing key:
// *reqsig.ResponseSigner where the key ring is (identity), a client of
// identity's CallerService.SignResponse elsewhere (authz, the REST edge).
type ResponseSigner interface {
	SignResponse(ctx context.Context, appID, target, nonce, bodySHA256 string) (reqsig.ResponseSignature, error)
}

// SignedCall tells the transport that caller auth verified the request
// signature sig of application appID for the call in ctx, so that its
// answer is signed (SignedBodies): over gRPC by the service, for a REST
// edge's call by the edge (told through MetadataSignAnswer). Call it from
// CallerAuth once the signature verified.
func SignedCall(ctx context.Context, appID string, sig caller.SignedRequest) {
	d, ok := ctx.Value(bodyDigestKey{}).(*bodyDigest)
	if !ok {
		return
	}
	if OriginFrom(ctx).HTTPRequest != "" {
		// The edge alone sees the HTTP body it sends: it signs it.
		_ = grpc.SetHeader(ctx, metadata.Pairs(MetadataSignAnswer, appID))
		return
	}
	d.answerApp, d.answerNonce = appID, sig.Nonce
}

// encodedResponse is a response already encoded (signAnswer): the server
// codec sends its bytes as they are; a direct call takes its message.
type encodedResponse struct {
	b   []byte
	msg proto.Message
}

// signAnswer encodes resp once, signs its bytes for the call described by
// d and sets the signature trailer; the codec then sends those bytes.
func signAnswer(ctx context.Context, signer ResponseSigner, method string, d *bodyDigest, resp any) (any, error) {
	m, ok := resp.(proto.Message)
	if !ok || m == nil {
		return resp, nil
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	s, err := signer.SignResponse(ctx, d.answerApp, method, d.answerNonce, hex.EncodeToString(sum[:]))
	if err != nil {
		// A signed call is never answered unsigned: the client would take
		// the missing signature for a forgery.
		return nil, apierr.ToStatus(apierr.ErrUnavailable.WithMessage("the answer could not be signed now; retry with a new nonce and signature"))
	}
	if err := grpc.SetTrailer(ctx, metadata.Pairs(MetadataResponseSignature, s.Signature,
		MetadataResponseKeyID, s.KeyID, MetadataResponseTimestamp, s.Timestamp)); err != nil {
		return nil, err
	}
	return encodedResponse{b: b, msg: m}, nil
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
