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

func init() {
	apierr.Register(apierr.Reason{Name: "SSO_COMPONENTS_ONLY", Code: apierr.PermissionDenied,
		Doc: "SSOService is called only by UIAS components (the single sign-on pages)."})
}

var errSSOComponentsOnly = apierr.New(apierr.PermissionDenied, "SSO_COMPONENTS_ONLY", "this call is made only by UIAS components")

// ssoServer implements SSOService.
type ssoServer struct {
	identityv1.UnimplementedSSOServiceServer
	svc *identity.Service
}

// Login implements SSOService.
func (s ssoServer) Login(ctx context.Context, r *identityv1.SSOLoginRequest) (*identityv1.SSOLoginResponse, error) {
	return ssoLoginOut(s.svc.SSOLoginBound(ctx, r.GetLogin(), r.GetPassword(), r.GetOtpBinding()))
}

// LoginOtp implements SSOService.
func (s ssoServer) LoginOtp(ctx context.Context, r *identityv1.SSOLoginOtpRequest) (*identityv1.SSOLoginResponse, error) {
	return ssoLoginOut(s.svc.SSOLoginOTP(ctx, r.GetOtpToken(), r.GetCode(), r.GetOtpBinding()))
}

// FingerLogin implements SSOService.
func (s ssoServer) FingerLogin(ctx context.Context, r *identityv1.SSOFingerLoginRequest) (*identityv1.SSOLoginResponse, error) {
	return ssoLoginOut(s.svc.SSOFingerLogin(ctx, r.GetLogin(), r.GetFingerprint(), r.GetPassword(), r.GetOtpBinding()))
}

// KerberosLogin implements SSOService.
func (s ssoServer) KerberosLogin(ctx context.Context, r *identityv1.KerberosLoginRequest) (*identityv1.SSOLoginResponse, error) {
	return ssoLoginOut(s.svc.SSOKerberosLogin(ctx, r.GetLogin(), r.GetPrincipal(), r.GetRefusal(), r.GetOtpBinding(), r.GetAuthenticator()))
}

// ExternalLogin implements SSOService.
func (s ssoServer) ExternalLogin(ctx context.Context, r *identityv1.SSOExternalLoginRequest) (*identityv1.SSOLoginResponse, error) {
	return ssoLoginOut(s.svc.SSOExternalLogin(ctx, r.GetLogin(), r.GetType(), r.GetCredential(), r.GetPassword(), r.GetOtpBinding()))
}

// ExternalAuthenticators implements SSOService.
func (s ssoServer) ExternalAuthenticators(context.Context, *identityv1.ExternalAuthenticatorsRequest) (*identityv1.ExternalAuthenticatorsResponse, error) {
	out := &identityv1.ExternalAuthenticatorsResponse{}
	for _, e := range s.svc.ExternalAuthenticators() {
		out.Authenticators = append(out.Authenticators, &identityv1.ExternalAuthenticatorInfo{Name: e.Name, Label: e.Label,
			Level: int32(e.Level), RequirePassword: e.RequirePassword})
	}
	return out, nil
}

// PeerLogin implements SSOService.
func (s ssoServer) PeerLogin(ctx context.Context, r *identityv1.PeerLoginRequest) (*identityv1.SSOLoginResponse, error) {
	return ssoLoginOut(s.svc.SSOPeerLogin(ctx, r.GetUserId(), int(r.GetAuthLevel()), r.GetPeer()))
}

func ssoLoginOut(res *identity.SSOLoginResult, err error) (*identityv1.SSOLoginResponse, error) {
	if err != nil {
		return nil, err
	}
	out := &identityv1.SSOLoginResponse{Reason: identityv1.Reason(res.Reason), Message: res.Message, OtpToken: res.OTPToken,
		SecondFactor: res.SecondFactor, Method: res.Method, RequiredAuthLevel: int32(res.RequiredLevel), AuthLevel: int32(res.Level)}
	if u := res.User; u != nil {
		out.UserId, out.Login, out.DisplayName, out.OrgId = u.ID, u.LoginName, u.DisplayName, u.OrgID
		out.MustChangePassword, out.PasswordOnly = u.MustChange && !res.NoPassword, u.PasswordOnly
		out.PasswordChangedAt = ts(u.PasswordChangedAt)
		out.StateChangedAt = ts(u.StateAt())
	}
	return out, nil
}

// PersonAttributes implements SSOService.
func (s ssoServer) PersonAttributes(ctx context.Context, r *identityv1.PersonAttributesRequest) (*identityv1.PersonAttributesResponse, error) {
	a, err := s.svc.SSOAttributes(ctx, r.GetUserId(), r.GetAppId())
	if err != nil {
		return nil, err
	}
	u := a.User
	return &identityv1.PersonAttributesResponse{UserId: u.ID, Login: u.LoginName, DisplayName: u.DisplayName,
		OrgId: u.OrgID, OrgName: a.OrgName, AppAccountId: a.AppAccountID, Groups: a.Groups,
		UserType: identityv1.UserType(u.UserType.Norm())}, nil
}

