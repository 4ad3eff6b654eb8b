package commands_test

import (
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// AppointAdmin (identity's migration of is_admin and its first-start
// auditor) grants the role once, keeps the separation of duty, and the
// grant counts without the legacy flag.
func TestAppointAdmin(t *testing.T) {
	f := newAdminFixture(t)
	idx := f.svc.Index()
	g, created, rev, err := f.svc.AppointAdmin(f.ctx, "legacy", authz.RoleSystemAdmin)
	if err != nil || !created || rev == 0 || g.Role != authz.RoleSystemAdmin || g.ScopeOrg != "" {
		t.Fatalf("appoint: %+v %v %d %v", g, created, rev, err)
	}
	again, created, _, err := f.svc.AppointAdmin(f.ctx, "legacy", authz.RoleSystemAdmin)
	if err != nil || created || again.ID != g.ID {
		t.Fatalf("appointed twice: %+v %v %v", again, created, err)
	}
	// held already by a grant of the system administrator's own giving
	if _, created, _, err := f.svc.AppointAdmin(f.ctx, "sys", authz.RoleSystemAdmin); err != nil || created {
		t.Fatalf("sys holds it already: %v %v", created, err)
	}
	// the flag no longer needed: the grant decides
	idx.SetUserAdminFlag("legacy", false)
	if d := idx.CheckAdmin(index.AdminQuery{Person: "legacy", Resource: "identity.apps", Operation: "write"}, f.clock.now()); !d.Allowed {
		t.Fatalf("appointed system admin refused: %+v", d)
	}
	// a new security auditor
	if _, created, _, err := f.svc.AppointAdmin(f.ctx, "carol", authz.RoleSecurityAuditor); err != nil || !created {
		t.Fatalf("auditor: %v %v", created, err)
	}
	if d := idx.CheckAdmin(index.AdminQuery{Person: "carol", Resource: "audit.records", Operation: "read"}, f.clock.now()); !d.Allowed {
		t.Fatalf("appointed auditor refused: %+v", d)
	}
	// separation of duty: the auditor is not made a system administrator
	_, _, _, err = f.svc.AppointAdmin(f.ctx, "aud", authz.RoleSystemAdmin)
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.FailedPrecondition {
		t.Fatalf("auditor appointed system admin: %v", err)
	}
	// only the two roles
	_, _, _, err = f.svc.AppointAdmin(f.ctx, "bob", authz.RoleUnitAdmin)
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.InvalidArgument {
		t.Fatalf("unit admin appointed: %v", err)
	}
}
