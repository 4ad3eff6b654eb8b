// Package sync is the domain of the sync component: the replica of the
// objects a centre holds (its own and those sourced from its peer
// centres), and the rule that applies each change exactly once and in
// order per object.
//
// A change is a CHANGES event (pkg/events) from a centre's stream. Its
// version is its sequence in the CHANGES stream of the centre it was
// written at, which is the home centre of the object: every write of an
// object happens at its home (pkg/centre), and the outbox relay publishes a
// centre's changes in commit order, so a higher sequence is a later state
// of the object. A change whose event id was applied before is a DUPLICATE
// (a replay); one not newer than the object's version is STALE (out of
// order). Both are recorded, never applied.
package sync

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SubjectPrefix starts the subject of every CHANGES event:
// uias.changes.<component>.<entity>.<op>.
const SubjectPrefix = "uias.changes."

// Outcome is what applying a change did.
type Outcome string

// Outcomes. Applied changed the replica; the others are recorded as
// skipped changes with the outcome as their reason.
const (
	Applied   Outcome = "APPLIED"
	Duplicate Outcome = "DUPLICATE"
	Stale     Outcome = "STALE"
	// Invalid: the event does not name an object (recorded, not applied).
	Invalid Outcome = "INVALID"
	// Conflict: the component that owns the object (identity's replica)
	// refused it: it collides with an object of this centre (a login name,
	// an org code or an application type and code used here too). Recorded
	// as skipped, so that the operator sees it (sync status, skipped
	// changes), not applied to the replica either.
	Conflict Outcome = "CONFLICT"
)

// Change is one change as the applier sees it.
type Change struct {
	EventID string
	// Origin is the centre whose CHANGES stream the change was written to
	// (the object's home).
	Origin string
	// Kind is "<component>.<entity>" (e.g. identity.user), Op the operation
	// (created, updated, ...), ObjectID the object's id.
	Kind, Op, ObjectID string
	// Version is the change's sequence in the origin's CHANGES stream.
	Version uint64
	// Data is the event's "data": a JSON object is merged into the
	// object's data (field by field), anything else replaces it.
	Data json.RawMessage
	Time time.Time
	// Subject and Payload are the event's subject and payload as written,
	// for the component that owns the object to apply (identity's replica,
	// which may carry hashes): the sync tables never keep them.
	Subject string
	Payload []byte
	// Refused: the owning component refused the change (Conflict), set by
	// the applier before the store sees it: the store records it as
	// skipped with this reason.
	Refused Outcome
	// Objects are what the owning component said of each object the
	// change wrote or was refused (set by the applier; empty when it said
	// nothing): a change of an import or a resend carries many. The store
	// records each CONFLICT among them as a skipped change of its own (of
	// a change applied otherwise too), and an APPLIED one resolves the
	// open conflicts its key settles (Settles).
	Objects []ObjectOutcome
}

// ObjectOutcome is the outcome of one object of a change, as the owning
// component names it.
type ObjectOutcome struct {
	// Key names what was written or refused: "<kind>:<id>" (an object
	// whole), "<kind>:<id>/<part>" (a part of it: a group's member, an
	// org's or person's place), or "<kind>:<id>/*" (the object whole with
	// all its parts, as a resend or import writes it, or its deletion).
	Key     string
	Outcome Outcome
}

// ChangeKey is the key of what change c writes when its owning component
// names none (ObjectOutcome.Key): "<entity>:<id>" of its kind's entity
// (authz.grant: "grant:<id>"), the object whole ("/*") for a deletion.
func ChangeKey(c *Change) string {
	_, entity, _ := strings.Cut(c.Kind, ".")
	if entity == "" || c.ObjectID == "" {
		return ""
	}
	key := entity + ":" + c.ObjectID
	if isDelete(c.Op) {
		key += "/*"
	}
	return key
}

// Settles reports whether writing key resolves an open conflict of
// conflict: the same key, or key is an object with all its parts and
// conflict is that object or one of its parts.
func Settles(key, conflict string) bool {
	if key == "" || conflict == "" {
		return false
	}
	if key == conflict {
		return true
	}
	obj, all := strings.CutSuffix(key, "/*")
	return all && (conflict == obj || strings.HasPrefix(conflict, obj+"/"))
}

// Object is the replica of one object.
type Object struct {
	Kind, ID string
	// Home is the centre the object is written at.
	Home string
	// Version and EventID are those of the last change applied.
	Version uint64
	EventID string
	Op      string
	Deleted bool
	// Data is the merged JSON object of the changes applied.
	Data json.RawMessage
}

