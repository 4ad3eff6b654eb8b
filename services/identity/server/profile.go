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
		DisplayNameEditable: p.DisplayNameEditable, NoPassword: u.PasswordHash == "", TotpEnrolled: !p.TOTPEnrolledAt.IsZero(),
		UserType: identityv1.UserType(u.UserType.Norm())}
	if !p.TOTPEnrolledAt.IsZero() {
		out.TotpEnrolledAt = timestamppb.New(p.TOTPEnrolledAt)
	}
	if !u.PasswordChangedAt.IsZero() {
		out.PasswordChangedAt = timestamppb.New(u.PasswordChangedAt)
	}
	if !p.PasswordExpiresAt.IsZero() {
		out.PasswordExpiresAt = timestamppb.New(p.PasswordExpiresAt)
	}
	return out
}

// BeginTotpEnrolment implements SSOService.
func (s ssoServer) BeginTotpEnrolment(ctx context.Context, r *identityv1.BeginTotpEnrolmentRequest) (*identityv1.TotpEnrolment, error) {
	e, err := s.svc.BeginTOTPEnrolment(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	return &identityv1.TotpEnrolment{Secret: e.Secret, Uri: e.URI, EnrolmentToken: e.Token, Issuer: e.Issuer, Account: e.Account}, nil
}

// ConfirmTotpEnrolment implements SSOService.
func (s ssoServer) ConfirmTotpEnrolment(ctx context.Context, r *identityv1.ConfirmTotpEnrolmentRequest) (*identityv1.OwnProfile, error) {
	p, err := s.svc.ConfirmTOTPEnrolment(ctx, r.GetUserId(), r.GetCurrentPassword(), r.GetEnrolmentToken(), r.GetCode())
	if err != nil {
		return nil, err
	}
	return ownProfile(p), nil
}

// RemoveOwnTotp implements SSOService.
func (s ssoServer) RemoveOwnTotp(ctx context.Context, r *identityv1.RemoveOwnTotpRequest) (*identityv1.OwnProfile, error) {
	p, err := s.svc.RemoveOwnTOTP(ctx, r.GetUserId(), r.GetCurrentPassword(), r.GetCode())
	if err != nil {
		return nil, err
	}
	return ownProfile(p), nil
}
