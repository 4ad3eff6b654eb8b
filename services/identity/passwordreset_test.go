package identity_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// The account policy of the maritime SSO design (004, 2.1.6.3): reset
// several users' passwords, and find the users whose password has expired
// to enable, disable or delete them.

func TestTemporaryPasswordMeetsPolicy(t *testing.T) {
	for _, p := range []identity.Policy{
		identity.DefaultPolicy(),
		{MinLength: 24, RequireClasses: 4},
		{MinLength: 8, RequireClasses: 4},
	} {
		seen := map[string]bool{}
		for range 200 {
			pw, err := p.Temporary("mia")
			if err == nil {
				err = p.CheckPassword(pw, "mia")
			}
			if err != nil {
				t.Fatalf("policy %+v: temporary password %q: %v", p, pw, err)
			}
			if len(pw) < max(16, p.MinLength) || strings.ContainsAny(pw, "0O1lI '\"") {
				t.Fatalf("policy %+v: temporary password %q", p, pw)
			}
			if seen[pw] {
				t.Fatalf("temporary password %q repeated", pw)
			}
			seen[pw] = true
		}
	}
}

// A policy no temporary password can meet (beyond the configuration's
// bound) is a clear refusal, not an endless search.
func TestTemporaryPasswordImpossible(t *testing.T) {
	_, err := identity.Policy{MinLength: 500}.Temporary("mia")
	if err == nil || !strings.Contains(err.Error(), "min_length") {
		t.Fatalf("temporary password under min_length 500: %v", err)
	}
}

func TestResetPassword(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	u, pw, err := w.svc.ResetPassword(ctx, w.user.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !u.MustChange || u.ID != w.user.ID {
		t.Fatalf("after reset: %+v", u)
	}
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("old password after reset: %v", r.Reason)
	}
	r := w.auth(t, pw)
	if r.Reason != identity.ReasonOK || !r.MustChange {
		t.Fatalf("temporary password: reason %v, must change %v", r.Reason, r.MustChange)
	}
	if err := w.svc.ChangePassword(w.ctx, "m001", pw, "Chosen-Pass-7"); err != nil {
		t.Fatalf("change from the temporary password: %v", err)
	}
	if r := w.auth(t, "Chosen-Pass-7"); r.Reason != identity.ReasonOK || r.MustChange {
		t.Fatalf("after the change: %v must change %v", r.Reason, r.MustChange)
	}
	// Each reset gives another password.
	_, pw2, err := w.svc.ResetPassword(ctx, w.user.ID, nil)
	if err != nil || pw2 == pw {
		t.Fatalf("second reset: %q %v", pw2, err)
	}
	if _, _, err := w.svc.ResetPassword(ctx, "no-such-user", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	// A user who may not change their password is not sent to a change
	// they would be refused.
	if _, err := w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"user_cannot_change_password"}, CannotChange: true}); err != nil {
		t.Fatal(err)
	}
	u, pw3, err := w.svc.ResetPassword(ctx, w.user.ID, nil)
	if err != nil || u.MustChange {
		t.Fatalf("reset of a user who cannot change their password: must change %v, %v", u != nil && u.MustChange, err)
	}
	if r := w.auth(t, pw3); r.Reason != identity.ReasonOK || r.MustChange {
		t.Fatalf("their temporary password: %v must change %v", r.Reason, r.MustChange)
	}
}