// CheckAppAddress implements SSOService.
func (s ssoServer) CheckAppAddress(ctx context.Context, r *identityv1.CheckAppAddressRequest) (*identityv1.CheckAppAddressResponse, error) {
	ip, err := netip.ParseAddr(r.GetClientIp())
	if err != nil && r.GetClientIp() != "" {
		return nil, apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "client_ip is not an IP address")
	}
	// The refusal is audited with the calling application's address; the
	// certificate is the one the edge verified on the application's call.
	c := *caller.From(ctx)
	c.ClientIP, c.ClientCert = ip.Unmap(), r.GetClientCertSha256()
	if err := s.svc.CheckAppAddress(caller.With(ctx, &c), r.GetAppId(), ip.Unmap()); err != nil {
		return nil, err
	}
	return &identityv1.CheckAppAddressResponse{}, nil
}

// PersonLinks implements SSOService.
func (s ssoServer) PersonLinks(ctx context.Context, r *identityv1.PersonLinksRequest) (*identityv1.PersonLinksResponse, error) {
	links, err := s.svc.PersonLinks(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	out := &identityv1.PersonLinksResponse{}
	for _, l := range links {
		out.Links = append(out.Links, &identityv1.PersonLink{AppId: l.AppID, AppName: l.AppName, AppAccountId: l.Account})
	}
	return out, nil
}

// LinkAccount implements SSOService.
func (s ssoServer) LinkAccount(ctx context.Context, r *identityv1.LinkAccountRequest) (*identityv1.LinkAccountResponse, error) {
	// The person associates their own account (at the portal): they are
	// the actor of the change and of its audit record.
	c := *caller.From(ctx)
	c.Principal = r.GetUserId()
	l, err := s.svc.LinkAccount(caller.With(ctx, &c), r.GetUserId(), r.GetAppId(), r.GetAppAccountId())
	if err != nil {
		return nil, err
	}
	return &identityv1.LinkAccountResponse{LinkId: l.ID}, nil
}

// UnlinkAccount implements SSOService.
func (s ssoServer) UnlinkAccount(ctx context.Context, r *identityv1.UnlinkAccountRequest) (*identityv1.UnlinkAccountResponse, error) {
	// The person removes their own link (their profile page): they are
	// the actor of the change and of its audit record.
	c := *caller.From(ctx)
	c.Principal = r.GetUserId()
	if err := s.svc.UnlinkAccount(caller.With(ctx, &c), r.GetUserId(), r.GetAppId()); err != nil {
		return nil, err
	}
	return &identityv1.UnlinkAccountResponse{}, nil
}

// PrepareAppointment implements SSOService.
func (s ssoServer) PrepareAppointment(ctx context.Context, r *identityv1.PrepareAppointmentRequest) (*identityv1.PrepareAppointmentResponse, error) {
	// authz asks this while granting an administrator's role: the
	// administrator who grants it (the call's origin, believed from a
	// component only, as every SSOService call is) is the actor of the
	// records it makes (the tokens revoked, the activation password set),
	// not "anonymous".
	if p := grpcx.OriginFrom(ctx).Principal; p != "" && caller.From(ctx).Principal == "" {
		c := *caller.From(ctx)
		c.Principal = p
		ctx = caller.With(ctx, &c)
	}
	pw, err := s.svc.PrepareAppointment(ctx, r.GetUserId(), r.GetRole())
	if err != nil {
		return nil, err
	}
	return &identityv1.PrepareAppointmentResponse{ActivationPassword: pw}, nil
}

// InactivePeople implements SSOService.
func (s ssoServer) InactivePeople(ctx context.Context, r *identityv1.InactivePeopleRequest) (*identityv1.InactivePeopleResponse, error) {
	ids, err := s.svc.InactivePeople(ctx, r.GetUserIds())
	if err != nil {
		return nil, err
	}
	return &identityv1.InactivePeopleResponse{UserIds: ids}, nil
}

// PersonIdNumber implements SSOService.
func (s ssoServer) PersonIdNumber(ctx context.Context, r *identityv1.PersonIdNumberRequest) (*identityv1.PersonIdNumberResponse, error) {
	n, err := s.svc.PersonIDNumber(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	return &identityv1.PersonIdNumberResponse{IdNumber: n}, nil
}

// ChangePassword implements SSOService.
func (s ssoServer) ChangePassword(ctx context.Context, r *identityv1.SSOChangePasswordRequest) (*identityv1.SSOChangePasswordResponse, error) {
	if err := s.svc.SSOChangePassword(ctx, r.GetLogin(), r.GetOldPassword(), r.GetNewPassword(), r.GetKeepSession(), r.GetOtp()); err != nil {
		return nil, err
	}
	return &identityv1.SSOChangePasswordResponse{}, nil
}
