package cas

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// testKDC is a throwaway MIT Kerberos realm (scripts/krb.sh): its settings.
type testKDC map[string]string

// startTestKDC starts a KDC with the people names, or skips the test when
// scripts/krb.sh says the KDC cannot be installed here.
func startTestKDC(t *testing.T, names ...string) testKDC {
	t.Helper()
	const script = "../../../scripts/krb.sh"
	if out, err := exec.Command(script).CombinedOutput(); err != nil {
		t.Skip("the MIT KDC is not installed and scripts/krb.sh could not install it " +
			"(apt-get install krb5-kdc krb5-admin-server as root): " + strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	out, err := exec.Command(script, append([]string{"start", dir}, names...)...).Output()
	if err != nil {
		t.Fatalf("scripts/krb.sh start: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(script, "stop", dir).Run() })
	k := testKDC{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if key, v, ok := strings.Cut(sc.Text(), "="); ok {
			k[key] = v
		}
	}
	if k["KEYTAB"] == "" || k["PASSWORD"] == "" {
		t.Fatalf("scripts/krb.sh start printed:\n%s", out)
	}
	return k
}

// token is a fresh SPNEGO token (the Authorization header's value) of
// name for HTTP/localhost.
func (k testKDC) token(t *testing.T, name string) string {
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
	r, _ := http.NewRequest(http.MethodGet, "http://localhost/", nil)
	if err := spnego.SetSPNEGOHeader(cl, r, "HTTP/localhost"); err != nil {
		t.Fatal(err)
	}
	return r.Header.Get("Authorization")
}

// verifier is the page's Kerberos with the realm's keytab and rules.
func (k testKDC) verifier(t *testing.T, rules KerberosRules) *Kerberos {
	t.Helper()
	data, err := os.ReadFile(k["KEYTAB"])
	if err != nil {
		t.Fatal(err)
	}
	rules.Service, rules.Realm = "HTTP/localhost", k["REALM"]
	if rules.Realms == nil {
		rules.Realms = map[string]bool{k["REALM"]: true}
	}
	kr, err := NewKerberos(data, rules)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestKerberosMapping: a verified principal maps to a login name: its name
// folded to lower case, per realm a suffix stripped and one appended; a
// principal with an instance (alice/admin) maps to none; a realm not
// accepted is refused; a raw Kerberos token (no SPNEGO wrapper) is taken.
func TestKerberosMapping(t *testing.T) {
	k := startTestKDC(t, "alice", "Carl.SZ", "alice/admin", "alice.sz", "Alice", "ann:x", ".sz")
	realm := k["REALM"]
	plain := k.verifier(t, KerberosRules{})
	ip := netip.MustParseAddr("127.0.0.1")
	check := func(kr *Kerberos, who, login, reason string) {
		t.Helper()
		p, r := kr.verify(strings.TrimPrefix(k.token(t, who), "Negotiate "), ip)
		if r != reason || r == "" && p.login != login || r == ReasonKerberosRealm && p == nil {
			t.Fatalf("%s: %+v %q, want %q %q", who, p, r, login, reason)
		}
		if r == "" && p.principal != who+"@"+realm {
			t.Fatalf("%s: principal %q", who, p.principal)
		}
	}
	check(plain, "alice", "alice", "")
	check(plain, "Carl.SZ", "carl.sz", "")
	check(plain, "alice/admin", "", ReasonKerberosUnmapped)
	check(k.verifier(t, KerberosRules{Strip: map[string]string{realm: ".sz"}, Suffix: map[string]string{realm: "@sz"}}),
		"Carl.SZ", "carl@sz", "")
	check(k.verifier(t, KerberosRules{Realms: map[string]bool{"OTHER.TEST": true}}), "alice", "", ReasonKerberosRealm)
	// One-to-one (review sec27a H1): with strip_suffix a principal without
	// it maps to no one (else alice and alice.sz would both be alice); a
	// case-sensitive (MIT) realm's name maps only in lower case (Alice
	// and alice are two principals); a name never carries a separator.
	strip := k.verifier(t, KerberosRules{Strip: map[string]string{realm: ".sz"}})
	check(strip, "alice.sz", "alice", "")
	check(strip, "alice", "", ReasonKerberosUnmapped)
	check(strip, "Carl.SZ", "carl", "") // a folded realm compares the suffix case aside
	sensitive := k.verifier(t, KerberosRules{CaseSensitive: map[string]bool{realm: true}})
	check(sensitive, "alice", "alice", "")
	check(sensitive, "Alice", "", ReasonKerberosUnmapped)
	check(sensitive, "Carl.SZ", "", ReasonKerberosUnmapped)
	check(k.verifier(t, KerberosRules{CaseSensitive: map[string]bool{realm: true}, Strip: map[string]string{realm: ".sz"}}),
		"alice.sz", "alice", "")
	check(plain, "Alice", "alice", "") // a folded (AD) realm: one person, either case
	check(plain, "ann:x", "", ReasonKerberosUnmapped)
	check(k.verifier(t, KerberosRules{Strip: map[string]string{realm: ".sz"}}), ".sz", "", ReasonKerberosUnmapped)

	// The raw Kerberos token inside the SPNEGO one (as some clients send).
	b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(k.token(t, "alice"), "Negotiate "))
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if p, r := plain.verify(base64.StdEncoding.EncodeToString(st.NegTokenInit.MechTokenBytes), ip); r != "" || p.login != "alice" {
		t.Fatalf("raw token: %+v %q", p, r)
	}
	for name, tok := range map[string]string{"empty": "", "not base64": "%%%", "too long": strings.Repeat("A", 70000)} {
		if _, r := plain.verify(tok, ip); r != ReasonKerberosTokenInvalid {
			t.Errorf("%s: %q", name, r)
		}
	}
}

// krbSSO answers KerberosLogin as identity does for a refusal, and keeps
// the requests.
type krbSSO struct {
	identityv1.SSOServiceClient
	mu    sync.Mutex
	calls []*identityv1.KerberosLoginRequest
}

func (s *krbSSO) KerberosLogin(_ context.Context, r *identityv1.KerberosLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r)
	return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
}

// TestKerberosPage: the login page challenges only browsers of the
// configured networks; a token of a realm not accepted falls back to the
// form with the message and no new challenge (identity is told, to audit
// it).
func TestKerberosPage(t *testing.T) {
	k := startTestKDC(t, "alice")
	inside := k.verifier(t, KerberosRules{Realms: map[string]bool{"OTHER.TEST": true},
		Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	sso := &krbSSO{}
	srv := httptest.NewServer(New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: sso, Kerberos: inside}))
	t.Cleanup(srv.Close)
	get := func(srvURL, authz string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srvURL+"/cas/login?service="+url.QueryEscape("https://weak.example.com/"), nil)
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page := get(srv.URL, "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Negotiate" || !strings.Contains(page, `id="password"`) {
		t.Fatalf("challenge: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, page = get(srv.URL, k.token(t, "alice"))
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "" ||
		!strings.Contains(page, "Your Windows domain is not accepted by this server.") || !strings.Contains(page, `id="password"`) {
		t.Fatalf("foreign realm: %d %q\n%s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), page)
	}
	// identity was told, to audit it (and nothing else was asked).
	sso.mu.Lock()
	if len(sso.calls) != 1 || sso.calls[0].GetRefusal() != ReasonKerberosRealm || sso.calls[0].GetPrincipal() != "alice@"+k["REALM"] ||
		sso.calls[0].GetLogin() != "" {
		t.Fatalf("identity asked: %v", sso.calls)
	}
	sso.mu.Unlock()

	outside := k.verifier(t, KerberosRules{Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	srv2 := httptest.NewServer(New(Options{Tickets: &certTickets{sessions: map[string]int32{}}, SSO: noSSO{}, Kerberos: outside}))
	t.Cleanup(srv2.Close)
	if resp, _ := get(srv2.URL, ""); resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("outside the networks: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A token from outside the networks is not looked at (noSSO would
	// panic if identity were asked): the form as usual.
	if resp, _ := get(srv2.URL, k.token(t, "alice")); resp.StatusCode != http.StatusOK {
		t.Fatalf("token from outside the networks: %d", resp.StatusCode)
	}
}

// krbOTPSSO answers KerberosLogin for alice as identity does for a person
// with an authenticator app (OTP_REQUIRED with a half-done login bound to
// the page's binding), and LoginOtp as otpSSO with method kerberos+totp.
type krbOTPSSO struct {
	*otpSSO
}

func (s krbOTPSSO) KerberosLogin(_ context.Context, r *identityv1.KerberosLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.GetLogin() != "alice" || r.GetOtpBinding() == "" {
		return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_BAD_CREDENTIALS}, nil
	}
	s.bindings["krb-otp-token"] = r.GetOtpBinding()
	return &identityv1.SSOLoginResponse{Reason: identityv1.Reason_REASON_OTP_REQUIRED, OtpToken: "krb-otp-token"}, nil
}

func (s krbOTPSSO) LoginOtp(ctx context.Context, r *identityv1.SSOLoginOtpRequest, o ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	res, err := s.otpSSO.LoginOtp(ctx, r, o...)
	if res != nil && res.GetReason() == identityv1.Reason_REASON_OK {
		res.UserId, res.Login, res.Method = "u-alice", "alice", "kerberos+totp"
	}
	return res, err
}

// TestKerberosPageAsksCode: a Kerberos ticket of a person with an
// authenticator app opens no session but the code page (the browser's
// binding set); the right code opens a level-2 session of method
// KERBEROS_OTP (review sec27a H3).
func TestKerberosPageAsksCode(t *testing.T) {
	k := startTestKDC(t, "alice")
	kr := k.verifier(t, KerberosRules{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	tickets := &certTickets{sessions: map[string]int32{}}
	srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: krbOTPSSO{&otpSSO{bindings: map[string]string{}}}, Kerberos: kr}))
	t.Cleanup(srv.Close)
	c := certBrowser(t, srv, nil)
	weak := "https://weak.example.com/"
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/cas/login?service="+url.QueryEscape(weak), nil)
	req.Header.Set("Authorization", k.token(t, "alice"))
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page := body(resp)
	m := otpTokenField.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil || m[1] != "krb-otp-token" || !strings.Contains(page, "Open your authenticator app") {
		t.Fatalf("ticket step: %d\n%s", resp.StatusCode, page)
	}
	if sc := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); strings.Contains(sc, TGCCookie+"=") || !strings.Contains(sc, otpCookie+"=") {
		t.Fatalf("ticket step cookies: %q", sc)
	}
	tickets.mu.Lock()
	if len(tickets.created) != 0 {
		t.Fatalf("a session was opened by the ticket alone: %v", tickets.created)
	}
	tickets.mu.Unlock()
	csrf := csrfField.FindStringSubmatch(page)[1]
	resp = postForm(t, c, srv.URL+"/cas/login", url.Values{"csrf": {csrf}, "otp_token": {m[1]}, "code": {"123456"}, "service": {weak}})
	body(resp)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), weak+"?ticket=") {
		t.Fatalf("code step: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tickets.mu.Lock()
	defer tickets.mu.Unlock()
	if len(tickets.created) != 1 || tickets.created[0].GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_KERBEROS_OTP ||
		tickets.created[0].GetAuthLevel() != 2 || tickets.created[0].GetLogin() != "alice" {
		t.Fatalf("session: %v", tickets.created)
	}
}

// krbErrSSO answers every KerberosLogin with err and keeps the requests.
type krbErrSSO struct {
	identityv1.SSOServiceClient
	err   error
	mu    sync.Mutex
	calls []*identityv1.KerberosLoginRequest
}

func (s *krbErrSSO) KerberosLogin(_ context.Context, r *identityv1.KerberosLoginRequest, _ ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r)
	return nil, s.err
}

// TestKerberosPageSharedReplay: the page hands identity the digest of the
// authenticator it verified (64 hex digits: the same token, the same
// digest), and identity's answers of the shared replay check show the form
// with a message, never an error page: a replay seen at another replica
// (401, the ticket not accepted), the check unavailable (503, sign in with
// the password); no session either way (review sec27a L4).
func TestKerberosPageSharedReplay(t *testing.T) {
	// identity's reasons (registered by identity's package, not linked here)
	apierr.Register(apierr.Reason{Name: "KERBEROS_AUTHENTICATOR_REPLAYED", Code: apierr.Unauthenticated, Doc: "identity's"},
		apierr.Reason{Name: "KERBEROS_CHECK_UNAVAILABLE", Code: apierr.Unavailable, Legacy: -6, Doc: "identity's"})
	k := startTestKDC(t, "alice")
	kr := k.verifier(t, KerberosRules{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{apierr.ToStatus(apierr.New(apierr.Unauthenticated, "KERBEROS_AUTHENTICATOR_REPLAYED", "used before")), http.StatusUnauthorized,
			"Your Windows sign-in could not be used here"},
		{apierr.ToStatus(apierr.New(apierr.Unavailable, "KERBEROS_CHECK_UNAVAILABLE", "cannot check")), http.StatusServiceUnavailable,
			"Windows sign-in cannot be checked right now"},
	} {
		sso := &krbErrSSO{err: c.err}
		tickets := &certTickets{sessions: map[string]int32{}}
		srv := httptest.NewServer(New(Options{Tickets: tickets, SSO: sso, Kerberos: kr}))
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/cas/login?service="+url.QueryEscape("https://weak.example.com/"), nil)
		req.Header.Set("Authorization", k.token(t, "alice"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page := body(resp)
		srv.Close()
		if resp.StatusCode != c.code || resp.Header.Get("WWW-Authenticate") != "" || !strings.Contains(page, c.msg) || !strings.Contains(page, `id="password"`) {
			t.Fatalf("%v: %d %q\n%s", c.err, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), page)
		}
		sso.mu.Lock()
		if len(sso.calls) != 1 || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sso.calls[0].GetAuthenticator()) || sso.calls[0].GetLogin() != "alice" {
			t.Fatalf("identity asked: %v", sso.calls)
		}
		sso.mu.Unlock()
		tickets.mu.Lock()
		if len(tickets.created) != 0 {
			t.Fatalf("a session was opened: %v", tickets.created)
		}
		tickets.mu.Unlock()
	}
}
