package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// legacyNode readies the npm legacy clients (hessian.js, soap) for node,
// or skips the test.
func legacyNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the legacy transport tests drive npm clients with it")
	}
	out, err := exec.Command(filepath.Join("..", "..", "scripts", "legacy-clients.sh")).Output()
	if err != nil {
		t.Skipf("npm clients not installed (registry unreachable?): %v", err)
	}
	t.Setenv("NODE_PATH", filepath.Join(strings.TrimSpace(string(out)), "node_modules"))
}

// hessianCall is the Hessian 2 call authenticate(args...) as hessian.js
// encodes it ("null": a null argument).
func hessianCall(t *testing.T, args ...string) []byte {
	t.Helper()
	call, err := exec.Command("node", append([]string{filepath.Join("..", "..", "pkg", "hessian", "testdata", "call.js"), "encode"}, args...)...).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	return call
}

// soapAuthenticate calls authenticate(args) with the npm soap client,
// without credentials, and returns its result ("fault" when it was one).
func soapAuthenticate(t *testing.T, url string, args map[string]string) any {
	t.Helper()
	raw, _ := json.Marshal(args)
	cmd := exec.Command("node", filepath.Join("..", "..", "pkg", "soap", "testdata", "client.js"), url, string(raw))
	cmd.Env = append(os.Environ(), "SOAP_USER=", "SOAP_PASS=")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("node soap: %v: %s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(out, &m)
	if m["fault"] != nil {
		return "fault"
	}
	r, _ := m["result"].(map[string]any)
	return r["return"]
}

// TestLegacyIPOnly: the design's authenticate(appType, appCode, ...)
// without App_ID and secret (002 3.4.2, 4.3.1, 4.4.1; gap2 G13), over
// Hessian (hessian.js) and SOAP (the soap client) from loopback. An
// application with legacy_ip_only and loopback on its allow-list is
// served; refused (-5; rate limit -6) are: an application without the
// flag, an unknown (type, code), an address off the list (also when a
// forged X-Forwarded-For from an untrusted peer names one on it), an
// application that became signature-requiring (A2 alike) or was
// suspended; setting the flag on an A2 or signing application is refused;
// the refusals are caller.denied records and the served calls' records
// say auth_mode ip_only; a direct gRPC caller cannot claim the mode.
func TestLegacyIPOnly(t *testing.T) {
	legacyNode(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	loop := []string{"127.0.0.1/32", "::1/128"}
	ok := e.seed("ipo", "ivy", &identityv1.CreateAppRequest{IpAllowList: loop, LegacyIpOnly: true}, nil)
	plain := e.seed("plain", "pia", &identityv1.CreateAppRequest{IpAllowList: loop}, nil)
	far := e.seed("far", "fay", &identityv1.CreateAppRequest{IpAllowList: []string{"192.0.2.0/24"}, LegacyIpOnly: true}, nil)
	signs := e.seed("signs", "sid", &identityv1.CreateAppRequest{IpAllowList: loop, LegacyIpOnly: true}, nil)
	off := e.seed("off", "oda", &identityv1.CreateAppRequest{IpAllowList: loop, LegacyIpOnly: true}, nil)
	slow := e.seed("slow", "sly", &identityv1.CreateAppRequest{IpAllowList: loop, LegacyIpOnly: true, RateLimit: 0.001, RateBurst: 1}, nil)

	hess := func(hdr map[string]string, code string, f fixture, pw string) int32 {
		t.Helper()
		return postHessian(t, e.http, hdr, hessianCall(t, "OA", code, f.account, "null", pw, "1", "null"))
	}
	if c := hess(nil, "ipo", ok, ok.password); c != 0 {
		t.Fatalf("Hessian, flagged and allow-listed, right password: %d", c)
	}
	if c := hess(nil, "ipo", ok, "Wrong-Pass-7"); c != -1 {
		t.Fatalf("Hessian, flagged, wrong password: %d", c)
	}
	soapURL := e.http + "/legacy/soap/authenticate"
	args := map[string]string{"appType": "OA", "appCode": "ipo", "appUserid": ok.account, "fingerFeature": "",
		"password": ok.password, "authType": "1", "extendinfo": ""}
	if r := soapAuthenticate(t, soapURL, args); r != float64(0) {
		t.Fatalf("SOAP, flagged and allow-listed: %v", r)
	}
	// The credentialed path still works for a flagged application.
	if c := hess(map[string]string{"X-Uias-App-Id": ok.appID, "X-Uias-App-Secret": ok.secret}, "ipo", ok, ok.password); c != 0 {
		t.Fatalf("Hessian with credentials, flagged: %d", c)
	}

	for _, tc := range []struct {
		what string
		hdr  map[string]string
		code string
		f    fixture
	}{
		{"not flagged", nil, "plain", plain},
		{"unknown type and code", nil, "nope", plain},
		{"off the allow-list", nil, "far", far},
		{"X-Forwarded-For forged from an untrusted peer", map[string]string{"X-Forwarded-For": "192.0.2.7"}, "far", far},
	} {
		if c := hess(tc.hdr, tc.code, tc.f, tc.f.password); c != -5 {
			t.Fatalf("Hessian, %s: %d, want -5", tc.what, c)
		}
	}
	args["appCode"], args["appUserid"], args["password"] = "plain", plain.account, plain.password
	if r := soapAuthenticate(t, soapURL, args); r != float64(-5) {
		t.Fatalf("SOAP, not flagged: %v", r)
	}

	// Setting the flag on a signing or A2 application is refused; one that
	// became signing later is refused the IP-only call.
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, err := reqsig.PublicKeyPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.CreateApp(e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "a2", Name: "A2", IpAllowList: loop,
		SigningKeys: [][]byte{[]byte(pub)}, RequireSignedRequests: true, SecurityLevel: 2, LegacyIpOnly: true})
	if st := wantCode(t, err, codes.FailedPrecondition, identity.ReasonLegacyIPOnly); !strings.Contains(st.Message(), "A2") {
		t.Fatalf("A2 refusal: %q", st.Message())
	}
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: signs.appID,
		UpdateMask: []string{"signing_keys", "require_signed_requests"}, SigningKeys: [][]byte{[]byte(pub)}, RequireSignedRequests: true}); err != nil {
		t.Fatal(err)
	}
	if c := hess(nil, "signs", signs, signs.password); c != -5 {
		t.Fatalf("Hessian, signatures required since: %d", c)
	}
	_, err = e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: signs.appID, UpdateMask: []string{"legacy_ip_only"}, LegacyIpOnly: true})
	wantCode(t, err, codes.FailedPrecondition, identity.ReasonLegacyIPOnly)
	if _, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: off.appID, UpdateMask: []string{"status"},
		Status: identityv1.AppStatus_APP_STATUS_SUSPENDED}); err != nil {
		t.Fatal(err)
	}
	if c := hess(nil, "off", off, off.password); c != -5 {
		t.Fatalf("Hessian, suspended: %d", c)
	}
	// Flow control applies: the second call within the limit's bucket -6.
	if c := hess(nil, "slow", slow, slow.password); c != 0 {
		t.Fatalf("Hessian, rate-limited application's first call: %d", c)
	}
	if c := hess(nil, "slow", slow, slow.password); c != -6 {
		t.Fatalf("Hessian, rate limit exceeded: %d, want -6", c)
	}

	// A gRPC caller outside UIAS cannot claim the mode: without
	// credentials it is refused, whatever metadata it sends.
	ctx := metadata.NewOutgoingContext(context.Background(), metadata.Pairs(identity.MetadataLegacyApp, identity.LegacyApp("OA", "ipo")))
	_, err = e.auth.Authenticate(ctx, &identityv1.AuthenticateRequest{AppType: "OA", AppCode: "ipo", AppUserId: ok.account,
		Password: ok.password, AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
	wantCode(t, err, codes.Unauthenticated, "BAD_APP_CREDENTIALS")

	// The records: every refusal a caller.denied with its reason (the app
	// named where one was resolved) marked ip_only, as the served calls.
	wantDenied := map[string]string{plain.appID: "BAD_APP_CREDENTIALS", far.appID: "IP_NOT_ALLOWED",
		signs.appID: "SIGNATURE_REQUIRED", off.appID: "APP_SUSPENDED", slow.appID: "RATE_LIMITED"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]bool{}
		ipOnly := false
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.identity.") {
			d, _ := ev["detail"].(map[string]any)
			app, _ := ev["app_id"].(string)
			switch {
			case ev["api"] == "caller.denied":
				subject, _ := ev["subject"].(string)
				// refusals say auth_mode ip_only too (review sec30b L2)
				if id, _ := strings.CutPrefix(subject, "app:"); wantDenied[id] == ev["reason"] && d["auth_mode"] == "ip_only" {
					seen[id] = true
				}
			case app == ok.appID && d["auth_mode"] == "ip_only" && ev["result"] == "success":
				ipOnly = true
			case app == ok.appID && d["auth_mode"] != nil && d["auth_mode"] != "ip_only":
				t.Fatalf("record with auth_mode %v: %v", d["auth_mode"], ev)
			}
		}
		if ipOnly && len(seen) == len(wantDenied) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records: ip_only success %v, caller.denied seen %v of %v", ipOnly, seen, wantDenied)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLegacyIPOnlyBehindProxy: behind a trusted proxy (loopback here) the
// address checked is the client's the proxy forwarded: an allow-listed
// one is served without credentials, another refused -5.
func TestLegacyIPOnlyBehindProxy(t *testing.T) {
	legacyNode(t)
	cfg := testConfig(t.TempDir())
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	e := start(t, cfg)
	e.login()
	f := e.seed("ipo", "ivy", &identityv1.CreateAppRequest{IpAllowList: []string{"192.0.2.0/24"}, LegacyIpOnly: true}, nil)
	call := hessianCall(t, "OA", "ipo", f.account, "null", f.password, "1", "null")
	if c := postHessian(t, e.http, map[string]string{"X-Forwarded-For": "192.0.2.7"}, call); c != 0 {
		t.Fatalf("forwarded from an allow-listed client: %d", c)
	}
	if c := postHessian(t, e.http, map[string]string{"X-Forwarded-For": "198.51.100.7"}, call); c != -5 {
		t.Fatalf("forwarded from another client: %d", c)
	}
	if c := postHessian(t, e.http, nil, call); c != -5 {
		t.Fatalf("the proxy's own address: %d", c)
	}
}
