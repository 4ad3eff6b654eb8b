package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/config"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/identity"
	identitycomponent "github.com/uias/uias/services/identity/component"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// kdc is a throwaway MIT Kerberos realm (scripts/krb.sh): its settings.
type kdc map[string]string

// startKDC starts a KDC with the people names (scripts/krb.sh start), or
// skips the test when krb.sh says the KDC cannot be installed here.
func startKDC(t *testing.T, names ...string) kdc {
	t.Helper()
	if out, err := exec.Command("../../scripts/krb.sh").CombinedOutput(); err != nil {
		t.Skip("the MIT KDC is not installed and scripts/krb.sh could not install it " +
			"(apt-get install krb5-kdc krb5-admin-server as root): " + strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	out, err := exec.Command("../../scripts/krb.sh", append([]string{"start", dir}, names...)...).Output()
	if err != nil {
		t.Fatalf("scripts/krb.sh start: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("../../scripts/krb.sh", "stop", dir).Run() })
	k := kdc{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if key, v, ok := strings.Cut(sc.Text(), "="); ok {
			k[key] = v
		}
	}
	for _, key := range []string{"REALM", "KRB5_CONFIG", "KEYTAB", "SPN", "PASSWORD"} {
		if k[key] == "" {
			t.Fatalf("scripts/krb.sh start printed no %s:\n%s", key, out)
		}
	}
	return k
}

// client logs name in to the KDC with its password (gokrb5's client, as a
// Windows logon gets the person's ticket-granting ticket).
func (k kdc) client(t *testing.T, name string) *krbclient.Client {
	t.Helper()
	cfg, err := krbconfig.Load(k["KRB5_CONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cl := krbclient.NewWithPassword(name, k["REALM"], k["PASSWORD"], cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("kinit %s: %v", name, err)
	}
	t.Cleanup(cl.Destroy)
	return cl
}

// negotiate is the Authorization header of a fresh SPNEGO token of cl for
// the service principal spn (HTTP/localhost: what a browser asks for
// http://localhost/).
func negotiate(t *testing.T, cl *krbclient.Client, spn string) string {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, "http://localhost/", nil)
	if err := spnego.SetSPNEGOHeader(cl, r, spn); err != nil {
		t.Fatalf("SPNEGO token for %s: %v", spn, err)
	}
	return r.Header.Get("Authorization")
}

// withKerberos turns on ticket.kerberos with the realm's keytab, and lets
// the realm sign in the whole org tree (identity.kerberos_orgs names the
// root org: without an entry no realm signs in anyone).
func withKerberos(k kdc, cfg *config.Config) {
	ticketcomponent.Settings(cfg).Kerberos = ticketcomponent.KerberosConfig{Enabled: true, KeytabFile: k["KEYTAB"], ServicePrincipal: k["SPN"]}
	identitycomponent.Settings(cfg).KerberosOrgs = []string{k["REALM"] + "=root"}
}

// TestKerberosSignIn: with ticket.kerberos on, the CAS login page answers a
// browser without a session 401 with WWW-Authenticate: Negotiate and the
// login form; a Kerberos ticket of a real MIT KDC (SPNEGO) signs its person
// in (level 1, method kerberos) and the service ticket validates; replayed,
// tampered and other-service tokens, unknown principals, disabled and
// level-2 people, and a level-2 application fall back to the form (or the
// level page) with a message and no new challenge; gateway=true never
// challenges; an application outside its access period stays closed; the
// sign-ins are audited with method kerberos.
func TestKerberosSignIn(t *testing.T) {
	k := startKDC(t, "alice", "bob", "dora", "eve")
	cfg := testConfig(t.TempDir())
	withKerberos(k, &cfg)
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("krb", "alice", nil, nil)
	bob := e.seed("krb2", "bob", nil, nil)
	e.seed("krb3", "dora", nil, func(r *identityv1.CreateUserRequest) { r.MinAuthLevel = 2 })
	const svc, strong = "https://krb.example.com/", "https://strong-krb.example.com/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, d := range []*ticketv1.ServiceDefinition{{AppId: f.appID, Name: "Harbour", Url: svc},
		{AppId: f.appID, Name: "Strong harbour", Url: strong, MinAuthLevel: 2}} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: d}); err != nil {
			t.Fatal(err)
		}
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(u, authz string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	login := casBase + "login?service=" + url.QueryEscape(svc)

	// No ticket yet: the challenge and the form.
	resp, page := get(login, "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Negotiate" ||
		!csrfRE.MatchString(page) || !strings.Contains(page, `id="password"`) {
		t.Fatalf("first visit: %d %q\n%s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), page)
	}
	// gateway=true: back to the service without a ticket, never a 401.
	resp, _ = get(login+"&gateway=true", "")
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != svc {
		t.Fatalf("gateway: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Alice's domain ticket signs her in.
	alice := k.client(t, "alice")
	token := negotiate(t, alice, "HTTP/localhost")
	resp, page = get(login, token)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, svc+"?ticket=ST-") {
		t.Fatalf("Kerberos sign-in: %d to %q\n%s", resp.StatusCode, loc, page)
	}
	var tgc string
	for _, c := range resp.Cookies() {
		if c.Name == "TGC" {
			tgc = c.Value
		}
	}
	if tgc == "" {
		t.Fatal("no session cookie after the Kerberos sign-in")
	}
	_, answer := get(casBase+"p3/serviceValidate?service="+url.QueryEscape(svc)+"&ticket="+url.QueryEscape(strings.TrimPrefix(loc, svc+"?ticket=")), "")
	if !strings.Contains(answer, "<cas:user>alice</cas:user>") || !strings.Contains(answer, "<cas:authLevel>1</cas:authLevel>") {
		t.Fatalf("validation: %s", answer)
	}
	sessions, err := ticketv1.NewTicketSessionsServiceClient(e.conn).ListSessions(e.adm(), &ticketv1.ListSessionsRequest{UserId: f.userID})
	if err != nil || len(sessions.GetSessions()) != 1 || sessions.GetSessions()[0].GetSession().GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_KERBEROS ||
		sessions.GetSessions()[0].GetSession().GetAuthLevel() != 1 {
		t.Fatalf("session of a Kerberos sign-in: %v %v", sessions, err)
	}

	refused := func(name, authz, service, want string, code int) {
		t.Helper()
		resp, page := get(casBase+"login?service="+url.QueryEscape(service), authz)
		if resp.StatusCode != code || !strings.Contains(page, want) || resp.Header.Get("WWW-Authenticate") != "" ||
			resp.Header.Get("Location") != "" || len(resp.Cookies()) > 0 && strings.Contains(resp.Header.Get("Set-Cookie"), "TGC=") {
			t.Fatalf("%s: %d %q %q\n%s", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("Location"), page)
		}
		if service == svc && !strings.Contains(page, `id="password"`) {
			t.Fatalf("%s: no login form to fall back to\n%s", name, page)
		}
	}
	failed := "the domain ticket was not accepted"
	// The same token again: a replay.
	refused("replayed token", token, svc, failed, http.StatusUnauthorized)
	// A tampered token.
	raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(negotiate(t, alice, "HTTP/localhost"), "Negotiate "))
	raw[len(raw)-20] ^= 0x55
	refused("tampered token", "Negotiate "+base64.StdEncoding.EncodeToString(raw), svc, failed, http.StatusUnauthorized)
	refused("garbage token", "Negotiate bm90IGEgdG9rZW4=", svc, failed, http.StatusUnauthorized)
	// A ticket for another server's principal (a keytab this one lacks).
	refused("other service principal", negotiate(t, alice, "HTTP/other.localhost"), svc, failed, http.StatusUnauthorized)
	// Eve has a domain account and no UIAS account.
	refused("unknown principal", negotiate(t, k.client(t, "eve"), "HTTP/localhost"), svc, "has no matching account here", http.StatusUnauthorized)
	// Bob is disabled.
	if _, err := e.admin.SetUserStatus(e.adm(), &identityv1.SetUserStatusRequest{Id: bob.userID,
		Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	refused("disabled person", negotiate(t, k.client(t, "bob"), "HTTP/localhost"), svc, "Your account is disabled", http.StatusUnauthorized)
	// Dora must sign in with two factors.
	refused("level-2 person", negotiate(t, k.client(t, "dora"), "HTTP/localhost"), svc, "two factors or a certificate", http.StatusForbidden)
	// A level-2 application: no challenge, and a ticket does not reach it.
	resp, page = get(casBase+"login?service="+url.QueryEscape(strong), "")
	if resp.Header.Get("WWW-Authenticate") != "" || resp.StatusCode == http.StatusUnauthorized {
		t.Fatalf("level-2 application challenged: %d\n%s", resp.StatusCode, page)
	}
	refused("level-2 application", negotiate(t, alice, "HTTP/localhost"), strong, "stronger sign-in (level 2)", http.StatusForbidden)

	// renew=true: the session does not count; a fresh token signs in again.
	req, _ := http.NewRequest(http.MethodGet, login+"&renew=true", nil)
	req.AddCookie(&http.Cookie{Name: "TGC", Value: tgc})
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Negotiate" {
		t.Fatalf("renew without a token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	req.Header.Set("Authorization", negotiate(t, alice, "HTTP/localhost"))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, svc+"?ticket=ST-") {
		t.Fatalf("renew with a fresh token: %d to %q", resp.StatusCode, loc)
	}

	// An application outside its access period: its services are closed
	// to a Kerberos sign-in as to any other (no session, no ticket).
	late := e.seed("krb4", "lena", nil, nil)
	const lateSvc = "https://late-krb.example.com/"
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: late.appID, Name: "Late", Url: lateSvc}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: late.appID, UpdateMask: []string{"access_until"},
		AccessUntil: timestamppb.New(time.Now().Add(-24 * time.Hour))}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the CAS page to close the application outside its access period", func() bool {
		resp, _ := get(casBase+"login?service="+url.QueryEscape(lateSvc), negotiate(t, alice, "HTTP/localhost"))
		return resp.StatusCode == http.StatusForbidden && resp.Header.Get("Location") == "" && len(resp.Cookies()) == 0
	})

	// Audited as sso.login with method kerberos: the successes, the
	// replay (its principal known), the unknown and refused people.
	want := map[string]bool{"success OK": false, "failure KERBEROS_REPLAY": false, "failure NO_SUCH_USER": false,
		"failure ACCOUNT_DISABLED": false, "failure AUTH_LEVEL_TOO_LOW": false}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.identity.sso.login") {
			if det, _ := ev["detail"].(map[string]any); det["method"] == "kerberos" {
				want[fmt.Sprintf("%v %v", ev["result"], ev["reason"])] = true
			}
		}
		missing := []string{}
		for k, seen := range want {
			if !seen {
				missing = append(missing, k)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records missing: %v", missing)
		}
	}
}

// TestKerberosLoginComponentsOnly: SSOService.KerberosLogin signs anyone in
// whose login name it is given, so only UIAS components (the CAS pages,
// which verified the Kerberos ticket) may call it: an anonymous caller, an
// application and an administrator are refused, and nobody is signed in.
func TestKerberosLoginComponentsOnly(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("krbforge", "kurt", nil, nil)
	sso := identityv1.NewSSOServiceClient(e.conn)
	req := &identityv1.KerberosLoginRequest{Login: "kurt", Principal: "kurt@MSA.EXAMPLE"}
	for name, ctx := range map[string]context.Context{
		"anonymous":     context.Background(),
		"application":   f.ctx(),
		"administrator": e.adm(),
	} {
		res, err := sso.KerberosLogin(ctx, req)
		if res != nil {
			t.Fatalf("%s: answered %v", name, res)
		}
		wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
	}
}

// TestKerberosSignInAsksCode: a person who set up an authenticator app is
// not signed in by the domain ticket alone: the page asks the app's code,
// and the ticket and the code open a level-2 session of method
// KERBEROS_OTP (review sec27a H3).
func TestKerberosSignInAsksCode(t *testing.T) {
	k := startKDC(t, "erin")
	cfg := testConfig(t.TempDir())
	withKerberos(k, &cfg)
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("krbotp", "erin", nil, nil)
	const svc = "https://krb-otp.example.com/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{AppId: f.appID, Name: "Harbour", Url: svc}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	// the same browser (cookies), not following the redirects to svc
	hc := &http.Client{Jar: br.c.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	erin := k.client(t, "erin")
	withTicket := func() (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, casBase+"login?service="+url.QueryEscape(svc), nil)
		req.Header.Set("Authorization", negotiate(t, erin, "HTTP/localhost"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	// Without an app: the ticket alone (a session to set the app up with).
	if resp, page := withTicket(); resp.StatusCode/100 != 3 {
		t.Fatalf("ticket alone: %d\n%s", resp.StatusCode, page)
	}
	key, step := profileTOTP(t, br, casBase, f.password)
	br.get(casBase + "logout")
	resp, page := withTicket()
	tok := hiddenRE("otp_token").FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || tok == nil || hasCookie(br, casBase, "TGC") {
		t.Fatalf("ticket of a person with an app: %d\n%s", resp.StatusCode, page)
	}
	resp, err := hc.PostForm(casBase+"login", url.Values{"csrf": {csrfRE.FindStringSubmatch(page)[1]}, "otp_token": {htmlUnescape(tok[1])},
		"service": {svc}, "code": {identity.TOTPCode(key, step)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(resp.Header.Get("Location"), svc+"?ticket=ST-") {
		t.Fatalf("code: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sessions, err := ticketv1.NewTicketSessionsServiceClient(e.conn).ListSessions(e.adm(), &ticketv1.ListSessionsRequest{UserId: f.userID})
	var got *ticketv1.Session
	for _, s := range sessions.GetSessions() {
		if s.GetSession().GetAuthMethod() == ticketv1.AuthMethod_AUTH_METHOD_KERBEROS_OTP {
			got = s.GetSession()
		}
	}
	if err != nil || got == nil || got.GetAuthLevel() != 2 {
		t.Fatalf("session of a ticket and a code: %v %v", sessions, err)
	}
}
