package adminauth

import (
	"encoding/json"
	"strconv"

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
// grant works.
//
// Changes of identity's org tree and of a person's org move authz's answers
// too but make no authz revision: every authz replica applies them from
// identity's CHANGES events. A replica that has applied one that may take
// something away (an org moved, a person moved or their legacy flag
// changed) says so on MirrorSubject; WatchMirror
// drops every kept answer then (DropDecisions), so the next call asks authz,
// which has applied it. Several replicas each say so once they have applied
// it. With NATS down the TTL bounds these too.

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

// MirrorSubject is where an authz replica says it has applied an identity
// change that may take something away from an administrator (core NATS,
// outside the streams). The payload is MirrorPayload: the change's sequence
// in the CHANGES stream.
const MirrorSubject = "uias.authz.mirrored"

// MirrorPayload is the payload of a MirrorSubject message for the identity
// change at stream sequence seq.
func MirrorPayload(seq int64) []byte {
	return append(strconv.AppendInt([]byte(`{"seq":`), seq, 10), '}')
}

// DropDecisions ends the reuse of every answer v keeps, and of every answer
// being asked for now: an authz replica has applied the identity change at
// stream sequence seq (MirrorSubject).
func (v *Verifier) DropDecisions(seq int64) {
	if v.cache != nil {
		v.cache.drop(seq)
	}
}

// SeenMirrorSeq is the highest sequence given to DropDecisions (0 without a
// decision cache): answers kept before that change was applied are dropped.
func (v *Verifier) SeenMirrorSeq() int64 {
	if v.cache == nil {
		return 0
	}
	return v.cache.mirrorSeq.Load()
}

// WatchMirror subscribes nc to MirrorSubject and drops v's kept answers on
// each message. It returns the subscription (Unsubscribe it at stop).
func (v *Verifier) WatchMirror(nc *nats.Conn) (*nats.Subscription, error) {
	return nc.Subscribe(MirrorSubject, func(m *nats.Msg) {
		var p struct {
			Seq int64 `json:"seq"`
		}
		_ = json.Unmarshal(m.Data, &p)
		v.DropDecisions(p.Seq)
	})
}
