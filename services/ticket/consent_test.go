package ticket_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/sqlstore"
)

const consentCB = "https://consent.example.com/cb"

// consentFixture has the client appc, whose service asks consent (kept 1
// minute), with consents in a SQLite store.
func consentFixture(t *testing.T) (*fixture, *store.DB) {
	t.Helper()
	f := newFixture(t, ticket.Config{})
	register(t, f.services, "oc", ticket.RegisteredService{AppID: "appc", Name: "Consent app", URL: consentCB,
		ConsentRequired: true, ConsentTTL: time.Minute})
	f.svc.Registry().Invalidate()
	db := pstoretest.Migrated(t, pstoretest.OpenSQLite(t), sqlstore.Migrate)
	f.svc.SetConsents(sqlstore.New(db))
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: portalApps{LegacyApps: clientApps{secrets: map[string]string{"appc": "sc"}}}})
	return f, db
}

// outboxed counts the events of type typ in the store's outbox (a
// consent's CHANGES event and audit record are written with it).
func outboxed(t *testing.T, db *store.DB, typ string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), db.Rebind("SELECT COUNT(*) FROM events_outbox WHERE type = ?"), typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	if ae, ok := apierr.As(err); !ok || ae.Reason != reason {
		t.Fatalf("error %v, want %s", err, reason)
	}
}

func TestConsent(t *testing.T) {
	ctx := context.Background()
	f, db := consentFixture(t)
	tgt := f.login(t, "u1")
	q := ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid profile"}
	issue := func(scope string) (string, error) {
		code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
			Binding: ticket.OIDCBinding{ClientID: "appc", Scope: scope, Issuer: "https://sso.example/cas/oidc"}})
		return code, err
	}
	p, err := f.svc.ConsentNeeded(ctx, q)
	if err != nil || !p.Needed || p.TTL != time.Minute || p.ServiceName != "Consent app" || p.Scope != "openid profile" || p.Granted != "" {
		t.Fatalf("first authorization: %+v %v, want the consent page", p, err)
	}
	// The code is not issued without consent, whatever the edge does.
	_, err = issue("openid profile")
	wantReason(t, err, ticket.ReasonConsentRequired)

	c, err := f.svc.GrantConsent(ctx, q)
	if err != nil || c.Scope != "openid profile" || c.ExpiresAt.Sub(c.GrantedAt) != time.Minute {
		t.Fatalf("grant: %+v %v", c, err)
	}
	if outboxed(t, db, "ticket.consent.granted") != 1 || outboxed(t, db, "audit.oidc.consent.granted") != 1 {
		t.Fatal("the consent's CHANGES event and audit record are not written with it")
	}
	// Remembered: a narrower scope needs no page; prompt=consent forces
	// it; a wider scope asks again, showing what was granted.
	if p, err := f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid"}); err != nil || p.Needed {
		t.Fatalf("remembered consent: %+v %v", p, err)
	}
	q2 := q
	q2.Force = true
	if p, err := f.svc.ConsentNeeded(ctx, q2); err != nil || !p.Needed {
		t.Fatalf("prompt=consent: %+v %v", p, err)
	}
	q3 := q
	q3.Scope = "openid groups"
	if p, err := f.svc.ConsentNeeded(ctx, q3); err != nil || !p.Needed || p.Granted != "openid profile" {
		t.Fatalf("a wider scope: %+v %v", p, err)
	}
	code, err := issue("openid")
	if err != nil {
		t.Fatal(err)
	}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: ticket.Client{ID: "appc", Secret: "sc"}, Code: code, RedirectURI: consentCB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	// The consent's period ends: the page again.
	f.clock.advance(61 * time.Second)
	if p, err := f.svc.ConsentNeeded(ctx, q); err != nil || !p.Needed || p.Granted != "" {
		t.Fatalf("expired consent: %+v %v", p, err)
	}
	_, err = issue("openid")
	wantReason(t, err, ticket.ReasonConsentRequired)
}

