package grpcx

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/reqsig"
)

type staticHealth struct {
	healthpb.UnimplementedHealthServer
	resp *healthpb.HealthCheckResponse
}

func (s staticHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return s.resp, nil
}

// An unsigned call through a service registered with SignedBodies costs no
// allocation more than without it, and RequestSignature none at all.
func TestSignedBodiesUnsignedPathAllocations(t *testing.T) {
	srv := staticHealth{resp: &healthpb.HealthCheckResponse{}}
	plain := healthpb.Health_ServiceDesc.Methods[0].Handler
	wrapped := SignedBodies(&healthpb.Health_ServiceDesc, nil).Methods[0].Handler
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(MetadataAppID, "app-1", MetadataAppSecret, "s",
		"user-agent", "grpc-go", MetadataRequestID, "rid-1"))
	req := &healthpb.HealthCheckRequest{}
	dec := func(v any) error {
		*v.(*healthpb.HealthCheckRequest) = healthpb.HealthCheckRequest{Service: req.Service}
		return nil
	}
	call := func(h func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error)) func() {
		return func() {
			if _, err := h(srv, ctx, dec, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := testing.AllocsPerRun(200, call(plain)), testing.AllocsPerRun(200, call(wrapped))
	if b != a {
		t.Fatalf("unsigned call: %v allocations with SignedBodies, %v without", b, a)
	}
	// ... also when its answers are signed (signed calls only).
	withSigner := SignedBodies(&healthpb.Health_ServiceDesc, failingSigner{}).Methods[0].Handler
	if c := testing.AllocsPerRun(200, call(withSigner)); c != a {
		t.Fatalf("unsigned call: %v allocations with SignedBodies and a response signer, %v without", c, a)
	}
	if n := testing.AllocsPerRun(200, func() { _ = RequestSignature(ctx, "/m") }); n != 0 {
		t.Fatalf("RequestSignature of an unsigned call allocates %v", n)
	}
	if s := RequestSignature(ctx, "/m"); s.Signed() {
		t.Fatalf("unsigned call read as signed: %+v", s)
	}
}

// A signed call's handler decodes through the codec's digest wrapper: the
// SHA-256 of the bytes received is there for RequestSignature.
func TestSignedBodiesDigest(t *testing.T) {
	srv := staticHealth{resp: &healthpb.HealthCheckResponse{}}
	wrapped := SignedBodies(&healthpb.Health_ServiceDesc, nil).Methods[0].Handler
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(MetadataSignature, "c2ln",
		MetadataTimestamp, "1800000000", MetadataNonce, "nonce-0123456789ab"))
	codec := newRequestCodec()
	wire, err := codec.Marshal(&healthpb.HealthCheckRequest{Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wire.Materialize())
	var (
		got     caller.SignedRequest
		service string
	)
	dec := func(v any) error { return codec.Unmarshal(wire, v) }
	ic := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		got = RequestSignature(ctx, "/grpc.health.v1.Health/Check")
		service = req.(*healthpb.HealthCheckRequest).GetService()
		return handler(ctx, req)
	}
	if _, err := wrapped(srv, ctx, dec, ic); err != nil {
		t.Fatal(err)
	}
	want := caller.SignedRequest{Signature: "c2ln", Timestamp: "1800000000", Nonce: "nonce-0123456789ab",
		Target: "/grpc.health.v1.Health/Check", BodySHA256: hex.EncodeToString(sum[:])}
	if service != "svc" || got != want {
		t.Fatalf("decoded %q, signature %+v, want %+v", service, got, want)
	}
}

// failingSigner cannot sign (identity unreachable).
type failingSigner struct{}

func (failingSigner) SignResponse(context.Context, string, string, string, string) (reqsig.ResponseSignature, error) {
	return reqsig.ResponseSignature{}, errors.New("unreachable")
}

// The answer to a call whose signature caller auth verified (SignedCall)
// is encoded once, its bytes signed (the trailer) and sent as they are by
// the server codec; a signed call caller auth did not mark, and a REST
// edge's call (the edge signs the body: told by header), get no trailer;
// a signer that fails makes the call fail, never answer unsigned.
func TestSignedBodiesSignsAnswers(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := reqsig.NewResponseSigner("s1", map[string]ed25519.PrivateKey{"s1": k})
	if err != nil {
		t.Fatal(err)
	}
	v, _ := reqsig.NewResponseVerifier(signer.PublicKeys())
	resp := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	srv := staticHealth{resp: resp}
	const method, nonce = "/grpc.health.v1.Health/Check", "nonce-0123456789ab"
	codec := newRequestCodec()
	wire, _ := codec.Marshal(&healthpb.HealthCheckRequest{Service: "svc"})
	call := func(s ResponseSigner, mark bool, o *Origin) (any, *directStream, error) {
		st := &directStream{method: method}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(MetadataSignature, "c2ln",
			MetadataTimestamp, "1800000000", MetadataNonce, nonce))
		ctx = grpc.NewContextWithServerTransportStream(ctx, st)
		if o != nil {
			ctx = WithOrigin(ctx, *o)
		}
		ic := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if mark {
				SignedCall(ctx, "app-1", RequestSignature(ctx, method))
			}
			return handler(ctx, req)
		}
		out, err := SignedBodies(&healthpb.Health_ServiceDesc, s).Methods[0].Handler(srv, ctx, func(v any) error { return codec.Unmarshal(wire, v) }, ic)
		return out, st, err
	}

	out, st, err := call(signer, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := codec.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	_, trailer := st.finish()
	if _, err := v.Verify("app-1", method, nonce, sent.Materialize(), ResponseSignatureFrom(trailer)); err != nil {
		t.Fatalf("the bytes sent do not verify: %v (trailer %v)", err, trailer)
	}
	if e, ok := out.(encodedResponse); !ok || !proto.Equal(e.msg, resp) {
		t.Fatalf("answer %T", out)
	}

	for name, c := range map[string]struct {
		mark bool
		o    *Origin
	}{"not verified": {false, nil}, "a REST edge's call": {true, &Origin{HTTPRequest: "POST /v1/x " + strings.Repeat("0", 64)}}} {
		out, st, err := call(signer, c.mark, c.o)
		if err != nil {
			t.Fatal(err)
		}
		header, trailer := st.finish()
		if _, ok := out.(*healthpb.HealthCheckResponse); !ok || len(trailer) != 0 {
			t.Fatalf("%s: answer %T, trailer %v", name, out, trailer)
		}
		if got := header.Get(MetadataSignAnswer); (c.o != nil) != (len(got) == 1 && got[0] == "app-1") {
			t.Fatalf("%s: header %v", name, header)
		}
	}

	if _, _, err := call(failingSigner{}, true, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("the signer failing: %v", err)
	}
}
