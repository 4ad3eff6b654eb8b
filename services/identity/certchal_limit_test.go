package identity_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// TestSSOCertChallengeThrottled: the CAS page's challenges (GET
// /cas/cert/challenge) pass the login gate's per-address rule: from one
// address the first AddressFailures are issued at once, the next wait,
// then they are refused LOGIN_THROTTLED with retry_after_seconds (audited
// as sso.cert_challenge, denied); another address is not held up, nor are
// the address's password checks (a count of its own); a certificate
// sign-in by challenge that succeeds from the address takes one back.
func TestSSOCertChallengeThrottled(t *testing.T) {
	ca := newChalCA(t, false)
	e := newEvEnvWith(t, "", func(d *identity.Deps) {
		d.ChallengeCAs = ca.pool()
		d.Config.Throttle = identity.Throttle{AddressFailures: 3, BaseDelay: 1, MaxDelay: 2}
	})
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	h := ca.issue(t, "ecdsa", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
		t.Fatal(err)
	}
	from := func(ip string) context.Context {
		return caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr(ip), RequestID: "req-chal"})
	}
	browser := from("198.51.100.7")
	var issued []string
	for i := 0; i < 5; i++ { // 3 free, then waits of 1 and 2 (MaxDelay)
		c, _, err := e.svc.SSOCertChallenge(browser)
		if err != nil {
			t.Fatalf("challenge %d: %v", i+1, err)
		}
		issued = append(issued, c)
	}
	m := e.mark(t)
	_, _, err := e.svc.SSOCertChallenge(browser)
	ae, ok := apierr.As(err)
	if !ok || ae.Reason != "LOGIN_THROTTLED" || ae.Code != apierr.ResourceExhausted || ae.Meta["retry_after_seconds"] == "" {
		t.Fatalf("the 6th challenge from one address: %v, want LOGIN_THROTTLED", err)
	}
	if rec := audit(t, e.outbox(t, m), "sso.cert_challenge"); rec.Result != "denied" || rec.Reason != "LOGIN_THROTTLED" ||
		rec.ClientIP != "198.51.100.7" || rec.Detail["gate"] != "source" {
		t.Fatalf("audit of the refusal: %+v", rec)
	}
	// Another address; an IPv6 neighbour outside the /64.
	for _, ip := range []string{"198.51.100.8", "2001:db8:1:2::1"} {
		if _, _, err := e.svc.SSOCertChallenge(from(ip)); err != nil {
			t.Fatalf("a challenge from %s: %v", ip, err)
		}
	}
	// The address's password logins are not held up by its challenges.
	if r, err := e.svc.SSOLogin(browser, "mia", "First-Pass-1"); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("a password login from the throttled address: %+v %v", r, err)
	}
	// A certificate sign-in that succeeds from the address takes one back.
	res, err := e.svc.CertChallengeLogin(browser, identity.CertProof{Challenge: issued[0], Certificate: h.der, Signature: h.sign(t, issued[0])})
	if err != nil || res.Verdict != identity.CertOK {
		t.Fatalf("certificate sign-in: %+v %v", res, err)
	}
	if _, _, err := e.svc.SSOCertChallenge(browser); err != nil {
		t.Fatalf("a challenge after a sign-in from the address: %v", err)
	}
}
