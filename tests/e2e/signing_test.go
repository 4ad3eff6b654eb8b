package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
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

// TestSignedAnswersAcrossProcesses: identity, authz and the REST edge each
// in its own process (docs/adr/0016). Only identity holds the key ring:
// authz has its gRPC answers signed by identity (CallerService.
// SignResponse, over the network under the internal key), the edge its
// REST answers. Authenticate and Check answers verify with the keys the
// edge publishes, over gRPC and REST; a tampered answer does not; unsigned
// calls get no signature.
func TestSignedAnswersAcrossProcesses(t *testing.T) {
	d := newDeployment(t)
	idCfg := d.config("identity", "identity")
	identitycomponent.Settings(&idCfg).AdminAuthz = false
	makeKeyRing(t, idCfg)
	id := start(t, idCfg)
	id.login()
	az := start(t, d.config("authz", "authz"))
	gwCfg := d.config("gateway", "gateway")
	gwCfg.GRPCAddr, gwCfg.HTTPAddr = "", "127.0.0.1:0"
	gw := start(t, gwCfg)

	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, err := reqsig.PublicKeyPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := id.seed("answers", "ans-user", &identityv1.CreateAppRequest{SigningKeys: [][]byte{[]byte(pub)}}, nil)

	var jwks []byte
	eventually(t, "the gateway to publish the keys", func() bool {
		res, err := http.Get(gw.http + "/v1/keys/response-signing")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		jwks, _ = io.ReadAll(res.Body)
		return res.StatusCode == http.StatusOK
	})
	v, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		t.Fatalf("%v: %s", err, jwks)
	}

	// gRPC: identity signs its own answers, authz has identity sign.
	creds := metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, f.appID, grpcx.MetadataAppSecret, f.secret)
	verified := grpc.WithChainUnaryInterceptor(grpcx.SignRequests(f.appID, priv, grpcx.VerifyAnswers(v)))
	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), verified)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	authReq := &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password, AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD}
	if res, err := identityv1.NewAuthServiceClient(dial(id.app.GRPCAddr())).Authenticate(creds, authReq); err != nil || res.GetResultCode() != 0 {
		t.Fatalf("Authenticate, answer verified: %v %v", res, err)
	}
	checkReq := &authzv1.CheckRequest{Person: f.account, Resource: "docs", Operation: "read"}
	eventually(t, "authz's signed answer to Check", func() bool {
		_, err := authzv1.NewAuthzServiceClient(dial(az.app.GRPCAddr())).Check(creds, checkReq)
		if err != nil && errors.Is(err, reqsig.ErrResponseBadSignature) {
			t.Fatalf("Check: %v", err)
		}
		return err == nil
	})
	var trailer metadata.MD
	if _, err := authzv1.NewAuthzServiceClient(az.conn).Check(creds, checkReq, grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	} else if s := grpcx.ResponseSignatureFrom(trailer); s.Signature != "" {
		t.Fatalf("an unsigned Check's answer is signed: %+v", s)
	}

	// REST through the edge.
	for _, c := range []struct{ path, body string }{
		{"/v1/authenticate", `{"app_user_id":"` + f.account + `","password":"` + f.password + `","auth_type":"AUTH_TYPE_PASSWORD"}`},
		{"/v1/authz/check", `{"person":"` + f.account + `","resource":"docs","operation":"read"}`},
	} {
		call := func(sign bool) (*http.Request, *http.Response, []byte) {
			r, _ := http.NewRequest(http.MethodPost, gw.http+c.path, strings.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			for k, v := range appHeaders(f) {
				r.Header.Set(k, v)
			}
			if sign {
				ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "answers-"+strconv.FormatInt(time.Now().UnixNano(), 36)
				sum := sha256.Sum256([]byte(c.body))
				sig, err := reqsig.Sign(priv, reqsig.StringToSign(f.appID, "POST "+c.path, ts, nonce, hex.EncodeToString(sum[:])))
				if err != nil {
					t.Fatal(err)
				}
				r.Header.Set("X-Uias-Timestamp", ts)
				r.Header.Set("X-Uias-Nonce", nonce)
				r.Header.Set("X-Uias-Signature", sig)
			}
			res, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("POST %s: %d %s", c.path, res.StatusCode, b)
			}
			return r, res, b
		}
		r, res, b := call(true)
		if _, err := v.VerifyHTTP(f.appID, r, res, b); err != nil {
			t.Fatalf("POST %s through the edge: %v (%v %s)", c.path, err, res.Header, b)
		}
		if _, err := v.VerifyHTTP(f.appID, r, res, append(b, ' ')); !errors.Is(err, reqsig.ErrResponseBadSignature) {
			t.Fatalf("POST %s: a tampered answer: %v", c.path, err)
		}
		if _, res, _ := call(false); res.Header.Get(reqsig.HeaderResponseSignature) != "" {
			t.Fatalf("POST %s unsigned: the answer is signed", c.path)
		}
	}
}

