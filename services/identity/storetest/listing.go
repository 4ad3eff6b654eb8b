package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// Listings of issue 16: org subtrees, search through the text index (kept
// in step with writes), short queries, and search pages.

func userIDs(t *testing.T, list func(identity.Page) ([]*identity.User, string, error), size int) []string {
	t.Helper()
	var ids []string
	for _, p := range pages(t, size, list) {
		for _, u := range p {
			ids = append(ids, u.ID)
		}
	}
	return ids
}

// listedIDs lists the users of filter in pages of size and returns their
// ids sorted.
func listedIDs(t *testing.T, f *fixture, filter identity.UserFilter, size int) []string {
	t.Helper()
	ids := userIDs(t, func(p identity.Page) ([]*identity.User, string, error) {
		return f.s.ListUsers(f.ctx, filter, p)
	}, size)
	slices.Sort(ids)
	return ids
}

func sortedIDs(us ...*identity.User) []string {
	var ids []string
	for _, u := range us {
		ids = append(ids, u.ID)
	}
	slices.Sort(ids)
	return ids
}

func testUserSubtree(t *testing.T, f *fixture) {
	root := f.org("")
	a := f.org(root.ID)
	a1 := f.org(a.ID)
	b := f.org(root.ID)
	// An org whose id shares a's as a prefix is not under a.
	ax := &identity.Org{ID: a.ID + "x", Code: "code-" + a.ID + "x", Name: "ax", ParentID: root.ID,
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	must(t, f.s.CreateOrg(f.ctx, ax, nil))

	inA := []*identity.User{f.user(a.ID), f.user(a1.ID), f.user(a.ID), f.user(a1.ID), f.user(a1.ID)}
	inB := f.user(b.ID)
	inAX := f.user(ax.ID)
	inRoot := f.user(root.ID)
	dis := f.newUser(a1.ID)
	dis.Status = identity.StatusDisabled
	must(t, f.s.CreateUser(f.ctx, dis, nil))

	subtree := func(org string, status identity.Status) []string {
		return listedIDs(t, f, identity.UserFilter{OrgID: org, Subtree: true, Status: status}, 2)
	}
	if got, want := subtree(a.ID, 0), sortedIDs(append(slices.Clone(inA), dis)...); !slices.Equal(got, want) {
		t.Fatalf("subtree of a = %v, want %v", got, want)
	}
	if got, want := subtree(a.ID, identity.StatusActive), sortedIDs(inA...); !slices.Equal(got, want) {
		t.Fatalf("active subtree of a = %v, want %v", got, want)
	}
	if got := subtree(root.ID, 0); len(got) != 9 {
		t.Fatalf("subtree of root = %d users, want 9", len(got))
	}
	if got, want := subtree(b.ID, 0), sortedIDs(inB); !slices.Equal(got, want) {
		t.Fatalf("subtree of b = %v, want %v", got, want)
	}
	// One org alone (no descendants): its own people, not those of the
	// orgs below it nor of an org whose id starts with its id; an
	// unknown org lists nobody.
	only := func(org string, status identity.Status) []string {
		return listedIDs(t, f, identity.UserFilter{OrgID: org, Status: status}, 2)
	}
	if got, want := only(a.ID, 0), sortedIDs(inA[0], inA[2]); !slices.Equal(got, want) {
		t.Fatalf("users of a alone = %v, want %v", got, want)
	}
	if got, want := only(a1.ID, identity.StatusDisabled), sortedIDs(dis); !slices.Equal(got, want) {
		t.Fatalf("disabled users of a1 alone = %v, want %v", got, want)
	}
	if got, want := only(root.ID, 0), sortedIDs(inRoot); !slices.Equal(got, want) {
		t.Fatalf("users of root alone = %v, want %v", got, want)
	}
	if got, want := only(ax.ID, 0), sortedIDs(inAX); !slices.Equal(got, want) {
		t.Fatalf("users of ax alone = %v, want %v", got, want)
	}
	if got := only("missing", 0); len(got) != 0 {
		t.Fatalf("users of an unknown org = %v, want none", got)
	}

	// A user moving to another org moves in the subtree listings too.
	mv, err := f.s.GetUser(f.ctx, inA[0].ID)
	must(t, err)
	mv.OrgID = b.ID
	must(t, f.s.UpdateUser(f.ctx, mv, nil))
	if got, want := subtree(b.ID, 0), sortedIDs(inB, mv); !slices.Equal(got, want) {
		t.Fatalf("subtree of b after the user moved = %v, want %v", got, want)
	}

	// Moving an org moves its users' subtree.
	_, err = f.s.MoveOrg(f.ctx, a1.ID, b.ID, base.Add(time.Hour), nil)
	must(t, err)
	if got, want := subtree(a.ID, 0), sortedIDs(inA[2]); !slices.Equal(got, want) {
		t.Fatalf("subtree of a after the move = %v, want %v", got, want)
	}
	if got := subtree(b.ID, 0); len(got) != 6 {
		t.Fatalf("subtree of b after the move = %d users, want 6", len(got))
	}
	// The moved org's own people are still its own.
	if got, want := only(a1.ID, 0), sortedIDs(inA[1], inA[3], inA[4], dis); !slices.Equal(got, want) {
		t.Fatalf("users of a1 alone after the move = %v, want %v", got, want)
	}

	_, _, err = f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: "missing", Subtree: true}, identity.Page{})
	isErr(t, err, identity.ErrNotFound)
	// A token of another listing's shape is refused.
	_, next, err := f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: root.ID, Subtree: true}, identity.Page{Size: 1})
	must(t, err)
	_, _, err = f.s.ListUsers(f.ctx, identity.UserFilter{}, identity.Page{Token: next})
	if err == nil {
		t.Fatal("a subtree token was accepted by a plain listing")
	}
}

