package component

import (
	"context"

	"google.golang.org/grpc"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	replicav1 "github.com/uias/uias/proto/gen/uias/replica/v1"
	usync "github.com/uias/uias/services/sync"
)

// replicas applies peers' changes of one component through its replica
// service (components only: identity's ReplicaService, authz's
// AuthzReplicaService, which share their messages, uias.replica.v1), in
// calls of at most replicaCallBytes of payload and replicaCallChanges
// changes (under gRPC's message limit).
type replicas struct {
	name, prefix string
	apply        func(ctx context.Context, r *replicav1.ApplyRequest, opts ...grpc.CallOption) (*replicav1.ApplyResponse, error)
}

const (
	replicaCallBytes   = 2 << 20
	replicaCallChanges = 1000
)

// identityReplicas: the orgs, people, groups, applications and account
// links of peers, into this centre's identity, so it logs their people in.
func identityReplicas(conn grpc.ClientConnInterface) replicas {
	return replicas{name: "identity", prefix: "uias.changes.identity.", apply: identityv1.NewReplicaServiceClient(conn).ApplyReplica}
}

// authzReplicas: global data from level 1 and the grants of each centre's
// people, into this centre's authz, so it checks their permissions.
func authzReplicas(conn grpc.ClientConnInterface) replicas {
	return replicas{name: "authz", prefix: "uias.changes.authz.", apply: authzv1.NewAuthzReplicaServiceClient(conn).ApplyAuthzReplica}
}

func (r replicas) Name() string   { return r.name }
func (r replicas) Prefix() string { return r.prefix }

func (r replicas) Apply(ctx context.Context, origin string, cs []*usync.Change) ([]string, error) {
	out := make([]string, 0, len(cs))
	req := &replicav1.ApplyRequest{Origin: origin}
	size := 0
	flush := func() error {
		if len(req.Changes) == 0 {
			return nil
		}
		res, err := r.apply(ctx, req)
		if err != nil {
			return err
		}
		out = append(out, res.GetOutcomes()...)
		req, size = &replicav1.ApplyRequest{Origin: origin}, 0
		return nil
	}
	for _, c := range cs {
		if len(req.Changes) >= replicaCallChanges || size+len(c.Payload) > replicaCallBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		req.Changes = append(req.Changes, &replicav1.Change{EventId: c.EventID, Subject: c.Subject,
			Version: c.Version, Payload: c.Payload})
		size += len(c.Payload)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
