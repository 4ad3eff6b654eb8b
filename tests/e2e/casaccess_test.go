package e2e

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/apierr"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestCASServiceAccessRule: a CAS service with an access rule (an account
// link with its application and the permission docs.inbox:read there)
// issues tickets only to people who pass it, over real HTTP with the Go CAS
// client: a person with the link and the grant enters and the client
// validates the ticket; a person without gets the 403 page saying they may
// not use the application (in English and Chinese), no ticket, and stays
// signed in; once the grant is revoked the next login to that service is
// refused, and a direct grant of the permission lets her in again; a
// service without a rule is unchanged. Every refusal is audited.
func TestCASServiceAccessRule(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("casrule", "gina", nil, nil) // gina has an account (a link) in the application
	const hankPW = "Str0ng-Pass!42"
	hank, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "hank", DisplayName: "Hank", OrgId: e.root,
		Password: hankPW})
	if err != nil {
		t.Fatal(err)
	}
	plainApp, err := e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "casplain", Name: "Plain"})
	if err != nil {
		t.Fatal(err)
	}
	adm := authzv1.NewAuthzAdminServiceClient(e.conn)
	az := authzv1.NewAuthzServiceClient(e.conn)
	clerk, _ := authzOA(t, adm, e.adm(), f.appID)
	grant, err := adm.CreateGrant(e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	allowed := func(person string) bool {
		r, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: person, Resource: "docs.inbox", Operation: "read"})
		return err == nil && r.GetAllowed()
	}
	eventually(t, "authz to know gina's grant", func() bool { return allowed(f.userID) })

	ruled, plain := newCASApp(t, casBase), newCASApp(t, casBase)
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	rs, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Ruled app", Url: ruled.srv.URL + "/", RequireAccountLink: true, RequiredPermission: "docs.inbox:read"}})
	if err != nil {
		t.Fatal(err)
	}
	if !rs.GetRequireAccountLink() || rs.GetRequiredPermission() != "docs.inbox:read" {
		t.Fatalf("the rule was not kept: %+v", rs)
	}
	// REST shows the rule (the gateway's JSON of the proto fields).
	code, got, _ := e.rest(http.MethodGet, "/v1/cas/services/"+rs.GetId(), map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusOK || got["require_account_link"] != true || got["required_permission"] != "docs.inbox:read" {
		t.Fatalf("GET /v1/cas/services/{id}: %d %v", code, got)
	}
	// A malformed rule is refused.
	_, err = registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Url: ruled.srv.URL + "/bad/", RequiredPermission: "docs.inbox"}})
	wantCode(t, err, codes.InvalidArgument, "BAD_SERVICE_DEFINITION")
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: plainApp.GetApp().GetId(), Name: "Plain app", Url: plain.srv.URL + "/"}}); err != nil {
		t.Fatal(err)
	}

	// Gina (link and grant): in, and the client validated her ticket.
	gb := newBrowser(t)
	_, body, _ := gb.get(ruled.srv.URL + "/page")
	code, body, at := gb.loginForm(casBase, body, "gina", f.password)
	if code != http.StatusOK || !strings.HasPrefix(body, "user=gina;") || !strings.Contains(body, "appAccountId=acct-gina") {
		t.Fatalf("gina at the ruled app: %d at %s\n%s", code, at, body)
	}
	// The portal lists the application for her.
	if code, body, _ := gb.get(casBase + "portal"); code != http.StatusOK || !strings.Contains(body, "Ruled app") {
		t.Fatalf("gina's portal: %d\n%s", code, body)
	}

	// Hank (no link, no grant) signs in at the plain app, then is refused
	// at the ruled one: 403, the sentence, no ticket.
	hb := newBrowser(t)
	_, body, _ = hb.get(plain.srv.URL + "/")
	code, body, at = hb.loginForm(casBase, body, "hank", hankPW)
	if code != http.StatusOK || !strings.HasPrefix(body, "user=hank;") {
		t.Fatalf("hank at the plain app: %d at %s\n%s", code, at, body)
	}
	code, body, at = hb.get(ruled.srv.URL + "/page")
	if code != http.StatusForbidden || !strings.Contains(body, "You are signed in, but you may not use this application.") ||
		!strings.Contains(body, "You have no account in it.") {
		t.Fatalf("hank at the ruled app: %d at %s\n%s", code, at, body)
	}
	if !strings.HasPrefix(at.String(), casBase+"login?service=") || at.Query().Get("ticket") != "" {
		t.Fatalf("a ticket reached hank: at %s\n%s", at, body)
	}
	// In Chinese too.
	code, body, _ = hb.get(casBase + "login?locale=zh-CN&service=" + url.QueryEscape(ruled.srv.URL+"/page"))
	if code != http.StatusForbidden || !strings.Contains(body, "您已登录，但无权使用该应用。") || !strings.Contains(body, "无权访问该应用") {
		t.Fatalf("the refusal in Chinese: %d\n%s", code, body)
	}
	// Still signed in: the plain app takes him again without a password.
	code, body, at = hb.get(casBase + "login?locale=en&service=" + url.QueryEscape(plain.srv.URL+"/again"))
	if code != http.StatusOK || !strings.HasPrefix(body, "user=hank;") {
		t.Fatalf("hank's session after the refusal: %d at %s\n%s", code, at, body)
	}
	// The portal does not offer him the ruled application.
	if code, body, _ := hb.get(casBase + "portal"); code != http.StatusOK || strings.Contains(body, "Ruled app") {
		t.Fatalf("hank's portal: %d\n%s", code, body)
	}

	// The gRPC answer of the refusal (the component's domain through the
	// error funnel): PERMISSION_DENIED SERVICE_ACCESS_DENIED naming what is
	// missing.
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	tgt := hb.cookie(t, casBase, "TGC")
	_, _, err = h.Service.IssueServiceTicket(context.Background(), tgt, ruled.srv.URL+"/x", false)
	st := wantCode(t, apierr.ToStatus(err), codes.PermissionDenied, "SERVICE_ACCESS_DENIED")
	if !strings.Contains(st.Message(), "no account") {
		t.Errorf("the refusal does not say what is missing: %q", st.Message())
	}

	// The grant revoked: gina's next login to the ruled service is refused
	// (as soon as authz knows it: nothing in ticket keeps the answer).
	if _, err := adm.RevokeGrant(e.adm(), &authzv1.RevokeGrantRequest{Id: grant.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "authz to forget gina's grant", func() bool { return !allowed(f.userID) })
	code, body, at = gb.get(casBase + "login?service=" + url.QueryEscape(ruled.srv.URL+"/later"))
	if code != http.StatusForbidden || !strings.Contains(body, "You have not been granted access to it.") || at.Query().Get("ticket") != "" {
		t.Fatalf("gina after the revocation: %d at %s\n%s", code, at, body)
	}
	_, _, err = h.Service.IssueServiceTicket(context.Background(), gb.cookie(t, casBase, "TGC"), ruled.srv.URL+"/x", false)
	if st := wantCode(t, apierr.ToStatus(err), codes.PermissionDenied, "SERVICE_ACCESS_DENIED"); !strings.Contains(st.Message(), "docs.inbox:read") {
		t.Errorf("the refusal does not name the permission: %q", st.Message())
	}
	// Nor does her portal offer the application any more.
	if code, body, _ := gb.get(casBase + "portal"); code != http.StatusOK || strings.Contains(body, "Ruled app") {
		t.Fatalf("gina's portal after the revocation: %d\n%s", code, body)
	}
	// The service without a rule is unchanged for her.
	code, body, at = gb.get(plain.srv.URL + "/")
	if code != http.StatusOK || !strings.HasPrefix(body, "user=gina;") {
		t.Fatalf("gina at the plain app: %d at %s\n%s", code, at, body)
	}
	// The permission granted to her directly (no role: docs/adr/0018)
	// meets the rule as the role did.
	if _, err := adm.CreateGrant(e.adm(), &authzv1.Grant{Permission: &authzv1.Permission{App: f.appID, Resource: "docs.inbox", Operation: "read"},
		Subject: &authzv1.Subject{Kind: "user", Id: f.userID}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "authz to know gina's direct grant", func() bool { return allowed(f.userID) })
	code, body, at = gb.get(casBase + "login?service=" + url.QueryEscape(ruled.srv.URL+"/direct"))
	if code != http.StatusOK || !strings.HasPrefix(body, "user=gina;") {
		t.Fatalf("gina at the ruled app by a direct grant: %d at %s\n%s", code, at, body)
	}

	// Every refusal is an audit record naming the service and application.
	eventually(t, "the refusals' audit records", func() bool {
		var link, perm bool
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.ticket.issue") {
			d, _ := ev["detail"].(map[string]any)
			svc, _ := d["service"].(string)
			if ev["result"] != "denied" || ev["reason"] != "SERVICE_ACCESS_DENIED" || d["app_id"] != f.appID ||
				!strings.HasPrefix(svc, ruled.srv.URL) {
				continue
			}
			link = link || d["missing"] == "account_link" && ev["subject"] == "user:"+hank.GetId()
			perm = perm || d["missing"] == "permission docs.inbox:read" && ev["subject"] == "user:"+f.userID
		}
		return link && perm
	})
}

