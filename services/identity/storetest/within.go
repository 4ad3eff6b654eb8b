package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// Listings limited to org subtrees (the filters' Within: a unit
// administrator's listings that name no org): people, orgs, groups and
// account links of one subtree (walked in path order), of two, and of an
// org that no longer exists (nothing), paged one row at a time; and after
// an org moved to another subtree and a person to another org (groups
// carry their org's path, links their person's).
func testWithin(t *testing.T, f *fixture) {
	root := f.org("")
	a := f.org(root.ID)
	a1 := f.org(a.ID)
	b := f.org(root.ID)
	ua, ua1, ub := f.user(a.ID), f.user(a1.ID), f.user(b.ID)
	f.user(root.ID) // outside a and b
	ua2 := f.user(a.ID)
	ua2.Status = identity.StatusDisabled
	must(t, f.s.UpdateUser(f.ctx, ua2, nil))
	group := func(orgID string) string {
		g := &identity.Group{ID: f.id("grp"), Code: f.id("code"), Name: "team", OrgID: orgID, CreatedAt: base}
		must(t, f.s.CreateGroup(f.ctx, g, nil))
		return g.ID
	}
	ga, ga1, ga1b, gb := group(a.ID), group(a1.ID), group(a1.ID), group(b.ID)
	app, other := f.app("oa"), f.app("oa")
	la, la1, lb := f.link(ua.ID, app.ID, "a"), f.link(ua1.ID, app.ID, "a1"), f.link(ub.ID, app.ID, "b")
	la1o := f.link(ua1.ID, other.ID, "a1-other")

	ids := func(what string, want []string, list func(p identity.Page) ([]string, string, error)) {
		t.Helper()
		var got []string
		for _, p := range pages(t, 1, list) {
			got = append(got, p...)
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
	users := func(f2 identity.UserFilter) func(identity.Page) ([]string, string, error) {
		return func(p identity.Page) ([]string, string, error) {
			us, next, err := f.s.ListUsers(f.ctx, f2, p)
			var out []string
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out, next, err
		}
	}
	orgs := func(f2 identity.OrgFilter) func(identity.Page) ([]string, string, error) {
		return func(p identity.Page) ([]string, string, error) {
			os, next, err := f.s.ListOrgs(f.ctx, f2, p)
			var out []string
			for _, o := range os {
				out = append(out, o.ID)
			}
			return out, next, err
		}
	}
	groups := func(f2 identity.GroupFilter) func(identity.Page) ([]string, string, error) {
		return func(p identity.Page) ([]string, string, error) {
			gs, next, err := f.s.ListGroups(f.ctx, f2, p)
			var out []string
			for _, g := range gs {
				out = append(out, g.ID)
			}
			return out, next, err
		}
	}
	links := func(f2 identity.LinkFilter) func(identity.Page) ([]string, string, error) {
		return func(p identity.Page) ([]string, string, error) {
			ls, next, err := f.s.ListLinks(f.ctx, f2, p)
			var out []string
			for _, l := range ls {
				out = append(out, l.ID)
			}
			return out, next, err
		}
	}
	one, two, gone := []string{a.ID}, []string{a.ID, b.ID}, []string{"missing-org"}
	ids("people within a", []string{ua.ID, ua1.ID, ua2.ID}, users(identity.UserFilter{Within: one}))
	ids("active people within a", []string{ua.ID, ua1.ID}, users(identity.UserFilter{Within: one, Status: identity.StatusActive}))
	ids("people within a and b", []string{ua.ID, ua1.ID, ua2.ID, ub.ID}, users(identity.UserFilter{Within: two}))
	ids("people within a gone org", nil, users(identity.UserFilter{Within: gone}))
	ids("people of root within a", nil, users(identity.UserFilter{OrgID: root.ID, Within: one}))
	ids("orgs within a", []string{a.ID, a1.ID}, orgs(identity.OrgFilter{Within: one}))
	ids("orgs within a and b", []string{a.ID, a1.ID, b.ID}, orgs(identity.OrgFilter{Within: two}))
	ids("orgs within a gone org", nil, orgs(identity.OrgFilter{Within: gone}))
	ids("groups within a", []string{ga, ga1, ga1b}, groups(identity.GroupFilter{Within: one}))
	ids("groups within a and b", []string{ga, ga1, ga1b, gb}, groups(identity.GroupFilter{Within: two}))
	ids("groups within a gone org", nil, groups(identity.GroupFilter{Within: gone}))
	ids("groups of a1 within a", []string{ga1, ga1b}, groups(identity.GroupFilter{OrgID: a1.ID, Within: one}))
	ids("links within a", []string{la.ID, la1.ID, la1o.ID}, links(identity.LinkFilter{Within: one}))
	ids("links of app within a", []string{la.ID, la1.ID}, links(identity.LinkFilter{Within: one, AppID: app.ID}))
	ids("links within a and b", []string{la.ID, la1.ID, la1o.ID, lb.ID}, links(identity.LinkFilter{Within: two}))
	ids("links within a gone org", nil, links(identity.LinkFilter{Within: gone}))
	ids("links of ub within a", nil, links(identity.LinkFilter{UserID: ub.ID, Within: one}))

	// a1 (two groups, ua1 and its two links) moves from a to b: every
	// listing of a and of b follows at once.
	_, err := f.s.MoveOrg(f.ctx, a1.ID, b.ID, base.Add(time.Hour), nil)
	must(t, err)
	onlyB, onlyA1 := []string{b.ID}, []string{a1.ID}
	ids("people within a after a1 moved under b", []string{ua.ID, ua2.ID}, users(identity.UserFilter{Within: one}))
	ids("people within b after a1 moved under b", []string{ub.ID, ua1.ID}, users(identity.UserFilter{Within: onlyB}))
	ids("groups within a after a1 moved under b", []string{ga}, groups(identity.GroupFilter{Within: one}))
	ids("groups within b after a1 moved under b", []string{gb, ga1, ga1b}, groups(identity.GroupFilter{Within: onlyB}))
	ids("groups within a1 after its move", []string{ga1, ga1b}, groups(identity.GroupFilter{Within: onlyA1}))
	ids("groups within a and b after a1 moved", []string{ga, ga1, ga1b, gb}, groups(identity.GroupFilter{Within: two}))
	ids("links within a after a1 moved under b", []string{la.ID}, links(identity.LinkFilter{Within: one}))
	ids("links within b after a1 moved under b", []string{lb.ID, la1.ID, la1o.ID}, links(identity.LinkFilter{Within: onlyB}))
	ids("links of app within b after a1 moved", []string{lb.ID, la1.ID}, links(identity.LinkFilter{Within: onlyB, AppID: app.ID}))
	ids("links within a1 after its move", []string{la1.ID, la1o.ID}, links(identity.LinkFilter{Within: onlyA1}))

	// ua moves to a1 (now under b): their link follows them.
	mv, err := f.s.GetUser(f.ctx, ua.ID)
	must(t, err)
	mv.OrgID = a1.ID
	must(t, f.s.UpdateUser(f.ctx, mv, nil))
	ids("links within a after ua moved to a1", nil, links(identity.LinkFilter{Within: one}))
	ids("links within a1 after ua moved to it", []string{la.ID, la1.ID, la1o.ID}, links(identity.LinkFilter{Within: onlyA1}))

	// Made after the moves: at their org's (person's) new path.
	ga1c := group(a1.ID)
	la2 := f.link(ua2.ID, app.ID, "a2")
	ids("groups within b after a new group in a1", []string{gb, ga1, ga1b, ga1c}, groups(identity.GroupFilter{Within: onlyB}))
	ids("links within a after a new link of ua2", []string{la2.ID}, links(identity.LinkFilter{Within: one}))

	// b (with a1 below it) moves under a: all of it is within a again.
	_, err = f.s.MoveOrg(f.ctx, b.ID, a.ID, base.Add(2*time.Hour), nil)
	must(t, err)
	ids("groups within a after b moved under a", []string{ga, gb, ga1, ga1b, ga1c}, groups(identity.GroupFilter{Within: one}))
	ids("links within a after b moved under a", []string{la.ID, la1.ID, la1o.ID, la2.ID, lb.ID}, links(identity.LinkFilter{Within: one}))
	ids("groups within root", []string{ga, gb, ga1, ga1b, ga1c}, groups(identity.GroupFilter{Within: []string{root.ID}}))
}
