package identity_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
)

// TestHomeCentreRefusesWritesElsewhere: with centre settings, writes to
// orgs, people, groups and links outside this centre's subtrees are
// refused with HOME_CENTRE_ELSEWHERE naming the home centre; writes at home
// go through, and every level registers its own applications.
func TestHomeCentreRefusesWritesElsewhere(t *testing.T) {
	ctx := context.Background()
	// Set up as a single centre: the root, two bureaus, a person in each.
	tb := newTwoBureaus(t)
	newSvc, root, a, b := tb.newSvc, tb.root, tb.a, tb.b
	ua, ub := tb.person(t, "in-a", a.ID, false), tb.person(t, "in-b", b.ID, false)
	// an administrator of bureau B whose password another set
	tb.person(t, "adm-b", b.ID, true)

	refused := func(t *testing.T, err error, home string) {
		t.Helper()
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Code != apierr.FailedPrecondition || ae.Reason != centre.ReasonElsewhere ||
			!strings.Contains(ae.Message, `homed at centre "`+home+`"`) {
			t.Fatalf("want HOME_CENTRE_ELSEWHERE naming %s, got %v", home, err)
		}
	}

	t.Run("level2", func(t *testing.T) {
		l2 := newSvc(&centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: map[string]string{a.ID: "l2a"}})
		admin, _ := adminCtx(t, l2, "10.0.0.1", "r2")
		// At home: bureau A and everything in it.
		if _, err := l2.CreateUser(admin, identity.NewUser{LoginName: "new-a", DisplayName: "New A", OrgID: a.ID}); err != nil {
			t.Fatalf("write at home refused: %v", err)
		}
		if _, err := l2.SetUserStatus(admin, ua.ID, identity.StatusDisabled); err != nil {
			t.Fatalf("write at home refused: %v", err)
		}
		sub, err := l2.CreateOrg(admin, "a-1", "A one", a.ID)
		if err != nil {
			t.Fatalf("write at home refused: %v", err)
		}
		if _, err := l2.CreateGroup(admin, "ga", "Group A", sub.ID); err != nil {
			t.Fatalf("write at home refused: %v", err)
		}
		// Elsewhere: bureau B and the root are level 1's.
		// An appointment is made at the person's home only (the replica's
		// word on whose password it is may lag: review sec9 L4) ...
		_, err = l2.PrepareAppointment(ctx, ub.ID, identity.RoleSystemAdmin)
		refused(t, err, "l1")
		// ... and so is an administrator's first password change, which
		// the login says (review sec8 R8)
		_, _, _, err = l2.AdminLogin(from("192.0.2.50"), "adm-b", "Mx-Pass-5511")
		if reasonOf(err) != "PASSWORD_CHANGE_REQUIRED" || !strings.Contains(err.Error(), "the change is made at your home centre only") ||
			!strings.Contains(err.Error(), `homed at centre "l1"`) {
			t.Fatalf("admin login at another centre with a password another set: %v", err)
		}
		_, err = l2.CreateUser(admin, identity.NewUser{LoginName: "new-b", DisplayName: "New B", OrgID: b.ID})
		refused(t, err, "l1")
		_, err = l2.SetUserStatus(admin, ub.ID, identity.StatusDisabled)
		refused(t, err, "l1")
		_, err = l2.UpdateOrg(admin, root.ID, "Renamed")
		refused(t, err, "l1")
		_, err = l2.MoveOrg(admin, sub.ID, b.ID)
		refused(t, err, "l1")
		_, err = l2.UpdateUser(admin, ua.ID, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: b.ID})
		refused(t, err, "l1")
		_, err = l2.CreateGroup(admin, "gb", "Group B", b.ID)
		refused(t, err, "l1")
		// A level-2 centre registers its own business systems (homed there).
		if _, _, err := l2.CreateApp(admin, identity.NewApp{Type: "WEB", Code: "mail", Name: "Mail"}); err != nil {
			t.Fatalf("application at level 2 refused: %v", err)
		}
	})

	t.Run("level1", func(t *testing.T) {
		l1 := newSvc(&centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{a.ID: "l2a"}})
		admin, _ := adminCtx(t, l1, "10.0.0.1", "r3")
		_, err := l1.SetPassword(admin, ua.ID, "Some-Other-Pass-9", false)
		refused(t, err, "l2a")
		_, err = l1.CreateOrg(admin, "a-2", "A two", a.ID)
		refused(t, err, "l2a")
		if _, err := l1.SetUserStatus(admin, ub.ID, identity.StatusDisabled); err != nil {
			t.Fatalf("write at home refused: %v", err)
		}
		if _, _, err := l1.CreateApp(admin, identity.NewApp{Type: "WEB", Code: "mail-l1", Name: "Mail"}); err != nil {
			t.Fatalf("application at level 1 refused: %v", err)
		}
	})
}