func TestRevokeMyApplication(t *testing.T) {
	ctx := context.Background()
	f, db := consentFixture(t)
	tgt, other := f.login(t, "u1"), f.login(t, "u2")
	q := ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid"}
	if _, err := f.svc.GrantConsent(ctx, q); err != nil {
		t.Fatal(err)
	}
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
		Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid", Issuer: "https://sso.example/cas/oidc"}})
	if err != nil {
		t.Fatal(err)
	}
	client := ticket.Client{ID: "appc", Secret: "sc"}
	toks, err := f.svc.ExchangeCode(ctx, ticket.Exchange{Client: client, Code: code, RedirectURI: consentCB})
	if err != nil {
		t.Fatal(err)
	}
	apps, err := f.svc.MyApplications(ctx, tgt)
	if err != nil || len(apps) != 1 || apps[0].AppID != "appc" || apps[0].Name != "Consent app" || apps[0].Scope != "openid" ||
		apps[0].SignedInAt.IsZero() || !apps[0].Revocable() {
		t.Fatalf("my applications: %+v %v", apps, err)
	}
	if apps, err := f.svc.MyApplications(ctx, other); err != nil || len(apps) != 0 {
		t.Fatalf("another person's applications: %+v %v", apps, err)
	}
	// Nobody else can revoke it: the person is the session's.
	wantReason(t, f.svc.RevokeMyApplication(ctx, other, "appc"), ticket.ReasonMyAppNotFound)
	wantReason(t, f.svc.RevokeMyApplication(ctx, tgt, "nosuch"), ticket.ReasonMyAppNotFound)
	wantReason(t, f.svc.RevokeMyApplication(ctx, "TGT-nosuch-0000000000000000000000", "appc"), "SESSION_NOT_FOUND")
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("the token ended by a refused revocation: %v", err)
	}

	if err := f.svc.RevokeMyApplication(ctx, tgt, "appc"); err != nil {
		t.Fatal(err)
	}
	if outboxed(t, db, "ticket.consent.revoked") != 1 || outboxed(t, db, "audit.oidc.consent.revoked") != 1 {
		t.Fatal("the revocation's CHANGES event and audit record are not written with it")
	}
	// Every token of the grant ends at once: the access token at userinfo
	// and introspection, the refresh token at the token endpoint.
	_, err = f.svc.UserInfo(ctx, toks.AccessToken)
	wantReason(t, err, ticket.ErrInvalidToken.Reason)
	if got, err := f.svc.Introspect(ctx, client, toks.AccessToken); err != nil || string(got) != `{"active":false}` {
		t.Fatalf("introspection after revocation: %s %v", got, err)
	}
	_, err = f.svc.Refresh(ctx, ticket.RefreshRequest{Client: client, RefreshToken: toks.RefreshToken})
	wantReason(t, err, ticket.ErrInvalidGrant.Reason)
	// Gone from the person's applications; nothing left to remove.
	if apps, err := f.svc.MyApplications(ctx, tgt); err != nil || len(apps) != 0 {
		t.Fatalf("my applications after the removal: %+v %v", apps, err)
	}
	wantReason(t, f.svc.RevokeMyApplication(ctx, tgt, "appc"), ticket.ReasonMyAppNotFound)
	// The consent is forgotten: the next authorization asks again.
	if p, err := f.svc.ConsentNeeded(ctx, q); err != nil || !p.Needed {
		t.Fatalf("after revocation: %+v %v", p, err)
	}
	// A grant made after the revocation lives.
	f.clock.advance(10 * time.Millisecond)
	if _, err := f.svc.GrantConsent(ctx, q); err != nil {
		t.Fatal(err)
	}
	code, _, err = f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
		Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid", Issuer: "https://sso.example/cas/oidc"}})
	if err != nil {
		t.Fatal(err)
	}
	toks, err = f.svc.ExchangeCode(ctx, ticket.Exchange{Client: client, Code: code, RedirectURI: consentCB})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); err != nil {
		t.Fatalf("a grant after the revocation: %v", err)
	}
}

// consentsDown answers every call with the database down.
type consentsDown struct{}

var errDown = apierr.New(apierr.Unavailable, "STORE_UNAVAILABLE", "the database does not answer")

func (consentsDown) PutConsent(context.Context, *ticket.Consent, ...events.Event) error {
	return errDown
}
func (consentsDown) GetConsent(context.Context, string, string) (*ticket.Consent, error) {
	return nil, errDown
}
func (consentsDown) ListConsents(context.Context, string) ([]*ticket.Consent, error) {
	return nil, errDown
}

