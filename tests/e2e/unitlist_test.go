package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// A unit administrator's listings that name no org show their subtree:
// not an error, not everything. People, orgs, groups and account links,
// over gRPC and REST; the administrator of a sub-unit sees less, and a
// system administrator or the auditor everything. Account links are
// deleted by the unit administrator inside their subtree only.
func TestUnitAdminListsAndLinks(t *testing.T) {
	x := newEscalation(t)
	e := x.e
	// groups in east1 and west, an application with a link for bob (east1)
	// and one for carol (west)
	group := func(code, org string) {
		if _, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: code, Name: code, OrgId: org}); err != nil {
			t.Fatalf("create group %s: %v", code, err)
		}
	}
	group("east1-team", x.east1)
	group("west-team", x.west)
	app, err := e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "mail", Name: "Mail"})
	if err != nil {
		t.Fatal(err)
	}
	link := func(user, account string) string {
		l, err := e.admin.CreateAccountLink(e.adm(), &identityv1.CreateAccountLinkRequest{UserId: user, AppId: app.GetApp().GetId(),
			AppAccountId: account})
		if err != nil {
			t.Fatalf("link %s: %v", account, err)
		}
		return l.GetId()
	}
	bobLink, carolLink := link(x.bob, "bob@mail"), link(x.carol, "carol@mail")

	logins := func(who string) []string {
		t.Helper()
		r, err := e.admin.ListUsers(x.as(who), &identityv1.ListUsersRequest{PageSize: 500})
		if err != nil {
			t.Fatalf("%s lists people: %v", who, err)
		}
		var out []string
		for _, u := range r.GetUsers() {
			out = append(out, u.GetLoginName())
		}
		sort.Strings(out)
		return out
	}
	eq := func(what string, got, want []string) {
		t.Helper()
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	eq("unit admin of east lists people", logins("unitA"), []string{"unit-a", "sys-two", "sub-a1", "bob", "dave"})
	eq("unit admin of east1 lists people", logins("sub"), []string{"sub-a1", "bob", "dave"})
	if all := logins("aud"); !slices.Contains(all, "carol") || !slices.Contains(all, "admin") {
		t.Errorf("the auditor lists everyone: %v", all)
	}
	if all := logins("admin"); !slices.Contains(all, "carol") || !slices.Contains(all, "unit-a") {
		t.Errorf("the system administrator lists everyone: %v", all)
	}

	orgs, err := e.admin.ListOrgs(x.as("unitA"), &identityv1.ListOrgsRequest{})
	if err != nil {
		t.Fatalf("unit admin lists orgs: %v", err)
	}
	var codes []string
	for _, o := range orgs.GetOrgs() {
		codes = append(codes, o.GetCode())
	}
	sort.Strings(codes)
	eq("unit admin of east lists orgs", codes, []string{"east", "east1"})

	groups, err := e.admin.ListGroups(x.as("unitA"), &identityv1.ListGroupsRequest{})
	if err != nil {
		t.Fatalf("unit admin lists groups: %v", err)
	}
	codes = nil
	for _, g := range groups.GetGroups() {
		codes = append(codes, g.GetCode())
	}
	eq("unit admin of east lists groups", codes, []string{"east1-team"})

	links, err := e.admin.ListAccountLinks(x.as("unitA"), &identityv1.ListAccountLinksRequest{})
	if err != nil {
		t.Fatalf("unit admin lists links: %v", err)
	}
	if len(links.GetLinks()) != 1 || links.GetLinks()[0].GetId() != bobLink {
		t.Errorf("unit admin of east lists links: %v, want only bob's", links.GetLinks())
	}

	// REST: the same listings, same answers.
	for path, want := range map[string]int{"/v1/users?page_size=500": 5, "/v1/orgs": 2, "/v1/groups": 1, "/v1/links": 1} {
		code, out, _ := e.rest(http.MethodGet, path, x.asHeader("unitA"), nil)
		if code != http.StatusOK {
			t.Errorf("REST unit admin GET %s: %d %v", path, code, out)
			continue
		}
		n := 0
		for _, v := range out {
			if l, ok := v.([]any); ok {
				n = len(l)
			}
		}
		if n != want {
			t.Errorf("REST unit admin GET %s: %d items, want %d: %v", path, n, want, out)
		}
	}

	// Account links: deleted inside the subtree, refused outside it.
	_, err = e.admin.DeleteAccountLink(x.as("sub"), &identityv1.DeleteAccountLinkRequest{Id: carolLink})
	denied(t, "unit admin of east1 deletes a link in west", err, "outside the org subtree you administer")
	code, out, _ := e.rest(http.MethodDelete, "/v1/links/"+carolLink, x.asHeader("unitA"), nil)
	restDenied(t, "unit admin of east deletes a link in west", code, out, "outside the org subtree you administer")
	if _, err := e.admin.DeleteAccountLink(x.as("sub"), &identityv1.DeleteAccountLinkRequest{Id: bobLink}); err != nil {
		t.Fatalf("unit admin of east1 deletes bob's link: %v", err)
	}
	left, err := e.admin.ListAccountLinks(e.adm(), &identityv1.ListAccountLinksRequest{AppId: app.GetApp().GetId()})
	if err != nil || len(left.GetLinks()) != 1 || left.GetLinks()[0].GetId() != carolLink {
		t.Fatalf("links after the deletions: %v %v", fmt.Sprint(left.GetLinks()), err)
	}
}
