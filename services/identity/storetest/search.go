package storetest

import (
	"slices"
	"testing"

	"github.com/uias/uias/services/identity"
)

// testSearchLoginFirst: a search whose query starts login names finds
// every substring match once over its pages, whatever the order (SQLite
// lists the login names that start with the query first, in a phase of
// its own whose last page may be short; sqlstore's TestLoginFirstOrder),
// with filters applied in both phases, and a bad token is refused.
func testSearchLoginFirst(t *testing.T, f *fixture) {
	o, other := f.org(""), f.org("")
	mk := func(org, login, display, email string) *identity.User {
		u := f.newUser(org)
		u.LoginName, u.DisplayName, u.Email = login, display, email
		must(t, f.s.CreateUser(f.ctx, u, nil))
		return u
	}
	exact := mk(o.ID, "abc100", "甲", "")
	longer := mk(o.ID, "abc1000", "乙", "")
	elsewhere := mk(other.ID, "abc100x", "丙", "")
	inside := mk(o.ID, "xabc100", "丁", "")
	byName := mk(o.ID, "crew-a", "ABC100 Crew", "")
	byMail := mk(other.ID, "zz", "戊", "zz.abc100@example.org")
	mk(o.ID, "abc10", "己", "") // shorter than the query: no match

	all := func(filter identity.UserFilter, size int) []string {
		t.Helper()
		var ids []string
		p := identity.Page{Size: size}
		for i := 0; ; i++ {
			if i > 20 {
				t.Fatal("pagination does not end")
			}
			items, next, err := f.s.ListUsers(f.ctx, filter, p)
			must(t, err)
			if len(items) > size {
				t.Fatalf("page of %d items, asked %d", len(items), size)
			}
			for _, u := range items {
				if slices.Contains(ids, u.ID) {
					t.Fatalf("%s listed twice", u.LoginName)
				}
				ids = append(ids, u.ID)
			}
			if next == "" {
				slices.Sort(ids)
				return ids
			}
			p.Token = next
		}
	}
	for _, size := range []int{1, 2, 3, 50} {
		want := sortedIDs(exact, longer, elsewhere, inside, byName, byMail)
		if got := all(identity.UserFilter{Query: "abc100"}, size); !slices.Equal(got, want) {
			t.Fatalf("pages of %d: %v, want %v", size, got, want)
		}
		want = sortedIDs(exact, longer, inside, byName)
		if got := all(identity.UserFilter{Query: "abc100", OrgID: o.ID}, size); !slices.Equal(got, want) {
			t.Fatalf("in org o, pages of %d: %v, want %v", size, got, want)
		}
	}
	if got := all(identity.UserFilter{Query: "ABC100"}, 2); !slices.Equal(got, sortedIDs(exact, longer, elsewhere, inside, byName, byMail)) {
		t.Fatalf("any case: %v", got)
	}
	if got := all(identity.UserFilter{Query: "abc1000"}, 2); !slices.Equal(got, sortedIDs(longer)) {
		t.Fatalf("abc1000: %v", got)
	}
	for _, tok := range []string{"X", "L!!", "SAA"} {
		if _, _, err := f.s.ListUsers(f.ctx, identity.UserFilter{Query: "abc100"}, identity.Page{Token: tok}); err == nil {
			t.Fatalf("token %q accepted", tok)
		}
	}
}
