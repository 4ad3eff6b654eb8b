package identity

import (
	"encoding/json"
	"testing"
)

// The keys of what a replica write did (sync's record of conflicts): a
// peer's id that would name a part or the whole of another object names
// nothing (review sec16 L2).
func TestReplicaKeys(t *testing.T) {
	for _, c := range []struct {
		w       ReplicaWrite
		subject string
		whole   bool
		want    string
	}{
		{ReplicaWrite{Kind: "user", ID: "u1"}, "uias.changes.identity.user.updated", false, "user:u1"},
		{ReplicaWrite{Kind: "user", ID: "u1"}, "uias.changes.identity.user.deleted", true, "user:u1/*"},
		{ReplicaWrite{Kind: "group", ID: "g1", Member: "u7"}, "uias.changes.identity.group.member_added", false, "group:g1/member:u7"},
		{ReplicaWrite{Kind: "org", ID: "o1"}, "uias.changes.identity.org.moved", false, "org:o1/place"},
		{ReplicaWrite{Kind: "finger", ID: "u1/2"}, "uias.changes.identity.user.finger_enrolled", true, "finger:u1/2/*"},
		{ReplicaWrite{Kind: "org", ID: "o1/place"}, "uias.changes.identity.org.created", false, ""},
		{ReplicaWrite{Kind: "group", ID: "g1/*"}, "uias.changes.identity.group.created", true, ""},
		{ReplicaWrite{Kind: "group", ID: "g1", Member: "u7/x"}, "uias.changes.identity.group.member_added", false, ""},
	} {
		if got := replicaKey(c.w, c.subject, c.whole); got != c.want {
			t.Errorf("replicaKey(%+v, %s, %v) = %q, want %q", c.w, c.subject, c.whole, got, c.want)
		}
	}
	gone := func(entity, op, id string) []string {
		b, _ := json.Marshal(map[string]any{"entity": entity, "op": op, "id": id, "data": map[string]any{"position": 3}})
		return goneKeys(ReplicaChange{Payload: b})
	}
	if got := gone("user", "deleted", "u1"); len(got) != 3 || got[0] != "user:u1/*" {
		t.Errorf("a person's deletion: %v", got)
	}
	b, _ := json.Marshal(map[string]any{"entity": "user", "op": "deleted", "id": "u1",
		"data": map[string]any{"org_id": "o1", "links": []string{"l1", "l2/x"}, "groups": []string{"g1", "g*"}}})
	if got := goneKeys(ReplicaChange{Payload: b}); len(got) != 5 || got[3] != "link:l1/*" || got[4] != "group:g1/member:u1" {
		t.Errorf("a person's deletion naming their links and groups: %v", got)
	}
	if got := gone("user", "finger_deleted", "u1"); len(got) != 1 || got[0] != "finger:u1/3/*" {
		t.Errorf("a finger's deletion: %v", got)
	}
	if got := gone("group", "deleted", "g1/member:u7"); got != nil {
		t.Errorf("a deletion naming a part: %v", got)
	}
}
