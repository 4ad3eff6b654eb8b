package e2e

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/identity/ldapauth"
	"github.com/uias/uias/services/identity/ldapauth/ldaptest"
)

// TestDirectoryPasswordAtCASPage: the people of org "sz" sign in at the CAS
// page with their password in a real slapd (identity.ldap_auth, StartTLS
// with the test CA), enter a CAS application, and cannot change the
// password through UIAS; with the directory stopped, Authenticate answers
// UNAVAILABLE CREDENTIAL_SOURCE_UNAVAILABLE.
func TestDirectoryPasswordAtCASPage(t *testing.T) {
	const dirPW = "Deb-Dir-Pass-1"
	srv := ldaptest.Start(t, ldaptest.Person{UID: "deb", Password: dirPW})
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).LDAPAuth = []ldapauth.Config{{Name: "corp", URL: srv.URL, CAFile: srv.CAFile,
		BindDNTemplate: "uid={login}," + ldaptest.People, Orgs: []string{"sz"}}}
	e := start(t, cfg)
	e.login()
	sz, err := e.admin.CreateOrg(e.adm(), &identityv1.CreateOrgRequest{Code: "sz", Name: "Shenzhen", ParentId: e.root})
	if err != nil {
		t.Fatal(err)
	}
	f := e.seed("dira", "deb", nil, func(r *identityv1.CreateUserRequest) { r.OrgId, r.Password = sz.GetId(), "" })
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: f.userID})
	if err != nil || u.GetCredentialSource() != "ldap:corp" {
		t.Fatalf("GetUser: %v %v", u, err)
	}

	casBase := e.http + "/cas/"
	a := newCASApp(t, casBase)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Directory app", Url: a.srv.URL + "/"}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	_, page, _ := br.get(a.srv.URL + "/page")
	_, wrong, _ := br.loginForm(casBase, page, "deb", "Wrong-Pass!42")
	if errorRE.FindStringSubmatch(wrong) == nil {
		t.Fatalf("wrong directory password: no error on the page\n%s", wrong)
	}
	code, body, at := br.loginForm(casBase, wrong, "deb", dirPW)
	if code != http.StatusOK || !strings.HasPrefix(at.String(), a.srv.URL+"/page") || !strings.HasPrefix(body, "user=deb;") {
		t.Fatalf("directory password at the CAS page: %d at %s\n%s", code, at, body)
	}

	_, err = e.admin.SetPassword(e.adm(), &identityv1.SetPasswordRequest{Id: f.userID, Password: "Str0ng-Pass!43"})
	wantCode(t, err, codes.FailedPrecondition, "PASSWORD_MANAGED_BY_DIRECTORY")
	_, err = e.auth.ChangePassword(f.ctx(), &identityv1.ChangePasswordRequest{AppUserId: f.account, OldPassword: dirPW,
		NewPassword: "Str0ng-Pass!43"})
	wantCode(t, err, codes.FailedPrecondition, "PASSWORD_MANAGED_BY_DIRECTORY")
	res, err := e.authPW(f, f.account, dirPW)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)

	srv.Stop()
	_, err = e.authPW(f, f.account, dirPW)
	st := wantCode(t, err, codes.Unavailable, "CREDENTIAL_SOURCE_UNAVAILABLE")
	if strings.Contains(st.Message(), dirPW) || errorInfo(st).GetMetadata()["legacy_code"] != "-6" {
		t.Fatalf("unavailable: %v", st)
	}
	// The CAS page: "try again later" (503), not a wrong password.
	br = newBrowser(t)
	_, page, _ = br.get(casBase + "login")
	if code, body, _ := br.loginForm(casBase, page, "deb", dirPW); code != http.StatusServiceUnavailable {
		t.Fatalf("CAS page with the directory down: %d\n%s", code, body)
	}
}
