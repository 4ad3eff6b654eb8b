package cas

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events/eventstest"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
	"github.com/uias/uias/services/ticket/server"
)

// authzAnswers is a ticket.AuthorizationSource with a fixed answer, or
// down.
type authzAnswers struct {
	mu           sync.Mutex
	roles, perms []string
	down         bool
}

func (a *authzAnswers) Authorization(context.Context, string, string) ([]string, []string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.down {
		return nil, nil, errors.New("authz unreachable")
	}
	return a.roles, a.perms, nil
}

func (a *authzAnswers) setDown(down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.down = down
}

const (
	relService   = "https://rel.example.com/app/"
	plainService = "https://plain.example.com/app/"
)

// newReleaseFixture is the samlValidate fixture with a service releasing
// roles and permissions (relService) and one releasing nothing.
func newReleaseFixture(t *testing.T, a *authzAnswers) *samlFixture {
	t.Helper()
	return newReleaseFixtureAt(t, a, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "li", Groups: []string{"finance"}})
}

// newReleaseFixtureAt is newReleaseFixture at start, identity answering
// attrs.
func newReleaseFixtureAt(t *testing.T, a *authzAnswers, start time.Time, attrs *ticketv1.PersonAttributes) *samlFixture {
	t.Helper()
	ns := eventstest.NATS(t)
	_, js := eventstest.Connect(t, ns)
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := ring.Signer()
	if err != nil {
		t.Fatal(err)
	}
	services := &memServices{}
	for _, rs := range []ticket.RegisteredService{
		{ID: "rel", AppID: "app-rel", URL: "https://rel.example.com/", ReleaseRoles: true, ReleasePermissions: true},
		{ID: "plain", AppID: "app-plain", URL: "https://plain.example.com/"},
		{ID: "masked", AppID: "app-masked", URL: "https://masked.example.com/", ReleaseRoles: true, ReleasePermissions: true,
			ReleaseAttributes: []string{"login", "displayName", "roles"}, MaskedAttributes: []string{"displayName"}},
	} {
		rs.Enabled, rs.MinAuthLevel = true, 1
		if err := ticket.CheckService(&rs); err != nil {
			t.Fatal(err)
		}
		_ = services.CreateService(context.Background(), &rs)
	}
	f := &samlFixture{audit: &auditLog{}, clock: &fixedClock{t: start}}
	f.svc, err = ticket.New(ticket.Deps{Store: kvstore.New(js, kvstore.Options{Timeout: time.Second}), MAC: mac, Audit: f.audit,
		Now: f.clock.now, Registry: ticket.NewRegistry(services, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.SetRelease(a)
	srv := server.New(f.svc, nil, nil).WithAttributes(person{attrs})
	f.h = New(Options{Tickets: direct{s: srv}, SSO: noSSO{}, Now: f.clock.now})
	return f
}

func (f *samlFixture) get(t *testing.T, path string) string {
	t.Helper()
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d", path, w.Code)
	}
	return w.Body.String()
}

func validatePath(endpoint, service, st, format string) string {
	return "/cas/" + endpoint + "?service=" + url.QueryEscape(service) + "&ticket=" + st + "&format=" + format
}

// jsonAttributes reads a JSON validation answer's attributes (nil: a
// failure, whose code is returned).
func jsonAttributes(t *testing.T, body string) (map[string][]string, string) {
	t.Helper()
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
		t.Fatalf("%v: %s", err, body)
	}
	if s := d.ServiceResponse.AuthenticationSuccess; s != nil {
		return s.Attributes, ""
	}
	if f := d.ServiceResponse.AuthenticationFailure; f != nil {
		return nil, f.Code
	}
	t.Fatalf("neither success nor failure: %s", body)
	return nil, ""
}

// TestReleasedRolesAndPermissions: a releasing service's CAS 3.0
// validations (p3/serviceValidate and p3/proxyValidate, XML and JSON) and
// samlValidate carry the multi-valued attributes roles and permissions;
// CAS 2.0 validation and a service releasing nothing do not.
func TestReleasedRolesAndPermissions(t *testing.T) {
	a := &authzAnswers{roles: []string{"clerk", "head"}, perms: []string{"docs.contract:approve", "docs:read"}}
	f := newReleaseFixture(t, a)

	for _, ep := range []string{"p3/serviceValidate", "p3/proxyValidate"} {
		body := f.get(t, validatePath(ep, relService, f.ticketFor(t, "u1", "li", relService), "XML"))
		for _, want := range []string{"<cas:roles>clerk</cas:roles>\n      <cas:roles>head</cas:roles>",
			"<cas:permissions>docs.contract:approve</cas:permissions>\n      <cas:permissions>docs:read</cas:permissions>",
			"<cas:groups>finance</cas:groups>"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s XML lacks %q:\n%s", ep, want, body)
			}
		}
		attrs, code := jsonAttributes(t, f.get(t, validatePath(ep, relService, f.ticketFor(t, "u1", "li", relService), "JSON")))
		if code != "" || !slices.Equal(attrs["roles"], a.roles) || !slices.Equal(attrs["permissions"], a.perms) {
			t.Errorf("%s JSON: %v %s", ep, attrs, code)
		}
	}
	// samlValidate: one attribute of several values each.
	_, d := f.post(t, relService, strings.NewReader(envelope(f.ticketFor(t, "u1", "li", relService))))
	if got := d.attributes(); !slices.Equal(got["roles"], a.roles) || !slices.Equal(got["permissions"], a.perms) {
		t.Errorf("samlValidate attributes: %v", got)
	}
	// CAS 2.0 answers no attributes; a service that releases nothing gets
	// none of these.
	if body := f.get(t, validatePath("serviceValidate", relService, f.ticketFor(t, "u1", "li", relService), "XML")); strings.Contains(body, "roles") ||
		!strings.Contains(body, "<cas:user>li</cas:user>") {
		t.Errorf("CAS 2.0: %s", body)
	}
	attrs, code := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", plainService, f.ticketFor(t, "u1", "li", plainService), "JSON")))
	if _, ok := attrs["roles"]; ok || code != "" || attrs["login"] == nil {
		t.Errorf("a service releasing nothing: %v %s", attrs, code)
	}
	if _, ok := attrs["permissions"]; ok {
		t.Errorf("a service releasing nothing: %v", attrs)
	}
	// A person holding nothing: no such attribute (CAS has no empty one).
	a.mu.Lock()
	a.roles, a.perms = nil, nil
	a.mu.Unlock()
	attrs, _ = jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", relService, f.ticketFor(t, "u1", "li", relService), "JSON")))
	if _, ok := attrs["roles"]; ok || attrs["login"] == nil {
		t.Errorf("nothing held: %v", attrs)
	}
}

