package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// bytesCodec sends a request as the bytes given and hands back the
// answer's bytes as received: what a client signs and verifies.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (bytesCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (bytesCodec) Name() string { return "proto" }

// needOpenSSLSM2 fails the test unless OpenSSL 3 with SM2 and curl are
// installed (Debian's openssl and curl packages): the SM2 interoperability
// tests sign with an implementation that is not UIAS's.
func needOpenSSLSM2(t *testing.T) {
	t.Helper()
	out, err := exec.Command("openssl", "list", "-public-key-algorithms").CombinedOutput()
	if err != nil || !strings.Contains(strings.ToLower(string(out)), "sm2") {
		t.Fatalf("OpenSSL 3 with SM2 is needed (apt-get install openssl): %v %s", err, out)
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed (apt-get install curl)")
	}
}

// integratorsBlock is the shell script between <!-- name:begin --> and
// <!-- name:end --> of docs/integrators.md.
func integratorsBlock(t *testing.T, name string) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- "+name+":begin -->")
	block, _, ok2 := strings.Cut(rest, "<!-- "+name+":end -->")
	if !ok || !ok2 {
		t.Fatalf("docs/integrators.md has no %s block", name)
	}
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(block), "```sh"), "```")
}

// sh runs script in dir with env added; it returns stdout.
func sh(t *testing.T, dir, script string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), nil
}

// opensslSM2 signs msg with OpenSSL's SM2 (SM3, user ID uid) with the key
// in keyFile: the DER signature.
func opensslSM2(t *testing.T, keyFile, uid, msg string) []byte {
	t.Helper()
	cmd := exec.Command("openssl", "dgst", "-sm3", "-sign", keyFile, "-sigopt", "distid:"+uid)
	cmd.Stdin = strings.NewReader(msg)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl SM2 signature: %v", err)
	}
	return out
}

// rawRS is the DER SM2 signature der as the 64 bytes r||s.
func rawRS(t *testing.T, der []byte) []byte {
	t.Helper()
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	r, s := new(big.Int), new(big.Int)
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1Integer(r) || !seq.ReadASN1Integer(s) {
		t.Fatalf("not a DER signature: %x", der)
	}
	return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
}

