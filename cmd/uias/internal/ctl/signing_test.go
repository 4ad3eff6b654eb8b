package ctl

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// Application request signatures through a whole monolith (embedded NATS
// for the nonces, SQLite, gRPC over loopback, the REST edge): ctl registers
// keys and requires signatures; signed calls of every algorithm pass, a
// tampered body, another method, a stale timestamp and a replayed nonce
// are refused with their reasons; a key rollover; REST end to end.
func TestSignedRequestsMonolith(t *testing.T) {
	const pw = "Signed-Req-Pass-1"
	a, h := startMonolith(t, pw, nil)
	appID, secret := h.createApp("signer", "Signer")
	dir := t.TempDir()
	keyFile := func(name string, priv crypto.Signer) string {
		p, err := reqsig.PublicKeyPEM(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, name+".pem")
		if err := os.WriteFile(f, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	// Requiring signatures without a key is refused.
	code, _, errs := h.run("app", "update", appID, "--require-signatures")
	if code == 0 || !strings.Contains(errs, "without a signing key") {
		t.Fatalf("require without a key: exit %d %s", code, errs)
	}
	// A private key file never leaves ctl; a weak key is refused by the server.
	privFile := filepath.Join(dir, "private.pem")
	_ = os.WriteFile(privFile, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	if code, _, errs := h.run("app", "update", appID, "--signing-key", privFile); code != 2 || !strings.Contains(errs, "private key") {
		t.Fatalf("private key: exit %d %s", code, errs)
	}
	// ... also as DER (PKCS#8), which has no PEM header to give it away.
	der, _ := x509.MarshalPKCS8PrivateKey(p256)
	_ = os.WriteFile(privFile, der, 0o600)
	if code, _, errs := h.run("app", "update", appID, "--signing-key", privFile); code != 2 || !strings.Contains(errs, "private key") {
		t.Fatalf("DER private key: exit %d %s", code, errs)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	if code, _, errs := h.run("app", "update", appID, "--signing-key", keyFile("weak", weak)); code == 0 || !strings.Contains(errs, "1024 bits") {
		t.Fatalf("weak key: exit %d %s", code, errs)
	}

	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authn := identityv1.NewAuthServiceClient(conn)
	creds := func() context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, appID, grpcx.MetadataAppSecret, secret)
	}
	req := &identityv1.AuthenticateRequest{AppUserId: "nobody", Password: "x", AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, ExtendInfo: map[string]string{"a": "1", "b": "2", "c": "3"}}
	// reason is the reason of a call's refusal ("" when the caller passed:
	// an unknown account is answered in the response).
	reason := func(err error) string {
		if err == nil {
			return ""
		}
		return apierr.Info(status.Convert(err)).GetReason()
	}
	// signedCall signs signedBody (at ts, for method signedFor) and sends body.
	signedCall := func(priv crypto.Signer, signedFor string, signedBody, body []byte, ts time.Time) error {
		md, err := grpcx.SignatureMetadata(appID, priv, signedFor, signedBody, ts)
		if err != nil {
			t.Fatal(err)
		}
		ctx := metadata.AppendToOutgoingContext(creds(), md...)
		return conn.Invoke(ctx, identityv1.AuthService_Authenticate_FullMethodName, grpcx.EncodedRequest(body),
			new(identityv1.AuthenticateResponse), grpcx.WithEncodedRequests())
	}
	body, _ := proto.Marshal(req)
	method := identityv1.AuthService_Authenticate_FullMethodName

	// A signed call of an application without keys is refused, not ignored.
	if r := reason(signedCall(p256, method, body, body, time.Now())); r != "BAD_SIGNATURE" {
		t.Fatalf("signed without keys: %s", r)
	}

	out := h.mustRun("app", "update", appID, "--signing-key", keyFile("p256", p256))
	if !strings.Contains(out, reqsig.AlgECDSAP256) || !strings.Contains(out, "optional") {
		t.Fatalf("app update --signing-key:\n%s", out)
	}
	// Unsigned calls still pass (not required).
	if _, err := authn.Authenticate(creds(), req); err != nil {
		t.Fatalf("unsigned, not required: %v", err)
	}
	// Half a signature (timestamp and nonce, no signature) is never taken
	// for an unsigned call.
	half := metadata.AppendToOutgoingContext(creds(), grpcx.MetadataTimestamp, strconv.FormatInt(time.Now().Unix(), 10),
		grpcx.MetadataNonce, "half-signed-nonce-0001")
	if _, err := authn.Authenticate(half, req); reason(err) != "BAD_SIGNATURE" || !strings.Contains(status.Convert(err).Message(), "no X-Uias-Signature") {
		t.Fatalf("half signed: %v", err)
	}
	// The interceptor signs what it sends.
	signing := grpc.WithChainUnaryInterceptor(grpcx.SignRequests(appID, p256))
	sconn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), signing)
	if err != nil {
		t.Fatal(err)
	}
	defer sconn.Close()
	if _, err := identityv1.NewAuthServiceClient(sconn).Authenticate(creds(), req); err != nil {
		t.Fatalf("signed by the interceptor: %v", err)
	}

	// Tampered body, another method, stale, replayed.
	other := proto.Clone(req).(*identityv1.AuthenticateRequest)
	other.AppUserId = "somebody-else"
	otherBody, _ := proto.Marshal(other)
	if r := reason(signedCall(p256, method, body, otherBody, time.Now())); r != "BAD_SIGNATURE" {
		t.Fatalf("tampered body: %s", r)
	}
	if r := reason(signedCall(p256, identityv1.AuthService_ChangePassword_FullMethodName, body, body, time.Now())); r != "BAD_SIGNATURE" {
		t.Fatalf("signed for another method: %s", r)
	}
	err = signedCall(p256, method, body, body, time.Now().Add(-10*time.Minute))
	if st := status.Convert(err); reason(err) != "STALE_SIGNATURE" || st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "300 seconds") {
		t.Fatalf("stale: %v", err)
	}
	md, _ := grpcx.SignatureMetadata(appID, p256, method, body, time.Now())
	replay := func() error {
		return conn.Invoke(metadata.AppendToOutgoingContext(creds(), md...), method, grpcx.EncodedRequest(body),
			new(identityv1.AuthenticateResponse), grpcx.WithEncodedRequests())
	}
	if err := replay(); err != nil {
		t.Fatalf("first: %v", err)
	}
	if r := reason(replay()); r != "REPLAYED_REQUEST" {
		t.Fatalf("second identical call: %s", r)
	}

	// Required: unsigned refused.
	out = h.mustRun("app", "update", appID, "--require-signatures")
	if !strings.Contains(out, "required") {
		t.Fatalf("--require-signatures:\n%s", out)
	}
	if r := reason(func() error { _, err := authn.Authenticate(creds(), req); return err }()); r != "SIGNATURE_REQUIRED" {
		t.Fatalf("unsigned, required: %s", r)
	}

	// Every algorithm, and a rollover with two keys.
	for _, keys := range [][]crypto.Signer{{p256, p384}, {p384, ed}, {ed, rk}} {
		h.mustRun("app", "update", appID, "--signing-key", keyFile("a", keys[0]), "--signing-key", keyFile("b", keys[1]))
		for i, k := range keys {
			if err := signedCall(k, method, body, body, time.Now()); err != nil {
				t.Fatalf("key %d of %T: %v", i, k, err)
			}
		}
	}
	if err := signedCall(p256, method, body, body, time.Now()); reason(err) != "BAD_SIGNATURE" {
		t.Fatalf("a key rolled away: %v", err)
	}
	out = h.mustRun("-o", "json", "app", "get", appID)
	if !strings.Contains(out, reqsig.AlgEd25519) || !strings.Contains(out, reqsig.AlgRSA) || !strings.Contains(strings.ReplaceAll(out, " ", ""), `"require_signed_requests":true`) {
		t.Fatalf("app get:\n%s", out)
	}

	// REST through the edge: the signature covers the HTTP request.
	restTo := func(path string, priv crypto.Signer, signedBody, body string, mutate func(*http.Request)) (int, string) {
		r, _ := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Uias-App-Id", appID)
		r.Header.Set("X-Uias-App-Secret", secret)
		if priv != nil {
			ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "rest-nonce-"+strconv.FormatInt(time.Now().UnixNano(), 36)
			sum := sha256.Sum256([]byte(signedBody))
			sig, err := reqsig.Sign(priv, reqsig.StringToSign(appID, "POST "+path, ts, nonce, hex.EncodeToString(sum[:])))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("X-Uias-Timestamp", ts)
			r.Header.Set("X-Uias-Nonce", nonce)
			r.Header.Set("X-Uias-Signature", sig)
		}
		if mutate != nil {
			mutate(r)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	rest := func(priv crypto.Signer, signedBody, body string, mutate func(*http.Request)) (int, string) {
		return restTo("/v1/authenticate", priv, signedBody, body, mutate)
	}
	const js = `{"app_user_id":"nobody","password":"x","auth_type":"AUTH_TYPE_PASSWORD"}`
	if code, b := rest(ed, js, js, nil); code != http.StatusOK {
		t.Fatalf("REST signed: %d %s", code, b)
	}
	if code, b := rest(ed, js, strings.Replace(js, "nobody", "someone", 1), nil); code != http.StatusUnauthorized || !strings.Contains(b, "BAD_SIGNATURE") ||
		!strings.Contains(b, `"body_sha256"`) || !strings.Contains(b, `"signed_target":"POST /v1/authenticate"`) {
		t.Fatalf("REST tampered (the server's target and body hash in the details): %d %s", code, b)
	}
	if code, b := rest(nil, js, js, nil); code != http.StatusUnauthorized || !strings.Contains(b, "SIGNATURE_REQUIRED") {
		t.Fatalf("REST unsigned: %d %s", code, b)
	}
	var replayed *http.Request
	code, b := rest(rk, js, js, func(r *http.Request) { replayed = r.Clone(context.Background()) })
	if code != http.StatusOK {
		t.Fatalf("REST RSA: %d %s", code, b)
	}
	replayed.Body = io.NopCloser(bytes.NewReader([]byte(js)))
	res, err := http.DefaultClient.Do(replayed)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(rb), "REPLAYED_REQUEST") {
		t.Fatalf("REST replay: %d %s", res.StatusCode, rb)
	}

	// authz's AuthzService takes the same signatures (identity verifies
	// them through CallerService.VerifyApp with what authz received): an
	// application that requires them cannot call Check with its secret
	// alone; signed, tampered and replayed calls are told apart.
	checkReq := &authzv1.CheckRequest{Person: "nobody", Resource: "docs", Operation: "read"}
	checkBody, _ := proto.Marshal(checkReq)
	checkMethod := authzv1.AuthzService_Check_FullMethodName
	if _, err := authzv1.NewAuthzServiceClient(conn).Check(creds(), checkReq); reason(err) != "SIGNATURE_REQUIRED" {
		t.Fatalf("authz Check unsigned, required: %v", err)
	}
	authzSigned := grpc.WithChainUnaryInterceptor(grpcx.SignRequests(appID, ed))
	aconn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()), authzSigned)
	if err != nil {
		t.Fatal(err)
	}
	defer aconn.Close()
	if _, err := authzv1.NewAuthzServiceClient(aconn).Check(creds(), checkReq); err != nil {
		t.Fatalf("authz Check signed: %v", err)
	}
	checkCall := func(body []byte, md []string) error {
		return conn.Invoke(metadata.AppendToOutgoingContext(creds(), md...), checkMethod, grpcx.EncodedRequest(body),
			new(authzv1.CheckResponse), grpcx.WithEncodedRequests())
	}
	otherCheck, _ := proto.Marshal(&authzv1.CheckRequest{Person: "somebody", Resource: "docs", Operation: "read"})
	md, _ = grpcx.SignatureMetadata(appID, ed, checkMethod, checkBody, time.Now())
	if r := reason(checkCall(otherCheck, md)); r != "BAD_SIGNATURE" {
		t.Fatalf("authz Check tampered: %s", r)
	}
	md, _ = grpcx.SignatureMetadata(appID, ed, checkMethod, checkBody, time.Now())
	if err := checkCall(checkBody, md); err != nil {
		t.Fatalf("authz Check signed by hand: %v", err)
	}
	if r := reason(checkCall(checkBody, md)); r != "REPLAYED_REQUEST" {
		t.Fatalf("authz Check replayed: %s", r)
	}
	// And over REST, signed as any REST call.
	const checkJS = `{"person":"nobody","resource":"docs","operation":"read"}`
	restCheck := func(priv crypto.Signer, signedBody, body string) (int, string) {
		return restTo("/v1/authz/check", priv, signedBody, body, nil)
	}
	if code, b := restCheck(ed, checkJS, checkJS); code != http.StatusOK {
		t.Fatalf("REST authz check signed: %d %s", code, b)
	}
	if code, b := restCheck(ed, checkJS, strings.Replace(checkJS, "nobody", "somebody", 1)); code != http.StatusUnauthorized || !strings.Contains(b, "BAD_SIGNATURE") {
		t.Fatalf("REST authz check tampered: %d %s", code, b)
	}
	if code, b := restCheck(nil, checkJS, checkJS); code != http.StatusUnauthorized || !strings.Contains(b, "SIGNATURE_REQUIRED") {
		t.Fatalf("REST authz check unsigned: %d %s", code, b)
	}

	// The Go example of docs/integrators.md, compiled on its own, signs
	// REST calls that pass, with every kind of key.
	snippet := buildSigningSnippet(t)
	runSnippet := func(priv crypto.Signer) string {
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "snippet-key.pem")
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(snippet)
		cmd.Env = []string{"URL=http://" + a.HTTPAddr() + "/v1/authenticate?trace=1", "APP_ID=" + appID, "APP_SECRET=" + secret,
			"KEY_FILE=" + f, "BODY=" + js}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("snippet: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, k := range []crypto.Signer{ed, rk} {
		if got := runSnippet(k); !strings.HasPrefix(got, "200 ") {
			t.Fatalf("the documented snippet with %T: %s", k, got)
		}
	}
	h.mustRun("app", "update", appID, "--signing-key", keyFile("a", p256), "--signing-key", keyFile("b", p384))
	for _, k := range []crypto.Signer{p256, p384} {
		if got := runSnippet(k); !strings.HasPrefix(got, "200 ") {
			t.Fatalf("the documented snippet with %T: %s", k, got)
		}
	}
	if got := runSnippet(ed); !strings.Contains(got, "BAD_SIGNATURE") {
		t.Fatalf("the documented snippet with an unregistered key: %s", got)
	}

	// The last keys of an application that must sign are not removed: the
	// refusal says to stop requiring signatures first.
	if code, _, errs := h.run("app", "update", appID, "--no-signing-keys"); code == 0 || !strings.Contains(errs, "--no-signatures") {
		t.Fatalf("--no-signing-keys while required: exit %d %s", code, errs)
	}
	// Not required any more: unsigned passes again.
	h.mustRun("app", "update", appID, "--no-signatures")
	if _, err := authn.Authenticate(creds(), req); err != nil {
		t.Fatalf("unsigned after --no-signatures: %v", err)
	}
	out = h.mustRun("app", "update", appID, "--no-signing-keys")
	if !strings.Contains(out, "Signing keys") || !strings.Contains(out, "none") || !strings.Contains(out, "not used") {
		t.Fatalf("--no-signing-keys:\n%s", out)
	}

	// An application created with its key and the requirement.
	out = h.mustRun("app", "create", "--type", "OA", "--code", "signed-from-start", "--name", "Signed", "--signing-key", keyFile("p384", p384),
		"--require-signatures")
	if !strings.Contains(out, reqsig.AlgECDSAP384) || !strings.Contains(out, "required") {
		t.Fatalf("app create --signing-key --require-signatures:\n%s", out)
	}
	// An SM2 key (national commercial cryptography, ADR 0043) registers as
	// the others do, beside another key during a rollover.
	smKey, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out = h.mustRun("app", "create", "--type", "OA", "--code", "sm2-signed", "--name", "SM2", "--signing-key", keyFile("p384", p384),
		"--signing-key", keyFile("sm2", smKey), "--require-signatures", "--security-level", "A2")
	if !strings.Contains(out, reqsig.AlgSM2) || !strings.Contains(out, reqsig.AlgECDSAP384) || !strings.Contains(out, ", expires ") {
		t.Fatalf("app create with an SM2 key:\n%s", out)
	}
	// An A2 application's key has a validity period (a year by default,
	// identity.signing_key_lifetime_a2); an A1's none (the default).
	out = h.mustRun("app", "create", "--type", "OA", "--code", "a2-signed", "--name", "A2", "--signing-key", keyFile("p384", p384),
		"--require-signatures", "--security-level", "A2")
	if !strings.Contains(out, ", expires "+time.Now().UTC().AddDate(0, 0, 365).Format("2006-01-02")) {
		t.Fatalf("A2 app create: the key's expiry is not shown:\n%s", out)
	}
	if strings.Contains(h.mustRun("app", "get", appID), ", expires ") {
		t.Fatalf("an A1 key shows an expiry")
	}
	if code, _, errs := h.run("app", "create", "--type", "OA", "--code", "nokey", "--name", "No key", "--require-signatures"); code == 0 ||
		!strings.Contains(errs, "without a signing key") {
		t.Fatalf("app create --require-signatures without a key: exit %d %s", code, errs)
	}
}

