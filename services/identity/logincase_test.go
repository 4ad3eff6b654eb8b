package identity_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/uias/uias/services/identity"
)

// Login names are one account case aside (gap1 G17; design 004 2.1.2.4:
// the login name is not repeated in the system): sign-in by any case finds
// the account and answers its name as registered, wrong passwords under
// either case count against the same account, and a name differing only in
// case cannot be registered.
func TestLoginNamesIgnoreCase(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	for _, login := range []string{"mia", "MIA", "Mia"} {
		res, err := w.svc.SSOLogin(ctx, login, "First-Pass-1")
		if err != nil || res.Reason != identity.ReasonOK || res.User.ID != w.user.ID || res.User.LoginName != "mia" {
			t.Fatalf("SSOLogin %q: %+v %v", login, res, err)
		}
	}
	// Authenticate names the person by their login when the application
	// holds no account id for them.
	if r, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "MiA", Password: "First-Pass-1", AuthType: identity.AuthPassword}); err != nil ||
		r.Reason != identity.ReasonOK || r.User.ID != w.user.ID {
		t.Fatalf("Authenticate by login, another case: %+v %v", r, err)
	}
	// Five wrong passwords (from five addresses), whatever the case, lock
	// the one account.
	for i, login := range []string{"mia", "MIA", "Mia", "mIa", "miA"} {
		if res, err := w.svc.SSOLogin(from(fmt.Sprintf("198.51.100.%d", i)), login, "Wrong-Pass-1"); err != nil || res.Reason == identity.ReasonOK {
			t.Fatalf("wrong password %d: %+v %v", i, res, err)
		}
	}
	if res, err := w.svc.SSOLogin(from("198.51.100.9"), "mia", "First-Pass-1"); err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("after five failures under different cases: %+v %v", res, err)
	}
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	_, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "MIA", DisplayName: "Another Mia", OrgID: orgs[0].ID, Password: "Other-Pass-1"})
	if reasonOf(err) != "ALREADY_EXISTS" {
		t.Fatalf("a login name differing only in case: %v", err)
	}
}
