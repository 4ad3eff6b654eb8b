package e2e

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/cas/casxml"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// released is a CAS 3.0 JSON validation answer's roles and permissions
// (and its failure code, "" on success).
type released struct {
	ok                bool
	code              string
	roles, perms      []string
	hasRoles, hasPerm bool
	login             []string
}

func validateJSON(t *testing.T, br *browser, casBase, service, st string) released {
	t.Helper()
	_, body, _ := br.get(casBase + "p3/serviceValidate?format=JSON&service=" + url.QueryEscape(service) + "&ticket=" + url.QueryEscape(st))
	var d struct {
		ServiceResponse struct {
			AuthenticationSuccess *struct {
				Attributes map[string][]string `json:"attributes"`
			} `json:"authenticationSuccess"`
			AuthenticationFailure *struct {
				Code string `json:"code"`
			} `json:"authenticationFailure"`
		} `json:"serviceResponse"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("p3/serviceValidate JSON: %v\n%s", err, body)
	}
	if f := d.ServiceResponse.AuthenticationFailure; f != nil {
		return released{code: f.Code}
	}
	a := d.ServiceResponse.AuthenticationSuccess.Attributes
	r := released{ok: true, roles: a["roles"], perms: a["permissions"], login: a["login"]}
	_, r.hasRoles = a["roles"]
	_, r.hasPerm = a["permissions"]
	return r
}

// TestCASReleasesRolesAndPermissions: a CAS service registered with
// release_roles and release_permissions gets, at p3/serviceValidate (XML
// valid against the CAS 3.0 schema, and JSON), the person's roles of its
// application (granted to them and through a group) and their permissions
// there, as authz computes them; never another application's role; a
// service of the same application without the setting gets neither; a
// revoked grant is gone at the next validation.
func TestCASReleasesRolesAndPermissions(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("casrel", "rita", nil, nil)
	other, err := e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "casrelother", Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	otherID := other.GetApp().GetId()
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	clerk, approver := authzOA(t, adm, e.adm(), f.appID)
	if _, err := adm.PutResource(e.adm(), &authzv1.Resource{App: otherID, Code: "leads", Kind: "module", Operations: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	sales, err := adm.CreateRole(e.adm(), &authzv1.Role{App: otherID, Code: "sales",
		Permissions: []*authzv1.Permission{{App: otherID, Resource: "leads", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	// clerk and the other application's sales to rita; approver to a
	// group of hers.
	g, err := e.admin.CreateGroup(e.adm(), &identityv1.CreateGroupRequest{Code: "approvers", Name: "Approvers", OrgId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.AddGroupMember(e.adm(), &identityv1.GroupMemberRequest{GroupId: g.GetId(), UserId: f.userID}); err != nil {
		t.Fatal(err)
	}
	clerkGrant, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, gr := range []*authzv1.Grant{
		{RoleId: sales.GetRole().GetId(), Subject: &authzv1.Subject{Kind: "user", Id: f.userID}},
		{RoleId: approver, Subject: &authzv1.Subject{Kind: "group", Id: g.GetId()}},
	} {
		if _, err := adm.CreateGrant(e.adm(), gr); err != nil {
			t.Fatal(err)
		}
	}
	az := authzv1.NewAuthzServiceClient(e.conn)
	rolesNow := func() []string {
		r, err := az.ListPermissions(f.ctx(), &authzv1.ListPermissionsRequest{Person: f.userID, IncludeRoles: true})
		if err != nil {
			return nil
		}
		var out []string
		for _, x := range r.GetRoles() {
			out = append(out, x.GetCode())
		}
		return out
	}
	eventually(t, "authz to know rita's grants (the group's too)", func() bool {
		return slices.Equal(rolesNow(), []string{"approver", "clerk"})
	})

	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	const relURL, plainURL = "https://rel.example.com/", "https://plain.example.com/"
	rs, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Releasing", Url: relURL, ReleaseRoles: true, ReleasePermissions: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Plain", Url: plainURL}}); err != nil {
		t.Fatal(err)
	}
	// REST shows the setting.
	code, got, _ := e.rest(http.MethodGet, "/v1/cas/services/"+rs.GetId(), map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusOK || got["release_roles"] != true || got["release_permissions"] != true {
		t.Fatalf("GET /v1/cas/services/{id}: %d %v", code, got)
	}

	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	ctx := context.Background()
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "rita", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(service string) string {
		t.Helper()
		st, _, err := h.Service.IssueServiceTicket(ctx, tgt, service, false)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	br := newBrowser(t)

	// XML: the schema's multi-valued attributes.
	_, body, _ := br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(relURL+"x") + "&ticket=" + issue(relURL+"x"))
	if err := casxml.Check([]byte(body)); err != nil {
		t.Errorf("not valid against the CAS 3.0 schema: %v\n%s", err, body)
	}
	for _, want := range []string{"<cas:roles>approver</cas:roles>", "<cas:roles>clerk</cas:roles>",
		"<cas:permissions>docs.contract:approve</cas:permissions>", "<cas:permissions>docs.inbox:read</cas:permissions>",
		"<cas:login>rita</cas:login>"} {
		if !strings.Contains(body, want) {
			t.Errorf("XML lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, "sales") || strings.Contains(body, "leads") {
		t.Errorf("another application's role released:\n%s", body)
	}
	// JSON, and p3/proxyValidate the same.
	r := validateJSON(t, br, casBase, relURL+"y", issue(relURL+"y"))
	if !r.ok || !slices.Equal(r.roles, []string{"approver", "clerk"}) ||
		!slices.Equal(r.perms, []string{"docs.contract:approve", "docs.inbox:read"}) {
		t.Fatalf("JSON: %+v", r)
	}
	// The same application's service without the setting: neither.
	if r := validateJSON(t, br, casBase, plainURL+"y", issue(plainURL+"y")); !r.ok || r.hasRoles || r.hasPerm || len(r.login) != 1 {
		t.Fatalf("a service without the setting: %+v", r)
	}

	// clerk revoked: gone at the next validation (nothing kept).
	if _, err := adm.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: clerkGrant.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "authz to forget rita's clerk grant", func() bool { return slices.Equal(rolesNow(), []string{"approver"}) })
	if r := validateJSON(t, br, casBase, relURL+"z", issue(relURL+"z")); !r.ok || !slices.Equal(r.roles, []string{"approver"}) ||
		!slices.Equal(r.perms, []string{"docs.contract:approve"}) {
		t.Fatalf("after the revocation: %+v", r)
	}
	// The setting switched off: released no more.
	d := &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Releasing", Url: relURL}
	if _, err := registry.UpdateService(e.adm(), &ticketv1.UpdateServiceRequest{Id: rs.GetId(), Service: d}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the registry to follow the update", func() bool {
		r := validateJSON(t, br, casBase, relURL+"w", issue(relURL+"w"))
		return r.ok && !r.hasRoles && !r.hasPerm
	})
}

// TestCASReleaseWithAuthzDown: identity, authz and the ticket component
// with the edge in three processes (etcd). With authz stopped, the
// validation of a service releasing roles answers INTERNAL_ERROR (XML and
// JSON) and does not use the ticket up, and an OpenID Connect client's
// code exchange answers 503 temporarily_unavailable without using the code
// up; a service releasing nothing still validates; once authz is back, the
// same ticket validates with the roles, and the same code gives an ID
// token with them.
func TestCASReleaseWithAuthzDown(t *testing.T) {
	d := newDeployment(t)
	idCfg := d.config("identity", "identity")
	makeKeyRing(t, idCfg)
	id := start(t, idCfg)
	azCfg := idCfg
	azCfg.Target, azCfg.DataDir = "authz", filepath.Join(d.dir, "authz")
	az := start(t, azCfg)
	edgeCfg := idCfg
	edgeCfg.Target, edgeCfg.DataDir = "ticket,gateway", filepath.Join(d.dir, "edge")
	tc := *idCfg.Sections[ticketcomponent.Name].(*ticketcomponent.Config)
	tc.STTTL, tc.OIDCCodeTTL = 5*time.Minute, 5*time.Minute // the retries come after authz's restart
	edgeCfg.Sections = maps.Clone(edgeCfg.Sections)
	edgeCfg.Sections[ticketcomponent.Name] = &tc
	edge := start(t, edgeCfg)
	id.login()
	casBase := edge.http + "/cas/"

	f := id.seed("casreldown", "sam", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(az.conn)
	clerk, _ := authzOA(t, adm, id.adm(), f.appID)
	if _, err := adm.CreateGrant(id.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}}); err != nil {
		t.Fatal(err)
	}
	azc := authzv1.NewAuthzServiceClient(az.conn)
	knows := func() bool {
		r, err := azc.ListPermissions(f.ctx(), &authzv1.ListPermissionsRequest{Person: f.userID, IncludeRoles: true})
		return err == nil && len(r.GetRoles()) == 1
	}
	eventually(t, "authz to know sam's grant", knows)
	registry := ticketv1.NewServiceRegistryServiceClient(edge.conn)
	const relURL, plainURL = "https://rel.example.com/", "https://plain.example.com/"
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	for _, sd := range []*ticketv1.ServiceDefinition{
		{AppId: f.appID, Name: "Releasing", Url: relURL, ReleaseRoles: true},
		{AppId: f.appID, Name: "Plain", Url: plainURL},
		{AppId: f.appID, Name: "OIDC releasing", Url: cb.URL + "/callback", ReleaseRoles: true},
	} {
		if _, err := registry.CreateService(id.adm(), &ticketv1.CreateServiceRequest{Service: sd}); err != nil {
			t.Fatal(err)
		}
	}
	h := edge.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	ctx := context.Background()
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "sam", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(service string) string {
		t.Helper()
		st, _, err := h.Service.IssueServiceTicket(ctx, tgt, service, false)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	br := newBrowser(t)
	br.c.Timeout = 90 * time.Second
	if r := validateJSON(t, br, casBase, relURL, issue(relURL)); !r.ok || !slices.Equal(r.roles, []string{"clerk"}) || r.hasPerm {
		t.Fatalf("with authz up: %+v", r)
	}

	stXML, stJSON := issue(relURL), issue(relURL)
	// An OpenID Connect client's code, redeemed after authz stopped.
	provider, err := oidc.NewProvider(ctx, edge.http+"/cas/oidc")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: f.appID, ClientSecret: f.secret, Endpoint: provider.Endpoint(),
		RedirectURL: cb.URL + "/callback", Scopes: []string{oidc.ScopeOpenID}}
	ob := newBrowser(t)
	_, body, _ := ob.get(conf.AuthCodeURL("st"))
	code, body, at := ob.oidcLogin(casBase, body, "sam", f.password)
	oidcCode := at.Query().Get("code")
	if code != http.StatusOK || body != "callback" || oidcCode == "" {
		t.Fatalf("OpenID Connect login: %d at %s\n%s", code, at, body)
	}

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := az.app.Stop(sctx); err != nil {
		t.Fatalf("stop authz: %v", err)
	}
	_, body, _ = br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(relURL) + "&ticket=" + stXML)
	if !strings.Contains(body, `<cas:authenticationFailure code="INTERNAL_ERROR">`) || !strings.Contains(body, "retry later") {
		t.Fatalf("XML with authz down: %s", body)
	}
	noInternals(t, "the XML answer", body)
	if err := casxml.Check([]byte(body)); err != nil {
		t.Errorf("not valid against the CAS 3.0 schema: %v\n%s", err, body)
	}
	if r := validateJSON(t, br, casBase, relURL, stJSON); r.ok || r.code != "INTERNAL_ERROR" {
		t.Fatalf("JSON with authz down: %+v", r)
	}
	if _, err := conf.Exchange(ctx, oidcCode); oauthCode(err) != "temporarily_unavailable" {
		t.Fatalf("code exchange with authz down: %v", err)
	}
	// A service releasing nothing does not need authz.
	if r := validateJSON(t, br, casBase, plainURL, issue(plainURL)); !r.ok || len(r.login) != 1 {
		t.Fatalf("a service releasing nothing, authz down: %+v", r)
	}

	// authz back (on its data): the tickets refused above validate now.
	az2 := start(t, azCfg)
	eventually(t, "authz back with sam's grant", func() bool {
		r, err := authzv1.NewAuthzServiceClient(az2.conn).ListPermissions(f.ctx(),
			&authzv1.ListPermissionsRequest{Person: f.userID, IncludeRoles: true})
		return err == nil && len(r.GetRoles()) == 1
	})
	eventually(t, "the refused ticket to validate once authz is back", func() bool {
		r := validateJSON(t, br, casBase, relURL, stXML)
		if r.code == "INVALID_TICKET" {
			t.Fatalf("the ticket was used up by the refused validation")
		}
		return r.ok && slices.Equal(r.roles, []string{"clerk"})
	})
	if r := validateJSON(t, br, casBase, relURL, stJSON); !r.ok || !slices.Equal(r.roles, []string{"clerk"}) {
		t.Fatalf("the JSON ticket after authz is back: %+v", r)
	}
	if r := validateJSON(t, br, casBase, relURL, stJSON); r.ok || r.code != "INVALID_TICKET" {
		t.Fatalf("single use after the retry: %+v", r)
	}
	tok, err := conf.Exchange(ctx, oidcCode)
	if err != nil {
		t.Fatalf("the code after authz is back: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: f.appID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := idt.Claims(&claims); err != nil || !slices.Equal(claims.Roles, []string{"clerk"}) {
		t.Fatalf("ID token after authz is back: %+v %v", claims, err)
	}
}

// TestOIDCReleasesRolesAndPermissions: an OpenID Connect client (go-oidc
// and x/oauth2) whose registered redirect URI releases roles and
// permissions finds them in the ID token and at userinfo, with scope
// openid alone; userinfo answers what authz says at that moment.
func TestOIDCReleasesRolesAndPermissions(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	issuer := e.http + "/cas/oidc"
	f := e.seed("oidcrel", "orla", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	clerk, _ := authzOA(t, adm, e.adm(), f.appID)
	grant, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	az := authzv1.NewAuthzServiceClient(e.conn)
	roleCount := func() int {
		r, err := az.ListPermissions(f.ctx(), &authzv1.ListPermissionsRequest{Person: f.userID, IncludeRoles: true})
		if err != nil {
			return -1
		}
		return len(r.GetRoles())
	}
	eventually(t, "authz to know orla's grant", func() bool { return roleCount() == 1 })
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "OIDC releasing", Url: cb.URL + "/callback", ReleaseRoles: true, ReleasePermissions: true}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: f.appID, ClientSecret: f.secret, Endpoint: provider.Endpoint(),
		RedirectURL: cb.URL + "/callback", Scopes: []string{oidc.ScopeOpenID}}
	br := newBrowser(t)
	_, body, _ := br.get(conf.AuthCodeURL("st-1"))
	code, body, at := br.oidcLogin(casBase, body, "orla", f.password)
	if code != http.StatusOK || body != "callback" || at.Query().Get("code") == "" {
		t.Fatalf("after login: %d at %s\n%s", code, at, body)
	}
	tok, err := conf.Exchange(ctx, at.Query().Get("code"))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: f.appID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	var claims struct {
		Roles       []string `json:"roles"`
		Permissions []string `json:"permissions"`
	}
	if err := idt.Claims(&claims); err != nil || !slices.Equal(claims.Roles, []string{"clerk"}) ||
		!slices.Equal(claims.Permissions, []string{"docs.inbox:read"}) {
		t.Fatalf("ID token claims: %+v %v", claims, err)
	}
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if err := ui.Claims(&claims); err != nil || !slices.Equal(claims.Roles, []string{"clerk"}) {
		t.Fatalf("userinfo: %+v %v", claims, err)
	}
	if _, err := adm.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: grant.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "authz to forget orla's grant", func() bool { return roleCount() == 0 })
	ui, err = provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	claims.Roles, claims.Permissions = nil, nil
	if err != nil || ui.Claims(&claims) != nil || claims.Roles == nil || len(claims.Roles) != 0 || len(claims.Permissions) != 0 {
		t.Fatalf("userinfo after the revocation: %+v %v", claims, err)
	}
}
