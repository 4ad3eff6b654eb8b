package component

import (
	"context"
	"fmt"

	"google.golang.org/grpc"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	replicav1 "github.com/uias/uias/proto/gen/uias/replica/v1"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
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

func (r replicas) Apply(ctx context.Context, origin string, cs []*usync.Change) (applier.Applied, error) {
	out := applier.Applied{Outcomes: make([]string, 0, len(cs)), Objects: make([][]usync.ObjectOutcome, len(cs))}
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
		base := len(out.Outcomes)
		if len(res.GetOutcomes()) != len(req.Changes) {
			return fmt.Errorf("%s answered %d outcomes for %d changes", r.name, len(res.GetOutcomes()), len(req.Changes))
		}
		out.Outcomes = append(out.Outcomes, res.GetOutcomes()...)
		for _, o := range res.GetObjects() {
			if i := int(o.GetChange()); i >= 0 && i < len(req.Changes) {
				out.Objects[base+i] = append(out.Objects[base+i], usync.ObjectOutcome{Key: o.GetKey(), Outcome: usync.Outcome(o.GetOutcome())})
			}
		}
		req, size = &replicav1.ApplyRequest{Origin: origin}, 0
		return nil
	}
	for _, c := range cs {
		if len(req.Changes) >= replicaCallChanges || size+len(c.Payload) > replicaCallBytes {
			if err := flush(); err != nil {
				return applier.Applied{}, err
			}
		}
		req.Changes = append(req.Changes, &replicav1.Change{EventId: c.EventID, Subject: c.Subject,
			Version: c.Version, Payload: c.Payload})
		size += len(c.Payload)
	}
	if err := flush(); err != nil {
		return applier.Applied{}, err
	}
	return out, nil
}
