package server

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
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
	res, err := s.svc.SSOLogin(ctx, r.GetLogin(), r.GetPassword())
	if err != nil {
		return nil, err
	}
	out := &identityv1.SSOLoginResponse{Reason: identityv1.Reason(res.Reason), Message: res.Message}
	if u := res.User; u != nil {
		out.UserId, out.Login, out.DisplayName, out.OrgId = u.ID, u.LoginName, u.DisplayName, u.OrgID
		out.MustChangePassword, out.PasswordOnly = u.MustChange, u.PasswordOnly
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
		OrgId: u.OrgID, OrgName: a.OrgName, AppAccountId: a.AppAccountID, Groups: a.Groups}, nil
}
