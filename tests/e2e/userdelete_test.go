package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/authz"
	authzcomponent "github.com/uias/uias/services/authz/component"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestDeleteUser: an administrator deletes a person over REST; they are
// gone (404), their account cannot log in (-2, no such user), their SSO
// session ends, their grants in authz go (Check answers false), and the
// login name can be given to someone new. Nobody
// deletes their own account, and the system administrator is deleted by
// nobody else.
func TestDeleteUser(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("del", "dora", nil, nil)
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in target all")
	}
	ctx := context.Background()
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "dora", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	bearer := map[string]string{"Authorization": "Bearer " + e.token}
	az := e.app.Value(authzcomponent.Name).(*authzcomponent.Handle)
	if _, _, err := az.Service.PutResource(ctx, authz.Resource{App: "deltest", Code: "docs", Kind: authz.KindModule,
		Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	reader, _, err := az.Service.CreateRole(ctx, authz.Role{App: "deltest", Code: "reader",
		Permissions: []authz.Permission{{App: "deltest", Resource: "docs", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	dora := authz.Subject{Kind: authz.SubjectUser, ID: f.userID}
	if _, _, err := az.Service.CreateGrant(ctx, authz.Grant{Role: reader.ID, Subject: dora}); err != nil {
		t.Fatal(err)
	}
	reads := func() bool {
		ok, _, err := az.Service.Check(ctx, index.Query{Person: f.userID, App: "deltest", Resource: "docs", Operation: "read"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !reads() {
		t.Fatal("the grant does not allow before the deletion")
	}

	if code, body, _ := e.rest(http.MethodDelete, "/v1/users/"+f.userID, nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("delete without a token: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/users/"+f.userID, bearer, nil); code != http.StatusOK {
		t.Fatalf("delete: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodGet, "/v1/users/"+f.userID, bearer, nil); code != http.StatusNotFound {
		t.Fatalf("a deleted person read back: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/users/"+f.userID, bearer, nil); code != http.StatusNotFound {
		t.Fatalf("deleted twice: %d %v", code, body)
	}
	res, err := e.authPW(f, f.account, f.password)
	if err != nil || res.GetResultCode() != -2 {
		t.Fatalf("Authenticate of the deleted person's account: %v %v, want -2", res, err)
	}
	eventually(t, "the deleted person's session to end", func() bool {
		_, err := h.Service.GetSession(ctx, tgt)
		return err != nil
	})
	eventually(t, "the deleted person's grants to go", func() bool {
		return len(az.Index.Grants(index.GrantFilter{Subject: &dora})) == 0
	})
	if reads() {
		t.Fatal("Check allows a deleted person")
	}
	if _, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "dora", DisplayName: "Dora II",
		OrgId: e.root, Password: "Other-Pass-77x"}); err != nil {
		t.Fatalf("the login name of a deleted person for someone new: %v", err)
	}

	me, err := identityv1.NewAdminSessionServiceClient(e.conn).WhoAmI(e.adm(), &identityv1.WhoAmIRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.DeleteUser(e.adm(), &identityv1.DeleteUserRequest{Id: me.GetUser().GetId()})
	wantCode(t, err, codes.FailedPrecondition, "OWN_ACCOUNT")
	peer := e.grantedAdmin(t, "sys-peer", "system_admin")
	asPeer := map[string]string{"Authorization": "Bearer " + peer}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/users/"+me.GetUser().GetId(), asPeer, nil); code != http.StatusForbidden {
		t.Fatalf("a system administrator deletes another: %d %v", code, body)
	}
}

// TestDeleteOrgAndGroup: a group is deleted with its memberships (its
// members stay); an org only once nothing is under it (ORG_NOT_EMPTY, 400,
// naming what is left); the root org never (ROOT_ORG).
func TestDeleteOrgAndGroup(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	bearer := map[string]string{"Authorization": "Bearer " + e.token}
	branch, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "harbour", Name: "Harbour", ParentId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "pilot", DisplayName: "Pilot",
		OrgId: branch.GetId(), Password: "Harbour-Pass-9x"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: "deck", Name: "Deck", OrgId: branch.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.AddGroupMember(e.adm(), &identityv1.GroupMemberRequest{GroupId: g.GetId(), UserId: u.GetId()}); err != nil {
		t.Fatal(err)
	}

	code, body, _ := e.rest(http.MethodDelete, "/v1/orgs/"+branch.GetId(), bearer, nil)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "ORG_NOT_EMPTY") {
		t.Fatalf("delete an org with people and a group: %d %v", code, body)
	}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/groups/"+g.GetId(), bearer, nil); code != http.StatusOK {
		t.Fatalf("delete the group: %d %v", code, body)
	}
	if code, _, _ := e.rest(http.MethodGet, "/v1/groups/"+g.GetId(), bearer, nil); code != http.StatusNotFound {
		t.Fatalf("a deleted group read back: %d", code)
	}
	if _, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: u.GetId()}); err != nil {
		t.Fatalf("the member of a deleted group: %v", err)
	}
	if _, err := e.admin.DeleteUser(e.adm(), &identityv1.DeleteUserRequest{Id: u.GetId()}); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.rest(http.MethodDelete, "/v1/orgs/"+branch.GetId(), bearer, nil); code != http.StatusOK {
		t.Fatalf("delete the emptied org: %d %v", code, body)
	}
	if code, _, _ := e.rest(http.MethodGet, "/v1/orgs/"+branch.GetId(), bearer, nil); code != http.StatusNotFound {
		t.Fatalf("a deleted org read back: %d", code)
	}
	_, err = e.admin.DeleteOrg(e.adm(), &identityv1.DeleteOrgRequest{Id: e.root})
	wantCode(t, err, codes.FailedPrecondition, "ROOT_ORG")
}