// TestReleaseAuthzDownIsInternalError: authz not answering is CAS
// INTERNAL_ERROR (XML, JSON) and a SAML Responder failure, and the ticket
// stays usable: the application's retry succeeds.
func TestReleaseAuthzDownIsInternalError(t *testing.T) {
	a := &authzAnswers{roles: []string{"clerk"}}
	f := newReleaseFixture(t, a)
	for _, format := range []string{"XML", "JSON"} {
		st := f.ticketFor(t, "u1", "li", relService)
		a.setDown(true)
		body := f.get(t, validatePath("p3/serviceValidate", relService, st, format))
		if format == "XML" {
			if !strings.Contains(body, `<cas:authenticationFailure code="INTERNAL_ERROR">`) || !strings.Contains(body, "retry later") {
				t.Errorf("XML: %s", body)
			}
		} else if _, code := jsonAttributes(t, body); code != "INTERNAL_ERROR" {
			t.Errorf("JSON: %s", body)
		}
		a.setDown(false)
		attrs, code := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", relService, st, "JSON")))
		if code != "" || !slices.Equal(attrs["roles"], []string{"clerk"}) {
			t.Errorf("%s: the retry: %v %s", format, attrs, code)
		}
	}
	st := f.ticketFor(t, "u1", "li", relService)
	a.setDown(true)
	w, d := f.post(t, relService, strings.NewReader(envelope(st)))
	wantFailure(t, "samlValidate, authz down", w, d, http.StatusOK, "samlp:Responder", "", "INTERNAL_ERROR: ")
	a.setDown(false)
	if _, d = f.post(t, relService, strings.NewReader(envelope(st))); d.Body.Response.Status.Code.Value != "samlp:Success" {
		t.Errorf("samlValidate retry: %+v", d.Body.Response.Status)
	}
	// A service releasing nothing does not depend on authz.
	a.setDown(true)
	if _, code := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", plainService, f.ticketFor(t, "u1", "li", plainService), "JSON"))); code != "" {
		t.Errorf("a service releasing nothing, authz down: %s", code)
	}
}

// TestReleaseDocsExample: the p3/serviceValidate answer docs/integrators.md
// shows for a releasing service is what the handler answers for its person
// (the role clerk of the OA model), byte for byte.
func TestReleaseDocsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := ""
	for _, b := range fence(string(doc)) {
		if b[0] == "xml" && strings.Contains(b[1], "<cas:roles>") {
			want = b[1]
		}
	}
	if want == "" {
		t.Fatal("docs/integrators.md shows no validation answer with roles (```xml)")
	}
	start := time.Date(2026, 12, 1, 19, 6, 43, 0, time.UTC)
	a := &authzAnswers{roles: []string{"clerk"}, perms: []string{"api.contract:access", "docs.contract:write", "docs.inbox:read"}}
	f := newReleaseFixtureAt(t, a, start, &ticketv1.PersonAttributes{Login: "zhangsan", DisplayName: "张三",
		OrgId: "01a2330087311ad36dea6936cac39651", OrgName: "Root", AppAccountId: "zs001", Groups: []string{"finance"}})
	st := f.ticketFor(t, "01a2330089d116ea0e598af2c464b975", "zhangsan", relService)
	got := f.get(t, validatePath("p3/serviceValidate", relService, st, "XML"))
	if strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Errorf("the handler answers:\n%s\nthe docs show:\n%s", got, want)
	}
}
