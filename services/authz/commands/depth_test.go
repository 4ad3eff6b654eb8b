package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
)

// Multi-level delegation (004 §2.1.3.3 「通过一步步的权限传递，可以实现多级授权」):
// a unit administrator granted delegable with delegation_depth N appoints
// unit administrators below them with a smaller depth, one level below the
// other, until an appointee of depth 1 appoints only administrators who
// appoint nobody.
func TestDelegationDepth(t *testing.T) {
	f := newAdminFixture(t)
	idx := f.svc.Index()
	// east1a > east1a1 > east1a1x: two more levels below the fixture's tree
	idx.SetOrgParent("east1a1", "east1a")
	idx.SetOrgParent("east1a1x", "east1a1")
	for u, o := range map[string]string{"x3": "east", "x2": "east1", "x1": "east1a", "x0": "east1a1", "y": "east1a1x"} {
		idx.SetUserOrg(u, o)
	}
	user := func(id string) authz.Subject { return authz.Subject{Kind: authz.SubjectUser, ID: id} }
	admin := func(who, scope string, delegable bool, depth int) authz.Grant {
		return authz.Grant{Role: authz.RoleUnitAdmin, Subject: user(who), ScopeOrg: scope, Delegable: delegable,
			DelegationDepth: depth, Grantable: []string{f.clerk}}
	}
	grant := func(ctx context.Context, g authz.Grant) (authz.Grant, error) {
		got, _, err := f.svc.CreateGrant(ctx, g)
		return got, err
	}

	// The system administrator appoints three levels below x3.
	g3, err := grant(as("sys"), admin("x3", "east", true, 3))
	f.must(err)
	if g3.DelegationDepth != 3 || g3.Depth() != 3 {
		t.Fatalf("x3's grant: depth %d", g3.DelegationDepth)
	}
	// x3 may not hand on as many levels as they hold, nor more.
	wantDenied(t, "same depth", second(grant(as("x3"), admin("x2", "east1", true, 3))), "fewer levels")
	wantDenied(t, "more depth", second(grant(as("x3"), admin("x2", "east1", true, 5))), "fewer levels")
	// Two, then one, then none.
	_, err = grant(as("x3"), admin("x2", "east1", true, 2))
	f.must(err)
	g1, err := grant(as("x2"), admin("x1", "east1a", true, 1))
	f.must(err)
	if g1.DelegationDepth != 0 || g1.Depth() != 1 {
		t.Fatalf("one level is stored as delegable alone: depth %d", g1.DelegationDepth)
	}
	wantDenied(t, "depth 1 appoints a delegable admin", second(grant(as("x1"), admin("x0", "east1a1", true, 0))), "delegable")
	_, err = grant(as("x1"), admin("x0", "east1a1", false, 0))
	f.must(err)
	// x0 holds a non-delegable grant: appoints nobody, but grants the clerk role.
	wantDenied(t, "the last level appoints", second(grant(as("x0"), admin("y", "east1a1x", false, 0))), "delegable")
	_, err = grant(as("x0"), authz.Grant{Role: f.clerk, Subject: user("y")})
	f.must(err)
	// The fixture's ea (delegable, no depth) is one level, as before.
	wantDenied(t, "one-level admin appoints a delegable admin", second(grant(as("ea"), admin("bob", "east1a", true, 0))), "delegable")

	// Malformed grants: BAD_MODEL with a message that says what is wrong.
	for _, c := range []struct {
		name string
		g    authz.Grant
		msg  string
	}{
		{"depth without delegable", admin("bob", "east1a", false, 2), "delegable unit_admin"},
		{"depth too large", admin("bob", "east1a", true, authz.MaxDelegationDepth+1), "at most 8"},
		{"depth negative", admin("bob", "east1a", true, -1), "at most 8"},
		{"depth on another role", authz.Grant{Role: f.clerk, Subject: user("bob"), DelegationDepth: 2}, "delegable unit_admin"},
	} {
		_, err := grant(as("sys"), c.g)
		ae, ok := apierr.As(err)
		if !ok || ae.Code != apierr.InvalidArgument || ae.Reason != authz.ReasonBadModel || !strings.Contains(ae.Message, c.msg) {
			t.Errorf("%s: want INVALID_ARGUMENT %s saying %q, got %v", c.name, authz.ReasonBadModel, c.msg, err)
		}
	}

	// The depth is kept: in the index and in the store (a fresh index
	// loaded from it), so the power is the same after a restart.
	check := func(what string, x *index.Index) {
		t.Helper()
		gs := x.Grants(index.GrantFilter{Subject: &authz.Subject{Kind: authz.SubjectUser, ID: "x3"}})
		if len(gs) != 1 || gs[0].DelegationDepth != 3 || !gs[0].Delegable {
			t.Fatalf("%s: x3's grants %+v", what, gs)
		}
	}
	check("index", idx)
	idx2 := index.New()
	if err := idx2.Apply(authz.BuiltinChanges()...); err != nil {
		t.Fatal(err)
	}
	svc2 := commands.New(commands.Deps{Store: sqlstore.New(f.db), Index: idx2, Now: f.clock.now, MaxWait: 200 * time.Millisecond})
	f.must(svc2.Load(f.ctx))
	check("reloaded", idx2)
}

func second[T any](_ T, err error) error { return err }
