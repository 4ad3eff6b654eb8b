package identity_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// adminLogin logs the bootstrap administrator in and returns the token and
// a context of that administrator.
func adminLogin(t *testing.T, svc *identity.Service, login, pw string) (string, context.Context) {
	t.Helper()
	tok, _, u, err := svc.AdminLogin(from("192.0.2.1"), login, pw)
	if err != nil {
		t.Fatalf("admin login %s: %v", login, err)
	}
	return tok, caller.With(context.Background(), &caller.Caller{Principal: u.ID, RequestID: "adm"})
}

// tokenOK reports whether tok is accepted; a refusal must be the bad-token one.
func tokenOK(t *testing.T, svc *identity.Service, tok string) bool {
	t.Helper()
	_, err := svc.AuthenticateAdmin(context.Background(), tok)
	if err != nil && reasonOf(err) != "BAD_ADMIN_TOKEN" {
		t.Fatalf("token check: %v, want BAD_ADMIN_TOKEN", err)
	}
	return err == nil
}

// TestAdminTokensRevoked is the third attack of issue 15: a token survived
// a password reset and came back after disable + enable. Now logout, a
// password change or reset, disable, lock and a change of admin rights end
// every token of the account for good.
func TestAdminTokensRevoked(t *testing.T) {
	forTokenCaches(t, testAdminTokensRevoked)
}

// forTokenCaches runs test without the administrator token cache and with
// it (identity.admin_decision_ttl; the test clock stands still, so a
// cached token stays cached unless something drops it).
func forTokenCaches(t *testing.T, test func(t *testing.T, cfg identity.Config)) {
	for _, ttl := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("token_cache_%v", ttl), func(t *testing.T) {
			test(t, identity.Config{AdminTokenCacheTTL: ttl})
		})
	}
}

// setupWith is setup with cfg.
func setupWith(t *testing.T, cfg identity.Config) *world {
	t.Helper()
	svcs, clk := newInstances(t, 1, cfg)
	return setupOn(t, svcs[0], clk)
}

