package server

import (
	"context"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// BindUserCertificate implements AdminService.
func (s *Server) BindUserCertificate(ctx context.Context, r *identityv1.BindUserCertificateRequest) (*identityv1.UserCertificate, error) {
	c, err := s.svc.BindUserCert(ctx, r.GetUserId(), r.GetCertificate(), r.GetSha256())
	if err != nil {
		return nil, err
	}
	return certOut(c), nil
}

// ListUserCertificates implements AdminService.
func (s *Server) ListUserCertificates(ctx context.Context, r *identityv1.ListUserCertificatesRequest) (*identityv1.ListUserCertificatesResponse, error) {
	cs, err := s.svc.ListUserCerts(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListUserCertificatesResponse{Certificates: make([]*identityv1.UserCertificate, len(cs))}
	for i, c := range cs {
		out.Certificates[i] = certOut(c)
	}
	return out, nil
}

// UnbindUserCertificate implements AdminService.
func (s *Server) UnbindUserCertificate(ctx context.Context, r *identityv1.UnbindUserCertificateRequest) (*identityv1.UnbindUserCertificateResponse, error) {
	if err := s.svc.UnbindUserCert(ctx, r.GetUserId(), r.GetSha256()); err != nil {
		return nil, err
	}
	return &identityv1.UnbindUserCertificateResponse{}, nil
}

// BindCertificates implements AdminService.
func (s *Server) BindCertificates(ctx context.Context, r *identityv1.BindCertificatesRequest) (*identityv1.BindCertificatesResponse, error) {
	rs, err := s.svc.BindCertsByIdentity(ctx, r.GetCertificates(), r.GetDryRun())
	if err != nil {
		return nil, err
	}
	out := &identityv1.BindCertificatesResponse{Lines: make([]*identityv1.BindCertificatesResponse_Line, len(rs))}
	for i, l := range rs {
		out.Lines[i] = &identityv1.BindCertificatesResponse_Line{Sha256: l.SHA256, Outcome: string(l.Outcome), UserId: l.UserID, Message: l.Message}
		if l.Outcome == identity.CertBound || l.Outcome == identity.CertWouldBind {
			out.Bound++
		}
	}
	return out, nil
}

func certOut(c *identity.UserCert) *identityv1.UserCertificate {
	return &identityv1.UserCertificate{UserId: c.UserID, Sha256: c.SHA256, CreateTime: ts(c.CreatedAt), NotAfter: ts(c.NotAfter)}
}

// CertificateLogin implements SSOService.
func (s ssoServer) CertificateLogin(ctx context.Context, r *identityv1.CertificateLoginRequest) (*identityv1.CertificateLoginResponse, error) {
	var (
		res *identity.CertLoginResult
		err error
	)
	if r.GetChallenge() != "" {
		// the USB key's answer to a challenge (certchal.go)
		res, err = s.svc.CertChallengeLogin(ctx, identity.CertProof{Challenge: r.GetChallenge(), Certificate: r.GetCertificate(),
			Chain: r.GetChain(), Signature: r.GetSignature()})
	} else {
		res, err = s.svc.CertLogin(ctx, r.GetCertificate())
	}
	if err != nil {
		return nil, err
	}
	out := &identityv1.CertificateLoginResponse{Result: identityv1.CertificateLoginResult(res.Verdict)}
	if u := res.User; u != nil {
		out.UserId, out.Login, out.DisplayName, out.OrgId = u.ID, u.LoginName, u.DisplayName, u.OrgID
		out.PasswordChangedAt = ts(u.PasswordChangedAt)
		out.StateChangedAt = ts(u.StateAt())
	}
	return out, nil
}

// IssueCertificateChallenge implements SSOService.
func (s ssoServer) IssueCertificateChallenge(ctx context.Context, _ *identityv1.CertificateChallengeRequest) (*identityv1.CertificateChallenge, error) {
	c, exp, err := s.svc.SSOCertChallenge(ctx)
	if err != nil {
		return nil, err
	}
	return &identityv1.CertificateChallenge{Challenge: c, ExpireTime: ts(exp)}, nil
}

// GetCertificateChallenge implements AuthService.
func (s *Server) GetCertificateChallenge(ctx context.Context, _ *identityv1.GetCertificateChallengeRequest) (*identityv1.CertificateChallenge, error) {
	c, exp, err := s.svc.AppCertChallenge(ctx)
	if err != nil {
		return nil, err
	}
	return &identityv1.CertificateChallenge{Challenge: c, ExpireTime: ts(exp)}, nil
}
