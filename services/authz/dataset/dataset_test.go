package dataset_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/dataset"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
)

// reference answers a check the slow, obvious way, from the data set
// alone: the person's subjects, their grants, the granted roles with every
// role they inherit, and the permissions on the resource or one above it.
func reference(d *dataset.Data, c dataset.Check) bool {
	subjects := map[authz.Subject]bool{{Kind: authz.SubjectUser, ID: c.Person}: true}
	for g, us := range d.GroupUsers {
		if slices.Contains(us, c.Person) {
			subjects[authz.Subject{Kind: authz.SubjectGroup, ID: g}] = true
		}
	}
	for o := d.UserOrg[c.Person]; o != ""; o = d.OrgParent[o] {
		subjects[authz.Subject{Kind: authz.SubjectOrg, ID: o}] = true
	}
	roles := map[string]authz.Role{}
	for _, r := range d.Roles {
		roles[r.ID] = r
	}
	parent := map[string]string{}
	for _, r := range d.Resources {
		if r.App == c.App {
			parent[r.Code] = r.Parent
		}
	}
	if _, ok := parent[c.Resource]; !ok {
		return false
	}
	var holds func(id string, depth int) bool
	holds = func(id string, depth int) bool {
		r := roles[id]
		for _, p := range r.Permissions {
			if p.App != c.App || p.Operation != c.Operation {
				continue
			}
			for res := c.Resource; res != ""; res = parent[res] {
				if p.Resource == res {
					return true
				}
			}
		}
		for _, j := range r.Inherits {
			if depth < 64 && holds(j, depth+1) {
				return true
			}
		}
		return false
	}
	for _, g := range d.Grants {
		if !subjects[g.Subject] {
			continue
		}
		if g.Direct() {
			// a direct grant: its permission, on the resource or one above
			for res := c.Resource; res != ""; res = parent[res] {
				if g.Permission == (authz.Permission{App: c.App, Resource: res, Operation: c.Operation}) {
					return true
				}
			}
			continue
		}
		if holds(g.Role, 0) {
			return true
		}
	}
	return false
}

// The index answers every check of a generated data set as the reference
// does, and about half of them are allowed (the data set is not trivial).
func TestIndexAgreesWithReference(t *testing.T) {
	d := dataset.Generate(dataset.Small, 7, 2000)
	idx, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	allowed := 0
	for _, c := range d.Checks {
		got, _ := idx.Check(c.Query(), now)
		if want := reference(d, c); got != want {
			t.Fatalf("%+v: index %v, reference %v", c, got, want)
		}
		if got {
			allowed++
		}
	}
	if allowed < len(d.Checks)/3 || allowed > len(d.Checks)*9/10 {
		t.Fatalf("%d of %d checks allowed", allowed, len(d.Checks))
	}
	t.Logf("%d of %d checks allowed", allowed, len(d.Checks))
}

// With direct grants of permissions besides the grants of roles, the index
// (loaded as a replica loads its store) still answers as the reference
// does; the checks of directly granted permissions are allowed, and a
// direct grant taken away (revoked) no longer answers, also for people
// whose answers were prepared.
func TestIndexAgreesWithReferenceDirectGrants(t *testing.T) {
	size := dataset.Small
	size.DirectGrants = 2000
	d := dataset.Generate(size, 9, 2000)
	without := dataset.Generate(dataset.Small, 9, 2000)
	if len(d.Grants) != len(without.Grants)+2000 || len(d.Checks) <= len(without.Checks) {
		t.Fatalf("%d grants, %d checks", len(d.Grants), len(d.Checks))
	}
	idx, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, c := range d.Checks {
		got, _ := idx.Check(c.Query(), now)
		if want := reference(d, c); got != want {
			t.Fatalf("%+v: index %v, reference %v", c, got, want)
		}
		if i >= len(without.Checks) && !got {
			t.Fatalf("check %d of a directly granted permission refused: %+v", i, c)
		}
	}
	// Revoke every direct grant: the answers are those of the data set
	// without them.
	var dels []authz.Change
	for i, g := range d.Grants[len(without.Grants):] {
		dels = append(dels, authz.Change{Rev: int64(2 + i), Obj: authz.ObjGrant, Op: authz.OpDelete, ID: g.ID})
	}
	if err := idx.Apply(dels...); err != nil {
		t.Fatal(err)
	}
	d.Grants = d.Grants[:len(without.Grants)]
	for _, c := range d.Checks {
		got, _ := idx.Check(c.Query(), now)
		if want := reference(d, c); got != want {
			t.Fatalf("after the revocations %+v: index %v, reference %v", c, got, want)
		}
	}
}

// Renamed applications answer as before: every check of the data set
// gives the same answer with the applications' ids replaced.
func TestRenameApps(t *testing.T) {
	d := dataset.Generate(dataset.Small, 3, 300)
	before, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	want := make([]bool, len(d.Checks))
	now := time.Now()
	for i, c := range d.Checks {
		want[i], _ = before.Check(c.Query(), now)
	}
	to := map[string]string{}
	for a := range d.Size.Apps {
		to[dataset.AppID(a)] = fmt.Sprintf("registered-%d", a)
	}
	d.RenameApps(to)
	after, err := d.Index()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range d.Checks {
		if !strings.HasPrefix(c.App, "registered-") {
			t.Fatalf("check %d still names %q", i, c.App)
		}
		if got, _ := after.Check(c.Query(), now); got != want[i] {
			t.Fatalf("check %d (%+v): %v after the renaming, %v before", i, c, got, want[i])
		}
	}
}

// A replica's start (the data set in a store, read by commands'
// Service.Load, which decodes the grants in parallel) holds the direct
// grants as the data set has them: every check answers as the reference.
func TestLoadedDirectGrants(t *testing.T) {
	size := dataset.Small
	size.DirectGrants = 1000
	d := dataset.Generate(size, 5, 1000)
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteStore(ctx, db); err != nil {
		t.Fatal(err)
	}
	idx := index.New()
	d.Mirror(idx)
	svc := commands.New(commands.Deps{Store: sqlstore.New(db), Index: idx})
	if err := svc.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if n := idx.GrantCount(); n != len(d.Grants) {
		t.Fatalf("loaded %d grants of %d", n, len(d.Grants))
	}
	now := time.Now()
	for _, c := range d.Checks {
		if got, _ := idx.Check(c.Query(), now); got != reference(d, c) {
			t.Fatalf("%+v: loaded index %v", c, got)
		}
	}
}
