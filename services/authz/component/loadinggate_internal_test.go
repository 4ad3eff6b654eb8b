package component

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

type gateVerifier struct{}

func (gateVerifier) VerifyApp(ctx context.Context, appID, secret string, ip netip.Addr, cert string, sig caller.SignedRequest, api string) (*caller.App, string, error) {
	return &caller.App{ID: appID, Active: true, MaxConcurrent: 2}, "", nil
}
func (gateVerifier) VerifyAdmin(ctx context.Context, token string) (*adminauth.Admin, error) {
	return nil, apierr.ErrUnavailable
}

// A call refused while authz's index loads gives back the slot of the
// application's max_concurrent its caller check took (review sec27b H1:
// the slots leaked, locking the application out of the instance).
func TestLoadingGateGivesSlotsBack(t *testing.T) {
	var loaded atomic.Bool
	g := loadingGate{auth: server.NewCallerAuth(gateVerifier{}), loaded: &loaded}
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
