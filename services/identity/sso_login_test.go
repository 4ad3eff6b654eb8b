package identity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// TestSSOLoginLockedCostsAsUnknown: the single sign-on login page answers
// a locked or disabled account as an unknown login (identity refuses
// those before it checks the password), so they must also cost what an
// unknown login costs at the source: the same count, the same waits, the
// same refusal once the source is throttled. Else repeated attempts from
// one address would tell that the account exists.
func TestSSOLoginLockedCostsAsUnknown(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	mk := func(login string) *identity.User {
		u, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: login, DisplayName: login, OrgID: orgs[0].ID, Password: "Right-Pass-1"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	locked, disabled := mk("lara"), mk("dave")
	if _, err := w.svc.LockUser(ctx, locked.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetUserStatus(ctx, disabled.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	// Each login from its own address, the same number of attempts.
	trace := func(ip, login string) string {
		_ = w.clk.waits()
		var out string
		for i := range 17 {
			res, err := w.svc.SSOLogin(from(ip), login, "Wrong-Pass-1")
			switch {
			case err != nil:
				out += fmt.Sprintf("%d:%s ", i, reasonOf(err))
			default:
				out += fmt.Sprintf("%d:%v ", i, res.Reason != identity.ReasonOK)
			}
		}
		return out + fmt.Sprint(w.clk.waits())
	}
	unknown := trace("203.0.113.1", "nobody")
	for _, tc := range []struct{ ip, login string }{{"203.0.113.2", "lara"}, {"203.0.113.3", "dave"}} {
		if got := trace(tc.ip, tc.login); got != unknown {
			t.Errorf("%s from one address:\n %s\nwant as an unknown login:\n %s", tc.login, got, unknown)
		}
	}
	// The verdicts themselves are unchanged (the page decides what to show).
	if res, err := w.svc.SSOLogin(from("198.51.100.9"), "lara", "Right-Pass-1"); err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("locked account: %+v %v", res, err)
	}
	if res, err := w.svc.SSOLogin(from("198.51.100.9"), "dave", "Right-Pass-1"); err != nil || res.Reason != identity.ReasonAccountDisabled {
		t.Fatalf("disabled account: %+v %v", res, err)
	}
}
