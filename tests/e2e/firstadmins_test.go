package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

const auditorPassword = "Log-Reader-Pass-7"

// A fresh start yields the system administrator "admin" and the security
// auditor "auditor" (UIAS_BOOTSTRAP_AUDITOR_PASSWORD), as two grants of
// authz's built-in roles, and each can do only its part: the auditor reads
// the audit log (where the appointment itself is recorded) and changes
// nobody; the system administrator administers people and is refused the
// audit log, may not change the auditor, nor make the auditor a system
// administrator too (one person never holds two of the roles; the
// escalation battery covers the separation-of-duty pairs). Over gRPC and
// REST.
func TestFirstStartAdministrators(t *testing.T) {
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).BootstrapAuditorPassword = auditorPassword
	e := start(t, cfg)
	e.login()
	var audToken string
	eventually(t, "the first start's security auditor to log in", func() bool {
		res, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "auditor", Password: auditorPassword})
		audToken = res.GetToken()
		return err == nil
	})
	asAud := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+audToken)
	audHeader := map[string]string{"Authorization": "Bearer " + audToken}
	admHeader := map[string]string{"Authorization": "Bearer " + e.token}

	// The two are the holders of the two roles, one each.
	users, err := e.admin.ListUsers(asAud, &identityv1.ListUsersRequest{})
	if err != nil {
		t.Fatalf("auditor lists people: %v", err)
	}
	ids := map[string]string{}
	for _, u := range users.GetUsers() {
		ids[u.GetLoginName()] = u.GetId()
	}
	if len(ids) != 2 || ids["admin"] == "" || ids["auditor"] == "" {
		t.Fatalf("a fresh start's people: %v", ids)
	}
	az := authzv1.NewAuthzAdminServiceClient(e.conn)
	for login, role := range map[string]string{"admin": "system_admin", "auditor": "security_auditor"} {
		eventually(t, login+" to hold exactly "+role, func() bool {
			gs, err := az.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: ids[login]})
			return err == nil && len(gs.GetGrants()) == 1 && gs.GetGrants()[0].GetRoleId() == role
		})
	}

	// The auditor reads the audit log, gRPC and REST, and finds their own
	// appointment there.
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	eventually(t, "the auditor's appointment in the audit log", func() bool {
		r, err := q.QueryRecords(asAud, &auditv1.QueryRecordsRequest{Api: "admin.appointed"})
		if err != nil {
			t.Fatalf("auditor reads the audit log: %v", err)
		}
		for _, rec := range r.GetRecords() {
			if strings.Contains(rec.String(), ids["auditor"]) {
				// the process appointed them, and says so (not
				// "anonymous": a caller nobody authenticated)
				if rec.GetActor() != "system:appointments" {
					t.Fatalf("the auditor's appointment is recorded with actor %q, want system:appointments", rec.GetActor())
				}
				return true
			}
		}
		return false
	})
	if code, out, _ := e.rest(http.MethodGet, "/v1/audit/records?page_size=1", audHeader, nil); code != http.StatusOK {
		t.Fatalf("auditor reads the audit log over REST: %d %v", code, out)
	}

	// The system administrator reads the audit log (004 2.1.7.1: "queries
	// all logs") but neither backs it up nor removes records.
	if _, err = q.QueryRecords(e.adm(), &auditv1.QueryRecordsRequest{}); err != nil {
		t.Fatalf("system administrator reads the audit log: %v", err)
	}
	code, out, _ := e.rest(http.MethodGet, "/v1/audit/records?page_size=1", admHeader, nil)
	if code != http.StatusOK {
		t.Fatalf("system administrator reads the audit log over REST: %d %v", code, out)
	}
	code, out, _ = e.rest(http.MethodPost, "/v1/audit/archives", admHeader, map[string]any{"before": "2026-01-01T00:00:00Z", "remove": true})
	restDenied(t, "system administrator removes audit records", code, out, "not allowed to archive audit.records")

	// The auditor changes nobody.
	_, err = e.admin.CreateUser(asAud, &identityv1.CreateUserRequest{LoginName: "mallory", DisplayName: "Mallory", OrgId: e.root,
		Password: escalationPassword})
	denied(t, "auditor creates a person", err, "not allowed to write users")
	code, out, _ = e.rest(http.MethodPost, "/v1/users", audHeader, map[string]any{"login_name": "mallory", "display_name": "Mallory",
		"org_id": e.root, "password": escalationPassword})
	restDenied(t, "auditor creates a person", code, out, "not allowed to write users")
	_, err = e.admin.LockUser(asAud, &identityv1.LockUserRequest{Id: ids["admin"], DurationSeconds: 60})
	denied(t, "auditor locks the system administrator", err, "not allowed to lock, disable or enable users")

	// The system administrator administers people, but not the auditor,
	// and cannot make the auditor a system administrator as well.
	if _, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "alice", DisplayName: "Alice", OrgId: e.root,
		Password: escalationPassword}); err != nil {
		t.Fatalf("system administrator creates a person: %v", err)
	}
	_, err = e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: ids["auditor"], DurationSeconds: 60})
	denied(t, "system administrator locks the auditor", err, "")
	_, err = az.CreateGrant(e.adm(), &authzv1.Grant{RoleId: "system_admin", Subject: &authzv1.Subject{Kind: "user", Id: ids["auditor"]}})
	denied(t, "the auditor made a system administrator too", err, "managed by nobody else")
	code, out, _ = e.rest(http.MethodPost, "/v1/authz/grants", admHeader, map[string]any{"role_id": "system_admin",
		"subject": map[string]any{"kind": "user", "id": ids["auditor"]}})
	restDenied(t, "the auditor made a system administrator too", code, out, "managed by nobody else")
}
