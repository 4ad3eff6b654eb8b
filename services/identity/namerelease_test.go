package identity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// TestAuthenticateNameRelease: an application's name_release decides what
// Authenticate answers of the person's name: in clear by default, masked
// (欧阳娜娜 -> 欧***) or omitted; the person's record keeps the name. An
// unknown value is refused BAD_REQUEST naming name_release; an update is
// audited with the new value.
func TestAuthenticateNameRelease(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "欧阳娜娜"}); err != nil {
		t.Fatal(err)
	}
	app := caller.From(w.ctx).App
	name := func() string {
		t.Helper()
		a, err := w.svc.GetApp(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		actx := caller.With(ctx, &caller.Caller{App: a.CallerApp(), RequestID: "r2"})
		res, err := w.svc.Authenticate(actx, identity.AuthRequest{AppUserID: "m001", Password: "First-Pass-1", AuthType: identity.AuthPassword})
		if err != nil || res.Reason != identity.ReasonOK || res.User == nil || res.User.ID != w.user.ID {
			t.Fatalf("authenticate: %+v %v", res, err)
		}
		return res.User.DisplayName
	}
	if got := name(); got != "欧阳娜娜" {
		t.Fatalf("by default: %q", got)
	}
	for release, want := range map[string]string{identity.NameReleaseMasked: "欧***", identity.NameReleaseOmitted: "",
		identity.NameReleaseFull: "欧阳娜娜"} {
		if _, err := w.svc.UpdateApp(ctx, app.ID, identity.AppUpdate{Mask: []string{"name_release"}, NameRelease: release}); err != nil {
			t.Fatal(err)
		}
		if got := name(); got != want {
			t.Errorf("%q: display_name %q, want %q", release, got, want)
		}
	}
	if u, err := w.svc.GetUser(ctx, w.user.ID); err != nil || u.DisplayName != "欧阳娜娜" {
		t.Fatalf("the person's record: %+v %v", u, err)
	}
	_, err := w.svc.UpdateApp(ctx, app.ID, identity.AppUpdate{Mask: []string{"name_release"}, NameRelease: "hidden"})
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Reason != apierr.ReasonBadRequest || ae.Meta[apierr.MetaField] != "name_release" {
		t.Fatalf("an unknown value: %v", err)
	}
	_, _, err = w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "bad", Name: "Bad", NameRelease: "hidden"})
	if reasonOf(err) != apierr.ReasonBadRequest {
		t.Fatalf("created with an unknown value: %v", err)
	}
	a, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "masked", Name: "Masked", NameRelease: identity.NameReleaseMasked})
	if err != nil || a.NameRelease != identity.NameReleaseMasked {
		t.Fatalf("created masked: %+v %v", a, err)
	}
}

// TestAppNameReleaseAudited: a change of an application's name release is
// in its app.update record.
func TestAppNameReleaseAudited(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	a, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "names", Name: "Names"})
	if err != nil || a.NameRelease != identity.NameReleaseFull {
		t.Fatalf("created %+v %v", a, err)
	}
	if _, err := w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"name_release"}, NameRelease: identity.NameReleaseMasked}); err != nil {
		t.Fatal(err)
	}
	if d := w.auditDetails(t, "app.update"); d[len(d)-1]["name_release"] != "masked" {
		t.Fatalf("app.update detail %v", d[len(d)-1])
	}
}

// TestDirectoryNameRelease: the DirectoryService (GetPerson, ListPeople)
// answers the person's name as the calling application's name_release
// says, the same as Authenticate (review sec30b M1): masked 欧***, omitted
// none, full in clear.
func TestDirectoryNameRelease(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "欧阳娜娜"}); err != nil {
		t.Fatal(err)
	}
	app := caller.From(w.ctx).App
	for _, c := range []struct{ release, want string }{{identity.NameReleaseMasked, "欧***"},
		{identity.NameReleaseOmitted, ""}, {identity.NameReleaseFull, "欧阳娜娜"}} {
		if _, err := w.svc.UpdateApp(ctx, app.ID, identity.AppUpdate{Mask: []string{"name_release"}, NameRelease: c.release}); err != nil {
			t.Fatal(err)
		}
		a, err := w.svc.GetApp(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		actx := caller.With(ctx, &caller.Caller{App: a.CallerApp(), RequestID: "r3"})
		p, err := w.svc.DirectoryPerson(actx, "m001")
		if err != nil {
			t.Fatal(err)
		}
		if p.User.DisplayName != c.want {
			t.Errorf("%q: DirectoryPerson answers %q, want %q", c.release, p.User.DisplayName, c.want)
		}
		people, _, err := w.svc.DirectoryPeople(actx, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range people {
			if p.User.ID == w.user.ID {
				found = true
				if p.User.DisplayName != c.want {
					t.Errorf("%q: DirectoryPeople answers %q, want %q", c.release, p.User.DisplayName, c.want)
				}
			}
		}
		if !found {
			t.Fatalf("%q: DirectoryPeople left the person out: %d people", c.release, len(people))
		}
	}
	if u, err := w.svc.GetUser(ctx, w.user.ID); err != nil || u.DisplayName != "欧阳娜娜" {
		t.Fatalf("the person's record: %+v %v", u, err)
	}
}
