package server

import (
	"context"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	replicav1 "github.com/uias/uias/proto/gen/uias/replica/v1"
	"github.com/uias/uias/services/authz/commands"
)

// replicaServer implements AuthzReplicaService: the sync component applies
// the authz changes of peer centres here.
type replicaServer struct {
	authzv1.UnimplementedAuthzReplicaServiceServer
	svc *commands.Service
}

// RegisterReplica registers AuthzReplicaService on g.
func RegisterReplica(g grpc.ServiceRegistrar, svc *commands.Service) {
	authzv1.RegisterAuthzReplicaServiceServer(g, replicaServer{svc: svc})
}

var errReplicaComponentsOnly = apierr.New(apierr.PermissionDenied, "PERMISSION_DENIED", "AuthzReplicaService is for UIAS components only")

// ApplyAuthzReplica implements AuthzReplicaService.
func (s replicaServer) ApplyAuthzReplica(ctx context.Context, r *replicav1.ApplyRequest) (*replicav1.ApplyResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errReplicaComponentsOnly
	}
	cs := make([]commands.ReplicaChange, len(r.GetChanges()))
	for i, c := range r.GetChanges() {
		cs[i] = commands.ReplicaChange{EventID: c.GetEventId(), Subject: c.GetSubject(), Version: c.GetVersion(), Payload: c.GetPayload()}
	}
	out, rev, err := s.svc.ApplyReplica(ctx, r.GetOrigin(), cs)
	if err != nil {
		return nil, err
	}
	res := &replicav1.ApplyResponse{Outcomes: make([]string, len(out)), Revision: rev}
	for i, oc := range out {
		res.Outcomes[i] = string(oc)
	}
	return res, nil
}

// GetAuthzReplicaDigest implements AuthzReplicaService.
func (s replicaServer) GetAuthzReplicaDigest(ctx context.Context, r *replicav1.DigestRequest) (*replicav1.DigestResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errReplicaComponentsOnly
	}
	ds, err := s.svc.ReplicaDigest(ctx, r.GetHome())
	if err != nil {
		return nil, err
	}
	out := &replicav1.DigestResponse{}
	for _, d := range ds {
		out.Tables = append(out.Tables, &replicav1.TableDigest{Table: d.Table, Rows: d.Rows, Sha256: d.SHA256})
	}
	return out, nil
}

// CheckReplicaSeparation implements AuthzReplicaService.
func (s replicaServer) CheckReplicaSeparation(ctx context.Context, r *authzv1.CheckReplicaSeparationRequest) (*authzv1.CheckReplicaSeparationResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errReplicaComponentsOnly
	}
	v, err := s.svc.CheckReplicaSeparation(ctx, commands.ReplicaSeparation{Person: r.GetPerson(), Groups: r.GetGroups(), Org: r.GetOrg(),
		JoinGroup: r.GetJoinGroup(), JoinOrg: r.GetJoinOrg(), MoveOrg: r.GetMoveOrg()})
	if err != nil {
		return nil, err
	}
	if v.Conflict == nil {
		return &authzv1.CheckReplicaSeparationResponse{}, nil
	}
	return &authzv1.CheckReplicaSeparationResponse{Conflict: true, ExclusionId: v.Conflict.ID, Person: v.Person, Message: v.Message}, nil
}
