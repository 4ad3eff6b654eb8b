package server

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// viewServer implements ViewService: components read objects' current
// state by id (provisioning reads the people of an import).
type viewServer struct {
	identityv1.UnimplementedViewServiceServer
	svc *identity.Service
}

var errViewsComponentsOnly = apierr.New(apierr.PermissionDenied, "PERMISSION_DENIED", "ViewService is for UIAS components only")

// GetViews implements ViewService.
func (s viewServer) GetViews(ctx context.Context, r *identityv1.GetViewsRequest) (*identityv1.GetViewsResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errViewsComponentsOnly
	}
	vs, err := s.svc.Views(ctx, r.GetEntity(), r.GetIds())
	if err != nil {
		return nil, err
	}
	out := &identityv1.GetViewsResponse{Views: make([]*identityv1.View, len(vs))}
	for i, v := range vs {
		out.Views[i] = &identityv1.View{Id: v.ID, Data: v.Data}
	}
	return out, nil
}
