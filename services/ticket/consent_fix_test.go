package ticket_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/sqlstore"
)

// Review sec30c H1: a client asking consent gets the person through no
// protocol without it: a CAS service ticket (gateway and renew alike go
// through IssueServiceTicket) and a proxy ticket are refused
// CONSENT_REQUIRED until the person consented to CASConsentScope. Review
// sec31c L1: that is a scope of its own: an OpenID Connect consent, even to
// every scope the OpenID Connect page shows, does not cover them (the CAS
// page lists what the service receives: roles, permissions, groups).
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
	casQ := ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope}
	// The consent page's scope for a CAS service: one of its own.
	if ticket.CASConsentScope != "cas" {
		t.Fatalf("CASConsentScope %q", ticket.CASConsentScope)
	}
	p, err := f.svc.ConsentNeeded(ctx, casQ)
	if err != nil || !p.Needed {
		t.Fatalf("consent prompt for CAS: %+v %v", p, err)
	}
	// OpenID Connect consents, narrow and wide, do not cover it (sec31c L1).
	for _, scope := range []string{"openid", "openid profile", "groups openid profile"} {
		if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: scope}); err != nil {
			t.Fatal(err)
		}
		if st, _, err := f.svc.IssueServiceTicket(ctx, tgt, consentCB, false); st != "" || !isReason(err, ticket.ReasonConsentRequired) {
			t.Fatalf("ST after an OpenID Connect consent to %q: %q %v, want CONSENT_REQUIRED", scope, st, err)
		}
		if pt, code, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, consentCB); pt != "" || code != ticket.CodeUnauthorizedService || err != nil {
			t.Fatalf("PT after an OpenID Connect consent to %q: %q %s %v", scope, pt, code, err)
		}
		if p, err := f.svc.ConsentNeeded(ctx, casQ); err != nil || !p.Needed || p.Granted != scope {
			t.Fatalf("the CAS page after an OpenID Connect consent to %q: %+v %v, want it shown", scope, p, err)
		}
	}
	c, err := f.svc.GrantConsent(ctx, casQ)
	if err != nil || c.Scope != "cas groups openid profile" {
		t.Fatalf("the CAS consent, kept with the OpenID Connect one: %+v %v", c, err)
	}
	st := f.st(t, tgt, consentCB)
	if v := f.validate(t, st, consentCB); !v.Valid || v.Ticket.UserID != "u1" {
		t.Fatalf("ST after consent: %+v", v)
	}
	if pt, code, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, consentCB); pt == "" || code != "" || err != nil {
		t.Fatalf("PT after consent: %q %s %v", pt, code, err)
	}
	// Removed: refused again, and the CAS page is shown again.
	if err := f.svc.RevokeMyApplication(ctx, tgt, "appc"); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, consentCB, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	if p, err := f.svc.ConsentNeeded(ctx, casQ); err != nil || !p.Needed || p.Granted != "" {
		t.Fatalf("the CAS page after the removal: %+v %v", p, err)
	}
	// Other services are not affected.
	f.st(t, tgt, "https://a.example.com/")
}

func isReason(err error, reason string) bool {
	ae, ok := apierr.As(err)
	return ok && ae.Reason == reason
}

