package identity

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/uias/uias/pkg/events"
)

// Imports reach other centres. A single centre writes one batched
// "<kind>.imported" event per import batch, naming the ids written. In a
// multi-centre deployment the batch's event is split into events of at most
// importReplicaChunk items, each carrying, besides the ids, a replica part
// with the state of every org, person (with the password hash an import
// may set) and account link written: another centre applies them as it
// applies the created event of each (replicaWrite), in the rows' order.

// importReplicaChunk bounds the items of one imported event (its size stays
// well under NATS's message limit, hashes included).
const importReplicaChunk = 200

// importedReplica is the replica part of an imported event.
type importedReplica struct {
	Items []importedItem `json:"items"`
}

// importedItem is one object an import wrote: entity org, user or link.
type importedItem struct {
	Entity string          `json:"entity"`
	ID     string          `json:"id"`
	Rec    json.RawMessage `json:"rec"`
}

// importedChanges are the imported events of the items written by one
// import batch.
func (s *Service) importedChanges(ctx context.Context, kind, importID string, written []ImportItem) []events.Event {
	var out []events.Event
	for start := 0; start < len(written); start += importReplicaChunk {
		chunk := written[start:min(start+importReplicaChunk, len(written))]
		ids := make([]string, 0, len(chunk))
		rep := importedReplica{Items: make([]importedItem, 0, len(chunk)+len(chunk)/2)}
		add := func(entity, id string, rec any) {
			b, _ := json.Marshal(rec)
			rep.Items = append(rep.Items, importedItem{Entity: entity, ID: id, Rec: b})
		}
		for _, it := range chunk {
			switch {
			case it.Org != nil:
				ids = append(ids, it.Org.ID)
				add("org", it.Org.ID, orgReplica(it.Org))
			case it.User != nil:
				ids = append(ids, it.User.ID)
				add("user", it.User.ID, s.withSealed(userReplica(it.User, true), it.User))
				if it.Link != nil {
					add("link", it.Link.ID, linkReplica(it.Link))
				}
			case it.Link != nil:
				ids = append(ids, it.Link.ID)
				add("link", it.Link.ID, linkReplica(it.Link))
			}
		}
		out = append(out, s.changeWith(ctx, kind, "imported", importID, map[string]any{"import_id": importID, "ids": ids}, rep))
	}
	return out
}

// goneOps are the deletions a resend's "gone" items may stand for.
var goneOps = map[string]bool{"org.deleted": true, "user.deleted": true, "group.deleted": true, "link.deleted": true,
	"user.finger_deleted": true, "user.totp_removed": true}

// expandImported turns an imported (or resent: replica_resend.go) event of
// another centre into one created change per item (same event id and version: each names its own
// object), or reports false for any other change.
func expandImported(c ReplicaChange) ([]ReplicaChange, bool) {
	var ev replicaEvent
	if !decoded(c.Payload, &ev) || (ev.Op != "imported" && ev.Op != "resent") || len(ev.Replica) == 0 {
		return nil, false
	}
	var rep importedReplica
	if !decoded(ev.Replica, &rep) {
		return nil, false
	}
	out := make([]ReplicaChange, 0, len(rep.Items))
	for _, it := range rep.Items {
		var rec map[string]json.RawMessage
		if it.ID == "" || !decoded(it.Rec, &rec) {
			continue
		}
		// The data readers of the local event need (where it is).
		data := map[string]json.RawMessage{}
		for _, k := range []string{"parent_id", "org_id", "user_id", "app_id", "login_name", "display_name", "code", "name", "status"} {
			if v, ok := rec[k]; ok {
				data[k] = v
			}
		}
		// A resend's fingers and authenticator apps are the person's
		// enrolment changes, what it names gone the change deleting it.
		entity, op := it.Entity, "created"
		p := map[string]any{"id": it.ID, "data": data, "replica": it.Rec}
		switch it.Entity {
		case "finger":
			entity, op = "user", "finger_enrolled"
		case "totp":
			entity, op = "user", "totp_enrolled"
		case "gone":
			var g goneItem
			if !decoded(it.Rec, &g) || !goneOps[g.Entity+"."+g.Op] {
				continue // a deletion of what a resend sends, nothing else (review sec15)
			}
			entity, op = g.Entity, g.Op
			p = map[string]any{"id": it.ID, "data": g.Data}
		}
		p["entity"], p["op"] = entity, op
		payload, err := json.Marshal(p)
		if err != nil {
			continue
		}
		out = append(out, ReplicaChange{EventID: c.EventID, Subject: changesSubjectPrefix + entity + "." + op,
			Version: c.Version, Payload: payload, Resent: ev.Op == "resent"})
	}
	return out, true
}

