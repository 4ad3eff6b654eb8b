package cas

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/store"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
	"github.com/uias/uias/services/ticket/server"
)

// The samlValidate tests run the real ticket component (domain, gRPC
// adapter, JetStream key-value store on an embedded NATS) behind the
// handler; only identity's attributes are a fixed answer.

// memServices is an in-memory service registry store.
type memServices struct {
	mu sync.Mutex
	m  map[string]*ticket.RegisteredService
}

func (s *memServices) CreateService(_ context.Context, r *ticket.RegisteredService, _ ...events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*ticket.RegisteredService{}
	}
	c := *r
	s.m[r.ID] = &c
	return nil
}

func (s *memServices) GetService(_ context.Context, id string) (*ticket.RegisteredService, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[id]; ok {
		c := *r
		return &c, nil
	}
	return nil, store.NotFound("service")
}

func (s *memServices) ListServices(_ context.Context, appID string) ([]*ticket.RegisteredService, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ticket.RegisteredService
	for _, r := range s.m {
		if appID == "" || r.AppID == appID {
			c := *r
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *ticket.RegisteredService) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *memServices) UpdateService(ctx context.Context, r *ticket.RegisteredService, _ ...events.Event) error {
	return s.CreateService(ctx, r)
}

func (s *memServices) DeleteService(_ context.Context, id string, _ ...events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
	return nil
}

// auditLog keeps the audit records the ticket component publishes.
type auditLog struct {
	mu   sync.Mutex
	recs []events.AuditRecord
}

func (l *auditLog) Publish(ev events.Event) {
	var rec events.AuditRecord
	_ = json.Unmarshal(ev.Payload, &rec)
	rec.API = strings.TrimPrefix(ev.Type, "audit.")
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
}

func (l *auditLog) count(api, result string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.API == api && r.Result == result {
			n++
		}
	}
	return n
}

// person is identity's answer: the attributes released to the application.
type person struct{ a *ticketv1.PersonAttributes }

func (p person) Attributes(context.Context, string, string) (*ticketv1.PersonAttributes, error) {
	return p.a, nil
}

// direct calls the ticket component's gRPC adapter in process.
type direct struct {
	ticketv1.TicketServiceClient
	s *server.Server
}

func (d direct) ValidateServiceTicket(ctx context.Context, r *ticketv1.ValidateServiceTicketRequest, _ ...grpc.CallOption) (*ticketv1.ValidateServiceTicketResponse, error) {
	return d.s.ValidateServiceTicket(ctx, r)
}

// fixedClock is a clock tests move.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fixedClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type samlFixture struct {
	h     *Handler
	svc   *ticket.Service
	audit *auditLog
	clock *fixedClock
}

const samlService = "https://oa.example.com/app/"

func newSAMLFixture(t *testing.T, start time.Time, attrs *ticketv1.PersonAttributes) *samlFixture {
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
	for id, u := range map[string]string{"oa": samlService, "other": "https://other.example.com/"} {
		rs := ticket.RegisteredService{ID: id, AppID: "app-" + id, URL: u, Enabled: true, MinAuthLevel: 1}
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
	srv := server.New(f.svc, nil, nil).WithAttributes(person{attrs})
	f.h = New(Options{Tickets: direct{s: srv}, SSO: noSSO{}, Now: f.clock.now})
	return f
}

// ticketFor signs userID in (a password login) and issues a ticket for
// service.
func (f *samlFixture) ticketFor(t *testing.T, userID, login, service string) string {
	t.Helper()
	ctx := context.Background()
	tgt, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: userID, Login: login, AuthLevel: 1, OrgID: "org1"})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := f.svc.IssueServiceTicket(ctx, tgt, service, true)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// envelope is a request as the Java client's Saml11TicketValidator sends it.
func envelope(artifact string) string {
	return `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/><SOAP-ENV:Body>` +
		`<samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_192.168.16.51.1024506224022" IssueInstant="2026-12-01T19:06:43.000Z">` +
		`<samlp:AssertionArtifact>` + artifact + `</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>`
}

