package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// TestLoginFirstOrder: on SQLite a search lists first the login names that
// start with the query (the exact one first, then in login order) on pages
// of their own, the last of them short with a token, then the other
// substring matches; a query no login name starts with gives the
// substring matches at once; a query with a space is a plain search.
func TestLoginFirstOrder(t *testing.T) {
	ctx := context.Background()
	db := storetest.Migrated(t, storetest.OpenSQLite(t), sqlstore.Migrate)
	s := sqlstore.New(db)
	now := time.Unix(1700000000, 0)
	org := &identity.Org{ID: "o1", Code: "o1", Name: "Org", Status: identity.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateOrg(ctx, org, nil); err != nil {
		t.Fatal(err)
	}
	n := 0
	mk := func(login, display string) {
		n++
		u := &identity.User{ID: fmt.Sprintf("u%02d", n), LoginName: login, DisplayName: display, OrgID: org.ID,
			Status: identity.StatusActive, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Indexed (and so found by the substring phase) in this order.
	mk("x00012345", "substring")
	mk("p000123456", "longer login")
	mk("name", "p00012345 in a name")
	mk("p00012345", "exact")
	mk("p00012345a", "longer again")
	page := func(q, token string, size int) ([]string, string) {
		t.Helper()
		list, next, err := s.ListUsers(ctx, identity.UserFilter{Query: q}, identity.Page{Size: size, Token: token})
		if err != nil {
			t.Fatal(err)
		}
		var logins []string
		for _, u := range list {
			logins = append(logins, u.LoginName)
		}
		return logins, next
	}
	got, next := page("p00012345", "", 2)
	if fmt.Sprint(got) != "[p00012345 p000123456]" || next == "" {
		t.Fatalf("first page %v (token %q)", got, next)
	}
	got, next = page("p00012345", next, 2)
	if fmt.Sprint(got) != "[p00012345a]" || next == "" {
		t.Fatalf("last login page %v (token %q): want the third login name alone, and a token", got, next)
	}
	got, next = page("p00012345", next, 2)
	if fmt.Sprint(got) != "[name]" || next != "" {
		t.Fatalf("substring page %v (token %q)", got, next)
	}
	// No login name starts with it: the substring matches at once, in
	// index order.
	if got, next := page("00012345", "", 10); fmt.Sprint(got) != "[x00012345 p000123456 name p00012345 p00012345a]" || next != "" {
		t.Fatalf("digits: %v (token %q)", got, next)
	}
	// White space: not a login name; one phase.
	if got, _ := page("p00012345 in", "", 10); fmt.Sprint(got) != "[name]" {
		t.Fatalf("with a space: %v", got)
	}
}