func TestListExpiredPasswords(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, err := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	never, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "nev", DisplayName: "Nev", OrgID: orgs[0].ID,
		Password: "Always-Valid-1", NeverExpires: true})
	if err != nil {
		t.Fatal(err)
	}
	listed := func() []string {
		t.Helper()
		users, _, err := w.svc.ListUsers(ctx, identity.UserFilter{PasswordExpired: true}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		return ids
	}
	if got := listed(); len(got) != 0 {
		t.Fatalf("fresh passwords listed as expired: %v", got)
	}
	at, expired := w.svc.PasswordExpiry(w.user, w.clk.t)
	if expired || !at.Equal(w.user.PasswordChangedAt.Add(90*24*time.Hour)) {
		t.Fatalf("expiry of a fresh password: %v %v", at, expired)
	}
	if at, _ := w.svc.PasswordExpiry(never, w.clk.t); !at.IsZero() {
		t.Fatalf("a password that never expires expires at %v", at)
	}

	w.clk.t = w.clk.t.Add(91 * 24 * time.Hour)
	fresh, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "fresh", DisplayName: "Fresh", OrgID: orgs[0].ID,
		Password: "Newly-Set-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	got := listed()
	if !slices.Contains(got, w.user.ID) || slices.Contains(got, never.ID) || slices.Contains(got, fresh.ID) {
		t.Fatalf("expired = %v (mia %s, never %s, fresh %s)", got, w.user.ID, never.ID, fresh.ID)
	}
	if _, expired := w.svc.PasswordExpiry(w.user, w.clk.t); !expired {
		t.Fatal("mia's password is not expired")
	}
	// A reset password is no longer expired.
	if _, _, err := w.svc.ResetPassword(ctx, w.user.ID, nil); err != nil {
		t.Fatal(err)
	}
	if got := listed(); slices.Contains(got, w.user.ID) {
		t.Fatalf("reset password still listed: %v", got)
	}

	cfg := identity.Config{Policy: identity.DefaultPolicy()}
	cfg.Policy.MaxAge = 0
	off := setupWith(t, cfg)
	_, _, err = off.svc.ListUsers(ctx, identity.UserFilter{PasswordExpired: true}, 0, "")
	if reasonOf(err) != "PASSWORD_EXPIRY_OFF" || !strings.Contains(err.Error(), "max_age_days") {
		t.Fatalf("without expiry: %v", err)
	}
}

func TestUpdateGroup(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	orgs, _, err := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := w.svc.CreateGroup(ctx, "crew", "Crew", orgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.SetGroupMember(ctx, g.ID, w.user.ID, true); err != nil {
		t.Fatal(err)
	}
	got, err := w.svc.UpdateGroup(ctx, g.ID, "Deck crew")
	if err != nil || got.Name != "Deck crew" || got.Code != "crew" {
		t.Fatalf("rename: %+v %v", got, err)
	}
	read, err := w.svc.GetGroup(ctx, g.ID)
	if err != nil || read.Name != "Deck crew" || !slices.Equal(read.MemberIDs, []string{w.user.ID}) {
		t.Fatalf("renamed group read back: %+v %v", read, err)
	}
	if _, err := w.svc.UpdateGroup(ctx, g.ID, "  "); reasonOf(err) != "BAD_REQUEST" || !strings.Contains(err.Error(), "name") {
		t.Fatalf("blank name: %v", err)
	}
	if _, err := w.svc.UpdateGroup(ctx, "no-such-group", "X"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown group: %v", err)
	}
}

// TestResetPasswordIfUnchanged: a reset naming the password change time
// it was asked from resets only that password: once the password changed
// (the reset itself, or the person), the same request is refused
// PASSWORD_CHANGED_SINCE and the password handed over stays; a person
// without a password is named by the zero time (review rr29 A2).
func TestResetPasswordIfUnchanged(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	before, err := w.svc.GetUser(ctx, w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := before.PasswordChangedAt
	_, pw, err := w.svc.ResetPassword(ctx, w.user.ID, &seen)
	if err != nil {
		t.Fatalf("reset of the password shown: %v", err)
	}
	_, _, err = w.svc.ResetPassword(ctx, w.user.ID, &seen)
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Reason != identity.ReasonPasswordChangedSince || ae.Code != apierr.FailedPrecondition {
		t.Fatalf("the same reset again: %v", err)
	}
	if r := w.auth(t, pw); r.Reason != identity.ReasonOK {
		t.Fatalf("the password handed over was replaced: %v", r.Reason)
	}
	// a person who never had a password: the zero time
	admin, _ := adminCtx(t, w.svc, "10.0.0.1", "r-nopw")
	np, err := w.svc.CreateUser(admin, identity.NewUser{LoginName: "no-pw", DisplayName: "No Password", OrgID: w.user.OrgID})
	if err != nil {
		t.Fatal(err)
	}
	var none time.Time
	if _, _, err := w.svc.ResetPassword(ctx, np.ID, &none); err != nil {
		t.Fatalf("first reset of a person without a password: %v", err)
	}
	if _, _, err := w.svc.ResetPassword(ctx, np.ID, &none); !errors.As(err, &ae) || ae.Reason != identity.ReasonPasswordChangedSince {
		t.Fatalf("the first reset repeated: %v", err)
	}
}
