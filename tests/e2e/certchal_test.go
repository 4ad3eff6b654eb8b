package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// chalPKI are the people's CAs of the challenge tests: an ECDSA P-256 one
// and an SM2 one, in one PEM file (identity.cert_challenge_ca_file).
type chalPKI struct {
	ec     *x509.Certificate
	ecKey  *ecdsa.PrivateKey
	sm     *x509.Certificate
	smKey  *sm2.PrivateKey
	caFile string
}

func newChalPKI(t *testing.T) *chalPKI {
	t.Helper()
	p := &chalPKI{}
	var err error
	if p.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	if p.smKey, err = sm2.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	ca := func(cn string) *x509.Certificate {
		return &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, IsCA: true, BasicConstraintsValid: true}
	}
	ecDER, err := x509.CreateCertificate(rand.Reader, ca("e2e people CA"), ca("e2e people CA"), &p.ecKey.PublicKey, p.ecKey)
	if err != nil {
		t.Fatal(err)
	}
	smDER, err := smx509.CreateCertificate(rand.Reader, ca("e2e SM2 people CA"), ca("e2e SM2 people CA"), &p.smKey.PublicKey, p.smKey)
	if err != nil {
		t.Fatal(err)
	}
	p.ec, _ = x509.ParseCertificate(ecDER)
	sc, err := smx509.ParseCertificate(smDER)
	if err != nil {
		t.Fatal(err)
	}
	p.sm = sc.ToX509()
	p.caFile = filepath.Join(t.TempDir(), "people-ca.pem")
	pemFile := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ecDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: smDER})...)
	if err := os.WriteFile(p.caFile, pemFile, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// usbKey is a person's certificate and private key, as on a USB key.
type usbKey struct {
	der []byte
	ec  *ecdsa.PrivateKey
	sm  *sm2.PrivateKey
}

// issue makes a client certificate for cn: SM2 (of the SM2 CA) or ECDSA
// P-256.
func (p *chalPKI) issue(t *testing.T, cn string, useSM2 bool) *usbKey {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	k := &usbKey{}
	var err error
	if useSM2 {
		if k.sm, err = sm2.GenerateKey(rand.Reader); err != nil {
			t.Fatal(err)
		}
		k.der, err = smx509.CreateCertificate(rand.Reader, tmpl, p.sm, &k.sm.PublicKey, p.smKey)
	} else {
		if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
		k.der, err = x509.CreateCertificate(rand.Reader, tmpl, p.ec, &k.ec.PublicKey, p.ecKey)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sign is what the USB key's control does: a signature of the challenge
// string's UTF-8 bytes (SM2: SM3 with the default user ID; ECDSA: SHA-256,
// ASN.1), base64.
func (k *usbKey) sign(t *testing.T, challenge string) string {
	t.Helper()
	var (
		sig []byte
		err error
	)
	if k.sm != nil {
		sig, err = k.sm.SignWithSM2(rand.Reader, nil, []byte(challenge))
	} else {
		sum := sha256.Sum256([]byte(challenge))
		sig, err = ecdsa.SignASN1(rand.Reader, k.ec, sum[:])
	}
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

func (k *usbKey) certificate() string { return base64.StdEncoding.EncodeToString(k.der) }

// TestCertChallengeAuthenticate: an application signs a person in by their
// SM2 certificate through the REST edge (no TLS client certificate
// anywhere): it gets a challenge (App_ID and secret), the person's USB
// key signs it, Authenticate auth type 4 answers OK; the same answer again,
// a bad signature, another person's certificate and a challenge without
// the application's credentials are refused with their reasons.
func TestCertChallengeAuthenticate(t *testing.T) {
	p := newChalPKI(t)
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).CertChallengeCAFile = p.caFile
	e := start(t, cfg)
	e.login()
	f := e.seed("usbk", "zhao", nil, nil)
	key := p.issue(t, "Zhao", true)
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: key.der}); err != nil {
		t.Fatalf("binding an SM2 certificate: %v", err)
	}
	other := e.seed("usbk2", "qian", nil, nil)
	okey := p.issue(t, "Qian", false)
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: other.userID, Certificate: okey.der}); err != nil {
		t.Fatal(err)
	}

	challenge := func() string {
		t.Helper()
		code, out, _ := e.rest(http.MethodPost, "/v1/authenticate:challenge", appHeaders(f), map[string]any{})
		c, _ := out["challenge"].(string)
		if code != http.StatusOK || c == "" || out["expire_time"] == nil {
			t.Fatalf("challenge: %d %v", code, out)
		}
		return c
	}
	auth := func(c string, k *usbKey, sig string) (int, map[string]any) {
		t.Helper()
		if sig == "" {
			sig = k.sign(t, c)
		}
		code, out, _ := e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
			"auth_type": "AUTH_TYPE_CERTIFICATE", "challenge": c, "certificate": k.certificate(), "signature": sig})
		return code, out
	}
	reason := func(out map[string]any) string {
		for _, d := range out["details"].([]any) {
			if m, ok := d.(map[string]any); ok && m["reason"] != nil {
				return m["reason"].(string)
			}
		}
		return ""
	}

	c := challenge()
	code, out := auth(c, key, "")
	if code != http.StatusOK || out["result_code"] != nil && out["result_code"].(float64) != 0 || out["reason"] != "REASON_OK" {
		t.Fatalf("certificate sign-in: %d %v", code, out)
	}
	if u, _ := out["user"].(map[string]any); u == nil || u["id"] != f.userID {
		t.Fatalf("signed in %v", out["user"])
	}
	// The OpenSSL line of docs/integrators.md, with an ECDSA key of
	// zhao's (PEM), when openssl is installed.
	if _, err := exec.LookPath("openssl"); err == nil {
		ek := p.issue(t, "Zhao EC", false)
		if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: ek.der}); err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(ek.ec)
		keyFile := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
			t.Fatal(err)
		}
		c := challenge()
		cmd := exec.Command("sh", "-c", `printf '%s' "$CHALLENGE" | openssl dgst -sha256 -sign "$KEY" | base64 -w0`)
		cmd.Env = append(os.Environ(), "CHALLENGE="+c, "KEY="+keyFile)
		sig, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		if code, out := auth(c, ek, strings.TrimSpace(string(sig))); code != http.StatusOK || out["reason"] != "REASON_OK" {
			t.Fatalf("signed by openssl: %d %v", code, out)
		}
		// SM2 (OpenSSL 3): the SM3 digest with the default user ID.
		sk, err := smx509.MarshalPKCS8PrivateKey(key.sm)
		if err != nil {
			t.Fatal(err)
		}
		smFile := filepath.Join(t.TempDir(), "sm2key.pem")
		if err := os.WriteFile(smFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: sk}), 0o600); err != nil {
			t.Fatal(err)
		}
		c = challenge()
		cmd = exec.Command("sh", "-c", `printf '%s' "$CHALLENGE" | openssl dgst -sm3 -sign "$KEY" -sigopt distid:1234567812345678 | base64 -w0`)
		cmd.Env = append(os.Environ(), "CHALLENGE="+c, "KEY="+smFile)
		if sig, err = cmd.Output(); err != nil {
			t.Fatalf("openssl sm2: %v", err)
		}
		if code, out := auth(c, key, strings.TrimSpace(string(sig))); code != http.StatusOK || out["reason"] != "REASON_OK" {
			t.Fatalf("SM2 signed by openssl: %d %v", code, out)
		}
	}
	// The same answer again.
	if code, out := auth(c, key, ""); code != http.StatusUnauthorized || reason(out) != "CERTIFICATE_CHALLENGE_REPLAYED" {
		t.Fatalf("replay: %d %v", code, out)
	}
	// A signature of another challenge.
	if code, out := auth(challenge(), key, key.sign(t, "another")); code != http.StatusUnauthorized || reason(out) != "CERTIFICATE_SIGNATURE_INVALID" {
		t.Fatalf("bad signature: %d %v", code, out)
	}
	// Qian's certificate does not prove zhao's account.
	if code, out := auth(challenge(), okey, ""); code != http.StatusOK || out["reason"] != "REASON_BAD_CREDENTIALS" {
		t.Fatalf("another's certificate: %d %v", code, out)
	}
	// Malformed: no signature.
	code, out, _ = e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"auth_type": "AUTH_TYPE_CERTIFICATE", "challenge": challenge(), "certificate": key.certificate()})
	if code != http.StatusBadRequest || reason(out) != "BAD_REQUEST" {
		t.Fatalf("no signature: %d %v", code, out)
	}
	// A challenge needs the application's credentials.
	if code, _, _ := e.rest(http.MethodPost, "/v1/authenticate:challenge", nil, map[string]any{}); code != http.StatusUnauthorized {
		t.Fatalf("challenge without credentials: %d", code)
	}
	// The page's calls are components' only: an application gets neither
	// a page challenge nor a page sign-in with its answer.
	sso := identityv1.NewSSOServiceClient(e.conn)
	_, err := sso.IssueCertificateChallenge(f.ctx(), &identityv1.CertificateChallengeRequest{})
	wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
	c = challenge()
	sig, _ := base64.StdEncoding.DecodeString(key.sign(t, c))
	_, err = sso.CertificateLogin(f.ctx(), &identityv1.CertificateLoginRequest{Certificate: key.der, Challenge: c, Signature: sig})
	wantCode(t, err, codes.PermissionDenied, "SSO_COMPONENTS_ONLY")
	// Over gRPC, a failed proof is UNAUTHENTICATED with its reason.
	_, err = e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, AuthType: identityv1.AuthType_AUTH_TYPE_CERTIFICATE,
		Challenge: c, Certificate: key.der, Signature: []byte("forged")})
	st := wantCode(t, err, codes.Unauthenticated, "CERTIFICATE_SIGNATURE_INVALID")
	if errorInfo(st).GetMetadata()["legacy_code"] != "-1" || !strings.Contains(st.Message(), "signature") {
		t.Fatalf("gRPC refusal: %v", st)
	}
	// Another application's challenge is not this one's.
	code, out, _ = e.rest(http.MethodPost, "/v1/authenticate:challenge", appHeaders(other), map[string]any{})
	if code != http.StatusOK {
		t.Fatalf("other's challenge: %d %v", code, out)
	}
	if code, out := auth(out["challenge"].(string), key, ""); code != http.StatusUnauthorized || reason(out) != "CERTIFICATE_CHALLENGE_INVALID" {
		t.Fatalf("another application's challenge: %d %v", code, out)
	}
}

