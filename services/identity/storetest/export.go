package storetest

import (
	"fmt"
	"testing"

	"github.com/uias/uias/services/identity"
)

// testExport checks the export reads: key order, pages that continue after
// their last key, and the codes a row names its org, parent, user and
// application by.
func testExport(t *testing.T, f *fixture) {
	r := f.org("")
	a := f.org(r.ID)
	b := f.org(r.ID)
	c := f.org(b.ID)
	d := f.org(a.ID) // created after b and c, but sorts before them by path
	u1, u2, u3 := f.user(a.ID), f.user(c.ID), f.user(r.ID)
	app := f.app("OA")
	l1, l2 := f.link(u2.ID, app.ID, "acct-2"), f.link(u1.ID, app.ID, "acct-1")

	// Orgs in path order, one per page: a parent before its children.
	var orgs []string
	parents := map[string]string{}
	after := ""
	for {
		page, err := f.s.ExportOrgs(f.ctx, after, 1)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) != 1 {
			t.Fatalf("ExportOrgs(n=1) returned %d rows", len(page))
		}
		orgs = append(orgs, page[0].Org.ID)
		parents[page[0].Org.ID] = page[0].ParentCode
		after = page[0].Org.Path
	}
	eq(t, "org order", fmt.Sprint(orgs), fmt.Sprint([]string{r.ID, a.ID, d.ID, b.ID, c.ID}))
	eq(t, "root's parent code", parents[r.ID], "")
	eq(t, "d's parent code", parents[d.ID], a.Code)
	eq(t, "c's parent code", parents[c.ID], b.Code)

	// Users in id order with their org's code, two per page.
	var users []string
	orgCodes := map[string]string{}
	after = ""
	for {
		page, err := f.s.ExportUsers(f.ctx, after, 2)
		must(t, err)
		for _, e := range page {
			users = append(users, e.User.ID)
			orgCodes[e.User.ID] = e.OrgCode
			after = e.User.ID
			if e.User.LoginName == "" || e.User.DisplayName == "" || e.User.Status == 0 {
				t.Fatalf("ExportUsers row lacks fields: %+v", e.User)
			}
			if e.User.PasswordHash != "" {
				t.Fatalf("ExportUsers read a password hash: %+v", e.User)
			}
		}
		if len(page) < 2 {
			break
		}
	}
	eq(t, "user order", fmt.Sprint(users), fmt.Sprint([]string{u1.ID, u2.ID, u3.ID}))
	eq(t, "org codes", fmt.Sprint(orgCodes), fmt.Sprint(map[string]string{u1.ID: a.Code, u2.ID: c.Code, u3.ID: r.Code}))

	// Links in id order with login name, application type and code.
	links, err := f.s.ExportLinks(f.ctx, "", 10)
	must(t, err)
	if len(links) != 2 {
		t.Fatalf("ExportLinks = %d rows, want 2", len(links))
	}
	want := []identity.ExportedLink{
		{Link: l1, LoginName: u2.LoginName, AppType: "OA", AppCode: app.Code},
		{Link: l2, LoginName: u1.LoginName, AppType: "OA", AppCode: app.Code},
	}
	for i, w := range want {
		g := links[i]
		eq(t, "link", g.Link.ID, w.Link.ID)
		eq(t, "link account", g.Link.AppAccountID, w.Link.AppAccountID)
		eq(t, "link status", g.Link.Status, w.Link.Status)
		eq(t, "link login", g.LoginName, w.LoginName)
		eq(t, "link app", g.AppType+"/"+g.AppCode, w.AppType+"/"+w.AppCode)
	}
	rest, err := f.s.ExportLinks(f.ctx, l2.ID, 10)
	must(t, err)
	eq(t, "links after the last", len(rest), 0)
}
