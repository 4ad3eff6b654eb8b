package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestAppointedAuditorChoosesOwnPassword (trial5 D23): the system
// administrator creates a person with a password they chose; the security
// auditor appoints the person a second security auditor (as documented).
// The appointment replaces that password with an activation password the
// appointing auditor alone is shown: the system administrator can neither
// log in as the new auditor with what they know (gRPC, REST), nor set the
// password again. The person logs in with the activation password, must
// choose their own (PASSWORD_CHANGE_REQUIRED), and from then on only theirs
// works.
func TestAppointedAuditorChoosesOwnPassword(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	const known = "Mx-Pass-5511"
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "mallory", DisplayName: "Mallory", OrgId: e.root,
		Password: known, PasswordNeverExpires: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := authzv1.NewAuthzAdminServiceClient(e.conn).CreateGrant(e.aud(), &authzv1.Grant{RoleId: "security_auditor",
		Subject: &authzv1.Subject{Kind: "user", Id: u.GetId()}})
	if err != nil {
		t.Fatalf("the auditor appoints mallory: %v", err)
	}
	activation := res.GetActivationPassword()
	if activation == "" || activation == known {
		t.Fatalf("the appointment gave no activation password: %v", res)
	}
	// the records of the appointment (mallory's tokens revoked, the
	// activation password set) name the auditor who appointed, not
	// "anonymous" (acceptb)
	me, err := identityv1.NewAdminSessionServiceClient(e.conn).WhoAmI(e.aud(), &identityv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	wantActors := map[string]bool{
		"admin.tokens_revoked user:" + me.GetUser().GetId() + " user:" + u.GetId():      true,
		"user.appointment_password user:" + me.GetUser().GetId() + " user:" + u.GetId(): true,
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		seen := map[string]bool{}
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.identity.") {
			seen[fmt.Sprintf("%v %v %v", ev["api"], ev["actor"], ev["subject"])] = true
		}
		missing := []string{}
		for k := range wantActors {
			if !seen[k] {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appointment records missing %v; seen %v", missing, seen)
		}
	}
	// what the system administrator knows opens nothing now
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: known,
		NewPassword: "Chosen-By-Sys-1"})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")
	code, body, _ := e.rest(http.MethodPost, "/v1/admin/login", map[string]string{"Content-Type": "application/json"},
		map[string]string{"login_name": "mallory", "password": known})
	if code != http.StatusUnauthorized || body["token"] != nil {
		t.Fatalf("REST login with the password the system administrator chose: %d %v", code, body)
	}
	_, err = e.admin.SetPassword(e.adm(), &identityv1.SetPasswordRequest{Id: u.GetId(), Password: "Mx-Pass-5512"})
	wantCode(t, err, codes.PermissionDenied, "")

	// the activation password alone is no login: the person chooses theirs
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: activation})
	if st := wantCode(t, err, codes.FailedPrecondition, "PASSWORD_CHANGE_REQUIRED"); !strings.Contains(st.Message(), "set by another person") {
		t.Fatalf("login with the activation password: %q", st.Message())
	}
	tok, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: activation,
		NewPassword: "Her-Own-Pass-2026"})
	if err != nil || tok.GetToken() == "" {
		t.Fatalf("mallory chooses their own password: %v", err)
	}
	mal := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok.GetToken())
	if _, err := auditv1.NewAuditLogServiceClient(e.conn).GetArchiveStatus(mal, &auditv1.GetArchiveStatusRequest{}); err != nil {
		t.Fatalf("the new auditor asks for the backup status: %v", err)
	}
	_, err = e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory", Password: activation})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")
	if _, err := e.admin.AdminLogin(context.Background(), &identityv1.AdminLoginRequest{LoginName: "mallory",
		Password: "Her-Own-Pass-2026"}); err != nil {
		t.Fatalf("login with one's own password: %v", err)
	}
	// an appointment dated in the future protects the person already: the
	// system administrator may not set their password before it starts
	// (they would, and log in as the auditor when it began) (review sec9)
	later, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "later", DisplayName: "Later", OrgId: e.root,
		Password: known, PasswordNeverExpires: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err = authzv1.NewAuthzAdminServiceClient(e.conn).CreateGrant(e.aud(), &authzv1.Grant{RoleId: "security_auditor",
		Subject: &authzv1.Subject{Kind: "user", Id: later.GetId()}, ValidFrom: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil || res.GetActivationPassword() == "" {
		t.Fatalf("a future-dated appointment: %v %v", res, err)
	}
	_, err = e.admin.SetPassword(e.adm(), &identityv1.SetPasswordRequest{Id: later.GetId(), Password: "Sys-Chosen-Pass-77"})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.admin.ResetPassword(e.adm(), &identityv1.ResetPasswordRequest{Id: later.GetId()})
	wantCode(t, err, codes.PermissionDenied, "")

	// a second grant to a person whose password is their own changes nothing
	res, err = authzv1.NewAuthzAdminServiceClient(e.conn).CreateGrant(e.adm(), &authzv1.Grant{RoleId: "personal_data_admin",
		Subject: &authzv1.Subject{Kind: "user", Id: u.GetId()}})
	if err != nil || res.GetActivationPassword() != "" {
		t.Fatalf("a grant to an administrator with their own password: %v %v", res, err)
	}
}
