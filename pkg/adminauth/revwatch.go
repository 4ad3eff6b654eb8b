package adminauth

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
)

// Cross-process revocation. With authz in another process, a kept answer
// (cache.go) ends at the latest after the TTL; the change events of authz
// make it end at once. Every authz change (a grant made or revoked, a role,
// resource or exclusion changed) is published, by the replica that made
// it, as a CHANGES event on uias.changes.authz.<object>.<op> carrying the
// revision it made (core NATS subscribers receive them as they are
// published to the stream). WatchRevisions feeds those revisions to the
// cache: an answer computed at an older revision is not reused (and the
// answer asked for instead shows which revision it was computed at). With
// NATS down, or an event lost, the TTL still bounds how long a revoked
// grant works. Changes of identity's org tree and group members that move
// authz's answers carry no authz revision: across processes those stay
// bounded by the TTL.

// AuthzChangesSubjects are the subjects of authz's change events.
const AuthzChangesSubjects = "uias.changes.authz.>"

// ObserveRevision tells v that authz has reached revision rev: kept
// answers computed at an older one are no longer used.
func (v *Verifier) ObserveRevision(rev int64) {
	if v.cache != nil && rev > 0 {
		v.cache.observe(rev)
	}
}

// SeenRevision is the newest authz revision v has seen, in an answer or
// through ObserveRevision (0 without a decision cache).
func (v *Verifier) SeenRevision() int64 {
	if v.cache == nil {
		return 0
	}
	return v.cache.maxRev.Load()
}

// RevisionOf reads the revision of an authz change event's payload (its
// "rev"; 0 when it has none).
func RevisionOf(payload []byte) int64 {
	var p struct {
		Rev int64 `json:"rev"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return 0
	}
	return p.Rev
}

// WatchRevisions subscribes nc to authz's change events and observes the
// revision of each. It returns the subscription (Unsubscribe it at stop).
func (v *Verifier) WatchRevisions(nc *nats.Conn) (*nats.Subscription, error) {
	return nc.Subscribe(AuthzChangesSubjects, func(m *nats.Msg) { v.ObserveRevision(RevisionOf(m.Data)) })
}