func testOrgSubtree(t *testing.T, f *fixture) {
	root := f.org("")
	a := f.org(root.ID)
	a1 := f.org(a.ID)
	a2 := f.org(a.ID)
	a11 := f.org(a1.ID)
	f.org(root.ID)
	var got []string
	for _, p := range pages(t, 2, func(p identity.Page) ([]*identity.Org, string, error) {
		return f.s.ListOrgs(f.ctx, identity.OrgFilter{ParentID: a.ID, Subtree: true}, p)
	}) {
		for _, o := range p {
			got = append(got, o.ID)
		}
	}
	// Ordered by path: a1, a11 (under a1), a2.
	if want := []string{a1.ID, a11.ID, a2.ID}; !slices.Equal(got, want) {
		t.Fatalf("subtree of a = %v, want %v", got, want)
	}
	all, _, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{ParentID: root.ID, Subtree: true}, identity.Page{})
	must(t, err)
	eq(t, "orgs under root", len(all), 5)
}

func testSearch(t *testing.T, f *fixture) {
	o := f.org("")
	mk := func(login, display, email string) *identity.User {
		u := f.newUser(o.ID)
		u.LoginName, u.DisplayName, u.Email = login, display, email
		must(t, f.s.CreateUser(f.ctx, u, nil))
		return u
	}
	zsf := mk("zhangsanfeng", "张三丰", "zsf@wudang.example")
	zs := mk("zhangsan", "张三", "zs@example.org")
	ls := mk("lisi", "李四", "Li.Si@Example.ORG")
	var many []*identity.User
	for i := range 7 {
		many = append(many, mk(fmt.Sprintf("crew%02d", i), fmt.Sprintf("Crew Member %d", i), fmt.Sprintf("crew%d@ship.example", i)))
	}

	search := func(q string, status identity.Status) []string {
		return listedIDs(t, f, identity.UserFilter{Query: q, Status: status}, 3)
	}
	for q, want := range map[string][]string{
		"张三丰":           {zsf.ID},
		"三丰":            {}, // two characters: display names starting with it
		"张三":            sortedIDs(zsf, zs),
		"张":             sortedIDs(zsf, zs),
		"ANGSAN":        sortedIDs(zsf, zs), // login names, any case
		"example.org":   sortedIDs(zs, ls),  // emails, any case
		"wudang":        {zsf.ID},
		"member":        sortedIDs(many...), // pages of 3
		"ship.example":  sortedIDs(many...),
		"no such thing": {},
		"crew1@ship":    {many[1].ID},
	} {
		if got := search(q, 0); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("search %q = %v, want %v", q, got, want)
		}
	}
	// A match never spans two fields ("zhangsan" + "张三").
	if got := search("zhangsan张三", 0); len(got) != 0 {
		t.Fatalf("search across fields = %v", got)
	}

	// Filters narrow a search.
	d, err := f.s.GetUser(f.ctx, many[2].ID)
	must(t, err)
	d.Status = identity.StatusDisabled
	must(t, f.s.UpdateUser(f.ctx, d, nil))
	if got := search("member", identity.StatusDisabled); !slices.Equal(got, []string{d.ID}) {
		t.Fatalf("disabled members = %v", got)
	}
	other := f.org("")
	u := f.newUser(other.ID)
	u.DisplayName = "Crew Member elsewhere"
	must(t, f.s.CreateUser(f.ctx, u, nil))
	got, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Query: "member", OrgID: other.ID}, identity.Page{})
	must(t, err)
	if len(got) != 1 || got[0].ID != u.ID {
		t.Fatalf("members in the other org = %v", got)
	}
	got, _, err = f.s.ListUsers(f.ctx, identity.UserFilter{Query: "member", OrgID: o.ID, Subtree: true}, identity.Page{})
	must(t, err)
	eq(t, "members in o's subtree", len(got), 7)

	// The index follows writes: a renamed user is found by the new name
	// only.
	r, err := f.s.GetUser(f.ctx, ls.ID)
	must(t, err)
	r.DisplayName, r.Email = "王五", "wangwu@example.net"
	must(t, f.s.UpdateUser(f.ctx, r, nil))
	if got := search("example.org", 0); !slices.Equal(got, []string{zs.ID}) {
		t.Fatalf("old email still found: %v", got)
	}
	if got := search("wangwu@", 0); !slices.Equal(got, []string{ls.ID}) {
		t.Fatalf("new email not found: %v", got)
	}
	if got := search("王五", 0); !slices.Equal(got, []string{ls.ID}) {
		t.Fatalf("new short name not found: %v", got)
	}
	// An update that leaves the searched fields alone keeps the entry.
	r.FailedCount = 2
	must(t, f.s.UpdateUser(f.ctx, r, nil))
	if got := search("wangwu@", 0); !slices.Equal(got, []string{ls.ID}) {
		t.Fatalf("entry lost by an unrelated update: %v", got)
	}

	// Orgs, groups and applications are searched the same way.
	org := &identity.Org{ID: f.id("org"), Code: "haishi-ju", Name: "海事局船舶处", ParentID: o.ID,
		Status: identity.StatusActive, CreatedAt: base, UpdatedAt: base}
	must(t, f.s.CreateOrg(f.ctx, org, nil))
	orgs, _, err := f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "船舶处"}, identity.Page{})
	must(t, err)
	if len(orgs) != 1 || orgs[0].ID != org.ID {
		t.Fatalf("org search = %v", orgs)
	}
	org.Name = "海事局港口处"
	must(t, f.s.UpdateOrg(f.ctx, org, nil))
	orgs, _, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "船舶处"}, identity.Page{})
	must(t, err)
	eq(t, "renamed org found by its old name", len(orgs), 0)
	orgs, _, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "海事"}, identity.Page{})
	must(t, err)
	eq(t, "orgs whose name starts with 海事", len(orgs), 1)
	orgs, _, err = f.s.ListOrgs(f.ctx, identity.OrgFilter{Query: "HAISHI"}, identity.Page{})
	must(t, err)
	eq(t, "orgs by code", len(orgs), 1)
}

