package e2e

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// Per-application metrics (JR/T 0185-2020 10.1.1: each interface's time,
// volume and success rate): two applications log people in, over gRPC and
// REST, one with a request the checks refuse; /metrics (real HTTP) counts
// each application's calls by method and code, with their latency; a wrong
// App_Secret counts as "unauthenticated" (never under the App_ID it named),
// a refusal after the credentials checked (an interface not granted) under
// the application; an application beyond metrics.max_apps counts as
// "other". A CAS ticket validation (no credentials: the service URL) counts
// under the application its ticket was issued for, an OpenID Connect code
// exchange under the client that authenticated.
func TestAppMetricsPerApplication(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Metrics.MaxApps = 3
	e := start(t, cfg)
	e.login()
	a := e.seed("ma", "mia", nil, nil)
	b := e.seed("mb", "max", nil, nil)
	g := e.seed("mg", "meg", &identityv1.CreateAppRequest{GrantedApis: []string{"authz.check"}}, nil)
	c := e.seed("mc", "moe", nil, nil)

	for range 2 {
		res, err := e.authPW(a, a.account, a.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	}
	if code, _, _ := e.rest(http.MethodPost, "/v1/authenticate", appHeaders(a), map[string]any{"app_user_id": a.account,
		"password": a.password, "auth_type": "AUTH_TYPE_PASSWORD"}); code != http.StatusOK {
		t.Fatalf("REST authenticate: %d", code)
	}
	res, err := e.authPW(b, b.account, b.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	_, err = e.authPW(b, "", b.password) // no account: refused by the request checks
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	_, err = e.authPW(fixture{appID: b.appID, secret: "wrong-secret"}, b.account, b.password)
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = e.authPW(fixture{appID: "no-such-app", secret: "whatever-secret"}, b.account, b.password)
	wantCode(t, err, codes.Unauthenticated, "")
	_, err = e.authPW(g, g.account, g.password) // authenticated, not granted Authenticate
	wantCode(t, err, codes.PermissionDenied, "API_NOT_GRANTED")
	res, err = e.authPW(c, c.account, c.password) // the fourth application: over the cap of 3
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)

	// CAS: a service of application a, a session, a ticket validated over
	// the edge's p3/serviceValidate.
	const svc = "https://metrics.example.com/"
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: a.appID, Name: "Metrics app", Url: svc}}); err != nil {
		t.Fatal(err)
	}
	h := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	tgt, _, err := h.Service.CreateSession(context.Background(), ticket.NewSession{UserID: a.userID, Login: a.login, AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := h.Service.IssueServiceTicket(context.Background(), tgt, svc, false)
	if err != nil {
		t.Fatal(err)
	}
	vr, err := http.Get(e.http + "/cas/p3/serviceValidate?service=" + url.QueryEscape(svc) + "&ticket=" + url.QueryEscape(st))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(vr.Body)
	_ = vr.Body.Close()
	if !strings.Contains(string(body), "<cas:authenticationSuccess>") {
		t.Fatalf("serviceValidate: %d %s", vr.StatusCode, body)
	}

	// OpenID Connect: a code for application a's client, exchanged at the
	// token endpoint with its App_ID and secret.
	authCode, _, err := h.Service.IssueAuthorizationCode(context.Background(), ticket.AuthorizationRequest{TGT: tgt,
		RedirectURI: svc, Binding: ticket.OIDCBinding{ClientID: a.appID, Scope: "openid"}})
	if err != nil {
		t.Fatal(err)
	}
	treq, _ := http.NewRequest(http.MethodPost, e.http+"/cas/oidc/token", strings.NewReader(url.Values{
		"grant_type": {"authorization_code"}, "code": {authCode}, "redirect_uri": {svc}}.Encode()))
	treq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	treq.SetBasicAuth(url.QueryEscape(a.appID), url.QueryEscape(a.secret))
	tr, err := http.DefaultClient.Do(treq)
	if err != nil {
		t.Fatal(err)
	}
	tbody, _ := io.ReadAll(tr.Body)
	_ = tr.Body.Close()
	if tr.StatusCode != http.StatusOK || !strings.Contains(string(tbody), "access_token") {
		t.Fatalf("token endpoint: %d %s", tr.StatusCode, tbody)
	}

	resp, err := http.Get(e.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	var lines []string
	for l := range strings.Lines(string(raw)) {
		if strings.HasPrefix(l, "uias_app_call") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	page := strings.Join(lines, "\n")
	const auth = `method="/uias.identity.v1.AuthService/Authenticate"`
	for _, want := range []string{
		`uias_app_calls_total{app_id="` + a.appID + `",code="OK",` + auth + `} 3`,
		`uias_app_calls_total{app_id="` + b.appID + `",code="OK",` + auth + `} 1`,
		`uias_app_calls_total{app_id="` + b.appID + `",code="InvalidArgument",` + auth + `} 1`,
		`uias_app_calls_total{app_id="unauthenticated",code="Unauthenticated",` + auth + `} 2`,
		`uias_app_calls_total{app_id="` + g.appID + `",code="PermissionDenied",` + auth + `} 1`,
		`uias_app_calls_total{app_id="other",code="OK",` + auth + `} 1`,
		`uias_app_call_duration_seconds_count{app_id="` + a.appID + `",` + auth + `} 3`,
		`uias_app_calls_total{app_id="` + a.appID + `",code="OK",method="/uias.ticket.v1.TicketService/ValidateServiceTicket"} 1`,
		`uias_app_calls_total{app_id="` + a.appID + `",code="OK",method="/uias.ticket.v1.TicketService/ExchangeAuthorizationCode"} 1`,
		`uias_app_call_duration_seconds_count{app_id="` + b.appID + `",` + auth + `} 2`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s; application metrics:\n%s", want, page)
		}
	}
	for _, never := range []string{c.appID, "no-such-app"} {
		if strings.Contains(page, never) {
			t.Errorf("/metrics labels %s in the application metrics", never)
		}
	}
	// The administrator's calls (seeding) are no application's.
	if !strings.Contains(page, `uias_app_calls_total{app_id="none",code="OK",method="/uias.identity.v1.AdminService/CreateApp"} 4`) {
		t.Errorf("administrator calls not counted as app_id none:\n%s", page)
	}
}
