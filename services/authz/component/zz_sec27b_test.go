package component

// sec27b proof (flow control): a call refused by loadingGate while the index
// loads has already taken a slot of the application's max_concurrent, and
// the slot is never given back (the chain gets a nil context and an error).
// Run: cp /work/review/sec27b-authzgate_test.go services/authz/component/zz_sec27b_test.go
//      nice -n 10 go test -count=1 -run TestSec27bLoadingGateLeaksSlot ./services/authz/component

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	"github.com/uias/uias/services/authz/server"
)

type sec27bVerifier struct{}

func (sec27bVerifier) VerifyApp(ctx context.Context, appID, secret string, ip netip.Addr, cert string, sig caller.SignedRequest, api string) (*caller.App, string, error) {
	return &caller.App{ID: appID, Active: true, MaxConcurrent: 2}, "", nil
}
func (sec27bVerifier) VerifyAdmin(ctx context.Context, token string) (*adminauth.Admin, error) {
	return nil, apierr.ErrUnavailable
}

func TestSec27bLoadingGateLeaksSlot(t *testing.T) {
	var loaded atomic.Bool
	g := loadingGate{auth: server.NewCallerAuth(sec27bVerifier{}), loaded: &loaded}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(grpcx.MetadataAppID, "oa", grpcx.MetadataAppSecret, "s"))
	m := authzv1.AuthzService_ListPermissions_FullMethodName
	for i := 0; i < 2; i++ { // while loading: refused UNAVAILABLE
		nctx, err := g.AuthenticateCaller(ctx, m)
		if err == nil || nctx != nil {
			t.Fatalf("loading: want refusal, got %v", err)
		}
	}
	loaded.Store(true)
	_, err := g.AuthenticateCaller(ctx, m)
	if ae, ok := apierr.As(err); ok && ae.Reason == caller.ReasonConcurrencyLimited {
		t.Fatalf("LEAK: after the index loaded, the first call is refused %v: the slots taken by the refused calls were never given back", err)
	}
	if err != nil {
		t.Fatalf("unexpected: %v", err)
	}
}
