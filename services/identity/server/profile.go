package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// GetOwnProfile implements SSOService.
func (s ssoServer) GetOwnProfile(ctx context.Context, r *identityv1.GetOwnProfileRequest) (*identityv1.OwnProfile, error) {
	p, err := s.svc.GetOwnProfile(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	return ownProfile(p), nil
}

// UpdateOwnProfile implements SSOService.
func (s ssoServer) UpdateOwnProfile(ctx context.Context, r *identityv1.UpdateOwnProfileRequest) (*identityv1.OwnProfile, error) {
	p, err := s.svc.UpdateOwnProfile(ctx, r.GetUserId(), r.GetCurrentPassword(), identity.UserUpdate{Mask: r.GetUpdateMask(),
		DisplayName: r.GetDisplayName(), Phone: r.GetPhone(), Email: r.GetEmail()})
	if err != nil {
		return nil, err
	}
	return ownProfile(p), nil
}

func ownProfile(p *identity.OwnProfile) *identityv1.OwnProfile {
	u := p.User
	out := &identityv1.OwnProfile{UserId: u.ID, Login: u.LoginName, DisplayName: u.DisplayName, OrgId: u.OrgID, OrgName: p.OrgName,
		IdType: identityv1.IdType(u.IDType), IdNumberMask: u.IDNumberMask, PhoneMask: u.PhoneMask, Email: u.Email,
		DisplayNameEditable: p.DisplayNameEditable, NoPassword: u.PasswordHash == ""}
	if !u.PasswordChangedAt.IsZero() {
		out.PasswordChangedAt = timestamppb.New(u.PasswordChangedAt)
	}
	if !p.PasswordExpiresAt.IsZero() {
		out.PasswordExpiresAt = timestamppb.New(p.PasswordExpiresAt)
	}
	return out
}