// buildSigningSnippet compiles the signing example of docs/integrators.md
// with a main that sends one signed REST call and prints the status and
// body.
func buildSigningSnippet(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- request-sign:begin -->")
	snippet, _, ok2 := strings.Cut(rest, "<!-- request-sign:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/integrators.md has no request-sign snippet")
	}
	snippet = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(snippet), "```go"), "```")
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("sign.go", snippet)
	write("go.mod", "module signsnippet\n\ngo 1.22\n")
	write("main.go", `package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	b, _ := os.ReadFile(os.Getenv("KEY_FILE"))
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		fmt.Println("key:", err)
		os.Exit(1)
	}
	body := []byte(os.Getenv("BODY"))
	r, _ := http.NewRequest(http.MethodPost, os.Getenv("URL"), bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Uias-App-Id", os.Getenv("APP_ID"))
	r.Header.Set("X-Uias-App-Secret", os.Getenv("APP_SECRET"))
	if err := SignUIASRequest(r, body, os.Getenv("APP_ID"), k.(crypto.Signer)); err != nil {
		fmt.Println("sign:", err)
		os.Exit(1)
	}
	res, err := http.DefaultClient.Do(r)
	if err != nil {
		fmt.Println("call:", err)
		os.Exit(1)
	}
	out, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, string(out))
}
`)
	bin := filepath.Join(dir, "sign")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the documented snippet does not compile: %v\n%s", err, out)
	}
	return bin
}
