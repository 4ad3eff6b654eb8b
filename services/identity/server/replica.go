package server

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	replicav1 "github.com/uias/uias/proto/gen/uias/replica/v1"
	"github.com/uias/uias/services/identity"
)

// replicaServer implements ReplicaService: the sync component applies the
// identity changes of peer centres here.
type replicaServer struct {
	identityv1.UnimplementedReplicaServiceServer
	svc *identity.Service
}

var errReplicaComponentsOnly = apierr.New(apierr.PermissionDenied, "PERMISSION_DENIED", "ReplicaService is for UIAS components only")

// ApplyReplica implements ReplicaService.
func (s replicaServer) ApplyReplica(ctx context.Context, r *replicav1.ApplyRequest) (*replicav1.ApplyResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errReplicaComponentsOnly
	}
	cs := make([]identity.ReplicaChange, len(r.GetChanges()))
	for i, c := range r.GetChanges() {
		cs[i] = identity.ReplicaChange{EventID: c.GetEventId(), Subject: c.GetSubject(), Version: c.GetVersion(), Payload: c.GetPayload()}
	}
	out, objs, err := s.svc.ApplyReplicaObjects(ctx, r.GetOrigin(), cs)
	if err != nil {
		return nil, err
	}
	res := &replicav1.ApplyResponse{Outcomes: make([]string, len(out)), Objects: make([]*replicav1.ObjectOutcome, len(objs))}
	for i, oc := range out {
		res.Outcomes[i] = string(oc)
	}
	for i, o := range objs {
		res.Objects[i] = &replicav1.ObjectOutcome{Change: int32(o.Change), Key: o.Key, Outcome: string(o.Outcome)}
	}
	return res, nil
}

// GetReplicaDigest implements ReplicaService.
func (s replicaServer) GetReplicaDigest(ctx context.Context, r *replicav1.DigestRequest) (*replicav1.DigestResponse, error) {
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
