package identity

import (
	"encoding/json"
	"strings"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
)

// ReplicaToken is inserted before the operation in the subject of the local
// event of a change applied as a replica:
// uias.changes.identity.<entity>.replica.<op>. Readers of this centre's
// CHANGES that take uias.changes.identity.<entity>.> (ticket ends the
// sessions of a person disabled at their home centre, authz mirrors where
// people are) learn of it, and read the operation as the last token as
// ever; the sync links, which take uias.changes.identity.<entity>.<op>
// only, do not send it back to other centres.
const ReplicaToken = "replica"

// ReplicaSubject is the subject of the local event of a change applied as
// a replica, whose subject at its home was subject.
func ReplicaSubject(subject string) string {
	i := strings.LastIndexByte(subject, '.')
	if i < 0 {
		return subject + "." + ReplicaToken
	}
	return subject[:i] + "." + ReplicaToken + subject[i:]
}

// replicaLocalEvent is the local event of change c of centre origin: its
// payload without the replica part (hashes stay out of the local stream)
// and without the legacy administrator flag (administration of this
// centre is granted here), naming the origin and its event.
func (s *Service) replicaLocalEvent(origin string, c ReplicaChange) *events.Event {
	var p map[string]json.RawMessage
	if json.Unmarshal(c.Payload, &p) != nil || p == nil {
		return nil
	}
	delete(p, "replica")
	if d, ok := p["data"]; ok {
		var data map[string]json.RawMessage
		if json.Unmarshal(d, &data) == nil && data != nil {
			delete(data, "is_admin")
			// the origin's state time (ADR 0047): this centre's logins
			// answer this centre's, which a replica change does not set
			delete(data, "state_at")
			// nor a local state time the origin sent: only this centre
			// sets it (a past one would keep sessions a disable ends;
			// review sec32d L1)
			delete(data, LocalStateAtKey)
			p["data"], _ = json.Marshal(data)
		}
	}
	p["origin"], _ = json.Marshal(origin)
	p["origin_event_id"], _ = json.Marshal(c.EventID)
	if c.Resent {
		p["resent"] = json.RawMessage("true")
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil
	}
	t := s.now().UTC()
	return &events.Event{ID: ids.New(), Subject: ReplicaSubject(c.Subject),
		Type: strings.TrimPrefix(c.Subject, "uias.changes."), Time: t, Payload: payload}
}

// memberLocalEvent is the local event of a membership of group groupID
// that a resend of origin (its event originEventID) added or removed here,
// as a member_added or member_removed change of the home would write it.
func (s *Service) memberLocalEvent(origin, originEventID, groupID, userID string, added bool) events.Event {
	// (only a resend sets a member set)
	op := "member_removed"
	if added {
		op = "member_added"
	}
	t := s.now().UTC()
	payload, _ := json.Marshal(map[string]any{"entity": "group", "op": op, "id": groupID, "time": t,
		"data": map[string]string{"user_id": userID}, "origin": origin, "origin_event_id": originEventID, "resent": true})
	subject := changesSubjectPrefix + "group." + op
	return events.Event{ID: ids.New(), Subject: ReplicaSubject(subject), Type: strings.TrimPrefix(subject, "uias.changes."),
		Time: t, Payload: payload}
}

// AttachedUnder records that w, the top of a subtree of its origin
// (AttachToRoot), hangs here under this centre's root org root: the local
// event says so (data.parent_id), not the parent it has at the origin,
// which this centre does not hold. Readers of this centre's stream (authz's
// mirror of the org tree) then place the subtree where it is here, so a
// grant on this centre's root reaches the origin's people.
func (w *ReplicaWrite) AttachedUnder(root string) {
	if root != "" {
		w.setEventData("parent_id", root, false)
	}
}

// KeptInOrg records that w, a person's change that moves them, was applied
// with the person left in org (a move refused here for separation of duty
// or into an org left out): the local event says so (data.org_id), so
// that this centre's authz places them where identity holds them (trial10
// H2: authz followed the home's org and gave the person both roles).
func (w *ReplicaWrite) KeptInOrg(org string) {
	w.setEventData("org_id", org, true)
}

// setEventData sets data.key of w's local event to v (onlyIfPresent: only
// when the event's data names key).
func (w *ReplicaWrite) setEventData(key string, v any, onlyIfPresent bool) {
	if w.Event == nil {
		return
	}
	var p map[string]json.RawMessage
	if json.Unmarshal(w.Event.Payload, &p) != nil || p == nil {
		return
	}
	var data map[string]json.RawMessage
	if d, ok := p["data"]; ok {
		_ = json.Unmarshal(d, &data) // data that is not an object is replaced
	}
	if _, ok := data[key]; !ok && onlyIfPresent {
		return
	}
	if data == nil {
		data = map[string]json.RawMessage{}
	}
	data[key], _ = json.Marshal(v)
	p["data"], _ = json.Marshal(data)
	if b, err := json.Marshal(p); err == nil {
		w.Event.Payload = b
	}
}
