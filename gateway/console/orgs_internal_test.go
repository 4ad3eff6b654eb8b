package console

import (
	"strings"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestOrgTree: orgs are arranged under their parents, children by code;
// an org whose parent the administrator does not see (the top of a unit
// administrator's subtree) is a root.
func TestOrgTree(t *testing.T) {
	orgs := []*identityv1.Org{
		{Id: "e1", Code: "east1", ParentId: "e"},
		{Id: "e", Code: "east", ParentId: "root"}, // root is above the subtree
		{Id: "e0", Code: "east0", ParentId: "e"},
		{Id: "x", Code: "a-lone", ParentId: "gone"},
		{Id: "e1a", Code: "east1a", ParentId: "e1"},
	}
	var out []string
	var walk func(ns []*orgNode, depth int)
	walk = func(ns []*orgNode, depth int) {
		for _, n := range ns {
			out = append(out, strings.Repeat("-", depth)+n.Org.GetCode())
			walk(n.Children, depth+1)
		}
	}
	walk(orgTree(orgs), 0)
	if got, want := strings.Join(out, " "), "a-lone east -east0 -east1 --east1a"; got != want {
		t.Fatalf("tree %q, want %q", got, want)
	}
}
