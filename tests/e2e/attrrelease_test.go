package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/cas/casxml"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// casAttributes is a CAS 3.0 JSON validation answer's attributes ("" code
// on success).
func casAttributes(t *testing.T, br *browser, casBase, service, st string) (map[string][]string, string) {
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
		return nil, f.Code
	}
	return d.ServiceResponse.AuthenticationSuccess.Attributes, ""
}

// TestAttributeReleasePerService: one person, two CAS services of one
// application, in a server that closes new services by default
// (ticket.services_default_access: linked). The service without a policy
// gets every attribute, her name in clear; the one releasing login,
// displayName (masked) and groups gets those and the protocol attributes
// only, the name masked (欧阳娜娜 -> 欧***): p3/serviceValidate XML (valid
// against the CAS 3.0 schema) and JSON, the Go CAS client's /serviceValidate,
// and an OpenID Connect client's ID token and userinfo. A malformed policy
// is refused BAD_SERVICE_DEFINITION; REST shows the policy. Both services,
// registered without an access rule, require an account link: a person
// without one is refused (the 403 page, SERVICE_ACCESS_DENIED) and a
// service registered open_access admits him.
func TestAttributeReleasePerService(t *testing.T) {
	cfg := testConfig(t.TempDir())
	ticketcomponent.Settings(&cfg).ServicesDefaultAccess = ticketcomponent.ServicesLinked
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("attrrel", "mei", nil, func(r *identityv1.CreateUserRequest) { r.DisplayName = "欧阳娜娜" })
	const hankPW = "Str0ng-Pass!42"
	hank, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "hank", DisplayName: "Hank", OrgId: e.root,
		Password: hankPW})
	if err != nil {
		t.Fatal(err)
	}

	all, masked := newCASApp(t, casBase), newCASApp(t, casBase)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	create := func(d *ticketv1.ServiceDefinition) *ticketv1.RegisteredService {
		t.Helper()
		d.AppId = f.appID
		rs, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	policy := func(d *ticketv1.ServiceDefinition) *ticketv1.ServiceDefinition {
		d.ReleaseAttributes, d.MaskedAttributes = []string{"login", "displayName", "groups"}, []string{"displayName"}
		return d
	}
	allRS := create(&ticketv1.ServiceDefinition{Name: "All", Url: all.srv.URL + "/"})
	maskedRS := create(policy(&ticketv1.ServiceDefinition{Name: "Masked", Url: masked.srv.URL + "/"}))
	create(policy(&ticketv1.ServiceDefinition{Name: "OIDC masked", Url: cb.URL + "/masked"}))
	create(&ticketv1.ServiceDefinition{Name: "OIDC all", Url: cb.URL + "/all"})
	// Closed by default: registered without a rule, they require a link.
	if !allRS.GetRequireAccountLink() || !maskedRS.GetRequireAccountLink() {
		t.Fatalf("not closed by default: %+v %+v", allRS, maskedRS)
	}
	// REST shows the policy.
	code, got, _ := e.rest(http.MethodGet, "/v1/cas/services/"+maskedRS.GetId(), map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusOK || !slices.Equal(anyStrings(got["release_attributes"]), []string{"login", "displayName", "groups"}) ||
		!slices.Equal(anyStrings(got["masked_attributes"]), []string{"displayName"}) || got["require_account_link"] != true {
		t.Fatalf("GET /v1/cas/services/{id}: %d %v", code, got)
	}
	// A malformed policy is refused, saying why.
	for _, d := range []*ticketv1.ServiceDefinition{
		{Url: all.srv.URL + "/bad/", ReleaseAttributes: []string{"email"}},
		{Url: all.srv.URL + "/bad/", ReleaseAttributes: []string{"login"}, MaskedAttributes: []string{"displayName"}},
	} {
		d.AppId = f.appID
		_, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d})
		if st := wantCode(t, err, codes.InvalidArgument, "BAD_SERVICE_DEFINITION"); !strings.Contains(st.Message(), "release_attributes") {
			t.Errorf("refusal message: %q", st.Message())
		}
	}

	// The Go CAS client (/serviceValidate) of each service.
	br := newBrowser(t)
	_, body, _ := br.get(all.srv.URL + "/page")
	code, body, at := br.loginForm(casBase, body, "mei", f.password)
	if code != http.StatusOK || !strings.HasPrefix(body, "user=mei;displayName=欧阳娜娜;appAccountId=acct-mei;orgName=") {
		t.Fatalf("the service releasing all: %d at %s\n%s", code, at, body)
	}
	if code, body, at = br.get(masked.srv.URL + "/page"); code != http.StatusOK || body != "user=mei;displayName=欧***;appAccountId=;orgName=" {
		t.Fatalf("the masked service: %d at %s\n%s", code, at, body)
	}

	// p3/serviceValidate of tickets for the same person.
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	ctx := context.Background()
	tgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "mei", AuthLevel: 1})
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
	full, code1 := casAttributes(t, br, casBase, all.srv.URL+"/x", issue(all.srv.URL+"/x"))
	limited, code2 := casAttributes(t, br, casBase, masked.srv.URL+"/x", issue(masked.srv.URL+"/x"))
	if code1 != "" || code2 != "" {
		t.Fatalf("validations: %q %q", code1, code2)
	}
	for _, name := range []string{"userId", "authLevel", "orgId", "orgName", "appAccountId", "login", "displayName"} {
		if full[name] == nil {
			t.Errorf("the service releasing all lacks %s: %v", name, full)
		}
	}
	if !slices.Equal(full["displayName"], []string{"欧阳娜娜"}) {
		t.Errorf("name in clear: %v", full["displayName"])
	}
	var names []string
	for n := range limited {
		names = append(names, n)
	}
	slices.Sort(names)
	if want := []string{"authenticationDate", "displayName", "isFromNewLogin", "login", "longTermAuthenticationRequestTokenUsed"}; !slices.Equal(names, want) ||
		!slices.Equal(limited["displayName"], []string{"欧***"}) || !slices.Equal(limited["login"], []string{"mei"}) {
		t.Errorf("the masked service's attributes: %v, want %v (she is in no group)", limited, want)
	}
	_, xmlBody, _ := br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(masked.srv.URL+"/y") + "&ticket=" + issue(masked.srv.URL+"/y"))
	if err := casxml.Check([]byte(xmlBody)); err != nil {
		t.Errorf("not valid against the CAS 3.0 schema: %v\n%s", err, xmlBody)
	}
	if !strings.Contains(xmlBody, "<cas:displayName>欧***</cas:displayName>") || strings.Contains(xmlBody, "欧阳娜娜") ||
		strings.Contains(xmlBody, "acct-mei") || strings.Contains(xmlBody, "<cas:userId>") {
		t.Errorf("the masked service's XML:\n%s", xmlBody)
	}

	// OpenID Connect: the masked client's ID token and userinfo.
	issuer := e.http + "/cas/oidc"
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	claimsOf := func(redirect string) (idClaims, uiClaims map[string]any) {
		t.Helper()
		conf := oauth2.Config{ClientID: f.appID, ClientSecret: f.secret, Endpoint: provider.Endpoint(), RedirectURL: redirect,
			Scopes: []string{oidc.ScopeOpenID, "profile"}}
		ob := newBrowser(t)
		_, body, _ := ob.get(conf.AuthCodeURL("st-1"))
		code, body, at := ob.oidcLogin(casBase, body, "mei", f.password)
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
		if err := idt.Claims(&idClaims); err != nil {
			t.Fatal(err)
		}
		ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		if err := ui.Claims(&uiClaims); err != nil {
			t.Fatal(err)
		}
		return idClaims, uiClaims
	}
	idAll, uiAll := claimsOf(cb.URL + "/all")
	if idAll["name"] != "欧阳娜娜" || uiAll["name"] != "欧阳娜娜" || uiAll["org_id"] == nil || uiAll["app_account"] != "acct-mei" {
		t.Errorf("the client releasing all: ID token %v, userinfo %v", idAll, uiAll)
	}
	idM, uiM := claimsOf(cb.URL + "/masked")
	if idM["name"] != "欧***" || uiM["name"] != "欧***" || uiM["preferred_username"] != "mei" || uiM["sub"] != f.userID {
		t.Errorf("the masked client: ID token %v, userinfo %v", idM, uiM)
	}
	for _, c := range []string{"org_id", "org_name", "app_account"} {
		if idM[c] != nil || uiM[c] != nil {
			t.Errorf("the masked client got %s: ID token %v, userinfo %v", c, idM, uiM)
		}
	}

	// Hank has no link: refused at both (closed by default), the page
	// saying why, no ticket; over gRPC SERVICE_ACCESS_DENIED.
	hb := newBrowser(t)
	_, body, _ = hb.get(all.srv.URL + "/page")
	code, body, at = hb.loginForm(casBase, body, "hank", hankPW)
	if code != http.StatusForbidden || !strings.Contains(body, "You have no account in it.") || at.Query().Get("ticket") != "" {
		t.Fatalf("hank at a service closed by default: %d at %s\n%s", code, at, body)
	}
	htgt, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: hank.GetId(), Login: "hank", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = h.Service.IssueServiceTicket(ctx, htgt, masked.srv.URL+"/page", false)
	wantCode(t, apierr.ToStatus(err), codes.PermissionDenied, "SERVICE_ACCESS_DENIED")
	// A service registered open admits him.
	open := newCASApp(t, casBase)
	openRS := create(&ticketv1.ServiceDefinition{Name: "Open", Url: open.srv.URL + "/", OpenAccess: true})
	if openRS.GetRequireAccountLink() {
		t.Fatalf("registered open: %+v", openRS)
	}
	if code, body, at = hb.get(open.srv.URL + "/page"); code != http.StatusOK || !strings.HasPrefix(body, "user=hank;") {
		t.Fatalf("hank at the open service: %d at %s\n%s", code, at, body)
	}
	// Its creation definition sent again as an update (UpdateService, REST
	// PUT) keeps the closed service closed; open_access opens it (review
	// sec30b L1).
	up, err := registry.UpdateService(e.adm(), &ticketv1.UpdateServiceRequest{Id: allRS.GetId(),
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "All", Url: all.srv.URL + "/"}})
	if err != nil || !up.GetRequireAccountLink() {
		t.Fatalf("re-sent creation definition: %+v %v", up, err)
	}
	up, err = registry.UpdateService(e.adm(), &ticketv1.UpdateServiceRequest{Id: allRS.GetId(),
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "All", Url: all.srv.URL + "/", OpenAccess: true}})
	if err != nil || up.GetRequireAccountLink() {
		t.Fatalf("updated open_access: %+v %v", up, err)
	}
}