// cookie returns the value of the browser's cookie name for base.
func (b *browser) cookie(t *testing.T, base, name string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	t.Fatalf("no cookie %s for %s", name, base)
	return ""
}

// TestCASServiceAccessRuleAcrossProcesses: the ticket component (with the
// CAS edge) in a process of its own asks identity and authz, in another
// process, over gRPC through etcd (the question to authz signed with the
// internal key, on behalf of the signed-in person): the person with the
// grant enters, and is refused once it is revoked.
func TestCASServiceAccessRuleAcrossProcesses(t *testing.T) {
	d := newDeployment(t)
	coreCfg := d.config("identity,authz", "core")
	makeKeyRing(t, coreCfg)
	core := start(t, coreCfg)
	core.login()
	edgeCfg := coreCfg
	edgeCfg.Target = "ticket,gateway"
	edgeCfg.DataDir = filepath.Join(d.dir, "edge")
	edge := start(t, edgeCfg)
	casBase := edge.http + "/cas/"

	f := core.seed("casmicro", "mia", nil, nil)
	adm := authzv1.NewAuthzAdminServiceClient(core.conn)
	az := authzv1.NewAuthzServiceClient(core.conn)
	clerk, _ := authzOA(t, adm, core.adm(), f.appID)
	grant, err := adm.CreateGrant(core.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f.userID}})
	if err != nil {
		t.Fatal(err)
	}
	allowed := func() bool {
		r, err := az.Check(f.ctx(), &authzv1.CheckRequest{Person: f.userID, Resource: "docs.inbox", Operation: "read"})
		return err == nil && r.GetAllowed()
	}
	eventually(t, "authz to know mia's grant", allowed)
	ruled := newCASApp(t, casBase)
	registry := ticketv1.NewServiceRegistryServiceClient(edge.conn)
	if _, err := registry.CreateService(core.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Ruled app", Url: ruled.srv.URL + "/", RequireAccountLink: true, RequiredPermission: "docs.inbox:read"}}); err != nil {
		t.Fatal(err)
	}

	br := newBrowser(t)
	_, body, _ := br.get(ruled.srv.URL + "/page")
	code, body, at := br.loginForm(casBase, body, "mia", f.password)
	if code != http.StatusOK || !strings.HasPrefix(body, "user=mia;") {
		t.Fatalf("mia at the ruled app: %d at %s\n%s", code, at, body)
	}
	if _, err := adm.RevokeGrant(core.adm(), &authzv1.RevokeGrantRequest{Id: grant.GetGrant().GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "authz to forget mia's grant", func() bool { return !allowed() })
	code, body, at = br.get(casBase + "login?service=" + url.QueryEscape(ruled.srv.URL+"/later"))
	if code != http.StatusForbidden || !strings.Contains(body, "You have not been granted access to it.") || at.Query().Get("ticket") != "" {
		t.Fatalf("mia after the revocation: %d at %s\n%s", code, at, body)
	}
}