// TestCertChallengeCASPage: the CAS login page's USB key sign-in over
// plain HTTP (as behind a proxy that terminates TLS): the page offers it,
// hands out a challenge, and the answer (what the vendor control's
// window.uiasSignChallenge returns, here signed in Go) signs the person
// in at level 2 (the certificate's): the level-2 service's ticket validates;
// a replayed answer is refused with the page's sentence.
func TestCertChallengeCASPage(t *testing.T) {
	p := newChalPKI(t)
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).CertChallengeCAFile = p.caFile
	ticketcomponent.Settings(&cfg).USBKey = true
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("usbp", "sun", nil, nil)
	key := p.issue(t, "Sun", false)
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: key.der}); err != nil {
		t.Fatal(err)
	}
	const strong = "https://strong-usb.example.com/"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Strong", Url: strong, MinAuthLevel: 2}}); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	br.c.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), e.http) {
			return http.ErrUseLastResponse
		}
		return nil
	}
	// the login page links to the USB key step (the vendor script runs only there)
	code, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(strong))
	if code != http.StatusOK || !strings.Contains(body, `id="usbkey-link"`) || strings.Contains(body, `id="usbkey-form"`) {
		t.Fatalf("login page without the USB key link: %d %s", code, body)
	}
	code, body, _ = br.get(casBase + "login?usbkey=1&service=" + url.QueryEscape(strong))
	if code != http.StatusOK || !strings.Contains(body, `id="usbkey-form"`) || !strings.Contains(body, "window.uiasSignChallenge") {
		t.Fatalf("login page without the USB key: %d %s", code, body)
	}
	if csrfRE.FindStringSubmatch(body) == nil {
		t.Fatalf("no CSRF token: %s", body)
	}
	csrf := csrfRE.FindStringSubmatch(body)[1]
	getChallenge := func() string {
		t.Helper()
		code, out, _ := br.get(casBase + "cert/challenge")
		var js map[string]string
		if err := json.Unmarshal([]byte(out), &js); err != nil || code != http.StatusOK || js["challenge"] == "" {
			t.Fatalf("challenge: %d %s", code, out)
		}
		return js["challenge"]
	}
	answer := func(c string) url.Values {
		return url.Values{"csrf": {csrf}, "usbkey": {"1"}, "service": {strong}, "cert_challenge": {c},
			"cert_certificate": {string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: key.der}))}, "cert_signature": {key.sign(t, c)}}
	}
	c := getChallenge()
	form := answer(c)
	resp, err := br.c.PostForm(casBase+"login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	u, _ := url.Parse(loc)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, strong) || u.Query().Get("ticket") == "" {
		t.Fatalf("USB key sign-in: %d to %q", resp.StatusCode, loc)
	}
	_, out, _ := br.get(casBase + "p3/serviceValidate?format=JSON&service=" + url.QueryEscape(strong) + "&ticket=" + u.Query().Get("ticket"))
	var js map[string]map[string]map[string]any
	if err := json.Unmarshal([]byte(out), &js); err != nil {
		t.Fatalf("validation: %s", out)
	}
	ok := js["serviceResponse"]["authenticationSuccess"]
	if ok == nil || ok["user"] != "sun" {
		t.Fatalf("validation: %s", out)
	}
	if attrs, _ := ok["attributes"].(map[string]any); attrs == nil || jsonText(attrs["authLevel"]) != `["2"]` {
		t.Fatalf("the session is not of the certificate's level: %s", out)
	}

	// The same answer posted again (a fresh browser): refused, the page
	// says to try again.
	br2 := newBrowser(t)
	_, body, _ = br2.get(casBase + "login?usbkey=1&service=" + url.QueryEscape(strong))
	form.Set("csrf", csrfRE.FindStringSubmatch(body)[1])
	code, body, _ = br2.post(casBase+"login", form)
	if code != http.StatusUnauthorized || !strings.Contains(body, "took too long or was already used") {
		t.Fatalf("replayed answer: %d %s", code, body)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBrowserUSBKey drives headless Chromium through the USB key
// sign-in: a CAS application (level 2) sends the browser to the login
// page; without a vendor control the button says so; then the test
// injects window.uiasSignChallenge, implemented with WebCrypto (ECDSA
// P-256 over the challenge's UTF-8 bytes, r||s as WebCrypto signs), as a
// vendor control would define it: the button signs the person in and the
// browser is back at the application.
func TestBrowserUSBKey(t *testing.T) {
	chromium := chromiumPath(t)
	p := newChalPKI(t)
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).CertChallengeCAFile = p.caFile
	ticketcomponent.Settings(&cfg).USBKey = true
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("usbb", "li", nil, nil)
	key := p.issue(t, "Li", false)
	if _, err := e.admin.BindUserCertificate(e.adm(), &identityv1.BindUserCertificateRequest{UserId: f.userID, Certificate: key.der}); err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key.ec)
	if err != nil {
		t.Fatal(err)
	}
	appA := newCASApp(t, casBase)
	if _, err := ticketv1.NewServiceRegistryServiceClient(e.conn).CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: &ticketv1.ServiceDefinition{
		AppId: f.appID, Name: "Strong application", Url: appA.srv.URL + "/", MinAuthLevel: 2}}); err != nil {
		t.Fatal(err)
	}

	b := newChromium(t, chromium, 760, 640)
	b.run("open the application", chromedp.Navigate(appA.srv.URL+"/page"), chromedp.WaitVisible(chromedp.CSS("#usbkey-link")),
		chromedp.Click(chromedp.CSS("#usbkey-link")), chromedp.WaitVisible(chromedp.CSS("#usbkey-login")))
	// No vendor control in this browser yet.
	b.run("USB key without a control", chromedp.Click(chromedp.CSS("#usbkey-login")))
	b.waitFor("missing control told", `!document.getElementById("usbkey-status").hidden`)
	if text := b.textOf("#usbkey-status"); !strings.Contains(text, "not installed") {
		t.Fatalf("without a control: %q", text)
	}
	var defined bool
	b.evalJS("define the hook", `(() => {
		const b64 = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
		const pkcs8 = b64("`+base64.StdEncoding.EncodeToString(pkcs8)+`");
		window.uiasSignChallenge = async challenge => {
			const k = await crypto.subtle.importKey("pkcs8", pkcs8, {name: "ECDSA", namedCurve: "P-256"}, false, ["sign"]);
			const sig = await crypto.subtle.sign({name: "ECDSA", hash: "SHA-256"}, k, new TextEncoder().encode(challenge));
			return {certificate: "`+key.certificate()+`", signature: btoa(String.fromCharCode(...new Uint8Array(sig)))};
		};
		return typeof window.uiasSignChallenge === "function";
	})()`, &defined)
	if !defined {
		t.Fatal("hook not defined")
	}
	b.run("sign in with the USB key", chromedp.Click(chromedp.CSS("#usbkey-login")))
	b.waitFor("back at the application", `document.body != null && document.body.innerText.startsWith("user=")`)
	if text, loc := b.textOf("body"), b.location(); !strings.HasPrefix(text, "user=li;") || !strings.HasPrefix(loc, appA.srv.URL+"/page") {
		t.Fatalf("back at the application: %q at %s", text, loc)
	}
}