// anyStrings is a JSON array of strings.
func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestAuthenticateNameRelease: two applications authenticate the same
// person; the one registered with name_release "masked" gets her name
// masked (欧阳娜娜 -> 欧***) over gRPC and REST, the other in clear; set to
// "omitted" (admin API) it gets none, and back to "full" the name. An
// unknown value is refused INVALID_ARGUMENT (REST 400).
func TestAuthenticateNameRelease(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	clear := e.seed("nameclear", "mei", nil, func(r *identityv1.CreateUserRequest) { r.DisplayName = "欧阳娜娜" })
	masked := e.seed("namemasked", "mei2", &identityv1.CreateAppRequest{NameRelease: "masked"}, nil)
	// The same person: linked to the masked application too.
	if _, err := e.admin.CreateAccountLink(e.adm(), &identityv1.CreateAccountLinkRequest{UserId: clear.userID,
		AppId: masked.appID, AppAccountId: "mei-masked"}); err != nil {
		t.Fatal(err)
	}
	name := func(f fixture, account string) string {
		t.Helper()
		res, err := e.authPW(f, account, clear.password)
		if err != nil || res.GetResultCode() != 0 || res.GetUser().GetId() != clear.userID {
			t.Fatalf("authenticate at %s: %v %v", f.appID, res, err)
		}
		return res.GetUser().GetDisplayName()
	}
	if got := name(clear, clear.account); got != "欧阳娜娜" {
		t.Errorf("the application without the setting: %q", got)
	}
	if got := name(masked, "mei-masked"); got != "欧***" {
		t.Errorf("the masking application: %q", got)
	}
	code, out, _ := e.rest(http.MethodPost, "/v1/authenticate", appHeaders(masked), map[string]any{"app_user_id": "mei-masked",
		"password": clear.password, "auth_type": "AUTH_TYPE_PASSWORD"})
	user, _ := out["user"].(map[string]any)
	if code != http.StatusOK || user["display_name"] != "欧***" && user["displayName"] != "欧***" {
		t.Errorf("REST: %d %v", code, out)
	}
	app, err := e.admin.GetApp(e.adm(), &identityv1.GetAppRequest{Id: masked.appID})
	if err != nil || app.GetNameRelease() != "masked" {
		t.Fatalf("GetApp: %v %v", app, err)
	}
	update := func(v string) error {
		_, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: masked.appID, UpdateMask: []string{"name_release"}, NameRelease: v})
		return err
	}
	if err := update("omitted"); err != nil {
		t.Fatal(err)
	}
	if got := name(masked, "mei-masked"); got != "" {
		t.Errorf("omitted: %q", got)
	}
	if err := update("full"); err != nil {
		t.Fatal(err)
	}
	if got := name(masked, "mei-masked"); got != "欧阳娜娜" {
		t.Errorf("back to full: %q", got)
	}
	wantCode(t, update("hidden"), codes.InvalidArgument, "")
	code, _, _ = e.rest(http.MethodPatch, "/v1/apps/"+masked.appID, map[string]string{"Authorization": "Bearer " + e.token},
		map[string]any{"update_mask": []string{"name_release"}, "name_release": "hidden"})
	if code != http.StatusBadRequest {
		t.Errorf("REST update with an unknown value: %d", code)
	}
}

