package server

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// sessionServer implements AdminSessionService: CallerAuth has checked the
// bearer token (as for AdminService) before WhoAmI runs.
type sessionServer struct {
	identityv1.UnimplementedAdminSessionServiceServer
	svc *identity.Service
	// legacy: identity.admin_authz is off, the is_admin flag decides.
	legacy bool
}

// WhoAmI implements AdminSessionService.
func (s sessionServer) WhoAmI(ctx context.Context, _ *identityv1.WhoAmIRequest) (*identityv1.WhoAmIResponse, error) {
	id := caller.From(ctx).Principal
	if id == "" {
		return nil, apierr.New(apierr.Unauthenticated, "UNAUTHENTICATED", "no administrator token")
	}
	u, err := s.svc.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	return &identityv1.WhoAmIResponse{User: summary(u), SystemAdmin: u.IsAdmin, LegacyAdminRule: s.legacy}, nil
}
