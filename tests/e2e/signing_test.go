package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestSignedRESTAcrossProcesses: an application that must sign its
// requests authenticates through a gateway in its own process, which
// reaches identity over the network: the HTTP request the edge hashed
// travels in the origin signed with the internal key. A tampered body and
// an unsigned call are refused.
func TestSignedRESTAcrossProcesses(t *testing.T) {
	d := newDeployment(t)
	idCfg := d.config("identity", "identity")
	// No authz component in this deployment: the legacy is_admin rule.
	identitycomponent.Settings(&idCfg).AdminAuthz = false
	makeKeyRing(t, idCfg)
	id := start(t, idCfg)
	id.login()
	gwCfg := d.config("gateway", "gateway")
	gwCfg.GRPCAddr, gwCfg.HTTPAddr = "", "127.0.0.1:0"
	gw := start(t, gwCfg)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, err := reqsig.PublicKeyPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := id.seed("signer", "sig-user", &identityv1.CreateAppRequest{SigningKeys: [][]byte{[]byte(pub)}, RequireSignedRequests: true}, nil)
	body := []byte(`{"app_user_id":"` + f.account + `","password":"` + f.password + `","auth_type":"AUTH_TYPE_PASSWORD"}`)
	signed := func(signedBody []byte) map[string]string {
		h := appHeaders(f)
		ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "across-"+strconv.FormatInt(time.Now().UnixNano(), 36)
		sum := sha256.Sum256(signedBody)
		sig, err := reqsig.Sign(priv, reqsig.StringToSign(f.appID, "POST /v1/authenticate", ts, nonce, hex.EncodeToString(sum[:])))
		if err != nil {
			t.Fatal(err)
		}
		h["X-Uias-Timestamp"], h["X-Uias-Nonce"], h["X-Uias-Signature"] = ts, nonce, sig
		return h
	}
	eventually(t, "the gateway to reach identity", func() bool {
		code, _, _ := gw.rest("POST", "/v1/authenticate", appHeaders(f), body)
		return code == 401
	})
	if code, out, _ := gw.rest("POST", "/v1/authenticate", signed(body), body); code != 200 || out["result_code"] != float64(0) {
		t.Fatalf("signed through the gateway: %d %v", code, out)
	}
	if code, out, _ := gw.rest("POST", "/v1/authenticate", signed([]byte(`{}`)), body); code != 401 || !strings.Contains(fmt.Sprint(out), "BAD_SIGNATURE") {
		t.Fatalf("tampered through the gateway: %d %v", code, out)
	}
	if code, out, _ := gw.rest("POST", "/v1/authenticate", appHeaders(f), body); code != 401 || !strings.Contains(fmt.Sprint(out), "SIGNATURE_REQUIRED") {
		t.Fatalf("unsigned through the gateway: %d %v", code, out)
	}

	// A gateway without the internal key: identity does not believe its
	// account of the HTTP request, and says why.
	strayCfg := d.config("gateway", "stray")
	strayCfg.GRPCAddr, strayCfg.HTTPAddr, strayCfg.InternalKey = "", "127.0.0.1:0", ""
	stray := start(t, strayCfg)
	eventually(t, "the stray gateway to reach identity", func() bool {
		code, _, _ := stray.rest("POST", "/v1/authenticate", appHeaders(f), body)
		return code == 401
	})
	if code, out, _ := stray.rest("POST", "/v1/authenticate", signed(body), body); code != 401 ||
		!strings.Contains(fmt.Sprint(out), "BAD_SIGNATURE") || !strings.Contains(fmt.Sprint(out), "internal key") {
		t.Fatalf("signed through an untrusted gateway: %d %v", code, out)
	}
}
