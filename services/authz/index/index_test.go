package index_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/dataset"
	"github.com/uias/uias/services/authz/index"
)

// sameAnswers compares two indexes on every check of d and on who may do
// a sample of permissions.
func sameAnswers(t *testing.T, what string, d *dataset.Data, want, got *index.Index) {
	t.Helper()
	now := time.Now()
	for _, c := range d.Checks {
		w, _ := want.Check(c.Query(), now)
		g, _ := got.Check(c.Query(), now)
		if w != g {
			t.Fatalf("%s: %+v: %v, want %v", what, c, g, w)
		}
	}
	for i, c := range d.Checks {
		if i%50 != 0 {
			continue
		}
		w, _ := want.ListSubjects(c.App, c.Resource, c.Operation, now)
		g, _ := got.ListSubjects(c.App, c.Resource, c.Operation, now)
		if !reflect.DeepEqual(w, g) {
			t.Fatalf("%s: subjects of %s/%s.%s differ: %d, want %d", what, c.App, c.Resource, c.Operation, len(g), len(w))
		}
	}
}

// Changes applied in any order (grants before their roles, as a snapshot
// may hand them out) answer as the ordered load does, and so does an index
// whose roles were deleted and put again while grants referred to them.
func TestOrderAndRoleChurn(t *testing.T) {
	d := dataset.Generate(dataset.Small, 11, 2000)
	want, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	chs := d.Changes()
	rng := rand.New(rand.NewPCG(3, 4))
	rng.Shuffle(len(chs), func(i, j int) { chs[i], chs[j] = chs[j], chs[i] })
	got := index.New()
	d.Mirror(got)
	if err := got.Apply(chs...); err != nil {
		t.Fatal(err)
	}
	got.SetRevision(1)
	sameAnswers(t, "shuffled load", d, want, got)

	// Delete a tenth of the roles (grants keep referring to them): their
	// grants stop counting...
	rev := int64(1)
	next := func(c authz.Change) authz.Change { rev++; c.Rev = rev; return c }
	var gone []authz.Role
	for i, r := range d.Roles {
		if i%10 == 0 {
			gone = append(gone, r)
			if err := got.Apply(next(authz.Change{Obj: authz.ObjRole, Op: authz.OpDelete, ID: r.ID})); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got.Rebuild(); got.GrantCount() != want.GrantCount() {
		t.Fatalf("grants %d, want %d", got.GrantCount(), want.GrantCount())
	}
	now := time.Now()
	for _, r := range gone {
		for _, p := range r.Permissions {
			subs, _ := got.ListSubjects(p.App, p.Resource, p.Operation, now)
			for _, s := range subs {
				if s.Grant.Role == r.ID {
					t.Fatalf("a grant of deleted role %s still counts", r.ID)
				}
			}
		}
	}
	// ... and count again once the roles are back.
	for _, r := range gone {
		b, _ := json.Marshal(r)
		if err := got.Apply(next(authz.Change{Obj: authz.ObjRole, Op: authz.OpPut, ID: r.ID, Data: b})); err != nil {
			t.Fatal(err)
		}
	}
	sameAnswers(t, "roles deleted and put again", d, want, got)

	// Revoking every grant, one change each, leaves nothing allowed.
	for _, g := range d.Grants {
		if err := got.Apply(next(authz.Change{Obj: authz.ObjGrant, Op: authz.OpDelete, ID: g.ID})); err != nil {
			t.Fatal(err)
		}
	}
	if n := got.GrantCount(); n != 0 {
		t.Fatalf("%d grants left", n)
	}
	for _, c := range d.Checks {
		if ok, _ := got.Check(c.Query(), now); ok {
			t.Fatalf("%+v allowed with no grants", c)
		}
	}
}
