package component

import (
	"context"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	usync "github.com/uias/uias/services/sync"
)

// identityReplicas applies peers' identity changes through identity's
// ReplicaService (components only), in calls of at most replicaCallBytes
// of payload and replicaCallChanges changes (under gRPC's message limit).
type identityReplicas struct {
	c identityv1.ReplicaServiceClient
}

const (
	replicaCallBytes   = 2 << 20
	replicaCallChanges = 1000
)

func (identityReplicas) Name() string   { return "identity" }
func (identityReplicas) Prefix() string { return "uias.changes.identity." }

func (r identityReplicas) Apply(ctx context.Context, origin string, cs []*usync.Change) ([]string, error) {
	out := make([]string, 0, len(cs))
	req := &identityv1.ApplyReplicaRequest{Origin: origin}
	size := 0
	flush := func() error {
		if len(req.Changes) == 0 {
			return nil
		}
		res, err := r.c.ApplyReplica(ctx, req)
		if err != nil {
			return err
		}
		out = append(out, res.GetOutcomes()...)
		req, size = &identityv1.ApplyReplicaRequest{Origin: origin}, 0
		return nil
	}
	for _, c := range cs {
		if len(req.Changes) >= replicaCallChanges || size+len(c.Payload) > replicaCallBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		req.Changes = append(req.Changes, &identityv1.ReplicaChange{EventId: c.EventID, Subject: c.Subject,
			Version: c.Version, Payload: c.Payload})
		size += len(c.Payload)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// authzReplicas applies peers' authz changes (global data from level 1,
// the grants of each centre's people) through authz's
// AuthzReplicaService (components only), in calls as identityReplicas.
type authzReplicas struct {
	c authzv1.AuthzReplicaServiceClient
}

func (authzReplicas) Name() string   { return "authz" }
func (authzReplicas) Prefix() string { return "uias.changes.authz." }

func (r authzReplicas) Apply(ctx context.Context, origin string, cs []*usync.Change) ([]string, error) {
	out := make([]string, 0, len(cs))
	req := &authzv1.ApplyAuthzReplicaRequest{Origin: origin}
	size := 0
	flush := func() error {
		if len(req.Changes) == 0 {
			return nil
		}
		res, err := r.c.ApplyAuthzReplica(ctx, req)
		if err != nil {
			return err
		}
		out = append(out, res.GetOutcomes()...)
		req, size = &authzv1.ApplyAuthzReplicaRequest{Origin: origin}, 0
		return nil
	}
	for _, c := range cs {
		if len(req.Changes) >= replicaCallChanges || size+len(c.Payload) > replicaCallBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		req.Changes = append(req.Changes, &authzv1.AuthzReplicaChange{EventId: c.EventID, Subject: c.Subject,
			Version: c.Version, Payload: c.Payload})
		size += len(c.Payload)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