func (f *samlFixture) post(t *testing.T, target string, body io.Reader) (*httptest.ResponseRecorder, *samlDoc) {
	t.Helper()
	path := "/cas/samlValidate"
	if target != "" {
		path += "?TARGET=" + url.QueryEscape(target)
	}
	r := httptest.NewRequest(http.MethodPost, path, body)
	r.Header.Set("Content-Type", "text/xml")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if ct := w.Header().Get("Content-Type"); ct != "text/xml;charset=UTF-8" {
		t.Fatalf("content type %q", ct)
	}
	d, err := readSAML(w.Body.Bytes())
	if err != nil {
		t.Fatalf("the answer is not a SOAP samlp:Response: %v\n%s", err, w.Body)
	}
	return w, d
}

// samlDoc is an answer read back namespace-aware (as clients read it,
// prefixes whatever they are).
type samlDoc struct {
	XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
	Body    struct {
		Response struct {
			ResponseID, InResponseTo, IssueInstant, Recipient string `xml:",attr"`
			MajorVersion                                      string `xml:",attr"`
			Status                                            struct {
				Code struct {
					Value string `xml:",attr"`
					Sub   *struct {
						Value string `xml:",attr"`
					} `xml:"urn:oasis:names:tc:SAML:1.0:protocol StatusCode"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:protocol StatusCode"`
				Message string `xml:"urn:oasis:names:tc:SAML:1.0:protocol StatusMessage"`
			} `xml:"urn:oasis:names:tc:SAML:1.0:protocol Status"`
			Assertion *struct {
				AssertionID, Issuer, IssueInstant string `xml:",attr"`
				Conditions                        struct {
					NotBefore, NotOnOrAfter string `xml:",attr"`
					Audience                string `xml:"urn:oasis:names:tc:SAML:1.0:assertion AudienceRestrictionCondition>Audience"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:assertion Conditions"`
				Authn struct {
					AuthenticationInstant, AuthenticationMethod string `xml:",attr"`
					Name                                        string `xml:"urn:oasis:names:tc:SAML:1.0:assertion Subject>NameIdentifier"`
					Method                                      string `xml:"urn:oasis:names:tc:SAML:1.0:assertion Subject>SubjectConfirmation>ConfirmationMethod"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:assertion AuthenticationStatement"`
				Attrs struct {
					Name  string `xml:"urn:oasis:names:tc:SAML:1.0:assertion Subject>NameIdentifier"`
					Attrs []struct {
						AttributeName, AttributeNamespace string   `xml:",attr"`
						Values                            []string `xml:"urn:oasis:names:tc:SAML:1.0:assertion AttributeValue"`
					} `xml:"urn:oasis:names:tc:SAML:1.0:assertion Attribute"`
				} `xml:"urn:oasis:names:tc:SAML:1.0:assertion AttributeStatement"`
			} `xml:"urn:oasis:names:tc:SAML:1.0:assertion Assertion"`
		} `xml:"urn:oasis:names:tc:SAML:1.0:protocol Response"`
	} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
}

func readSAML(b []byte) (*samlDoc, error) {
	var d samlDoc
	if err := xml.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	if d.Body.Response.ResponseID == "" || d.Body.Response.MajorVersion != "1" {
		return nil, errors.New("no samlp:Response with a ResponseID and MajorVersion 1")
	}
	return &d, nil
}

func (d *samlDoc) attributes() map[string][]string {
	out := map[string][]string{}
	if a := d.Body.Response.Assertion; a != nil {
		for _, at := range a.Attrs.Attrs {
			if at.AttributeNamespace != casAttributeNS {
				out["wrong namespace: "+at.AttributeName] = nil
			}
			out[at.AttributeName] = append(out[at.AttributeName], at.Values...)
		}
	}
	return out
}

// wantFailure checks a failure answer: HTTP status, SAML status and
// subcode, a message containing msg, no assertion.
func wantFailure(t *testing.T, name string, w *httptest.ResponseRecorder, d *samlDoc, code int, status, sub, msg string) {
	t.Helper()
	r := d.Body.Response
	gotSub := ""
	if r.Status.Code.Sub != nil {
		gotSub = r.Status.Code.Sub.Value
	}
	if w.Code != code || r.Status.Code.Value != status || gotSub != sub || !strings.Contains(r.Status.Message, msg) || r.Assertion != nil {
		t.Errorf("%s: HTTP %d status %s/%s message %q (want %d %s/%s %q)\n%s", name, w.Code, r.Status.Code.Value, gotSub,
			r.Status.Message, code, status, sub, msg, w.Body)
	}
}

func TestSAMLValidateSuccess(t *testing.T) {
	start := time.Date(2026, 12, 1, 19, 6, 43, 0, time.UTC)
	hostile := `<b>Zhang & "San"</b>'` + "\u4e09"
	f := newSAMLFixture(t, start, &ticketv1.PersonAttributes{Login: "zhangsan", DisplayName: hostile, OrgId: "org1",
		OrgName: "Root & Co", AppAccountId: "zs001", Groups: []string{"finance", "approvers"}})
	st := f.ticketFor(t, "u1", "zhangsan", samlService)
	f.clock.advance(2 * time.Second) // validated 2 s after the login
	w, d := f.post(t, samlService, strings.NewReader(envelope(st)))
	r := d.Body.Response
	if w.Code != http.StatusOK || r.Status.Code.Value != "samlp:Success" || r.Status.Message != "" || r.Assertion == nil {
		t.Fatalf("success: %d\n%s", w.Code, w.Body)
	}
	if r.InResponseTo != "_192.168.16.51.1024506224022" || r.Recipient != samlService {
		t.Errorf("InResponseTo %q, Recipient %q", r.InResponseTo, r.Recipient)
	}
	a := r.Assertion
	now := start.Add(2 * time.Second)
	for name, got := range map[string]string{
		"Response IssueInstant":  r.IssueInstant,
		"Assertion IssueInstant": a.IssueInstant,
		"NotBefore":              a.Conditions.NotBefore,
		"NotOnOrAfter":           a.Conditions.NotOnOrAfter,
		"AuthenticationInstant":  a.Authn.AuthenticationInstant,
	} {
		want := map[string]time.Time{"Response IssueInstant": now, "Assertion IssueInstant": now, "NotBefore": now.Add(-5 * time.Second),
			"NotOnOrAfter": now.Add(30 * time.Second), "AuthenticationInstant": start}[name]
		if got != want.Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("%s = %q, want %s", name, got, want.Format("2006-01-02T15:04:05.000Z"))
		}
	}
	if a.Conditions.Audience != samlService {
		t.Errorf("audience %q", a.Conditions.Audience)
	}
	if a.Authn.Name != "zhangsan" || a.Attrs.Name != "zhangsan" || a.Authn.AuthenticationMethod != "urn:oasis:names:tc:SAML:1.0:am:password" ||
		a.Authn.Method != "urn:oasis:names:tc:SAML:1.0:cm:artifact" {
		t.Errorf("statements: %+v / %q", a.Authn, a.Attrs.Name)
	}
	if a.AssertionID == r.ResponseID || !strings.HasPrefix(a.AssertionID, "_") || a.Issuer != "example.com" {
		t.Errorf("ids %q %q, issuer %q", r.ResponseID, a.AssertionID, a.Issuer)
	}
	got := d.attributes()
	want := map[string][]string{
		"authenticationDate": {"2026-12-01T19:06:43Z"}, "longTermAuthenticationRequestTokenUsed": {"false"},
		"isFromNewLogin": {"true"}, "userId": {"u1"}, "authLevel": {"1"}, "login": {"zhangsan"}, "displayName": {hostile},
		"orgId": {"org1"}, "orgName": {"Root & Co"}, "appAccountId": {"zs001"},
		"groups": {"finance", "approvers"}, "memberOf": {"finance", "approvers"},
	}
	if len(got) != len(want) {
		t.Errorf("attributes %v, want %v", got, want)
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	// The person's text is escaped, never markup.
	if strings.Contains(w.Body.String(), "<b>") || strings.Contains(w.Body.String(), "Root & Co") {
		t.Errorf("unescaped attribute values:\n%s", w.Body)
	}
	if f.audit.count("ticket.validate", "success") != 1 {
		t.Errorf("audit: %+v", f.audit.recs)
	}

	// Replayed: the ticket was used up.
	w, d = f.post(t, samlService, strings.NewReader(envelope(st)))
	wantFailure(t, "replayed", w, d, http.StatusOK, "samlp:Requester", "samlp:RequestDenied", "INVALID_TICKET: ticket 'ST-")
	if f.audit.count("ticket.validate", "failure") != 1 {
		t.Errorf("the replay is not audited: %+v", f.audit.recs)
	}
}

func TestSAMLValidateRefusals(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "li"})

	// A wrong TARGET refuses the ticket and uses it up (CAS 3.0 §3.1.1).
	st := f.ticketFor(t, "u2", "li", samlService)
	w, d := f.post(t, "https://other.example.com/", strings.NewReader(envelope(st)))
	wantFailure(t, "wrong TARGET", w, d, http.StatusOK, "samlp:Requester", "samlp:RequestDenied", "INVALID_SERVICE: ")
	w, d = f.post(t, samlService, strings.NewReader(envelope(st)))
	wantFailure(t, "after a wrong TARGET", w, d, http.StatusOK, "samlp:Requester", "samlp:RequestDenied", "INVALID_TICKET")

	// A missing TARGET is a malformed request; the ticket stays usable.
	st = f.ticketFor(t, "u2", "li", samlService)
	w, d = f.post(t, "", strings.NewReader(envelope(st)))
	wantFailure(t, "no TARGET", w, d, http.StatusOK, "samlp:Requester", "", "the TARGET parameter (the service URL) is required")
	if _, d = f.post(t, samlService, strings.NewReader(envelope(st))); d.Body.Response.Status.Code.Value != "samlp:Success" {
		t.Errorf("the ticket was used up by a request without TARGET: %+v", d.Body.Response.Status)
	}

	// Unknown, forged and expired tickets.
	w, d = f.post(t, samlService, strings.NewReader(envelope("ST-nope")))
	wantFailure(t, "unknown", w, d, http.StatusOK, "samlp:Requester", "samlp:RequestDenied", "INVALID_TICKET: ticket 'ST-nope' not recognized")
	st = f.ticketFor(t, "u2", "li", samlService)
	w, d = f.post(t, samlService, strings.NewReader(envelope(st[:len(st)-2]+"00")))
	wantFailure(t, "forged", w, d, http.StatusOK, "samlp:Requester", "samlp:RequestDenied", "INVALID_TICKET")
	f.clock.advance(ticket.DefaultSTTTL + time.Second)
	w, d = f.post(t, samlService, strings.NewReader(envelope(st)))
	wantFailure(t, "expired", w, d, http.StatusOK, "samlp:Requester", "samlp:RequestDenied", "has expired")
}

func TestSAMLValidateMalformed(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "li"})
	st := f.ticketFor(t, "u3", "li", samlService)
	soap := func(inner string) string {
		return `<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>` + inner + `</e:Body></e:Envelope>`
	}
	req := func(inner string) string {
		return soap(`<p:Request xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1">` + inner + `</p:Request>`)
	}
	for name, tc := range map[string]struct{ body, msg string }{
		"empty body":         {"", "not well-formed XML"},
		"not XML":            {"ticket=" + st, "not well-formed XML"},
		"truncated":          {envelope(st)[:120], "not well-formed XML"},
		"not SOAP":           {`<Envelope><Body/></Envelope>`, "not a SOAP envelope"},
		"no Request":         {soap(""), "must hold one samlp:Request"},
		"other body element": {soap(`<x:Query xmlns:x="urn:x"/>`), "must hold one samlp:Request"},
		"two Requests":       {soap(`<p:Request xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol"/><p:Request xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol"/>`), "must hold one samlp:Request"},
		"no artifact":        {req(""), "has no samlp:AssertionArtifact"},
		"empty artifact":     {req("<p:AssertionArtifact> </p:AssertionArtifact>"), "is empty"},
		"two artifacts":      {req("<p:AssertionArtifact>" + st + "</p:AssertionArtifact><p:AssertionArtifact>ST-2</p:AssertionArtifact>"), "exactly one"},
		"markup in artifact": {req("<p:AssertionArtifact><b>" + st + "</b></p:AssertionArtifact>"), "text only"},
		"long artifact":      {req("<p:AssertionArtifact>ST-" + strings.Repeat("a", 300) + "</p:AssertionArtifact>"), "not a CAS ticket"},
		"artifact in the wrong namespace": {soap(`<p:Request xmlns:p="urn:oasis:names:tc:SAML:1.0:protocol"><q:AssertionArtifact xmlns:q="urn:x">` +
			st + `</q:AssertionArtifact></p:Request>`), "has no samlp:AssertionArtifact"},
		"DOCTYPE with an entity": {`<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + envelope("&x;"), "DOCTYPE"},
		"undeclared entity":      {envelope("&x;"), "not well-formed XML"},
	} {
		w, d := f.post(t, samlService, strings.NewReader(tc.body))
		wantFailure(t, name, w, d, http.StatusOK, "samlp:Requester", "", tc.msg)
		if b := w.Body.String(); strings.Contains(b, "syntax error") || strings.Contains(b, "passwd") {
			t.Errorf("%s: the answer shows the parser's words or the request: %s", name, b)
		}
	}
	// None of them used the ticket.
	if _, d := f.post(t, samlService, strings.NewReader(envelope(st))); d.Body.Response.Status.Code.Value != "samlp:Success" {
		t.Errorf("after the malformed requests: %+v", d.Body.Response.Status)
	}
}

// onlyReader hides a body's length (a chunked request).
type onlyReader struct{ io.Reader }

func TestSAMLValidateBodyBound(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "li"})
	st := f.ticketFor(t, "u4", "li", samlService)
	// A SOAP header padding the request past the bound.
	big := strings.Replace(envelope(st), "<SOAP-ENV:Header/>", "<SOAP-ENV:Header><x>"+strings.Repeat("y", samlMaxBody)+"</x></SOAP-ENV:Header>", 1)
	for name, body := range map[string]io.Reader{"with its length": strings.NewReader(big), "chunked": onlyReader{strings.NewReader(big)}} {
		w, d := f.post(t, samlService, body)
		wantFailure(t, name, w, d, http.StatusRequestEntityTooLarge, "samlp:Requester", "", "larger than 32768 bytes")
	}
	// Just under the bound, with a header, is served.
	pad := samlMaxBody - len(envelope(st)) - len("<SOAP-ENV:Header><x></x></SOAP-ENV:Header>") + len("<SOAP-ENV:Header/>")
	ok := strings.Replace(envelope(st), "<SOAP-ENV:Header/>", "<SOAP-ENV:Header><x>"+strings.Repeat("y", pad)+"</x></SOAP-ENV:Header>", 1)
	if len(ok) != samlMaxBody {
		t.Fatalf("padded to %d", len(ok))
	}
	if w, d := f.post(t, samlService, onlyReader{strings.NewReader(ok)}); d.Body.Response.Status.Code.Value != "samlp:Success" {
		t.Errorf("a request of exactly %d bytes: %d %s", samlMaxBody, w.Code, w.Body)
	}
}

func TestSAMLValidateMethods(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "li"})
	st := f.ticketFor(t, "u5", "li", samlService)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut} {
		r := httptest.NewRequest(m, "/cas/samlValidate?TARGET="+url.QueryEscape(samlService)+"&ticket="+st, strings.NewReader(envelope(st)))
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("%s: %d, Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
	}
	if _, d := f.post(t, samlService, strings.NewReader(envelope(st))); d.Body.Response.Status.Code.Value != "samlp:Success" {
		t.Errorf("the refused methods used the ticket: %+v", d.Body.Response.Status)
	}
}

// The ticket store down: a Responder failure that says to retry, nothing
// of the cause.
func TestSAMLValidateStoreDown(t *testing.T) {
	h := New(Options{Tickets: down{}, SSO: noSSO{}})
	r := httptest.NewRequest(http.MethodPost, "/cas/samlValidate?TARGET="+url.QueryEscape(samlService), strings.NewReader(envelope("ST-1")))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	d, err := readSAML(w.Body.Bytes())
	if err != nil {
		t.Fatal(err, w.Body)
	}
	wantFailure(t, "store down", w, d, http.StatusOK, "samlp:Responder", "", "unavailable, retry later")
	if strings.Contains(w.Body.String(), "TICKET_STORE") {
		t.Errorf("internals in the answer: %s", w.Body)
	}
}

// fence returns the fenced blocks of a Markdown text with their info
// string.
func fence(text string) [][2]string {
	var out [][2]string
	var info string
	var block strings.Builder
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "```") {
			if in {
				out = append(out, [2]string{info, block.String()})
				block.Reset()
			} else {
				info = strings.TrimPrefix(line, "```")
			}
			in = !in
			continue
		}
		if in {
			block.WriteString(line + "\n")
		}
	}
	return out
}

