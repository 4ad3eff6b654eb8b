package ticket_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/sqlstore"
)

// Review sec30c H1: a client asking consent gets the person through no
// protocol without it: a CAS service ticket (gateway and renew alike go
// through IssueServiceTicket) and a proxy ticket are refused
// CONSENT_REQUIRED until the person consented to CASConsentScope; an
// OpenID Connect consent to it covers them.
func TestConsentCASTicket(t *testing.T) {
	ctx := context.Background()
	f, _ := consentFixture(t)
	register(t, f.services, "pp", ticket.RegisteredService{AppID: "appp", URL: "https://proxy.example.com/", AllowProxy: true})
	f.svc.Registry().Invalidate()
	tgt := f.login(t, "u1")
	for _, fresh := range []bool{false, true} {
		st, _, err := f.svc.IssueServiceTicket(ctx, tgt, consentCB, fresh)
		if st != "" {
			t.Fatalf("ST %q issued without consent (fromNewLogin %v)", st, fresh)
		}
		wantReason(t, err, ticket.ReasonConsentRequired)
	}
	// A proxy ticket for the client's service: the person's consent too.
	pst := f.st(t, tgt, "https://proxy.example.com/")
	v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: pst, Service: "https://proxy.example.com/", IssuePGT: true, PGTURL: "https://proxy.example.com/pgt"})
	if err != nil || !v.Valid || v.PGT == "" {
		t.Fatalf("pgt: %+v %v", v, err)
	}
	if pt, code, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, consentCB); pt != "" || code != ticket.CodeUnauthorizedService || err != nil {
		t.Fatalf("PT without consent: %q %s %v", pt, code, err)
	}
	// The consent page's scope for a CAS service: the same record.
	p, err := f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope})
	if err != nil || !p.Needed {
		t.Fatalf("consent prompt for CAS: %+v %v", p, err)
	}
	// A narrower OpenID Connect consent does not cover it.
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, consentCB, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope}); err != nil {
		t.Fatal(err)
	}
	st := f.st(t, tgt, consentCB)
	if v := f.validate(t, st, consentCB); !v.Valid || v.Ticket.UserID != "u1" {
		t.Fatalf("ST after consent: %+v", v)
	}
	if pt, code, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, consentCB); pt == "" || code != "" || err != nil {
		t.Fatalf("PT after consent: %q %s %v", pt, code, err)
	}
	// Removed: refused again.
	if err := f.svc.RevokeMyApplication(ctx, tgt, "appc"); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, consentCB, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	// Other services are not affected.
	f.st(t, tgt, "https://a.example.com/")
}

// Review sec30c M1: a code issued before the person removed the
// application's access is refused after it (the grant is the code's issue
// time), and a code issued after a removal works.
func TestConsentCodeBeforeRevocation(t *testing.T) {
	ctx := context.Background()
	f, _ := consentFixture(t)
	tgt := f.login(t, "u1")
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid"}); err != nil {
		t.Fatal(err)
	}
	issue := func() string {
		t.Helper()
		code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
			Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid", Issuer: "https://sso.example/cas/oidc"}})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	exchange := func(code string) (*ticket.Tokens, error) {
		return f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "appc", Secret: "sc"}, Code: code, RedirectURI: consentCB})
	}
	code := issue()
	if err := f.svc.RevokeMyApplication(ctx, tgt, "appc"); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(2e6) // 2 ms
	toks, err := exchange(code)
	if toks != nil {
		t.Fatalf("a code issued before the removal redeemed after it: %+v", toks)
	}
	wantReason(t, err, ticket.ErrInvalidGrant.Reason)
	// Consented again: a new code works, and its tokens live.
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid"}); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(2e6)
	toks, err = exchange(issue())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("userinfo: %v", err)
	}
}

// Review sec30c M2: consent is the client's: its other service, which
// does not set consent_required, asks it too (settings of the one that
// does), for a code and for a CAS ticket.
func TestConsentPerClient(t *testing.T) {
	ctx := context.Background()
	f, _ := consentFixture(t)
	const cb2 = "https://consent.example.com/cb2"
	register(t, f.services, "oc2", ticket.RegisteredService{AppID: "appc", Name: "Consent app (2)", URL: cb2})
	f.svc.Registry().Invalidate()
	tgt := f.login(t, "u1")
	_, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: cb2,
		Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid profile groups", Issuer: "https://sso.example/cas/oidc"}})
	wantReason(t, err, ticket.ReasonConsentRequired)
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, cb2, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	p, err := f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: cb2, Scope: "openid"})
	if err != nil || !p.Needed || p.TTL.Minutes() != 1 {
		t.Fatalf("prompt at the other redirect URI: %+v %v (the consent service's period)", p, err)
	}
	c, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: cb2, Scope: "openid"})
	if err != nil || c.ExpiresAt.Sub(c.GrantedAt).Minutes() != 1 {
		t.Fatalf("grant at the other redirect URI: %+v %v", c, err)
	}
	// Given at one redirect URI, it covers the other.
	if _, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
		Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid", Issuer: "https://sso.example/cas/oidc"}}); err != nil {
		t.Fatal(err)
	}
}

