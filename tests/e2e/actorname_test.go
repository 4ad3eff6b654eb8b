package e2e

import (
	"context"
	"testing"

	"google.golang.org/grpc/metadata"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestRecordsKeepTheAdministratorsLogin (trial5 D3; 004 2.1.7 lists the
// administrator's name among a record's fields): a record of an
// administrator's call keeps their login name as it was (detail
// actor_login, inside the signed record), so it still names them once they
// are deleted.
func TestRecordsKeepTheAdministratorsLogin(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	bob, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "bob", DisplayName: "Bob", OrgId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	az := authzv1.NewAuthzAdminServiceClient(e.conn)
	adminAs := func(login string) (string, context.Context) {
		u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: login, DisplayName: "Temp " + login, OrgId: e.root,
			Password: escalationPassword, PasswordNeverExpires: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := az.CreateGrant(e.adm(), &authzv1.Grant{RoleId: "unit_admin", Subject: &authzv1.Subject{Kind: "user", Id: u.GetId()},
			ScopeOrg: e.root})
		if err != nil {
			t.Fatal(err)
		}
		e.noteGrant(login, res)
		var tok string
		eventually(t, login+" to log in as an administrator", func() bool {
			tok, err = e.firstAdminLogin(t, login, escalationPassword)
			return err == nil
		})
		return u.GetId(), metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	eveID, eve := adminAs("eve")
	if _, err := e.admin.UpdateUser(eve, &identityv1.UpdateUserRequest{Id: bob.GetId(), UpdateMask: []string{"email"},
		Email: "bob@example.cn"}); err != nil {
		t.Fatal(err)
	}
	danID, dan := adminAs("dan")
	if _, err := e.admin.UpdateUser(dan, &identityv1.UpdateUserRequest{Id: bob.GetId(), UpdateMask: []string{"email"},
		Email: "bob@example.org"}); err != nil {
		t.Fatal(err)
	}
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	named := func(actorID, want string) {
		t.Helper()
		var last *auditv1.QueryRecordsResponse
		eventually(t, "the user.update record of user:"+actorID, func() bool {
			last, err = q.QueryRecords(e.aud(), &auditv1.QueryRecordsRequest{Actor: "user:" + actorID, Api: "user.update"})
			return err == nil && len(last.GetRecords()) == 1
		})
		r := last.GetRecords()[0]
		if r.GetActorName() != want {
			t.Fatalf("the record of user:%s names %q, want %q (%v)", actorID, r.GetActorName(), want, r)
		}
	}
	named(eveID, "eve (Temp eve)")

	// eve deleted: the record still names her by the login it kept
	grants, err := az.ListGrants(e.adm(), &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: eveID})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range grants.GetGrants() {
		if _, err := az.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: g.GetId()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.admin.DeleteUser(e.adm(), &identityv1.DeleteUserRequest{Id: eveID}); err != nil {
		t.Fatal(err)
	}
	named(eveID, "eve")
	// (a login name does not change; the display name may)
	if _, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: danID, UpdateMask: []string{"display_name"},
		DisplayName: "Daniel"}); err != nil {
		t.Fatal(err)
	}
	named(danID, "dan (Daniel)")
}