// TestDirectoryNameRelease: the DirectoryService answers an application
// whose name_release is "masked" the person's name masked over gRPC
// (GetPerson, ListPeople) and REST, and none once it is "omitted"
// (review sec30b M1).
func TestDirectoryNameRelease(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("dirmasked", "mei3", &identityv1.CreateAppRequest{NameRelease: "masked", GrantedApis: []string{"directory", "authenticate"}},
		func(r *identityv1.CreateUserRequest) { r.DisplayName = "欧阳娜娜" })
	dir := identityv1.NewDirectoryServiceClient(e.conn)
	check := func(want string) {
		t.Helper()
		p, err := dir.GetPerson(f.ctx(), &identityv1.GetPersonRequest{AppUserId: f.account})
		if err != nil || p.GetUserId() != f.userID || p.GetDisplayName() != want {
			t.Errorf("GetPerson: %v %v, want display_name %q", p, err, want)
		}
		list, err := dir.ListPeople(f.ctx(), &identityv1.ListPeopleRequest{})
		if err != nil || len(list.GetPeople()) != 1 || list.GetPeople()[0].GetDisplayName() != want {
			t.Errorf("ListPeople: %v %v, want display_name %q", list, err, want)
		}
		code, out, _ := e.rest(http.MethodGet, "/v1/directory/people/"+f.account, appHeaders(f), nil)
		got, _ := out["display_name"].(string)
		if alt, ok := out["displayName"].(string); ok {
			got = alt
		}
		if code != http.StatusOK || got != want {
			t.Errorf("REST GetPerson: %d %v, want display_name %q", code, out, want)
		}
	}
	check("欧***")
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, UpdateMask: []string{"name_release"}, NameRelease: "omitted"}); err != nil {
		t.Fatal(err)
	}
	check("")
}