// Fingerprint templates reach other centres: an enrolment's event carries,
// in its replica part, the finger with its template sealed as the home
// centre stored it and the wrapped data key that sealed it (a centre whose
// key ring holds the home's master key opens it and seals it again with its
// own data key; one without keeps it sealed and it matches nothing there,
// answering NO_FINGERPRINT). The
// replica's object is the finger (kind "finger", id "<user id>/<position>").

// fingerRecord is the replica part of a finger_enrolled event.
type fingerRecord struct {
	Position    int       `json:"position"`
	Quality     int       `json:"quality"`
	Format      string    `json:"format"`
	Minutiae    int       `json:"minutiae"`
	TemplateEnc string    `json:"template_enc"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Keys: the wrapped data key that sealed the template (keys.go,
	// resealArrived; absent from centres of older versions).
	Keys map[string]string `json:"keys,omitempty"`
}

func fingerReplica(f *StoredFinger) fingerRecord {
	return fingerRecord{Position: f.Position, Quality: f.Quality, Format: f.Format, Minutiae: f.Minutiae,
		TemplateEnc: f.TemplateEnc, CreatedAt: f.CreatedAt.UTC(), UpdatedAt: f.UpdatedAt.UTC()}
}

// fingerReplicaOf is the replica part of f's enrolment event: only in a
// multi-centre deployment (nil otherwise).
func (s *Service) fingerReplicaOf(f *StoredFinger) any {
	if s.homes == nil {
		return nil
	}
	r := fingerReplica(f)
	r.Keys = s.keys.wrappedFor(f.TemplateEnc)
	return r
}

// totpRecord is the replica part of a totp_enrolled event: the
// authenticator app's secret sealed as the home centre stored it (as
// fingerprint templates), the step its first code used, when.
type totpRecord struct {
	SecretEnc string    `json:"secret_enc"`
	LastStep  int64     `json:"last_step"`
	CreatedAt time.Time `json:"created_at"`
	// Keys: the wrapped data key that sealed the secret (keys.go,
	// resealArrived; absent from centres of older versions).
	Keys map[string]string `json:"keys,omitempty"`
}

// totpReplicaOf is the replica part of t's enrolment event: only in a
// multi-centre deployment (nil otherwise).
func (s *Service) totpReplicaOf(t *UserTOTP) any {
	if s.homes == nil {
		return nil
	}
	return totpRecord{SecretEnc: t.SecretEnc, LastStep: t.LastStep, CreatedAt: t.CreatedAt.UTC(),
		Keys: s.keys.wrappedFor(t.SecretEnc)}
}

// certRecord is the replica part of a certificate_bound event (the
// thumbprint is in its data): the expiry kept, when bound.
type certRecord struct {
	NotAfter  time.Time `json:"not_after"`
	CreatedAt time.Time `json:"created_at"`
}

// certReplicaOf is the replica part of c's binding event: only in a
// multi-centre deployment (nil otherwise).
func (s *Service) certReplicaOf(c *UserCert) any {
	if s.homes == nil {
		return nil
	}
	return certRecord{NotAfter: c.NotAfter.UTC(), CreatedAt: c.CreatedAt.UTC()}
}

// fingerID is the replica object id of a finger.
func fingerID(userID string, position int) string { return userID + "/" + strconv.Itoa(position) }
