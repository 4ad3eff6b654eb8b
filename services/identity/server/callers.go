package server

import (
	"context"
	"net/netip"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// callerServer implements CallerService: other components check the
// credentials their callers presented with identity, exactly as identity
// checks its own callers (the same refusals, audited the same way).
type callerServer struct {
	identityv1.UnimplementedCallerServiceServer
	svc     *identity.Service
	answers *reqsig.ResponseSigner
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
		RateLimit: app.RateLimit, RateBurst: int32(app.RateBurst), SignedKey: key, GrantedApis: app.GrantedAPIs,
		MaxConcurrent: int32(app.MaxConcurrent)}
	out.AccessFrom, out.AccessUntil = ts(app.AccessFrom), ts(app.AccessUntil)
	return out, nil
}

// SignResponse implements CallerService: identity, which holds the key
// ring, signs the answer of another component (authz) or of the REST edge
// to a signed call. Components only: anyone else could have UIAS sign what
// it never answered.
func (s callerServer) SignResponse(ctx context.Context, r *identityv1.SignResponseRequest) (*identityv1.SignResponseResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errComponentsOnly
	}
	if s.answers == nil {
		return nil, apierr.ErrUnavailable.WithMessage("this identity instance does not sign answers")
	}
	if !reqsig.ValidNonce(r.GetNonce()) || !lowerHex(r.GetResponseSha256(), 64) {
		return nil, apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "nonce must be a request nonce and response_sha256 64 lower case hex digits")
	}
	// Ed25519, or SM2 for an application that signs with SM2 (ADR 0043).
	sig, err := s.answers.SignResponse(ctx, r.GetAppId(), r.GetTarget(), r.GetNonce(), r.GetResponseSha256())
	if err != nil {
		return nil, apierr.ErrUnavailable.WithMessage("the answer could not be signed now")
	}
	return &identityv1.SignResponseResponse{Signature: sig.Signature, KeyId: sig.KeyID, Timestamp: sig.Timestamp}, nil
}

// lowerHex reports whether s is n lower case hex digits.
func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// responseKeyServer implements ResponseKeyService: the public keys of
// signed answers (no credentials needed).
type responseKeyServer struct {
	identityv1.UnimplementedResponseKeyServiceServer
	answers *reqsig.ResponseSigner
}

// ListResponseSigningKeys implements ResponseKeyService.
func (s responseKeyServer) ListResponseSigningKeys(context.Context, *identityv1.ListResponseSigningKeysRequest) (*identityv1.ResponseSigningKeys, error) {
	out := &identityv1.ResponseSigningKeys{}
	if s.answers == nil {
		return out, nil
	}
	for _, k := range s.answers.PublicKeys() {
		out.Keys = append(out.Keys, &identityv1.ResponseSigningKey{Kid: k.KeyID, Kty: k.Kty, Crv: k.Crv, X: k.X, Y: k.Y,
			Use: k.Use, Alg: k.Alg, Active: k.Active})
	}
	return out, nil
}
