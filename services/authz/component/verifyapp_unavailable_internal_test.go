package component

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// With identity unreachable, an application's call to authz is refused
// UNAVAILABLE IDENTITY_UNAVAILABLE with a sentence naming identity (as an
// administrator's call is), not a bare "service temporarily unavailable"
// that reads as if authz were down (found walking the components apart:
// both identity replicas stopped, POST /v1/authz/check answered 503
// UNAVAILABLE "service temporarily unavailable").
func TestVerifyAppIdentityUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nobody answers there
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := identityVerifier{c: identityv1.NewCallerServiceClient(conn)}
	_, _, err = v.VerifyApp(context.Background(), "app", "secret", netip.MustParseAddr("127.0.0.1"), "", caller.SignedRequest{}, "authz.check")
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.Unavailable || ae.Reason != adminauth.ReasonIdentityUnavailable ||
		!strings.Contains(ae.Message, "identity service is unavailable") {
		t.Fatalf("identity down: %v, want UNAVAILABLE %s naming identity", err, adminauth.ReasonIdentityUnavailable)
	}
}