func TestConsentStoreDown(t *testing.T) {
	ctx := context.Background()
	f, _ := consentFixture(t)
	tgt := f.login(t, "u1")
	f.svc.SetConsents(consentsDown{})
	q := ticket.ConsentQuery{TGT: tgt, ClientID: "appc", RedirectURI: consentCB, Scope: "openid"}
	if _, err := f.svc.ConsentNeeded(ctx, q); !errors.Is(err, errDown) {
		t.Fatalf("consent with the database down: %v", err)
	}
	if _, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
		Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid", Issuer: "https://sso.example/cas/oidc"}}); !errors.Is(err, errDown) {
		t.Fatalf("a code with the database down: %v (never issued without the consent read)", err)
	}
	f.svc.SetConsents(nil)
	_, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: consentCB,
		Binding: ticket.OIDCBinding{ClientID: "appc", Scope: "openid", Issuer: "https://sso.example/cas/oidc"}})
	wantReason(t, err, ticket.ReasonConsentUnavailable)
	// A service asking no consent is not affected.
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB})
	f.svc.Registry().Invalidate()
	if p, err := f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "app1", RedirectURI: oidcCB, Scope: "openid"}); err != nil || p.Needed {
		t.Fatalf("no consent asked: %+v %v", p, err)
	}
	// A redirect URI that is not the client's.
	_, err = f.svc.ConsentNeeded(ctx, ticket.ConsentQuery{TGT: tgt, ClientID: "app1", RedirectURI: consentCB, Scope: "openid"})
	wantReason(t, err, ticket.ErrRedirectNotOfClient.Reason)
}

func TestConsentSettingsChecked(t *testing.T) {
	for _, s := range []ticket.RegisteredService{
		{AppID: "a", URL: "https://x.example.com/", MinAuthLevel: 1, ConsentTTL: -time.Second},
		{AppID: "a", URL: "https://x.example.com/", MinAuthLevel: 1, ConsentTTL: ticket.MaxConsentTTL + time.Second},
		{AppID: "a", URL: "https://x.example.com/", MinAuthLevel: 1, ConsentTTL: 1500 * time.Millisecond},
		{AppID: "a", URL: "https://x.example.com/sso", MinAuthLevel: 1, LegacyScheme: 2, ConsentRequired: true},
	} {
		wantReason(t, ticket.CheckService(&s), "BAD_SERVICE_DEFINITION")
	}
}

// linkApps keeps the person's links; Unlink removes one.
type linkApps struct {
	clientApps
	mu       sync.Mutex
	links    map[string][]ticket.PersonLink
	unlinked []string
}

func (a *linkApps) Links(_ context.Context, userID string) ([]ticket.PersonLink, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.links[userID]), nil
}

func (a *linkApps) Unlink(_ context.Context, userID, appID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unlinked = append(a.unlinked, userID+"/"+appID)
	a.links[userID] = slices.DeleteFunc(a.links[userID], func(l ticket.PersonLink) bool { return l.AppID == appID })
	return nil
}

// TestRemoveLinkedApplication: "Remove access" of an application the
// person is linked with removes their own link (identity), never another
// person's.
func TestRemoveLinkedApplication(t *testing.T) {
	ctx := context.Background()
	f, _ := consentFixture(t)
	apps := &linkApps{clientApps: clientApps{secrets: map[string]string{"appc": "sc"}},
		links: map[string][]ticket.PersonLink{"u1": {{AppID: "appl", AppName: "Ledger", Account: "pia01"}},
			"u2": {{AppID: "appl", AppName: "Ledger", Account: "bo02"}}}}
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: apps})
	tgt := f.login(t, "u1")
	list, err := f.svc.MyApplications(ctx, tgt)
	if err != nil || len(list) != 1 || list[0].AppID != "appl" || list[0].Account != "pia01" || list[0].Revocable() {
		t.Fatalf("my applications: %+v %v", list, err)
	}
	if err := f.svc.RevokeMyApplication(ctx, tgt, "appl"); err != nil {
		t.Fatal(err)
	}
	if len(apps.unlinked) != 1 || apps.unlinked[0] != "u1/appl" || len(apps.links["u2"]) != 1 {
		t.Fatalf("unlinked %v, links %v", apps.unlinked, apps.links)
	}
	wantReason(t, f.svc.RevokeMyApplication(ctx, tgt, "appl"), ticket.ReasonMyAppNotFound)
}
