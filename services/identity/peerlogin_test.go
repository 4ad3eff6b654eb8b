package identity_test

import (
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
)

// TestSSOPeerLogin: a peer centre's word signs in a person held here when
// they are active, not locked, and the peer's level reaches theirs; each
// answer is audited as sso.login with method peer and the peer's name, and
// nothing is counted towards a lockout.
func TestSSOPeerLogin(t *testing.T) {
	e := newLevelEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	ctx := browserAt("192.0.2.9")
	login := func(id string, level int) *identity.SSOLoginResult {
		t.Helper()
		res, err := e.svc.SSOPeerLogin(ctx, id, level, "l2a")
		if err != nil {
			t.Fatal(err)
		}
		if (res.Reason == identity.ReasonOK) != (res.User != nil) {
			t.Fatalf("result %+v", res)
		}
		return res
	}
	r := login(e.user.ID, identity.AuthLevelAny)
	if r.Reason != identity.ReasonOK || r.User.ID != e.user.ID || r.Method != identity.MethodPeer || !r.NoPassword {
		t.Fatalf("ok: %+v", r)
	}
	recs := auditRecords(t, e.outbox(t, 0), "sso.login")
	if len(recs) == 0 || recs[len(recs)-1].Result != "success" || recs[len(recs)-1].Detail["method"] != "peer" ||
		recs[len(recs)-1].Detail["peer"] != "l2a" {
		t.Fatalf("audit: %+v", recs)
	}
	if r := login("no-such-person", identity.AuthLevelAny); r.Reason != identity.ReasonNoSuchUser {
		t.Fatalf("unknown: %+v", r)
	}
	if !e.recorded(t, "sso.login", "NO_SUCH_USER", "failure") {
		t.Fatal("unknown person not audited")
	}
	before := e.failedCount(t)

	// The person's own level: a one-factor sign-in at the peer does not
	// reach 2; two factors or a certificate there do.
	e.setLevel(t, identity.AuthLevelTwoFactor)
	if r := login(e.user.ID, identity.AuthLevelAny); r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 2 {
		t.Fatalf("level 2: %+v", r)
	}
	if r := login(e.user.ID, identity.AuthLevelTwoFactor); r.Reason != identity.ReasonOK {
		t.Fatalf("level 2 by two factors: %+v", r)
	}
	e.setLevel(t, identity.AuthLevelDefault)

	if _, err := e.svc.LockUser(e.admin, e.user.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := login(e.user.ID, identity.AuthLevelCertificate); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("locked: %+v", r)
	}
	if _, err := e.svc.UnlockUser(e.admin, e.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUserStatus(e.admin, e.user.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if r := login(e.user.ID, identity.AuthLevelCertificate); r.Reason != identity.ReasonAccountDisabled {
		t.Fatalf("disabled: %+v", r)
	}
	if got := e.failedCount(t); got != before {
		t.Fatalf("failures counted: %d, was %d", got, before)
	}
}
