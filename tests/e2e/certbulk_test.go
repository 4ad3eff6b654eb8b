package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"go.uber.org/zap/zaptest"
)

// TestCertificatesFindTheirPeople: certificates of the people's CA find the
// person their subject names (ID number and display name; gap1 G27, the
// maritime design 1.3 and 2.1.2.3 (3)): the CA's certificates are bound in
// bulk over REST (a dry run first), and with identity.policy.cert_auto_bind
// a person whose certificate nobody bound signs in with it on the CAS page
// over real HTTPS, the certificate bound on the way.
func TestCertificatesFindTheirPeople(t *testing.T) {
	p := newNamedCertPKI(t, "UIAS e2e components CA")
	people := newNamedCertPKI(t, "UIAS e2e people's CA")
	e := startTLS(t, p, func(c *config.Config) {
		c.TLS.PeopleCAFile = people.caFile
		pol := &identitycomponent.Settings(c).Policy
		pol.CertIdentityCheck, pol.CertAutoBind = true, true
	})
	f := e.seed("certapp", "seedling", nil, nil)
	person := func(login, name, number string) string {
		u, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: login, DisplayName: name, OrgId: e.root,
			IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: number, Password: "First-Pass-123"})
		if err != nil {
			t.Fatalf("create %s: %v", login, err)
		}
		return u.GetId()
	}
	zhang := person("zhangsan", "张三", "440301198506151238")
	li := person("lisi", "李四", "440301199203014564")
	now := time.Now()
	zhangCert, _, _ := people.issue(t, "张三 440301198506151238", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	liCert, _, _ := people.issue(t, "李四 440301199203014564", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	nobody, _, _ := people.issue(t, "赵六 440301197001017899", false, now.Add(-time.Hour), now.Add(24*time.Hour))

	// Bulk over REST, as the CA's operator would hand the batch over.
	client := newCertBrowser(t, p, nil).c
	bulk := func(dry bool, certs ...tls.Certificate) (int, map[string]any) {
		t.Helper()
		var b64 []string
		for _, c := range certs {
			b64 = append(b64, base64.StdEncoding.EncodeToString(c.Certificate[0]))
		}
		raw, _ := json.Marshal(map[string]any{"certificates": b64, "dry_run": dry})
		req, _ := http.NewRequest(http.MethodPost, e.http+"/v1/certificates:bind", bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out := map[string]any{}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	outcomes := func(out map[string]any) string {
		var o []string
		lines, _ := out["lines"].([]any)
		for _, l := range lines {
			o = append(o, l.(map[string]any)["outcome"].(string))
		}
		return strings.Join(o, ",")
	}
	if code, out := bulk(true, liCert, nobody); code != http.StatusOK || outcomes(out) != "would_bind,no_person" {
		t.Fatalf("dry run: %d %v", code, out)
	}
	if code, out := bulk(false, liCert, nobody); code != http.StatusOK || outcomes(out) != "bound,no_person" || out["bound"] != float64(1) {
		t.Fatalf("bulk: %d %v", code, out)
	} else if l := out["lines"].([]any)[0].(map[string]any); l["user_id"] != li {
		t.Fatalf("bound to %v, want %s", l["user_id"], li)
	}
	if cs, err := e.admin.ListUserCertificates(e.adm(), &identityv1.ListUserCertificatesRequest{UserId: li}); err != nil || len(cs.GetCertificates()) != 1 {
		t.Fatalf("李四's certificates: %v %v", cs, err)
	}
	// Malformed: no certificates at all is a 400.
	if code, out := bulk(false); code != http.StatusBadRequest {
		t.Fatalf("an empty batch: %d %v", code, out)
	}

	// 张三's certificate was bound by no one: the CAS page binds and signs in.
	svc := "https://certs.example.com/app/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Cert app", Url: svc}}); err != nil {
		t.Fatal(err)
	}
	if code, page, loc := newCertBrowser(t, p, &zhangCert).certLogin(e.http+"/cas/", svc); code != http.StatusFound ||
		!strings.HasPrefix(loc, svc+"?ticket=ST-") {
		t.Fatalf("an unbound certificate naming 张三: %d to %q\n%s", code, loc, page)
	}
	if cs, err := e.admin.ListUserCertificates(e.adm(), &identityv1.ListUserCertificatesRequest{UserId: zhang}); err != nil || len(cs.GetCertificates()) != 1 {
		t.Fatalf("张三's certificates after the login: %v %v", cs, err)
	}
	// One naming no registered person is refused, and bound to no one.
	b := newCertBrowser(t, p, &nobody)
	if code, _, loc := b.certLogin(e.http+"/cas/", svc); code == http.StatusFound && strings.Contains(loc, "ticket=") {
		t.Fatalf("a certificate naming no one signed in: %d %q", code, loc)
	}
}

// cert_auto_bind without any people's CA would bind nothing, silently: the
// start refuses it, naming the setting (review sec30a I5).
func TestCertAutoBindNeedsPeopleCA(t *testing.T) {
	cfg := testConfig(t.TempDir())
	pol := &identitycomponent.Settings(&cfg).Policy
	pol.CertIdentityCheck, pol.CertAutoBind = true, true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := app.Start(ctx, cfg, app.Options{Logger: zaptest.NewLogger(t, zaptestLevel()), BootstrapPassword: adminPassword})
	if err == nil {
		_ = a.Stop(ctx)
		t.Fatal("started with cert_auto_bind and no people's CA")
	}
	if !strings.Contains(err.Error(), "cert_auto_bind") {
		t.Fatalf("start error does not name the setting: %v", err)
	}
}
