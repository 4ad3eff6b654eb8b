package cas

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// TestTruthy: a CAS flag is set by any value but an empty one and the
// words of no, in any case (renew=True is .NET's true).
func TestTruthy(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "TRUE": true, "True": true, "1": true, "yes": true, "on": true, "renew": true,
		"": false, " ": false, "false": false, "False": false, "0": false, "no": false, "OFF": false} {
		if got := truthy(v); got != want {
			t.Errorf("truthy(%q) = %v", v, got)
		}
	}
}

// TestRenewAndFormatAtValidation: renew=TRUE, =True or =on refuses a
// ticket that did not follow a fresh login (it did not fail open); an
// unsupported format is INVALID_REQUEST and leaves the ticket unused.
func TestRenewAndFormatAtValidation(t *testing.T) {
	f := newSAMLFixture(t, time.Now(), &ticketv1.PersonAttributes{Login: "mia"})
	get := func(path string) string {
		t.Helper()
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		return w.Body.String()
	}
	svc := url.QueryEscape(samlService)
	st := f.ticketFor(t, "u1", "mia", samlService)
	for _, format := range []string{"YAML", "xml2", "JSONP"} {
		if body := get("/cas/serviceValidate?format=" + format + "&service=" + svc + "&ticket=" + st); !strings.Contains(body, `code="INVALID_REQUEST"`) ||
			!strings.Contains(body, "format must be XML or JSON") {
			t.Fatalf("format=%s: %s", format, body)
		}
	}
	if body := get("/cas/p3/serviceValidate?format=xml&service=" + svc + "&ticket=" + st); !strings.Contains(body, "<cas:user>mia</cas:user>") {
		t.Fatalf("the ticket after unsupported formats: %s", body)
	}
	ctx := context.Background()
	tgt, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: "u2", Login: "ann", AuthLevel: 1, OrgID: "org1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, renew := range []string{"TRUE", "True", "on"} {
		for _, path := range []string{"/cas/serviceValidate", "/cas/p3/serviceValidate", "/cas/proxyValidate"} {
			st, _, err := f.svc.IssueServiceTicket(ctx, tgt, samlService, false) // single sign-on, no fresh login
			if err != nil {
				t.Fatal(err)
			}
			if body := get(path + "?renew=" + renew + "&service=" + svc + "&ticket=" + st); !strings.Contains(body, `code="INVALID_TICKET_SPEC"`) {
				t.Fatalf("%s renew=%s: %s", path, renew, body)
			}
		}
	}
}

// TestFormTooLarge: a form larger than the edge reads is answered 413 and
// says so (not that the sign-in form expired); one that cannot be parsed
// is 400.
func TestFormTooLarge(t *testing.T) {
	h := New(Options{Tickets: down{}, SSO: noSSO{}})
	post := func(body io.Reader, limit int64) (int, string) {
		r := httptest.NewRequest(http.MethodPost, "/cas/login", body)
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		if limit > 0 {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	big := strings.NewReader("username=a&password=" + strings.Repeat("x", 2<<20))
	if code, page := post(big, 1<<20); code != http.StatusRequestEntityTooLarge || !strings.Contains(page, "too large") || strings.Contains(page, "expired") {
		t.Fatalf("large form: %d\n%s", code, page)
	}
	if code, page := post(strings.NewReader("username=%zz"), 0); code != http.StatusBadRequest || !strings.Contains(page, "could not be read") {
		t.Fatalf("unreadable form: %d\n%s", code, page)
	}
}

// TestLegacyRequestForms: credentials in the query string and a
// multipart body are refused with a message that says so, before the
// ticket is looked at (the ticket component is not called).
func TestLegacyRequestForms(t *testing.T) {
	h := New(Options{Tickets: down{}, SSO: noSSO{}})
	call := func(method, path, ct, body string) string {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s %s: %d", method, path, w.Code)
		}
		return w.Body.String()
	}
	if b := call(http.MethodGet, "/cas/ssoAuthService?verb=validateServiceTicket&st=ST-1&appId=a&appSecret=s", "", ""); !strings.Contains(b, "not read from the query string") {
		t.Errorf("credentials in the query: %s", b)
	}
	if b := call(http.MethodPost, "/cas/ssoAuthService", "multipart/form-data; boundary=x",
		"--x\r\nContent-Disposition: form-data; name=\"verb\"\r\n\r\nvalidateServiceTicket\r\n--x--\r\n"); !strings.Contains(b, "multipart body is not read") {
		t.Errorf("multipart: %s", b)
	}
}
