package authz

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
)

// ReasonNotACentre answers replica calls on a single-centre deployment (the
// reason identity's ReplicaService gives too).
const ReasonNotACentre = "REPLICA_NOT_A_CENTRE"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonNotACentre, Code: apierr.FailedPrecondition, Legacy: -5,
		Doc: "A replica of another centre was handed to a single-centre deployment (sync.centre is not set)."})
}

// ErrNotACentre answers replica calls on a single-centre deployment.
var ErrNotACentre = apierr.New(apierr.FailedPrecondition, ReasonNotACentre,
	"this deployment is a single centre (sync.centre is not set): it applies no replica")

// Replicas of other centres (pkg/centre, docs/operators.md "Two-level
// centres"). Resources, roles and exclusions are global data, homed at the
// level-1 centre; a grant is homed at the centre that is home of its
// subject (a person's or group's org, or the org granted to). The sync
// component hands each peer's authz changes to the commands' ApplyReplica,
// which applies those homed at that peer exactly once and in order per
// object: the store keeps the version (the change's sequence in the
// origin's CHANGES) applied to each replicated object and answers a change
// not above it STALE.

// ReplicaOutcome is what applying one change of another centre did.
type ReplicaOutcome string

// Outcomes of applying a replica change.
const (
	ReplicaApplied ReplicaOutcome = "APPLIED"
	// ReplicaStale: the object's applied version is not below the change's
	// (a redelivery, or an older change): nothing applied.
	ReplicaStale ReplicaOutcome = "STALE"
	// ReplicaNotHomed: by this centre's settings the object is not the
	// origin's (global data from a level-2 centre, a grant of a person
	// homed elsewhere, an object written here): not applied.
	ReplicaNotHomed ReplicaOutcome = "NOT_HOMED"
	// ReplicaIgnored: the change carries nothing to apply.
	ReplicaIgnored ReplicaOutcome = "IGNORED"
	// ReplicaConflict: a grant that would give someone here both roles of
	// a separation-of-duty pair (with what this centre holds and its home
	// does not see: level 1's groups and org grants): not applied, and
	// recorded by sync as a skipped change (CONFLICT).
	ReplicaConflict ReplicaOutcome = "CONFLICT"
)

// ReplicaWrite is one change of another centre to commit.
type ReplicaWrite struct {
	// Change is the object's change as the origin committed it (its Rev is
	// the origin's; the store gives it this centre's).
	Change  Change
	Origin  string
	Version uint64
	EventID string
}

// ReplicaStore is the part of the SQL store that keeps replicas. The
// commands find it on their Store by a type assertion, so a store without
// it serves a single centre.
type ReplicaStore interface {
	// ApplyReplica commits ws in one transaction, in order. A write whose
	// Version is not above the version recorded for its object is STALE
	// and left out. Each other write moves the revision on by one from
	// expect (ErrStale, nothing committed, when the revision is no longer
	// expect), puts or deletes its object (a delete of an object not held
	// changes nothing and takes no revision), appends its change to the
	// change log and event(change) to the outbox, and records its origin
	// and version. It returns one outcome per write and the committed
	// changes (with their revisions) in order.
	ApplyReplica(ctx context.Context, expect int64, ws []ReplicaWrite, event func(Change) events.Event) ([]ReplicaOutcome, []Change, error)
	// ReplicaOrigin returns the centre an object is held from as a replica
	// (false: written here, or not held).
	ReplicaOrigin(ctx context.Context, obj, id string) (string, bool, error)
	// EachObject calls fn with every stored object and the centre it is
	// held from ("" for one written here), for digests.
	EachObject(ctx context.Context, fn func(obj, id string, data []byte, origin string) error) error
}
