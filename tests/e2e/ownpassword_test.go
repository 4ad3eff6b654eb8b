package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestAppointedAuditorChoosesOwnPassword (trial5 D23): the system
// administrator creates a person with a password they chose, the security
// auditor appoints that person a second security auditor (as documented),
// and the system administrator tries to act as the new auditor with the
// password they know: no token (PASSWORD_CHANGE_REQUIRED, over gRPC and
// REST), no backup of the log, and they cannot set the password again
// now that the person administers. The new auditor chooses their own at
// their first login, and only theirs works from then on.
func TestAppointedAuditorChoosesOwnPassword(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	const known = "Mx-Pass-5511"
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "mallory", DisplayName: "Mallory", OrgId: e.root,
		Password: known, PasswordNeverExpires: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authzv1.NewAuthzAdminServiceClient(e.conn).CreateGrant(e.aud(), &authzv1.Grant{RoleId: "security_auditor",
		Subject: &authzv1.Subject{Kind: "user", Id: u.GetId()}}); err != nil {
		t.Fatalf("the auditor appoints mallory: %v", err)
	}
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: known})
	if st := wantCode(t, err, codes.FailedPrecondition, "PASSWORD_CHANGE_REQUIRED"); !strings.Contains(st.Message(), "set by another person") {
		t.Fatalf("login with the password the system administrator chose: %q", st.Message())
	}
	code, body, _ := e.rest(http.MethodPost, "/v1/admin/login", map[string]string{"Content-Type": "application/json"},
		map[string]string{"login_name": "mallory", "password": known})
	if code != http.StatusBadRequest || !containsReason(body, "PASSWORD_CHANGE_REQUIRED") || body["token"] != nil {
		t.Fatalf("REST login with the password the system administrator chose: %d %v", code, body)
	}
	// nor may the system administrator set it again now
	_, err = e.admin.SetPassword(e.adm(), &identityv1.SetPasswordRequest{Id: u.GetId(), Password: "Mx-Pass-5512"})
	wantCode(t, err, codes.PermissionDenied, "")

	// mallory chooses their own, and backs the log up as an auditor
	res, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: known,
		NewPassword: "Her-Own-Pass-2026"})
	if err != nil || res.GetToken() == "" {
		t.Fatalf("mallory chooses their own password: %v", err)
	}
	mal := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+res.GetToken())
	if _, err := auditv1.NewAuditLogServiceClient(e.conn).GetArchiveStatus(mal, &auditv1.GetArchiveStatusRequest{}); err != nil {
		t.Fatalf("the new auditor asks for the backup status: %v", err)
	}
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: known})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")
	if _, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory",
		Password: "Her-Own-Pass-2026"}); err != nil {
		t.Fatalf("login with one's own password: %v", err)
	}
}