// TestSignedAnswersLeaveNoExtraRecord: having identity sign an answer
// (CallerService.SignResponse, from authz and from the REST edge) is part
// of the call it answers: the signed calls leave their access records,
// the signing none of its own.
func TestSignedAnswersLeaveNoExtraRecord(t *testing.T) {
	cfg := testConfig(t.TempDir())
	auditcomponent.Settings(&cfg).BatchWait = 20 * time.Millisecond
	e := start(t, cfg)
	e.login()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, err := reqsig.PublicKeyPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := e.seed("recorded", "rec-user", &identityv1.CreateAppRequest{SigningKeys: [][]byte{[]byte(pub)}}, nil)
	creds := metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, f.appID, grpcx.MetadataAppSecret, f.secret)
	conn, err := grpc.NewClient(e.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcx.SignRequests(f.appID, priv)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var trailer metadata.MD
	if _, err := authzv1.NewAuthzServiceClient(conn).Check(creds, &authzv1.CheckRequest{Person: f.account, Resource: "docs", Operation: "read"},
		grpc.Trailer(&trailer)); err != nil || grpcx.ResponseSignatureFrom(trailer).Signature == "" {
		t.Fatalf("signed Check: %v, trailer %v", err, trailer)
	}
	body := `{"app_user_id":"` + f.account + `","password":"` + f.password + `","auth_type":"AUTH_TYPE_PASSWORD"}`
	h := appHeaders(f)
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "recorded-"+strconv.FormatInt(time.Now().UnixNano(), 36)
	sum := sha256.Sum256([]byte(body))
	sig, err := reqsig.Sign(priv, reqsig.StringToSign(f.appID, "POST /v1/authenticate", ts, nonce, hex.EncodeToString(sum[:])))
	if err != nil {
		t.Fatal(err)
	}
	h["X-Uias-Timestamp"], h["X-Uias-Nonce"], h["X-Uias-Signature"] = ts, nonce, sig
	if code, out, hdr := e.rest(http.MethodPost, "/v1/authenticate", h, body); code != http.StatusOK || hdr.Get(reqsig.HeaderResponseSignature) == "" {
		t.Fatalf("signed REST Authenticate: %d %v %v", code, out, hdr)
	}

	audTok := e.grantedAdmin(t, "auditor-signed", "security_auditor")
	aud := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+audTok)
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	count := func(api string) int {
		t.Helper()
		res, err := q.QueryRecords(aud, &auditv1.QueryRecordsRequest{Api: api, AppId: f.appID, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.GetRecords())
	}
	// (a Check's access record is its decision record, authz.check)
	eventually(t, "the access records of the signed calls", func() bool {
		return count("authz.check") == 1 && count("uias.identity.v1.AuthService/Authenticate") == 1
	})
	res, err := q.QueryRecords(aud, &auditv1.QueryRecordsRequest{Api: "uias.identity.v1.CallerService/SignResponse", PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.GetRecords()); n != 0 {
		t.Fatalf("%d access records of the signing itself, want none: %v", n, res.GetRecords())
	}
}
