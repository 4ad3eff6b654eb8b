package identity_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/services/identity"
)

// The first start makes two administrators at once: "admin" (the legacy
// flag, appointed system_admin) and "auditor" (a recorded appointment to
// security_auditor), each with its own password, given or generated.
func TestBootstrapFirstAdmins(t *testing.T) {
	ctx := context.Background()
	t.Run("refused before anything is written", func(t *testing.T) {
		svc, _ := newService(t)
		for _, p := range []identity.FirstAdmins{
			{AdminPassword: "Boot-Strap-Pass1", AuditorPassword: "weak"},
			{AdminPassword: "Boot-Strap-Pass1", AuditorPassword: "Auditor-Pass-99auditor"},
			{AdminPassword: "Same-Pass-Twice1", AuditorPassword: "Same-Pass-Twice1"},
		} {
			_, err := svc.BootstrapAdmins(ctx, p)
			if err == nil || !strings.Contains(err.Error(), "UIAS_BOOTSTRAP_AUDITOR_PASSWORD") {
				t.Fatalf("auditor password %q: %v, want a refusal naming UIAS_BOOTSTRAP_AUDITOR_PASSWORD", p.AuditorPassword, err)
			}
		}
		if orgs, _, _ := svc.ListOrgs(ctx, identity.OrgFilter{}, 0, ""); len(orgs) != 0 {
			t.Fatalf("refused bootstrap wrote orgs: %v", orgs)
		}
	})

	svc, _ := newService(t)
	res, err := svc.BootstrapAdmins(ctx, identity.FirstAdmins{AdminPassword: "Boot-Strap-Pass1"})
	if err != nil || !res.Created || res.AdminPassword != "" || res.AuditorPassword == "" {
		t.Fatalf("first start: %+v %v (want the auditor's password generated, the admin's not)", res, err)
	}
	if err := svc.Policy().CheckPassword(res.AuditorPassword, identity.BootstrapAuditorLogin); err != nil {
		t.Fatalf("generated auditor password fails the policy: %v", err)
	}
	users, _, err := svc.ListUsers(ctx, identity.UserFilter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	byLogin := map[string]*identity.User{}
	for _, u := range users {
		byLogin[u.LoginName] = u
	}
	admin, aud := byLogin[identity.BootstrapAdminLogin], byLogin[identity.BootstrapAuditorLogin]
	if len(users) != 2 || admin == nil || aud == nil || !admin.IsAdmin || aud.IsAdmin || !aud.NeverExpires || aud.OrgID != admin.OrgID {
		t.Fatalf("first administrators: %+v", users)
	}
	if _, _, _, err := svc.AdminLogin(ctx, identity.BootstrapAdminLogin, "Boot-Strap-Pass1"); err != nil {
		t.Fatalf("admin logs in: %v", err)
	}

	// What identity then appoints in authz: admin system_admin (flag),
	// auditor security_auditor (recorded).
	var asked []string
	n, err := svc.MigrateAdmins(ctx, func(_ context.Context, userID, role string) error {
		asked = append(asked, userID+"="+role)
		return nil
	})
	want := []string{admin.ID + "=" + identity.RoleSystemAdmin, aud.ID + "=" + identity.RoleSecurityAuditor}
	if err != nil || n != 2 || !slices.Equal(asked, want) {
		t.Fatalf("appointments %v (%d, %v), want %v", asked, n, err, want)
	}

	// Later starts create nothing and ignore the passwords given.
	again, err := svc.BootstrapAdmins(ctx, identity.FirstAdmins{AdminPassword: "weak", AuditorPassword: "weak"})
	if err != nil || again.Created {
		t.Fatalf("later start: %+v %v", again, err)
	}
	if users, _, _ := svc.ListUsers(ctx, identity.UserFilter{}, 0, ""); len(users) != 2 {
		t.Fatalf("later start changed the users: %d", len(users))
	}
}
