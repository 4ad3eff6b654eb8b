package e2e

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// samlAnswer is a /cas/samlValidate answer read namespace-aware, as a
// SAML 1.1 client reads it.
type samlAnswer struct {
	Body struct {
		Response struct {
			Recipient string `xml:",attr"`
			Status    struct {
				Code struct {
					Value string `xml:",attr"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:protocol StatusCode"`
				Message string `xml:"urn:oasis:names:tc:SAML:1.0:protocol StatusMessage"`
			} `xml:"urn:oasis:names:tc:SAML:1.0:protocol Status"`
			Assertion *struct {
				Audience string `xml:"urn:oasis:names:tc:SAML:1.0:assertion Conditions>AudienceRestrictionCondition>Audience"`
				Authn    struct {
					Method string `xml:"AuthenticationMethod,attr"`
					Name   string `xml:"urn:oasis:names:tc:SAML:1.0:assertion Subject>NameIdentifier"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:assertion AuthenticationStatement"`
				Attrs []struct {
					Name   string   `xml:"AttributeName,attr"`
					Values []string `xml:"urn:oasis:names:tc:SAML:1.0:assertion AttributeValue"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:assertion AttributeStatement>Attribute"`
			} `xml:"urn:oasis:names:tc:SAML:1.0:assertion Assertion"`
		} `xml:"urn:oasis:names:tc:SAML:1.0:protocol Response"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

// TestCASSAMLValidate: a person signs in at the real server's login page;
// the service validates the ticket at /cas/samlValidate as the Java CAS
// client's Saml11TicketValidator does (SOAP POST, TARGET), gets the
// person's login and attributes, and the ticket is used up.
func TestCASSAMLValidate(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("samla", "sally", nil, nil)
	const svc = "https://saml.example.com/app/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "SAML app", Url: svc}}); err != nil {
		t.Fatal(err)
	}

	// Sign in; the login answers with the redirect to the service.
	br := newBrowser(t)
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	_, page, _ := br.get(casBase + "login?service=" + url.QueryEscape(svc))
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no login form: %s", page)
	}
	resp, err := br.c.PostForm(casBase+"login", url.Values{"username": {"sally"}, "password": {f.password}, "csrf": {m[1]}, "service": {svc}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	st := ""
	if loc != nil {
		st = loc.Query().Get("ticket")
	}
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(st, "ST-") {
		t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	validate := func(method, target, ticket string) (int, string, *samlAnswer) {
		t.Helper()
		body := `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body>` +
			`<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_e2e1" IssueInstant="2026-12-01T19:06:43.000Z">` +
			`<samlp:AssertionArtifact>` + ticket + `</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>`
		req, _ := http.NewRequest(method, casBase+"samlValidate?TARGET="+url.QueryEscape(target), strings.NewReader(body))
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
		req.Header.Set("SOAPAction", "http://www.oasis-open.org/committees/security")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusMethodNotAllowed {
			return resp.StatusCode, resp.Header.Get("Allow"), nil
		}
		var a samlAnswer
		if err := xml.Unmarshal(b, &a); err != nil {
			t.Fatalf("%s samlValidate: not XML: %v\n%s", method, err, b)
		}
		return resp.StatusCode, string(b), &a
	}

	// GET is refused and uses nothing.
	if code, allow, _ := validate(http.MethodGet, svc, st); code != http.StatusMethodNotAllowed || allow != "POST" {
		t.Errorf("GET samlValidate: %d, Allow %q", code, allow)
	}
	code, body, a := validate(http.MethodPost, svc, st)
	r := a.Body.Response
	if code != http.StatusOK || r.Status.Code.Value != "samlp:Success" || r.Assertion == nil {
		t.Fatalf("samlValidate: %d\n%s", code, body)
	}
	if r.Recipient != svc || r.Assertion.Audience != svc || r.Assertion.Authn.Name != "sally" ||
		r.Assertion.Authn.Method != "urn:oasis:names:tc:SAML:1.0:am:password" {
		t.Errorf("assertion: recipient %q audience %q name %q method %q", r.Recipient, r.Assertion.Audience, r.Assertion.Authn.Name,
			r.Assertion.Authn.Method)
	}
	attrs := map[string][]string{}
	for _, at := range r.Assertion.Attrs {
		attrs[at.Name] = at.Values
	}
	for k, v := range map[string]string{"login": "sally", "displayName": "User sally", "appAccountId": "acct-sally", "userId": f.userID,
		"isFromNewLogin": "true"} {
		if len(attrs[k]) != 1 || attrs[k][0] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	// The ticket was used up: validated once only.
	_, body, a = validate(http.MethodPost, svc, st)
	if a.Body.Response.Status.Code.Value != "samlp:Requester" || a.Body.Response.Assertion != nil ||
		!strings.HasPrefix(a.Body.Response.Status.Message, "INVALID_TICKET: ") {
		t.Errorf("replayed ticket: %s", body)
	}
	// Malformed: an answer, never a 500.
	req, _ := http.NewRequest(http.MethodPost, casBase+"samlValidate?TARGET="+url.QueryEscape(svc), strings.NewReader("<not xml"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "samlp:Requester") || !strings.Contains(string(b), "not well-formed XML") {
		t.Errorf("malformed request: %d %s", resp.StatusCode, b)
	}
	// Both validations are audit records of the ticket component.
	eventually(t, "ticket.validate audit records", func() bool {
		ok, failed := 0, 0
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.ticket.ticket.validate") {
			switch ev["result"] {
			case "success":
				ok++
			case "failure":
				failed++
			}
		}
		return ok >= 1 && failed >= 1
	})
}