func testAdminTokensRevoked(t *testing.T, cfg identity.Config) {
	w := setupWith(t, cfg)
	ctx := context.Background()
	orgs, _, _ := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	app := caller.From(w.ctx).App
	ada, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "ada", DisplayName: "Ada", OrgID: orgs[0].ID,
		Password: "Zeta-Pass-001", IsAdmin: true, OwnPassword: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.CreateLink(ctx, ada.ID, app.ID, "a001"); err != nil {
		t.Fatal(err)
	}
	pw := "Zeta-Pass-001"
	// a password an administrator set is replaced at ada's next login
	login := func() string {
		tok, _, _, err := w.svc.AdminLogin(from("192.0.2.30"), "ada", pw)
		if reasonOf(err) == "PASSWORD_CHANGE_REQUIRED" {
			old := pw
			pw += "x"
			tok, _, _, err = w.svc.AdminLoginNewPassword(from("192.0.2.30"), "ada", old, pw)
		}
		if err != nil {
			t.Fatalf("admin login ada: %v", err)
		}
		return tok
	}
	_, root := adminLogin(t, w.svc, "admin", "Boot-Strap-Pass1")

	// Logout ends the token it is called with, and only that one.
	t1, t2 := login(), login()
	if err := w.svc.AdminLogout(ctx, t1); err != nil {
		t.Fatal(err)
	}
	if tokenOK(t, w.svc, t1) || !tokenOK(t, w.svc, t2) {
		t.Fatal("logout: wrong tokens ended")
	}

	steps := []struct {
		name   string
		revoke func()
		undo   func()
	}{
		{"password reset by an administrator", func() {
			pw = "Zeta-Pass-002"
			if _, err := w.svc.SetPassword(root, ada.ID, pw, false); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"own password change", func() {
			if err := w.svc.ChangePassword(w.ctx, "a001", pw, "Zeta-Pass-003"); err != nil {
				t.Fatal(err)
			}
			pw = "Zeta-Pass-003"
		}, nil},
		{"disable", func() {
			if _, err := w.svc.SetUserStatus(root, ada.ID, identity.StatusDisabled); err != nil {
				t.Fatal(err)
			}
		}, func() {
			if _, err := w.svc.SetUserStatus(root, ada.ID, identity.StatusActive); err != nil {
				t.Fatal(err)
			}
		}},
		{"lock", func() {
			if _, err := w.svc.LockUser(root, ada.ID, time.Hour); err != nil {
				t.Fatal(err)
			}
		}, func() {
			if _, err := w.svc.UnlockUser(root, ada.ID); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, st := range steps {
		a, b := login(), login()
		st.revoke()
		if tokenOK(t, w.svc, a) || tokenOK(t, w.svc, b) {
			t.Fatalf("%s: a token survived", st.name)
		}
		if st.undo != nil {
			st.undo()
			if tokenOK(t, w.svc, a) || tokenOK(t, w.svc, b) {
				t.Fatalf("%s undone: a token came back", st.name)
			}
		}
		// A new login works again.
		if !tokenOK(t, w.svc, login()) {
			t.Fatalf("after %s: a new token is refused", st.name)
		}
	}
	// Profile changes leave the tokens alone.
	tok := login()
	if _, err := w.svc.UpdateUser(root, ada.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Ada L."}); err != nil {
		t.Fatal(err)
	}
	if !tokenOK(t, w.svc, tok) {
		t.Fatal("a profile change ended the token")
	}
	// An automatic lockout (failed logins from several addresses, which
	// anyone can cause) does not end a session.
	for i := range 5 {
		_, _, _, _ = w.svc.AdminLogin(from(fmt.Sprintf("203.0.113.%d", i+1)), "ada", "Wrong-Pass-9")
	}
	if u, _ := w.svc.GetUser(ctx, ada.ID); !u.Locked(w.clk.t) {
		t.Fatal("ada not locked after five failures from five addresses")
	}
	if !tokenOK(t, w.svc, tok) {
		t.Fatal("an automatic lockout ended the session")
	}
}

// TestAdminTokenIdleAndHardLimit: a token unused for admin_token_idle (30
// minutes) ends; used, it lives until the 8 h hard limit.
func TestAdminTokenIdleAndHardLimit(t *testing.T) {
	forTokenCaches(t, testAdminTokenIdleAndHardLimit)
}

func testAdminTokenIdleAndHardLimit(t *testing.T, cfg identity.Config) {
	w := setupWith(t, cfg)
	tok, _ := adminLogin(t, w.svc, "admin", "Boot-Strap-Pass1")
	start := w.clk.t
	for w.clk.t.Sub(start) < 8*time.Hour-20*time.Minute {
		w.clk.t = w.clk.t.Add(20 * time.Minute)
		if !tokenOK(t, w.svc, tok) {
			t.Fatalf("token refused %v after login while used every 20 minutes", w.clk.t.Sub(start))
		}
	}
	w.clk.t = start.Add(8 * time.Hour)
	if tokenOK(t, w.svc, tok) {
		t.Fatal("token accepted at its 8 h hard limit")
	}

	tok, _ = adminLogin(t, w.svc, "admin", "Boot-Strap-Pass1")
	w.clk.t = w.clk.t.Add(29 * time.Minute)
	if !tokenOK(t, w.svc, tok) {
		t.Fatal("token refused after 29 idle minutes")
	}
	w.clk.t = w.clk.t.Add(31 * time.Minute)
	if tokenOK(t, w.svc, tok) {
		t.Fatal("token accepted after 31 idle minutes")
	}
}

// TestRevocationReachesEveryInstance: a token revoked through one instance
// is refused by another at once without a token cache, and within the
// cache's TTL with one (at once when the change's CHANGES event arrives:
// ForgetUser).
func TestRevocationReachesEveryInstance(t *testing.T) {
	forTokenCaches(t, testRevocationReachesEveryInstance)
}

func testRevocationReachesEveryInstance(t *testing.T, cfg identity.Config) {
	svcs, clk := newInstances(t, 2, cfg)
	a, b := svcs[0], svcs[1]
	setupOn(t, a, clk)
	tok, root := adminLogin(t, a, "admin", "Boot-Strap-Pass1")
	if !tokenOK(t, a, tok) || !tokenOK(t, b, tok) {
		t.Fatal("fresh token refused")
	}
	u, err := b.AuthenticateAdmin(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetPassword(root, u.ID, "Boot-Strap-Pass2", false); err != nil {
		t.Fatal(err)
	}
	if tokenOK(t, b, tok) {
		t.Fatal("instance b accepted a token it revoked")
	}
	if cfg.AdminTokenCacheTTL > 0 {
		if !tokenOK(t, a, tok) {
			t.Fatal("instance a: the resolved token was not reused within the TTL")
		}
		clk.t = clk.t.Add(cfg.AdminTokenCacheTTL)
	}
	if tokenOK(t, a, tok) {
		t.Fatal("instance a accepted a token revoked through b")
	}

	// The CHANGES event of a change made through b ends the reuse on a at
	// once.
	tok, _ = adminLogin(t, a, "admin", "Boot-Strap-Pass2")
	if !tokenOK(t, a, tok) {
		t.Fatal("fresh token refused")
	}
	other := caller.With(context.Background(), &caller.Caller{Principal: "another-admin"}) // nobody disables themselves
	if _, err := b.SetUserStatus(other, u.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	a.ForgetUser(u.ID)
	if tokenOK(t, a, tok) {
		t.Fatal("instance a accepted the token of a user disabled through b after the change event")
	}
}

// TestRefusedTokensAudited: every refused token check leaves an audit
// record (admin.auth, denied) saying why.
func TestRefusedTokensAudited(t *testing.T) {
	e := newEvEnv(t, "")
	setupOn(t, e.svc, e.clk)
	tok, _ := adminLogin(t, e.svc, "admin", "Boot-Strap-Pass1")
	m := e.mark(t)
	for _, bad := range []string{"", "no-such-token", string(make([]byte, 300))} {
		if _, err := e.svc.AuthenticateAdmin(context.Background(), bad); reasonOf(err) != "BAD_ADMIN_TOKEN" {
			t.Fatalf("token %.10q: %v", bad, err)
		}
	}
	e.clk.t = e.clk.t.Add(time.Hour)
	if _, err := e.svc.AuthenticateAdmin(context.Background(), tok); reasonOf(err) != "BAD_ADMIN_TOKEN" {
		t.Fatalf("idle token: %v", err)
	}
	var reasons []string
	for _, rec := range auditRecords(t, e.outbox(t, m), "admin.auth") {
		if rec.Result != "denied" {
			t.Fatalf("admin.auth record %+v", rec)
		}
		reasons = append(reasons, rec.Reason)
	}
	if fmt.Sprint(reasons) != "[NO_TOKEN UNKNOWN_TOKEN MALFORMED_TOKEN TOKEN_IDLE]" {
		t.Fatalf("audited reasons %v", reasons)
	}
}