// TestCertChallengeThrottled: GET /cas/cert/challenge passes the login
// gate's per-address rule as the login form does: past
// identity.login_throttle's free ones and its longest wait, 429 with
// Retry-After and a readable JSON error (no challenge). The challenges
// keep a count of their own: the password login form from the same
// address still signs in.
func TestCertChallengeThrottled(t *testing.T) {
	p := newChalPKI(t)
	cfg := testConfig(t.TempDir())
	id := identitycomponent.Settings(&cfg)
	id.CertChallengeCAFile = p.caFile
	id.LoginThrottle = identitycomponent.LoginThrottle{AddressFailures: 2, BaseDelay: 10 * time.Millisecond,
		MaxDelay: 20 * time.Millisecond, Decay: time.Hour}
	ticketcomponent.Settings(&cfg).USBKey = true
	e := start(t, cfg)
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("usbthr", "tian", nil, nil)
	br := newBrowser(t)
	var last string
	code := 0
	for i := 0; i < 10 && code != http.StatusTooManyRequests; i++ {
		code, last, _ = br.get(casBase + "cert/challenge")
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(last), &js); err != nil || code != http.StatusTooManyRequests ||
		!strings.Contains(js["error"], "Too many attempts") || js["retry_after_seconds"] == "" || js["challenge"] != "" {
		t.Fatalf("challenges past the gate: %d %s", code, last)
	}
	resp, err := br.c.Get(casBase + "cert/challenge")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("throttled answer: %d %v", resp.StatusCode, resp.Header)
	}
	// The address's password login is not held up by its challenges.
	_, body, _ := br.get(casBase + "login")
	if code, _, at := br.loginForm(casBase, body, "tian", f.password); code != http.StatusOK || at.Path != "/cas/portal" {
		t.Fatalf("password login from the address: %d at %s", code, at)
	}
}
