package commands_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
)

// A peer's direct grant that the home's own checks would refuse is not
// applied (review sec26 L4): one of a uias (administration) permission,
// one naming a role beside the permission, one with an administrator's
// flags or a permission the model lacks. A well-formed one is.
func TestReplicaRefusesMalformedDirectGrants(t *testing.T) {
	l1, l2 := newCentres(t)
	l1.idx.SetOrgParent("bureau", "root1")
	l1.idx.SetUserOrg("ann", "bureau")
	l2.idx.SetOrgParent("bureau", "root2")
	l2.idx.SetUserOrg("ann", "bureau")
	clerk, _, _ := l1.makerChecker()
	_ = outcomes(l2.apply("l1", l1.changes()))
	mk := func(rev int, g authz.Grant) commands.ReplicaChange { return grantPut("f", rev, g) }
	user := authz.Subject{Kind: authz.SubjectUser, ID: "ann"}
	l1.apply("l2", []commands.ReplicaChange{
		mk(1, authz.Grant{ID: "fg1", Subject: user, Permission: authz.Permission{App: authz.AdminApp, Resource: "identity.users", Operation: "write"}}),
		mk(2, authz.Grant{ID: "fg2", Subject: user, Role: clerk, Permission: authz.Permission{App: "oa", Resource: "docs", Operation: "approve"}}),
		mk(3, authz.Grant{ID: "fg3", Subject: user, Permission: authz.Permission{App: "oa", Resource: "docs", Operation: "nosuchop"}}),
		mk(4, authz.Grant{ID: "fg4", Subject: user, Permission: authz.Permission{App: "oa", Resource: "docs", Operation: "approve"},
			ScopeOrg: "root1", Delegable: true}),
	})
	for _, id := range []string{"fg1", "fg2", "fg3", "fg4"} {
		if g, ok := l1.idx.Grant(id); ok {
			t.Errorf("%s applied: %+v", id, g)
		}
	}
}

// A peer's unit_admin grant with a delegation depth the home's checks
// refuse (above 8, or without delegable) is not applied (review sec30a I1).
func TestReplicaRefusesMalformedDelegationDepth(t *testing.T) {
	l1, l2 := newCentres(t)
	l2.idx.SetOrgParent("bureau", "root2")
	l2.idx.SetUserOrg("ann", "bureau")
	_ = outcomes(l2.apply("l1", l1.changes()))
	mk := func(rev int, g authz.Grant) commands.ReplicaChange { return grantPut("d", rev, g) }
	user := authz.Subject{Kind: authz.SubjectUser, ID: "ann"}
	l2.apply("l1", []commands.ReplicaChange{
		mk(101, authz.Grant{ID: "dg1", Role: authz.RoleUnitAdmin, Subject: user, ScopeOrg: "bureau", Delegable: true, DelegationDepth: 12}),
		mk(102, authz.Grant{ID: "dg2", Role: authz.RoleUnitAdmin, Subject: user, ScopeOrg: "bureau", DelegationDepth: 3}),
	})
	for _, id := range []string{"dg1", "dg2"} {
		if g, ok := l2.idx.Grant(id); ok {
			t.Errorf("%s applied: %+v", id, g)
		}
	}
}

// grantPut is a peer's change putting grant g at revision rev.
func grantPut(prefix string, rev int, g authz.Grant) commands.ReplicaChange {
	d, _ := json.Marshal(g)
	ch := authz.Change{Rev: int64(rev), Obj: authz.ObjGrant, Op: authz.OpPut, ID: g.ID, Data: d}
	p, _ := json.Marshal(commands.ChangePayload{Change: ch, Time: time.Now()})
	return commands.ReplicaChange{EventID: fmt.Sprintf("%s-%d", prefix, rev), Subject: commands.ChangesSubjectPrefix + "grant.put",
		Version: uint64(rev), Payload: p}
}
