package ticket_test

import (
	"context"
	"testing"

	"github.com/uias/uias/services/ticket"
)

// An OpenID Connect or plain OAuth authorization request without scope
// asks consent to "openid" (review sec32a L1): a CAS-only consent ("cas")
// does not cover it (before, Covers("") was true for any record, so the
// OpenID Connect page was skipped and a code issued on the CAS consent
// alone), and Allow on its page records "openid", which then covers it
// (before, it recorded nothing and the page came back every time).
func TestConsentEmptyScope(t *testing.T) {
	ctx := context.Background()
	code := func(f *fixture, tgt, scope string) error {
		_, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
			Binding: ticket.OIDCBinding{ClientID: "appc", Scope: scope, Issuer: "https://sso.example/cas/oidc"}})
		return err
	}
	query := func(tgt, scope string) ticket.ConsentQuery {
		return ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: scope}
	}

	t.Run("does not ride a CAS consent", func(t *testing.T) {
		f, _ := consentFixture(t)
		tgt := f.login(t, "u1")
		wantReason(t, code(f, tgt, ""), ticket.ReasonConsentRequired) // before any consent
		if _, err := f.svc.GrantConsent(ctx, query(tgt, ticket.CASConsentScope)); err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.ConsentNeeded(ctx, query(tgt, ""))
		if err != nil || !p.Needed || p.Scope != "openid" || p.Granted != ticket.CASConsentScope {
			t.Fatalf("OpenID Connect page for no scope after a CAS-only consent: %+v %v, want it shown for openid", p, err)
		}
		wantReason(t, code(f, tgt, ""), ticket.ReasonConsentRequired)
		wantReason(t, code(f, tgt, " "), ticket.ReasonConsentRequired)
	})

	t.Run("Allow records openid", func(t *testing.T) {
		f, _ := consentFixture(t)
		tgt := f.login(t, "u1")
		p, err := f.svc.ConsentNeeded(ctx, query(tgt, ""))
		if err != nil || !p.Needed || p.Scope != "openid" {
			t.Fatalf("first request without scope: %+v %v, want the page for openid", p, err)
		}
		c, err := f.svc.GrantConsent(ctx, query(tgt, ""))
		if err != nil || c.Scope != "openid" {
			t.Fatalf("Allow of a request without scope recorded %+v %v, want openid", c, err)
		}
		if p, err = f.svc.ConsentNeeded(ctx, query(tgt, "")); err != nil || p.Needed {
			t.Fatalf("after Allow: %+v %v, want no page", p, err)
		}
		if err := code(f, tgt, ""); err != nil {
			t.Fatalf("code without scope after Allow: %v", err)
		}
		if err := code(f, tgt, "openid"); err != nil {
			t.Fatalf("code for openid after Allow: %v", err)
		}
		// it covers neither more OpenID Connect scopes nor the CAS tickets
		wantReason(t, code(f, tgt, "openid profile"), ticket.ReasonConsentRequired)
		if p, err = f.svc.ConsentNeeded(ctx, query(tgt, ticket.CASConsentScope)); err != nil || !p.Needed {
			t.Fatalf("CAS page after an OpenID Connect Allow without scope: %+v %v, want it shown", p, err)
		}
	})
}
