package grpcx

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/reqsig"
)

// Signing gRPC requests (the client side of pkg/reqsig), for Go clients and
// tests. The signature covers the request message's bytes as sent, so the
// client encodes the message once, signs those bytes and sends exactly
// them (EncodedRequest with WithEncodedRequests), never a second encoding
// that might differ (map order).

// EncodedRequest is a request message already encoded (protobuf wire
// bytes), sent as it is by a call with WithEncodedRequests.
type EncodedRequest []byte

// encodedCodec is the proto codec, except that an EncodedRequest is sent
// as it is.
type encodedCodec struct{ encoding.CodecV2 }

func (c encodedCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(EncodedRequest); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal decodes data into v; a receivedReply keeps the bytes.
func (c encodedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*receivedReply); ok {
		r.b = data.Materialize()
		return c.CodecV2.Unmarshal(data, r.msg)
	}
	return c.CodecV2.Unmarshal(data, v)
}

// WithEncodedRequests is the call option that lets a call's request be an
// EncodedRequest.
func WithEncodedRequests() grpc.CallOption {
	return grpc.ForceCodecV2(encodedCodec{CodecV2: encoding.GetCodecV2(protoenc.Name)})
}

// SignRequests returns a client interceptor that signs every unary call
// as application appID with priv (an *ecdsa.PrivateKey, ed25519.PrivateKey
// or *rsa.PrivateKey whose public key is registered): the request is
// encoded once, its bytes signed (pkg/reqsig, a fresh random nonce, the
// time now) and sent as they are. With VerifyAnswers, the answer's
// signature is checked too.
func SignRequests(appID string, priv crypto.Signer, opts ...SignOption) grpc.UnaryClientInterceptor {
	var so signOptions
	for _, o := range opts {
		o(&so)
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		m, ok := req.(proto.Message)
		if !ok {
			return fmt.Errorf("grpcx: signing %s: %T is not a protobuf message", method, req)
		}
		b, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		md, err := SignatureMetadata(appID, priv, method, b, time.Now())
		if err != nil {
			return err
		}
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
		if so.verifier == nil {
			return invoker(ctx, method, EncodedRequest(b), reply, cc, append(opts, WithEncodedRequests())...)
		}
		var trailer metadata.MD
		got := &receivedReply{msg: reply}
		if err := invoker(ctx, method, EncodedRequest(b), got, cc, append(opts, WithEncodedRequests(), grpc.Trailer(&trailer))...); err != nil {
			return err
		}
		var nonce string
		for i := 0; i+1 < len(md); i += 2 {
			if md[i] == MetadataNonce {
				nonce = md[i+1]
			}
		}
		if _, err := so.verifier.Verify(appID, method, nonce, got.b, ResponseSignatureFrom(trailer)); err != nil {
			return fmt.Errorf("grpcx: the answer to %s: %w", method, err)
		}
		return nil
	}
}

// SignOption is an option of SignRequests.
type SignOption func(*signOptions)

type signOptions struct{ verifier *reqsig.ResponseVerifier }

// VerifyAnswers makes SignRequests check UIAS's signature of every answer
// with v (the published keys: reqsig.ParseResponseKeys): over the response
// bytes as received, bound to the request's nonce. An answer that does not
// verify is an error wrapping reqsig.ErrResponseUnsigned,
// ErrResponseUnknownKey or ErrResponseBadSignature (the call's effect, if
// any, has happened).
func VerifyAnswers(v *reqsig.ResponseVerifier) SignOption {
	return func(o *signOptions) { o.verifier = v }
}

// ResponseSignatureFrom reads a signed answer's trailer.
func ResponseSignatureFrom(trailer metadata.MD) reqsig.ResponseSignature {
	first := func(k string) string {
		if v := trailer.Get(k); len(v) > 0 {
			return v[0]
		}
		return ""
	}
	return reqsig.ResponseSignature{Signature: first(MetadataResponseSignature), KeyID: first(MetadataResponseKeyID),
		Timestamp: first(MetadataResponseTimestamp)}
}

// receivedReply is a reply whose bytes as received are kept (encodedCodec).
type receivedReply struct {
	msg any
	b   []byte
}

// SignatureMetadata signs the request bytes body of a call to method as
// application appID at now, with a fresh random nonce, and returns the
// metadata pairs to send (x-uias-timestamp, x-uias-nonce,
// x-uias-signature).
func SignatureMetadata(appID string, priv crypto.Signer, method string, body []byte, now time.Time) ([]string, error) {
	var n [18]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	sum := sha256.Sum256(body)
	sig, err := reqsig.Sign(priv, reqsig.StringToSign(appID, method, ts, nonce, hex.EncodeToString(sum[:])))
	if err != nil {
		return nil, err
	}
	return []string{MetadataTimestamp, ts, MetadataNonce, nonce, MetadataSignature, sig}, nil
}