// TestSAMLValidateDocsExample: the request docs/integrators.md shows,
// sent as written (its ticket replaced by a live one), is answered with
// the answer it shows, byte for byte but for the fresh ids.
func TestSAMLValidateDocsExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	var reqText, answer string
	for _, b := range fence(string(doc)) {
		switch {
		case b[0] == "http" && strings.HasPrefix(b[1], "POST /cas/samlValidate"):
			reqText = b[1]
		case reqText != "" && answer == "" && b[0] == "xml" && strings.Contains(b[1], "<samlp:Response"):
			answer = b[1]
		}
	}
	if reqText == "" || answer == "" {
		t.Fatal("docs/integrators.md has no samlValidate request (```http) followed by its answer (```xml)")
	}
	head, body, ok := strings.Cut(reqText, "\n\n")
	if !ok {
		t.Fatal("the example request has no blank line before its body")
	}
	lines := strings.Split(head, "\n")
	target := strings.Fields(lines[0])[1]
	host := ""
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "Host") {
			host = strings.TrimSpace(v)
		}
	}
	// The person and times of the example.
	start := time.Date(2026, 12, 1, 19, 6, 43, 0, time.UTC)
	f := newSAMLFixture(t, start, &ticketv1.PersonAttributes{Login: "zhangsan", DisplayName: "张三", OrgId: "01a2330087311ad36dea6936cac39651",
		OrgName: "Root", AppAccountId: "zs001", Groups: []string{"finance"}})
	st := f.ticketFor(t, "01a2330089d116ea0e598af2c464b975", "zhangsan", samlService)
	f.clock.advance(1500 * time.Millisecond)
	artRE := regexp.MustCompile(`(<samlp:AssertionArtifact>)[^<]*(</samlp:AssertionArtifact>)`)
	if !artRE.MatchString(body) {
		t.Fatalf("the example request has no samlp:AssertionArtifact:\n%s", body)
	}
	body = artRE.ReplaceAllString(body, "${1}"+st+"${2}")
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	r.Host = host
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	ids := regexp.MustCompile(`(ResponseID|AssertionID)="_[0-9a-f]{32}"`)
	norm := func(s string) string { return strings.TrimSpace(ids.ReplaceAllString(s, `$1="_ID"`)) }
	if got, want := norm(w.Body.String()), norm(answer); got != want {
		t.Errorf("the answer differs from the documented one:\n got:\n%s\nwant:\n%s", got, want)
	}
	if !bytes.HasPrefix(w.Body.Bytes(), []byte("<?xml")) || w.Code != http.StatusOK {
		t.Errorf("HTTP %d", w.Code)
	}
}

