package cas

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestParseOIDC(t *testing.T) {
	good := url.Values{"client_id": {"app1"}, "redirect_uri": {"https://a.example/cb"}, "response_type": {"code"},
		"scope": {"openid  profile"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	q, bad := parseOIDC(good, false)
	if bad != nil || q.scope != "openid profile" || q.challenge == "" {
		t.Fatalf("a good request: %+v %+v", q, bad)
	}
	// What the login form carries reads back the same.
	back, _ := url.ParseQuery(q.encode())
	if q2, bad := parseOIDC(back, true); bad != nil || *q2 != *q {
		t.Fatalf("round trip: %+v %+v", q2, bad)
	}
	for name, tc := range map[string]struct {
		key, value, want string
	}{
		"implicit flow":       {"response_type", "token", "unsupported_response_type"},
		"hybrid flow":         {"response_type", "code id_token", "unsupported_response_type"},
		"plain PKCE":          {"code_challenge_method", "plain", "invalid_request"},
		"short challenge":     {"code_challenge", "abc", "invalid_request"},
		"challenge charset":   {"code_challenge", strings.Repeat("+", 43), "invalid_request"},
		"request object":      {"request", "eyJ.x.y", "request_not_supported"},
		"request_uri":         {"request_uri", "https://x/r", "request_not_supported"},
		"form_post":           {"response_mode", "form_post", "invalid_request"},
		"quote in scope":      {"scope", `openid "x"`, "invalid_scope"},
		"CAS consent scope":   {"scope", "openid cas", "invalid_scope"},
		"CAS consent alone":   {"scope", "cas", "invalid_scope"},
		"long state":          {"state", strings.Repeat("s", 513), "invalid_request"},
		"newline in nonce":    {"nonce", "a\nb", "invalid_request"},
		"method no challenge": {"code_challenge", "", "invalid_request"},
		"no response_type":    {"response_type", "", "invalid_request"},
		"bad max_age":         {"max_age", "-1", "invalid_request"},
	} {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		v.Set(tc.key, tc.value)
		if _, bad := parseOIDC(v, false); bad == nil || bad.code != tc.want {
			t.Errorf("%s: %+v, want %s", name, bad, tc.want)
		}
	}
	// resource may repeat (RFC 8707)
	rv := url.Values{}
	for k, vs := range good {
		rv[k] = vs
	}
	rv["resource"] = []string{"https://api1.example/", "https://api2.example/"}
	if _, bad := parseOIDC(rv, false); bad != nil {
		t.Errorf("resource twice: %+v", bad)
	}
	// a parameter given twice (RFC 6749 §3.1; trial11 D9)
	for _, k := range []string{"state", "scope", "nonce", "response_type", "code_challenge"} {
		v := url.Values{}
		for k, vs := range good {
			v[k] = vs
		}
		v[k] = []string{"a", "b"}
		if _, bad := parseOIDC(v, false); bad == nil || bad.code != "invalid_request" || !strings.Contains(bad.desc, k) {
			t.Errorf("%s twice: %+v", k, bad)
		}
	}
}

func TestHintSubject(t *testing.T) {
	if got := hintSubject("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEyMyJ9.c2ln"); got != "u-123" {
		t.Fatalf("sub %q", got)
	}
	for _, bad := range []string{"", "x", "a.b", "a.!!.c", "a.eyJ9.c"} {
		if got := hintSubject(bad); got != "" {
			t.Errorf("%q: sub %q", bad, got)
		}
	}
}

func TestClientOf(t *testing.T) {
	req := func(basicID, basicSecret string, form url.Values) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/cas/oidc/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicID != "" {
			r.SetBasicAuth(basicID, basicSecret)
		}
		_ = r.ParseForm()
		return r
	}
	if id, s, ok := clientOf(req(url.QueryEscape("app:1"), url.QueryEscape("s%&+"), url.Values{})); !ok || id != "app:1" || s != "s%&+" {
		t.Fatalf("basic, form-encoded: %q %q %v", id, s, ok)
	}
	if id, s, ok := clientOf(req("", "", url.Values{"client_id": {"a"}, "client_secret": {"b"}})); !ok || id != "a" || s != "b" {
		t.Fatalf("post: %q %q %v", id, s, ok)
	}
	if _, _, ok := clientOf(req("a", "b", url.Values{"client_secret": {"b"}})); ok {
		t.Fatal("two ways at once were taken")
	}
	if _, _, ok := clientOf(req("a", "b", url.Values{"client_id": {"other"}})); ok {
		t.Fatal("two client ids were taken")
	}
}
