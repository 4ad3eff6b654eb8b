package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// Personal data in clear in exports is authz's identity.personal reveal,
// held by the built-in personal_data_admin role. The deprecated setting
// identity.personal_data_admins is migrated: its logins get the role at
// start. Another system administrator exports masked data only, until
// granted the role, and again after it is revoked; gRPC and REST alike.
func TestPersonalDataRevealPermission(t *testing.T) {
	a := startIE(t) // identity.personal_data_admins: admin
	az := authzv1.NewAuthzAdminServiceClient(a.conn)
	adminID := a.adminID(t)
	gs, err := az.ListGrants(a.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: adminID, RoleId: "personal_data_admin"})
	if err != nil || len(gs.GetGrants()) != 1 {
		t.Fatalf("the setting's login holds personal_data_admin: %v %v", gs, err)
	}
	if _, err := a.importGRPC(identityv1.ImportKind_IMPORT_KIND_ORGS, identityv1.ImportFormat_IMPORT_FORMAT_CSV, []byte(ieOrgs)); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.importGRPC(identityv1.ImportKind_IMPORT_KIND_USERS, identityv1.ImportFormat_IMPORT_FORMAT_CSV, []byte(ieUsers)); err != nil || rep.GetFailed() != 0 {
		t.Fatalf("import: %v %v", rep, err)
	}
	revealed := func(e *env) (string, error) {
		f, _, err := e.exportGRPC(identityv1.ImportKind_IMPORT_KIND_USERS, identityv1.ImportFormat_IMPORT_FORMAT_CSV, true)
		return string(f), err
	}
	if f, err := revealed(a); err != nil || !strings.Contains(f, "13812345678") {
		t.Fatalf("admin's export in clear: %v\n%s", err, f)
	}

	// A second system administrator, not named by the setting.
	sysToken := a.grantedAdmin(t, "sys-two", "system_admin")
	sys := &env{t: t, app: a.app, conn: a.conn, admin: a.admin, token: sysToken, root: a.root, http: a.http}
	sysID := func() string {
		r, err := a.admin.ListUsers(a.adm(), &identityv1.ListUsersRequest{Query: "sys-two"})
		if err != nil || len(r.GetUsers()) != 1 {
			t.Fatalf("find sys-two: %v", err)
		}
		return r.GetUsers()[0].GetId()
	}()
	refused := func(when string) {
		t.Helper()
		_, err := revealed(sys)
		if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "personal_data_admin") {
			t.Errorf("%s: export in clear: want PERMISSION_DENIED naming personal_data_admin, got %v", when, err)
		} else if r := errorInfo(status.Convert(err)).GetReason(); r != identity.ReasonPersonalDataDenied {
			t.Errorf("%s: reason %q", when, r)
		}
		code, _, raw := a.call("GET", "/v1/export/users?format=csv&reveal_personal=true", sysToken, "", nil)
		if code != http.StatusForbidden || !strings.Contains(string(raw), identity.ReasonPersonalDataDenied) {
			t.Errorf("%s: REST export in clear: %d %s", when, code, raw)
		}
		// masked exports stay allowed
		f, _, err := sys.exportGRPC(identityv1.ImportKind_IMPORT_KIND_USERS, identityv1.ImportFormat_IMPORT_FORMAT_CSV, false)
		if err != nil || !strings.Contains(string(f), "138****5678") {
			t.Errorf("%s: masked export: %v", when, err)
		}
	}
	refused("without the role")

	g, err := az.CreateGrant(a.adm(), &authzv1.Grant{RoleId: "personal_data_admin", Subject: &authzv1.Subject{Kind: "user", Id: sysID}})
	if err != nil {
		t.Fatalf("grant personal_data_admin: %v", err)
	}
	if f, err := revealed(sys); err != nil || !strings.Contains(f, "13812345678") {
		t.Fatalf("export in clear with the role: %v", err)
	}
	code, _, raw := a.call("GET", "/v1/export/users?format=csv&reveal_personal=true", sysToken, "", nil)
	if code != http.StatusOK || !strings.Contains(string(raw), "13812345678") {
		t.Fatalf("REST export in clear with the role: %d %s", code, raw)
	}
	if _, err := az.RevokeGrant(a.adm(), &authzv1.RevokeGrantRequest{Id: g.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	refused("after the revocation")

	// The role is granted unscoped, to a person, and not by itself an
	// administrator's: its holder alone cannot log in to administer.
	_, err = az.CreateGrant(a.adm(), &authzv1.Grant{RoleId: "personal_data_admin", Subject: &authzv1.Subject{Kind: "user", Id: sysID}, ScopeOrg: a.root})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a scoped personal_data_admin grant: %v", err)
	}
	ann, err := a.admin.CreateUser(a.adm(), &identityv1.CreateUserRequest{LoginName: "ann", DisplayName: "Ann", OrgId: a.root,
		Password: escalationPassword, PasswordNeverExpires: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := az.CreateGrant(a.adm(), &authzv1.Grant{RoleId: "personal_data_admin", Subject: &authzv1.Subject{Kind: "user", Id: ann.GetId()}}); err != nil {
		t.Fatal(err)
	}
	_, err = a.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "ann", Password: escalationPassword})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("a holder of personal_data_admin alone logs in as an administrator: %v", err)
	}
}
