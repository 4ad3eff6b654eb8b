package identity_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// TestCannotChangeNeverMustChange: a person who may not change their own
// password (user_cannot_change_password, the maritime design's "password
// set by the administrator") is never left required to change it at the
// next login, where every sign-in page would send them to a change form
// that refuses them: an administrator's SetPassword (ctl's set-password
// asks for must-change by default) leaves it off, as ResetPassword did;
// turning the flag on clears a pending must-change; asking for both in an
// update, or at the creation of a person, is refused with the way out. On
// SQLite, through the service.
func TestCannotChangeNeverMustChange(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"user_cannot_change_password"}, CannotChange: true}); err != nil {
		t.Fatal(err)
	}
	// set-password with must-change (ctl's default)
	u, err := w.svc.SetPassword(ctx, w.user.ID, "Admin-Set-Pass-7", true)
	if err != nil || u.MustChange {
		t.Fatalf("set-password for a person who may not change it: must change %v, %v", u != nil && u.MustChange, err)
	}
	if r := w.auth(t, "Admin-Set-Pass-7"); r.Reason != identity.ReasonOK || r.MustChange {
		t.Fatalf("their password: %v must change %v", r.Reason, r.MustChange)
	}
	// must-change asked for now: refused, naming the field and the way out
	_, err = w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"must_change_password"}, MustChange: true})
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.InvalidArgument || ae.Meta[apierr.MetaField] != "must_change_password" ||
		!strings.Contains(ae.Message, "set must_change_password false") {
		t.Fatalf("must-change for a person who may not change: %v", err)
	}
	if got, _ := w.svc.GetUser(ctx, w.user.ID); got.MustChange {
		t.Fatal("the refused update changed the person")
	}
	// the flag turned on over a pending must-change clears it
	if _, err := w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"user_cannot_change_password"}, CannotChange: false}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetPassword(ctx, w.user.ID, "Admin-Set-Pass-8", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.svc.GetUser(ctx, w.user.ID); !got.MustChange {
		t.Fatal("set-password with must-change of a person who may change it: not required")
	}
	u, err = w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"user_cannot_change_password"}, CannotChange: true})
	if err != nil || u.MustChange || !u.CannotChange {
		t.Fatalf("cannot-change over a pending must-change: %+v %v", u, err)
	}
	if r := w.auth(t, "Admin-Set-Pass-8"); r.Reason != identity.ReasonOK || r.MustChange {
		t.Fatalf("after cannot-change: %v must change %v", r.Reason, r.MustChange)
	}
	// a person created with both: refused
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "nia", DisplayName: "Nia", OrgID: orgs[0].ID, Password: "Nice-Pass-901",
		MustChange: true, CannotChange: true})
	if ae, ok := apierr.As(err); !ok || ae.Code != apierr.InvalidArgument || ae.Meta[apierr.MetaField] != "must_change_password" {
		t.Fatalf("creating a person with must-change and cannot-change: %v", err)
	}
}