// TestSAMLValidateCertificateAndSOAP12: a ticket of a certificate login
// (level 2) is said to come from TLS client authentication
// (urn:ietf:rfc:2246, as Apereo says of X.509 logins); a SOAP 1.2 request
// is answered in a SOAP 1.2 envelope (application/soap+xml), its success
// and its refusals alike.
func TestSAMLValidateCertificateAndSOAP12(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "cora"})
	ctx := context.Background()
	tgt, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: "u2", Login: "cora", AuthLevel: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := f.svc.IssueServiceTicket(ctx, tgt, samlService, true)
	if err != nil {
		t.Fatal(err)
	}
	_, d := f.post(t, samlService, strings.NewReader(envelope(st)))
	if a := d.Body.Response.Assertion; a == nil || a.Authn.AuthenticationMethod != "urn:ietf:rfc:2246" {
		t.Fatalf("level-2 ticket: %+v", d.Body.Response)
	}

	post12 := func(body string) (*httptest.ResponseRecorder, *samlDoc) {
		t.Helper()
		r := httptest.NewRequest(http.MethodPost, "/cas/samlValidate?TARGET="+url.QueryEscape(samlService), strings.NewReader(body))
		r.Header.Set("Content-Type", "application/soap+xml")
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if ct := w.Header().Get("Content-Type"); ct != "application/soap+xml;charset=UTF-8" {
			t.Fatalf("SOAP 1.2 answer's content type %q", ct)
		}
		var root struct{ XMLName xml.Name }
		if err := xml.Unmarshal(w.Body.Bytes(), &root); err != nil || root.XMLName.Space != soap12NS || root.XMLName.Local != "Envelope" {
			t.Fatalf("SOAP 1.2 request answered in %v (%v)\n%s", root.XMLName, err, w.Body)
		}
		// The same answer read as the 1.1 one is.
		d, err := readSAML([]byte(strings.ReplaceAll(w.Body.String(), soap12NS, soap11NS)))
		if err != nil {
			t.Fatalf("%v\n%s", err, w.Body)
		}
		return w, d
	}
	to12 := func(env string) string { return strings.ReplaceAll(env, soap11NS, soap12NS) }
	_, d = post12(to12(envelope(f.ticketFor(t, "u3", "li", samlService))))
	if r := d.Body.Response; r.Status.Code.Value != "samlp:Success" || r.Assertion == nil ||
		r.Assertion.Authn.AuthenticationMethod != "urn:oasis:names:tc:SAML:1.0:am:password" {
		t.Fatalf("SOAP 1.2 success: %+v", r)
	}
	w, d := post12(to12(`<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body/></SOAP-ENV:Envelope>`))
	wantFailure(t, "SOAP 1.2 without a Request", w, d, http.StatusOK, "samlp:Requester", "", "must hold one samlp:Request")
}