// Skipped is a change received and not applied.
type Skipped struct {
	EventID, Origin, Kind, ObjectID string
	Version, AppliedVersion         uint64
	Reason                          Outcome
	Time                            time.Time
	// Object is the key of what the owning component refused (CONFLICT;
	// ObjectOutcome.Key), empty when it named none.
	Object string
	// Resolved is when a later change of the same origin settled a
	// CONFLICT (zero: still open), ResolvedBy that change's event id.
	Resolved   time.Time
	ResolvedBy string
}

// SkippedFilter selects skipped changes: Open, the conflicts not resolved.
type SkippedFilter struct {
	Open bool
}

// Cursor is how far a link has applied its stream.
type Cursor struct {
	Link string
	// Seq is the last sequence of the link's stream applied.
	Seq uint64
	// Applied counts the changes applied; Skipped those not applied as
	// STALE, INVALID or CONFLICT; Duplicates the replays of changes applied before
	// (DUPLICATE: e.g. a stream source that copies its peer's changes again
	// after its filters changed), recorded as skipped changes too, but no
	// failure of any kind.
	Applied, Skipped, Duplicates int64
	LastApplied                  time.Time
}

// TableDigest is the digest of one replica table.
type TableDigest struct {
	Table  string
	Rows   int64
	SHA256 string
}

// Item is one message of a link's stream: its stream sequence and the
// change it carries; nil for a message the replica does not hold (it only
// moves the cursor).
type Item struct {
	Seq    uint64
	Change *Change
}

// ParseChange reads a CHANGES event: the kind and operation from its
// subject (uias.changes.<component>.<entity>.<op>), the object id and data
// from its JSON payload ({"id": ..., "data": ...}, as identity and authz
// write them).
func ParseChange(eventID, subject string, payload []byte, origin string, version uint64, at time.Time) (Change, error) {
	c := Change{EventID: eventID, Origin: origin, Version: version, Time: at, Subject: subject, Payload: payload}
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) < 3 {
		return c, fmt.Errorf("sync: subject %q is not uias.changes.<component>.<entity>.<op>", subject)
	}
	c.Kind, c.Op = strings.Join(parts[:len(parts)-1], "."), parts[len(parts)-1]
	if eventID == "" {
		return c, errors.New("sync: change without an event id")
	}
	var p struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return c, fmt.Errorf("sync: change %s: payload is not JSON: %w", eventID, err)
	}
	if p.ID == "" {
		return c, fmt.Errorf("sync: change %s names no object id", eventID)
	}
	c.ObjectID, c.Data = p.ID, p.Data
	return c, nil
}

// Decide applies c to the object's replica cur (nil: none yet); seen
// reports whether c's event id was applied before. It returns the outcome
// and, when Applied, the new replica.
func Decide(cur *Object, seen bool, c Change) (Outcome, *Object) {
	switch {
	case seen:
		return Duplicate, nil
	case cur != nil && c.Version <= cur.Version:
		return Stale, nil
	}
	next := &Object{Kind: c.Kind, ID: c.ObjectID, Home: c.Origin, Version: c.Version, EventID: c.EventID, Op: c.Op,
		Deleted: isDelete(c.Op)}
	var prev json.RawMessage
	if cur != nil {
		prev = cur.Data
	}
	next.Data = Merge(prev, c.Data)
	return Applied, next
}

func isDelete(op string) bool {
	switch op {
	case "deleted", "delete", "removed":
		return true
	}
	return false
}

// Merge overlays change data on an object's data: the fields of a JSON
// object replace those of the same name (the result is a JSON object with
// sorted keys, so every centre stores the same bytes); any other value
// (or a previous value that is not an object) replaces the data whole.
// Empty data leaves the previous data.
func Merge(prev, data json.RawMessage) json.RawMessage {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		if len(prev) == 0 {
			return json.RawMessage("{}")
		}
		return prev
	}
	var upd map[string]json.RawMessage
	if json.Unmarshal(data, &upd) != nil || upd == nil {
		return compact(data)
	}
	out := map[string]json.RawMessage{}
	if len(prev) > 0 {
		_ = json.Unmarshal(prev, &out) // a non-object previous value is replaced
		if out == nil {
			out = map[string]json.RawMessage{}
		}
	}
	for k, v := range upd {
		out[k] = compact(v)
	}
	b, _ := json.Marshal(out) // map keys are sorted by encoding/json
	return b
}

func compact(v json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return v
	}
	return b.Bytes()
}
