package component

import (
	"slices"
	"testing"

	"github.com/uias/uias/services/authz/index"
)

// A person deleted in identity leaves authz's mirror: their org and group
// memberships (who is under an org, who is in a group) forget them, and the
// change counts as one that may take something away from an administrator.
func TestDeletedPersonLeavesTheMirror(t *testing.T) {
	idx := index.New()
	for _, ev := range []string{
		`{"entity":"org","op":"created","id":"east","data":{"parent_id":""}}`,
		`{"entity":"user","op":"created","id":"u1","data":{"org_id":"east"}}`,
		`{"entity":"user","op":"created","id":"u2","data":{"org_id":"east"}}`,
		`{"entity":"group","op":"created","id":"g1","data":{"org_id":"east"}}`,
		`{"entity":"group","op":"member_added","id":"g1","data":{"user_id":"u1"}}`,
	} {
		if !ApplyIdentityEvent(idx, []byte(ev)) {
			t.Fatalf("not applied: %s", ev)
		}
	}
	if !slices.Contains(idx.PeopleUnder("east"), "u1") || !slices.Contains(idx.GroupMembers("g1"), "u1") {
		t.Fatal("the mirror before the deletion")
	}
	deleted := []byte(`{"entity":"user","op":"deleted","id":"u1","data":{"org_id":"east"}}`)
	if c, ok := parseIdentityEvent(deleted); !ok || !c.narrows() {
		t.Fatal("a deletion must count as narrowing")
	}
	if !ApplyIdentityEvent(idx, deleted) {
		t.Fatal("user.deleted not applied")
	}
	if slices.Contains(idx.PeopleUnder("east"), "u1") || slices.Contains(idx.GroupMembers("g1"), "u1") {
		t.Fatalf("a deleted person still mirrored: under east %v, in g1 %v", idx.PeopleUnder("east"), idx.GroupMembers("g1"))
	}
	if !slices.Contains(idx.PeopleUnder("east"), "u2") {
		t.Fatal("another person of the org was forgotten")
	}
	// A deleted group: its members leave it.
	ApplyIdentityEvent(idx, []byte(`{"entity":"group","op":"member_added","id":"g1","data":{"user_id":"u2"}}`))
	if !ApplyIdentityEvent(idx, []byte(`{"entity":"group","op":"deleted","id":"g1","data":{"org_id":"east"}}`)) {
		t.Fatal("group.deleted not applied")
	}
	if m := idx.GroupMembers("g1"); len(m) != 0 {
		t.Fatalf("members of a deleted group: %v", m)
	}
}