// Review sec31c L1: a CAS consent grants no OpenID Connect scope (the CAS
// page never showed them): a code is refused CONSENT_REQUIRED and the
// OpenID Connect page is shown; an OpenID Connect client may not ask for
// the CAS consent's scope (invalid_scope), nor a consent query mix it with
// others; the CAS consent is listed (scope "cas") and revocable by the
// person, after which the CAS page asks again; its period is the client's
// consent period.
func TestConsentCASNotOIDC(t *testing.T) {
	ctx := context.Background()
	f, db := consentFixture(t)
	tgt := f.login(t, "u1")
	code := func(scope string) error {
		_, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
			Binding: ticket.OIDCBinding{ClientID: "appc", Scope: scope, Issuer: "https://sso.example/cas/oidc"}})
		return err
	}
	c, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope})
	if err != nil || c.Scope != "cas" || c.ExpiresAt.Sub(c.GrantedAt) != time.Minute {
		t.Fatalf("CAS consent: %+v %v (the client's consent period, one minute)", c, err)
	}
	if outboxed(t, db, "ticket.consent.granted") != 1 {
		t.Fatal("the CAS consent's CHANGES event is not written with it")
	}
	f.st(t, tgt, consentCB) // the CAS ticket
	for _, scope := range []string{"openid", "openid profile"} {
		wantReason(t, code(scope), ticket.ReasonConsentRequired)
		if p, err := f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: scope}); err != nil || !p.Needed || p.Granted != "cas" {
			t.Fatalf("the OpenID Connect page after a CAS consent (%q): %+v %v, want it shown", scope, p, err)
		}
	}
	// The CAS scope through OpenID Connect: refused, whatever the consent.
	for _, scope := range []string{"cas", "openid cas", "cas openid profile"} {
		err := code(scope)
		wantReason(t, err, ticket.ErrInvalidScope.Reason)
		if ae, _ := apierr.As(err); ae.Code != apierr.InvalidArgument || !strings.Contains(ae.Message, "CAS services") {
			t.Fatalf("code with scope %q: %v", scope, err)
		}
	}
	for _, scope := range []string{"openid cas", "cas profile"} {
		q := ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: scope}
		_, err := f.svc.ConsentNeeded(ctx, q)
		wantReason(t, err, ticket.ErrInvalidScope.Reason)
		_, err = f.svc.GrantConsent(ctx, q)
		wantReason(t, err, ticket.ErrInvalidScope.Reason)
	}
	if outboxed(t, db, "ticket.consent.granted") != 1 {
		t.Fatal("a refused consent query was recorded")
	}
	// Listed and revocable (the profile page words it: cas package).
	apps, err := f.svc.MyApplications(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	var listed *ticket.MyApp
	for i := range apps {
		if apps[i].AppID == "appc" {
			listed = &apps[i]
		}
	}
	if listed == nil || listed.Scope != "cas" || !listed.Revocable() {
		t.Fatalf("my applications: %+v", apps)
	}
	if err := f.svc.RevokeMyApplication(ctx, tgt, "appc"); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, consentCB, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	if p, err := f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope}); err != nil || !p.Needed {
		t.Fatalf("the CAS page after the removal: %+v %v", p, err)
	}
	// Expiry: a CAS consent ends with the client's consent period.
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope}); err != nil {
		t.Fatal(err)
	}
	f.st(t, tgt, consentCB)
	f.clock.advance(time.Minute + time.Second)
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, consentCB, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
}

// Review sec31c L1, upgrading: a consent recorded by the CAS page before
// CASConsentScope was a scope of its own ("openid profile") no longer
// covers a CAS ticket: the person is asked once again; allowed, the record
// keeps both.
func TestConsentCASBeforeUpgrade(t *testing.T) {
	ctx := context.Background()
	f, db := consentFixture(t)
	tgt := f.login(t, "u1")
	now := f.clock.now().UTC()
	if err := sqlstore.New(db).PutConsent(ctx, &ticket.Consent{UserID: "u1", ClientID: "appc", Scope: "openid profile",
		GrantedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.svc.IssueServiceTicket(ctx, tgt, consentCB, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	c, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: ticket.CASConsentScope})
	if err != nil || c.Scope != "cas openid profile" {
		t.Fatalf("the CAS consent after the upgrade: %+v %v", c, err)
	}
	f.st(t, tgt, consentCB)
}

// Review sec31c L1: a legacy ssoAuthService service of a client asking
// consent follows CAS: an OpenID Connect consent does not cover its ticket,
// the CAS consent does.
func TestConsentLegacyFollowsCAS(t *testing.T) {
	ctx := context.Background()
	f, _ := consentFixture(t)
	const legacyURL = "https://consent.example.com/oa/ssoAuthService"
	register(t, f.services, "ocl", ticket.RegisteredService{AppID: "appc", Name: "Consent app (legacy)", URL: legacyURL, LegacyScheme: 2})
	f.svc.Registry().Invalidate()
	tgt := f.login(t, "u1")
	_, _, err := f.svc.IssueServiceTicket(ctx, tgt, legacyURL, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid profile groups"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.svc.IssueServiceTicket(ctx, tgt, legacyURL, false)
	wantReason(t, err, ticket.ReasonConsentRequired)
	// Its consent page's answer (the legacy service's URL): the CAS scope.
	if _, err := f.svc.GrantConsent(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: legacyURL, Scope: ticket.CASConsentScope}); err != nil {
		t.Fatal(err)
	}
	if st, _, err := f.svc.IssueServiceTicket(ctx, tgt, legacyURL, false); err != nil || st == "" {
		t.Fatalf("legacy ticket after the CAS consent: %q %v", st, err)
	}
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
