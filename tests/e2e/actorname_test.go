package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
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

// TestRemarkKeptInRecords (trial5 D21; 004 2.1.7: a record's remark may
// hold details): an administrator's remark on a call (metadata
// x-uias-remark, REST header X-Uias-Remark, percent-encoded UTF-8) is kept
// in the records of the call, the action's and the access record; one
// that is not text is refused before anything is done.
func TestRemarkKeptInRecords(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	bob, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "bob", DisplayName: "Bob", OrgId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	remark := "调岗 (transfer), ticket #42 " + strings.Repeat("备", 100) // 330 bytes, kept whole
	ctx := metadata.AppendToOutgoingContext(e.adm(), "x-uias-remark", url.PathEscape(remark))
	if _, err := e.admin.LockUser(ctx, &identityv1.LockUserRequest{Id: bob.GetId(), DurationSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	code, body, _ := e.rest(http.MethodPost, "/v1/users/"+bob.GetId()+":unlock", map[string]string{"Authorization": "Bearer " + e.token,
		"X-Uias-Remark": url.PathEscape("解锁: 本人来电")}, map[string]any{})
	if code != http.StatusOK {
		t.Fatalf("REST unlock with a remark: %d %v", code, body)
	}
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	for api, want := range map[string]string{"user.locked": remark, "user.unlocked": "解锁: 本人来电",
		"uias.identity.v1.AdminService/LockUser": remark} {
		eventually(t, "the remark of "+api, func() bool {
			r, err := q.QueryRecords(e.aud(), &auditv1.QueryRecordsRequest{Api: api})
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range r.GetRecords() {
				if rec.GetDetail()["remark"] == want {
					return true
				}
			}
			return false
		})
	}
	// not text: refused, nothing done
	bad := metadata.AppendToOutgoingContext(e.adm(), "x-uias-remark", "%ZZ")
	_, err = e.admin.LockUser(bad, &identityv1.LockUserRequest{Id: bob.GetId(), DurationSeconds: 60})
	if st := wantCode(t, err, codes.InvalidArgument, ""); !strings.Contains(st.Message(), "remark") {
		t.Fatalf("a remark that is not percent-encoded: %v", st.Message())
	}
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: bob.GetId()})
	if err != nil || u.GetLockedUntil() != nil && u.GetLockedUntil().AsTime().After(time.Now()) {
		t.Fatalf("the refused lock locked: %v %v", u, err)
	}
	code, _, _ = e.rest(http.MethodPost, "/v1/users/"+bob.GetId()+":lock", map[string]string{"Authorization": "Bearer " + e.token,
		"X-Uias-Remark": url.PathEscape(strings.Repeat("长", 200))}, map[string]any{"duration_seconds": 60})
	if code != http.StatusBadRequest {
		t.Fatalf("REST lock with a remark over 500 bytes: %d", code)
	}
	// only an administrator's call keeps one: an anonymous caller's (a
	// failed administrator login) is dropped (review sec9 L2)
	anon := metadata.AppendToOutgoingContext(context.Background(), "x-uias-remark", url.PathEscape("approved by the security auditor"))
	if _, err := e.admin.AdminLogin(anon, &identityv1.AdminLoginRequest{LoginName: "bob-remark", Password: "wrong-password"}); err == nil {
		t.Fatal("a login of nobody succeeded")
	}
	eventually(t, "the failed login of bob-remark", func() bool {
		r, err := q.QueryRecords(e.aud(), &auditv1.QueryRecordsRequest{Api: "admin.login", Text: "bob-remark"})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range r.GetRecords() {
			if _, ok := rec.GetDetail()["remark"]; ok {
				t.Fatalf("an anonymous caller's remark was kept: %v", rec)
			}
		}
		return len(r.GetRecords()) > 0
	})
}