// TestSAMLValidateAuthMethod: the session's recorded method decides the
// AuthenticationMethod: a certificate login TLS client authentication, a
// password with an authenticator app's code (level 2 too) unspecified
// (SAML 1.1 names no such method; the authLevel attribute says 2), a
// password login password.
func TestSAMLValidateAuthMethod(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "cora"})
	ctx := context.Background()
	for _, c := range []struct {
		level  int
		method ticketv1.AuthMethod
		want   string
	}{
		{2, ticketv1.AuthMethod_AUTH_METHOD_PASSWORD_OTP, "urn:oasis:names:tc:SAML:1.0:am:unspecified"},
		{2, ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE, "urn:ietf:rfc:2246"},
		{1, ticketv1.AuthMethod_AUTH_METHOD_PASSWORD, "urn:oasis:names:tc:SAML:1.0:am:password"},
	} {
		tgt, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: "u2", Login: "cora", AuthLevel: c.level, AuthMethod: int(c.method)})
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := f.svc.IssueServiceTicket(ctx, tgt, samlService, true)
		if err != nil {
			t.Fatal(err)
		}
		_, d := f.post(t, samlService, strings.NewReader(envelope(st)))
		if a := d.Body.Response.Assertion; a == nil || a.Authn.AuthenticationMethod != c.want {
			t.Fatalf("%v: %+v, want %s", c.method, d.Body.Response, c.want)
		}
	}
}

// TestOIDCEndpointMethods: the OpenID Connect endpoints programs call
// answer another method with 405, Allow and OAuth's JSON error (as their
// other refusals), not a line of text; the CAS endpoints keep theirs.
func TestOIDCEndpointMethods(t *testing.T) {
	f := newSAMLFixture(t, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "li"})
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodGet, "/cas/oidc/token", "POST"},
		{http.MethodPut, "/cas/oidc/userinfo", "GET, POST"},
		{http.MethodGet, "/cas/oidc/introspect", "POST"},
		{http.MethodDelete, "/cas/oidc/revoke", "POST"},
		{http.MethodPost, "/cas/oidc/jwks", "GET"},
	} {
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		var e map[string]string
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != tc.allow || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") ||
			e["error"] != "invalid_request" || e["error_description"] != "this endpoint takes "+tc.allow {
			t.Errorf("%s %s: %d Allow %q %s %s", tc.method, tc.path, w.Code, w.Header().Get("Allow"), w.Header().Get("Content-Type"), w.Body.String())
		}
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/cas/serviceValidate", nil))
	if w.Code != http.StatusMethodNotAllowed || strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("a CAS endpoint: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}