// TestSM2SignedCallsWithOpenSSL: an application registers an SM2 key made
// by OpenSSL 3; the integrators' SM2 script (docs/integrators.md, OpenSSL
// and curl) signs a REST Authenticate, UIAS verifies it and, offering SM2
// (identity.response_signing_sm2), signs its answer with SM2, which the
// published keys verify in Go and with OpenSSL (the documented script).
// Over gRPC OpenSSL signs the protobuf bytes (DER and r||s accepted). The
// refusals are those of the other algorithms: another user ID, another
// string, a changed signature, a changed body (BAD_SIGNATURE); an SM2 key
// marked as a P-256 key and a malformed key (SIGNING_KEY_INVALID). The
// login records name the SM2 key's thumbprint.
func TestSM2SignedCallsWithOpenSSL(t *testing.T) {
	needOpenSSLSM2(t)
	cfg := testConfig(t.TempDir())
	identitycomponent.Settings(&cfg).ResponseSigningSM2 = true
	auditcomponent.Settings(&cfg).BatchWait = 20 * time.Millisecond
	e := start(t, cfg)
	e.login()

	dir := t.TempDir()
	if _, err := sh(t, dir, `openssl genpkey -algorithm SM2 -out sm2.pem && openssl pkey -in sm2.pem -pubout -out sm2.pub.pem`); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "sm2.pem")
	pub, err := os.ReadFile(filepath.Join(dir, "sm2.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	f := e.seed("sm2-signer", "sm2-user", &identityv1.CreateAppRequest{SigningKeys: [][]byte{pub}, RequireSignedRequests: true}, nil)
	got, err := e.admin.GetApp(e.adm(), &identityv1.GetAppRequest{Id: f.appID})
	if err != nil {
		t.Fatal(err)
	}
	keys := got.GetSigningKeys()
	if len(keys) != 1 || keys[0].GetAlgorithm() != reqsig.AlgSM2 || len(keys[0].GetThumbprint()) != 64 {
		t.Fatalf("registered keys: %v", keys)
	}
	thumb := keys[0].GetThumbprint()

	// The published keys: Ed25519 and SM2.
	res, err := http.Get(e.http + "/v1/keys/response-signing")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(res.Body)
	res.Body.Close()
	v, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		t.Fatalf("%v: %s", err, jwks)
	}
	var set struct{ Keys []reqsig.ResponseKey }
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	sm2Keys := map[string]reqsig.ResponseKey{}
	for _, k := range set.Keys {
		if k.Crv == "SM2" {
			sm2Keys[k.KeyID] = k
		}
	}
	if len(sm2Keys) == 0 || len(sm2Keys) == len(set.Keys) {
		t.Fatalf("want Ed25519 and SM2 keys published: %s", jwks)
	}

	// REST: the documented OpenSSL + curl script.
	body := `{"app_user_id":"` + f.account + `","password":"` + f.password + `","auth_type":"AUTH_TYPE_PASSWORD"}`
	env := []string{"APP_ID=" + f.appID, "APP_SECRET=" + f.secret, "KEY=" + keyFile, "UIAS=" + e.http, "BODY=" + body}
	script := integratorsBlock(t, "request-sign-sm2")
	if _, err := sh(t, dir, script+"\nprintf '%s' \"$nonce\" > nonce.txt", env...); err != nil {
		t.Fatalf("the documented SM2 script: %v", err)
	}
	headers, _ := os.ReadFile(filepath.Join(dir, "headers.txt"))
	answer, _ := os.ReadFile(filepath.Join(dir, "answer.json"))
	nonce, _ := os.ReadFile(filepath.Join(dir, "nonce.txt"))
	var authOut map[string]any
	if err := json.Unmarshal(answer, &authOut); err != nil || !strings.HasPrefix(string(headers), "HTTP/1.1 200") ||
		authOut["result_code"] != float64(0) {
		t.Fatalf("signed by OpenSSL through REST:\n%s\n%s", headers, answer)
	}
	hdr := http.Header{}
	for _, line := range strings.Split(string(headers), "\r\n") {
		if k, val, ok := strings.Cut(line, ": "); ok {
			hdr.Add(k, val)
		}
	}
	ans := reqsig.ResponseSignature{Signature: hdr.Get(reqsig.HeaderResponseSignature), KeyID: hdr.Get(reqsig.HeaderResponseKeyID),
		Timestamp: hdr.Get(reqsig.HeaderResponseTimestamp)}
	kid := ans.KeyID
	if _, ok := sm2Keys[kid]; !ok {
		t.Fatalf("the answer to an SM2 application is signed with %q, not an SM2 key (%s)", kid, jwks)
	}
	if _, err := v.Verify(f.appID, "POST /v1/authenticate", string(nonce), answer, ans); err != nil {
		t.Fatalf("the SM2 answer does not verify: %v", err)
	}
	// ... and OpenSSL verifies it (the documented script).
	verify := integratorsBlock(t, "answer-verify-sm2")
	out, err := sh(t, dir, "target='POST /v1/authenticate'\nnonce=$(cat nonce.txt)\n"+verify, append(env, "X="+sm2Keys[kid].X, "Y="+sm2Keys[kid].Y)...)
	if err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("OpenSSL does not verify UIAS's SM2 answer: %v %s", err, out)
	}
	// A changed answer does not verify with OpenSSL either.
	if err := os.WriteFile(filepath.Join(dir, "answer.json"), append(answer, ' '), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := sh(t, dir, "target='POST /v1/authenticate'\nnonce=$(cat nonce.txt)\n"+verify,
		append(env, "X="+sm2Keys[kid].X, "Y="+sm2Keys[kid].Y)...); err == nil || strings.Contains(out, "Verified OK") {
		t.Fatalf("OpenSSL verifies a changed answer: %v %s", err, out)
	}

	// REST refusals.
	restSigned := func(signedBody, uid string, raw bool) (int, map[string]any) {
		h := appHeaders(f)
		ts, n := strconv.FormatInt(time.Now().Unix(), 10), "sm2rest-"+strconv.FormatInt(time.Now().UnixNano(), 36)
		sum := sha256.Sum256([]byte(signedBody))
		sig := opensslSM2(t, keyFile, uid, reqsig.StringToSign(f.appID, "POST /v1/authenticate", ts, n, hex.EncodeToString(sum[:])))
		if raw {
			sig = rawRS(t, sig)
		}
		h["X-Uias-Timestamp"], h["X-Uias-Nonce"], h["X-Uias-Signature"] = ts, n, b64(sig)
		code, out, _ := e.rest(http.MethodPost, "/v1/authenticate", h, body)
		return code, out
	}
	if code, out := restSigned(body, reqsig.SM2UserID, true); code != http.StatusOK {
		t.Fatalf("r||s signed by OpenSSL: %d %v", code, out)
	}
	for name, c := range map[string]struct{ body, uid string }{
		"a changed body":  {`{}`, reqsig.SM2UserID},
		"another user ID": {body, "ALICE123@YAHOO.COM"},
	} {
		if code, out := restSigned(c.body, c.uid, false); code != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(out), "BAD_SIGNATURE") {
			t.Fatalf("REST, %s: %d %v", name, code, out)
		}
	}
	// OpenSSL without -sigopt distid does not apply the user ID by itself
	// (sec31b L4): refused, and the message says what to pass.
	{
		h := appHeaders(f)
		ts, n := strconv.FormatInt(time.Now().Unix(), 10), "sm2nodistid-"+strconv.FormatInt(time.Now().UnixNano(), 36)
		sum := sha256.Sum256([]byte(body))
		cmd := exec.Command("openssl", "dgst", "-sm3", "-sign", keyFile)
		cmd.Stdin = strings.NewReader(reqsig.StringToSign(f.appID, "POST /v1/authenticate", ts, n, hex.EncodeToString(sum[:])))
		sig, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl SM2 signature without distid: %v", err)
		}
		h["X-Uias-Timestamp"], h["X-Uias-Nonce"], h["X-Uias-Signature"] = ts, n, b64(sig)
		code, out, _ := e.rest(http.MethodPost, "/v1/authenticate", h, body)
		if code != http.StatusUnauthorized || !strings.Contains(fmt.Sprint(out), "BAD_SIGNATURE") ||
			!strings.Contains(fmt.Sprint(out), "-sigopt distid:"+reqsig.SM2UserID) {
			t.Fatalf("REST, OpenSSL without distid: %d %v", code, out)
		}
	}

	// gRPC: OpenSSL signs the request's protobuf bytes.
	method := "/uias.identity.v1.AuthService/Authenticate"
	reqBytes, err := proto.Marshal(&identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password,
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD})
	if err != nil {
		t.Fatal(err)
	}
	call := func(msg func(ts, nonce string) string, uid string, mangle func([]byte) []byte) ([]byte, metadata.MD, string, error) {
		ts, n := strconv.FormatInt(time.Now().Unix(), 10), "sm2grpc-"+strconv.FormatInt(time.Now().UnixNano(), 36)
		sig := opensslSM2(t, keyFile, uid, msg(ts, n))
		if mangle != nil {
			sig = mangle(sig)
		}
		ctx := metadata.AppendToOutgoingContext(f.ctx(), grpcx.MetadataTimestamp, ts, grpcx.MetadataNonce, n, grpcx.MetadataSignature, b64(sig))
		var out []byte
		var trailer metadata.MD
		err := e.conn.Invoke(ctx, method, reqBytes, &out, grpc.ForceCodecV2(bytesCodec{}), grpc.Trailer(&trailer))
		return out, trailer, n, err
	}
	sum := sha256.Sum256(reqBytes)
	right := func(ts, n string) string {
		return reqsig.StringToSign(f.appID, method, ts, n, hex.EncodeToString(sum[:]))
	}
	for name, mangle := range map[string]func([]byte) []byte{"DER": nil, "r||s": func(d []byte) []byte { return rawRS(t, d) }} {
		out, trailer, n, err := call(right, reqsig.SM2UserID, mangle)
		if err != nil {
			t.Fatalf("gRPC signed by OpenSSL (%s): %v", name, err)
		}
		var ar identityv1.AuthenticateResponse
		if err := proto.Unmarshal(out, &ar); err != nil || ar.GetResultCode() != 0 {
			t.Fatalf("gRPC signed by OpenSSL (%s): %v %v", name, &ar, err)
		}
		s := grpcx.ResponseSignatureFrom(trailer)
		if _, ok := sm2Keys[s.KeyID]; !ok {
			t.Fatalf("gRPC answer signed with %q, not SM2", s.KeyID)
		}
		if _, err := v.Verify(f.appID, method, n, out, s); err != nil {
			t.Fatalf("gRPC SM2 answer (%s): %v", name, err)
		}
		if _, err := v.Verify(f.appID, method, n, append(out, 0), s); !errors.Is(err, reqsig.ErrResponseBadSignature) {
			t.Fatalf("a changed gRPC answer: %v", err)
		}
	}
	wrongString := func(ts, n string) string {
		return reqsig.StringToSign(f.appID, "/uias.identity.v1.AuthService/ChangePassword", ts, n, hex.EncodeToString(sum[:]))
	}
	newline := func(ts, n string) string { return right(ts, n) + "\n" }
	flip := func(d []byte) []byte { d = rawRS(t, d); d[40] ^= 1; return d }
	for name, c := range map[string]struct {
		msg    func(ts, n string) string
		uid    string
		mangle func([]byte) []byte
	}{
		"another user ID":             {right, "ALICE123@YAHOO.COM", nil},
		"over the wrong string":       {wrongString, reqsig.SM2UserID, nil},
		"over the string and newline": {newline, reqsig.SM2UserID, nil},
		"a changed signature":         {right, reqsig.SM2UserID, flip},
	} {
		_, _, _, err := call(c.msg, c.uid, c.mangle)
		if st, ok := status.FromError(err); !ok || st.Code() != codes.Unauthenticated || errorInfo(st).GetReason() != "BAD_SIGNATURE" {
			t.Fatalf("gRPC, %s: %v", name, err)
		}
	}

	// authz's answers too (authz has identity sign them): a Go client
	// signing with the same key (gmsm reads OpenSSL's PKCS#8 file).
	kb, _ := os.ReadFile(keyFile)
	gk, err := smx509.ParsePKCS8PrivateKey(pemBody(t, kb))
	if err != nil {
		t.Fatal(err)
	}
	var checkTrailer metadata.MD
	azConn, err := grpc.NewClient(e.app.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(grpcx.SignRequests(f.appID, gk.(*sm2.PrivateKey), grpcx.VerifyAnswers(v))))
	if err != nil {
		t.Fatal(err)
	}
	defer azConn.Close()
	if _, err := authzv1.NewAuthzServiceClient(azConn).Check(f.ctx(), &authzv1.CheckRequest{Person: f.account, Resource: "docs", Operation: "read"},
		grpc.Trailer(&checkTrailer)); err != nil {
		t.Fatalf("Check signed with SM2 in Go, answer verified: %v", err)
	}
	if kid := grpcx.ResponseSignatureFrom(checkTrailer).KeyID; !strings.HasPrefix(kid, "sm2:") {
		t.Fatalf("authz's answer to an SM2 application signed with %q", kid)
	}

	// Keys refused as the other algorithms' are: the SM2 point marked as a
	// P-256 key, a malformed key.
	der := pemBody(t, pub)
	marked := append([]byte(nil), der...)
	sm2OID := []byte{0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d}
	p256OID := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	i := strings.Index(string(marked), string(sm2OID))
	if i < 0 {
		t.Fatalf("OpenSSL's SM2 key does not name the SM2 curve: %x", der)
	}
	copy(marked[i:], p256OID)
	for name, k := range map[string][]byte{
		"SM2 key marked P-256": pemOf(marked),
		"malformed SM2 key":    pemOf(der[:len(der)-3]),
	} {
		_, err := e.admin.UpdateApp(e.adm(), &identityv1.UpdateAppRequest{Id: f.appID, SigningKeys: [][]byte{k},
			UpdateMask: []string{"signing_keys"}})
		st := wantCode(t, err, codes.InvalidArgument, reqsig.ReasonKeyInvalid)
		if st.Message() == "" {
			t.Fatalf("%s: no message", name)
		}
	}

	// The records: the login records of the signed calls name the SM2 key
	// and keep the signatures (the evidence, as for the other algorithms).
	aud := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+e.grantedAdmin(t, "auditor-sm2", "security_auditor"))
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	eventually(t, "the SM2 signed calls' records", func() bool {
		r, err := q.QueryRecords(aud, &auditv1.QueryRecordsRequest{Api: "authenticate", AppId: f.appID, PageSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, rec := range r.GetRecords() {
			if rec.GetDetail()["signed_key"] == thumb {
				n++
			}
		}
		return n >= 4 // REST script, REST r||s, gRPC DER and r||s
	})
}

// TestSM2KeysWithoutSM2Answers: by default (identity.response_signing_sm2
// off) an SM2 key signs requests as any other, UIAS's answers stay
// Ed25519 and no SM2 key is published.
func TestSM2KeysWithoutSM2Answers(t *testing.T) {
	needOpenSSLSM2(t)
	e := start(t, testConfig(t.TempDir()))
	e.login()
	dir := t.TempDir()
	if _, err := sh(t, dir, `openssl genpkey -algorithm SM2 -out sm2.pem && openssl pkey -in sm2.pem -pubout -out sm2.pub.pem`); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "sm2.pub.pem"))
	f := e.seed("sm2-plain", "sm2-plain-user", &identityv1.CreateAppRequest{SigningKeys: [][]byte{pub}}, nil)
	code, out, _ := e.rest(http.MethodGet, "/v1/keys/response-signing", nil, nil)
	if code != http.StatusOK || strings.Contains(fmt.Sprint(out), "SM2") {
		t.Fatalf("keys published without SM2 offered: %d %v", code, out)
	}
	body := `{"app_user_id":"` + f.account + `","password":"` + f.password + `","auth_type":"AUTH_TYPE_PASSWORD"}`
	if _, err := sh(t, dir, integratorsBlock(t, "request-sign-sm2"), "APP_ID="+f.appID, "APP_SECRET="+f.secret,
		"KEY="+filepath.Join(dir, "sm2.pem"), "UIAS="+e.http, "BODY="+body); err != nil {
		t.Fatal(err)
	}
	headers, _ := os.ReadFile(filepath.Join(dir, "headers.txt"))
	if !strings.HasPrefix(string(headers), "HTTP/1.1 200") || strings.Contains(string(headers), "sm2:") ||
		!strings.Contains(strings.ToLower(string(headers)), "x-uias-response-signature") {
		t.Fatalf("SM2-signed call without SM2 offered:\n%s", headers)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// pemBody is the DER of the one PEM block of text.
func pemBody(t *testing.T, text []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(text)
	if b == nil {
		t.Fatalf("not PEM: %s", text)
	}
	return b.Bytes
}

// pemOf is der as a PEM PUBLIC KEY block.
func pemOf(der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}) }