func testListingEdges(t *testing.T, f *fixture) {
	// Paging of every plain filter returns each row once, in order.
	o := f.org("")
	a1, a2 := f.app("oa"), f.app("oa")
	var us []*identity.User
	for range 5 {
		u := f.user(o.ID)
		us = append(us, u)
		f.link(u.ID, a1.ID, "acct-"+u.ID)
		f.link(u.ID, a2.ID, "acct-"+u.ID)
	}
	for _, filter := range []identity.LinkFilter{{AppID: a1.ID}, {UserID: us[1].ID}, {AppID: a2.ID, UserID: us[3].ID}} {
		var n int
		for _, p := range pages(t, 2, func(p identity.Page) ([]*identity.AccountLink, string, error) {
			return f.s.ListLinks(f.ctx, filter, p)
		}) {
			for _, l := range p {
				if (filter.AppID != "" && l.AppID != filter.AppID) || (filter.UserID != "" && l.UserID != filter.UserID) {
					t.Fatalf("link %v does not match %v", l, filter)
				}
				n++
			}
		}
		want := 5
		if filter.UserID != "" {
			want = 2
		}
		if filter.UserID != "" && filter.AppID != "" {
			want = 1
		}
		eq(t, fmt.Sprintf("links of %+v", filter), n, want)
	}
	ids := userIDs(t, func(p identity.Page) ([]*identity.User, string, error) {
		return f.s.ListUsers(f.ctx, identity.UserFilter{OrgID: o.ID, Status: identity.StatusActive}, p)
	}, 2)
	if !slices.IsSorted(ids) || len(ids) != 5 {
		t.Fatalf("active users of o = %v", ids)
	}
	for _, tok := range []string{"!!", "AA"} { // not base64; a NUL byte
		if _, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Query: "abcdef"}, identity.Page{Token: tok}); err == nil {
			t.Fatalf("search token %q accepted", tok)
		}
	}
}
