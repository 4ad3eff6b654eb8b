package sqlstore

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
)

// TestDisabledInOrgChain: the check finds a disabled org at the org itself
// or among its ancestors, for chains whose ancestor query is kept prepared
// and for deeper ones (run unprepared), and sees a status changed after
// its statements were prepared.
func TestDisabledInOrgChain(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			s := New(db)
			at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			// One chain o0 (root) .. oN, N well past preparedChainDepth.
			const n = preparedChainDepth + 4
			orgs := make([]*identity.Org, n+1)
			for i := range orgs {
				o := &identity.Org{ID: "o" + strconv.Itoa(i), Code: "o" + strconv.Itoa(i), Name: "o",
					Status: identity.StatusActive, CreatedAt: at, UpdatedAt: at}
				if i > 0 {
					o.ParentID = orgs[i-1].ID
				}
				if err := s.CreateOrg(ctx, o, nil); err != nil {
					t.Fatal(err)
				}
				orgs[i] = o
			}
			setStatus := func(o *identity.Org, st identity.Status) {
				t.Helper()
				o.Status = st
				if err := s.UpdateOrg(ctx, o, nil); err != nil {
					t.Fatal(err)
				}
			}
			check := func(id, want string) {
				t.Helper()
				for range 2 { // the second call runs the kept statements
					got, err := s.DisabledInOrgChain(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					if got != want {
						t.Fatalf("DisabledInOrgChain(%s) = %q, want %q", id, got, want)
					}
				}
			}
			shallow, deep := orgs[3].ID, orgs[n].ID
			check(shallow, "")
			check(deep, "")
			setStatus(orgs[1], identity.StatusDisabled)
			check(shallow, orgs[1].ID)
			check(deep, orgs[1].ID)
			check(orgs[0].ID, "")
			setStatus(orgs[0], identity.StatusDisabled)
			check(shallow, orgs[0].ID) // the nearest to the root first
			check(deep, orgs[0].ID)
			setStatus(orgs[0], identity.StatusActive)
			setStatus(orgs[1], identity.StatusActive)
			setStatus(orgs[n], identity.StatusDisabled)
			check(deep, deep)
			check(shallow, "")
			if _, err := s.DisabledInOrgChain(ctx, "nope"); err == nil {
				t.Fatal("DisabledInOrgChain of an unknown org: no error")
			}
		})
	}
}
