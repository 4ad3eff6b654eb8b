package server

import (
	"context"
	"net/netip"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// callerServer implements CallerService: other components check the
// credentials their callers presented with identity, exactly as identity
// checks its own callers (the same refusals, audited the same way).
type callerServer struct {
	identityv1.UnimplementedCallerServiceServer
	svc *identity.Service
}

// errComponentsOnly refuses CallerService calls from outside UIAS: only
// code of this process or a holder of the internal key may ask.
var errComponentsOnly = apierr.New(apierr.PermissionDenied, "PERMISSION_DENIED", "CallerService is for UIAS components only")

// VerifyApp implements CallerService.
func (s callerServer) VerifyApp(ctx context.Context, r *identityv1.VerifyAppRequest) (*identityv1.VerifyAppResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errComponentsOnly
	}
	ip, err := netip.ParseAddr(r.GetClientIp())
	if err != nil && r.GetClientIp() != "" {
		return nil, apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "client_ip is not an IP address")
	}
	// The refusal is audited with the original client's address and
	// certificate, not the component's.
	c := *caller.From(ctx)
	c.ClientIP, c.ClientCert = ip.Unmap(), r.GetClientCertSha256()
	ctx = caller.With(ctx, &c)
	// The caller's signature, as the component received the call: checked
	// as identity checks its own callers' (an unsigned call of an
	// application that requires signatures is refused).
	sig := caller.SignedRequest{Signature: r.GetSignature(), Timestamp: r.GetTimestamp(), Nonce: r.GetNonce(),
		Target: r.GetSignedTarget(), BodySHA256: r.GetBodySha256(), Untrusted: r.GetSignedUntrusted()}
	app, key, err := s.svc.AuthenticateSignedApp(ctx, r.GetAppId(), r.GetAppSecret(), ip.Unmap(), sig)
	if err != nil {
		return nil, err
	}
	if err := s.svc.AuthorizeApp(ctx, app, r.GetApi()); err != nil {
		return nil, err
	}
	out := &identityv1.VerifyAppResponse{AppId: app.ID, AppType: app.Type, AppCode: app.Code,
		RateLimit: app.RateLimit, RateBurst: int32(app.RateBurst), SignedKey: key, GrantedApis: app.GrantedAPIs}
	out.AccessFrom, out.AccessUntil = ts(app.AccessFrom), ts(app.AccessUntil)
	return out, nil
}