// A CAS renew login to a client asking consent (NewLoginMark): the ticket
// issued after the consent page is from the new login (validation with
// renew accepts it, isFromNewLogin), once; a ticket of the same session
// without that login (a second one, another service, after
// NewLoginWindow, or after the session was read from a store that lacks
// the mark) is not.
func TestConsentRenewKeepsNewLogin(t *testing.T) {
	ctx := context.Background()
	f, db := consentFixture(t)
	renew := func(st, service string) *ticket.Validation {
		t.Helper()
		v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: service, Renew: true})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	grant := func(tgt string) {
		t.Helper()
		if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope}); err != nil {
			t.Fatal(err)
		}
	}
	const nonce = "nonce-of-the-renew-consent-page1"
	afterPage := func(tgt, n string) string { // the consent page's Allow
		t.Helper()
		st, _, err := f.svc.IssueServiceTicketConsent(ctx, tgt, consentCB, false, n)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	renewLogin := func() string { // a renew login, refused for consent
		t.Helper()
		tgt := f.login(t, "u1")
		_, _, err := f.svc.IssueServiceTicketConsent(ctx, tgt, consentCB, true, nonce)
		wantReason(t, err, ticket.ReasonConsentRequired)
		return tgt
	}
	revoke := func(tgt string) {
		t.Helper()
		if err := f.svc.RevokeMyApplication(ctx, tgt, "appc"); err != nil {
			t.Fatal(err)
		}
	}
	tgt := f.login(t, "u1")
	// Without a new login, no mark: the consent page's ticket is not from one.
	_, _, err := f.svc.IssueServiceTicketConsent(ctx, tgt, consentCB, false, nonce)
	wantReason(t, err, ticket.ReasonConsentRequired)
	grant(tgt)
	if v := renew(afterPage(tgt, nonce), consentCB); v.Valid || v.Code != ticket.CodeInvalidTicketSpec {
		t.Fatalf("renew validation of a ticket without a new login: %+v", v)
	}
	revoke(tgt)

	// The new login (renew) is refused for consent; after it, the ticket
	// the page's Allow asks for (its nonce) is from the new login, once.
	tgt = renewLogin()
	// Another service's ticket meanwhile does not take it.
	if v := renew(f.st(t, tgt, "https://a.example.com/"), "https://a.example.com/"); v.Valid {
		t.Fatalf("another service's ticket took the new login: %+v", v)
	}
	grant(tgt)
	// Nor a ticket of the service asked another way (another tab, a plain
	// visit and its own consent page: no nonce, or another one) (sec31c M1).
	if v := renew(f.st(t, tgt, consentCB), consentCB); v.Valid {
		t.Fatalf("a ticket without the page's nonce took the new login: %+v", v)
	}
	if v := renew(afterPage(tgt, "another-pages-nonce-0000000000000"), consentCB); v.Valid {
		t.Fatalf("a ticket with another nonce took the new login: %+v", v)
	}
	if v := renew(afterPage(tgt, nonce), consentCB); !v.Valid || !v.Ticket.FromNewLogin {
		t.Fatalf("the ticket after the consent page, validated with renew: %+v", v)
	}
	if v := renew(afterPage(tgt, nonce), consentCB); v.Valid {
		t.Fatalf("a second ticket from one new login (the Allow sent again): %+v", v)
	}

	// A consent page answered after NewLoginWindow: not from a new login.
	revoke(tgt)
	tgt = renewLogin()
	f.clock.advance(ticket.NewLoginWindow + time.Second)
	grant(tgt)
	if v := renew(afterPage(tgt, nonce), consentCB); v.Valid {
		t.Fatalf("a ticket after the window: %+v", v)
	}

	// Denied: the page's Allow sent later (the back button) is not from the
	// new login either (review sec31c M1).
	revoke(tgt)
	tgt = renewLogin()
	if err := f.svc.DenyConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope}); err != nil {
		t.Fatal(err)
	}
	grant(tgt)
	if v := renew(afterPage(tgt, nonce), consentCB); v.Valid {
		t.Fatalf("a ticket after Deny took the new login: %+v", v)
	}

	// The mark is the session's: another instance reading the session from
	// the store issues the new login's ticket too, once.
	revoke(tgt)
	tgt = renewLogin()
	grant(tgt)
	other := f.replica(t)
	other.SetConsents(sqlstore.New(db))
	st, _, err := other.IssueServiceTicketConsent(ctx, tgt, consentCB, false, nonce)
	if err != nil {
		t.Fatal(err)
	}
	if v := renew(st, consentCB); !v.Valid || !v.Ticket.FromNewLogin {
		t.Fatalf("the other instance's ticket: %+v", v)
	}
	if st, _, err := other.IssueServiceTicketConsent(ctx, tgt, consentCB, false, nonce); err != nil || renew(st, consentCB).Valid {
		t.Fatalf("a second ticket from the other instance: %v", err)
	}
}
