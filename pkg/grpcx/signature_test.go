package grpcx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/caller"
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
