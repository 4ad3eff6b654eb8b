package ctl

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// UIAS signs its answers to signed calls (JR/T 0185-2020 §7.2.2; docs/adr/
// 0016) through a whole monolith: the keys published by REST and by ctl
// are the same; Authenticate and authz Check answers verify over gRPC (the
// bytes as received) and REST (the body as sent) with them; a tampered
// answer, an answer taken for another request (nonce) and an unsigned
// call's answer (no signature at all) do not.
func TestSignedAnswersMonolith(t *testing.T) {
	const pw = "Signed-Answers-Pass-1"
	a, h := startMonolith(t, pw, nil)
	appID, secret := h.createApp("answers", "Answers")
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pub, _ := reqsig.PublicKeyPEM(ed.Public())
	keyFile := filepath.Join(t.TempDir(), "ed.pem")
	if err := os.WriteFile(keyFile, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mustRun("app", "update", appID, "--signing-key", keyFile)

	// The published keys: REST (no credentials) and ctl say the same.
	res, err := http.Get("http://" + a.HTTPAddr() + "/v1/keys/response-signing")
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/keys/response-signing: %d %s", res.StatusCode, jwks)
	}
	v, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		t.Fatalf("%v\n%s", err, jwks)
	}
	ctlKeys := h.mustRun("-o", "json", "keys", "response-signing")
	if _, err := reqsig.ParseResponseKeys([]byte(ctlKeys)); err != nil {
		t.Fatalf("ctl keys response-signing -o json: %v\n%s", err, ctlKeys)
	}
	var restSet, ctlSet struct{ Keys []reqsig.ResponseKey }
	_ = json.Unmarshal(jwks, &restSet)
	_ = json.Unmarshal([]byte(ctlKeys), &ctlSet)
	if len(restSet.Keys) == 0 || len(restSet.Keys) != len(ctlSet.Keys) || restSet.Keys[0] != ctlSet.Keys[0] || !restSet.Keys[0].Active {
		t.Fatalf("REST keys %+v, ctl keys %+v", restSet.Keys, ctlSet.Keys)
	}
	if table := h.mustRun("keys", "response-signing"); !strings.Contains(table, restSet.Keys[0].X) || !strings.Contains(table, "Ed25519") {
		t.Fatalf("ctl keys response-signing:\n%s", table)
	}

	creds := func() context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, appID, grpcx.MetadataAppSecret, secret)
	}
	req := &identityv1.AuthenticateRequest{AppUserId: "nobody", Password: "x", AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD}
	checkReq := &authzv1.CheckRequest{Person: "nobody", Resource: "docs", Operation: "read"}

	// gRPC, with the client helper: every answer is checked.
	vconn, err := dialUIAS(a.GRPCAddr(), appID, ed, jwks, insecure.NewCredentials())
	if err != nil {
		t.Fatal(err)
	}
	defer vconn.Close()
	if _, err := identityv1.NewAuthServiceClient(vconn).Authenticate(creds(), req); err != nil {
		t.Fatalf("Authenticate, answer verified: %v", err)
	}
	if _, err := authzv1.NewAuthzServiceClient(vconn).Check(creds(), checkReq); err != nil {
		t.Fatalf("Check, answer verified: %v", err)
	}

	// gRPC by hand: the trailer, over the bytes as received; a changed
	// byte or another request's nonce does not verify.
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []struct {
		method string
		req    proto.Message
	}{{identityv1.AuthService_Authenticate_FullMethodName, req}, {authzv1.AuthzService_Check_FullMethodName, checkReq}} {
		body, _ := proto.Marshal(c.req)
		md, err := grpcx.SignatureMetadata(appID, ed, c.method, body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		nonce := md[3]
		var trailer metadata.MD
		var raw rawAnswer
		if err := conn.Invoke(metadata.AppendToOutgoingContext(creds(), md...), c.method, grpcx.EncodedRequest(body), &raw,
			grpc.ForceCodecV2(rawCodec{}), grpc.Trailer(&trailer)); err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
		sig := grpcx.ResponseSignatureFrom(trailer)
		if sig.KeyID != restSet.Keys[0].KeyID {
			t.Fatalf("%s: signed with %q", c.method, sig.KeyID)
		}
		if _, err := v.Verify(appID, c.method, nonce, raw, sig); err != nil {
			t.Fatalf("%s: the answer does not verify: %v", c.method, err)
		}
		tampered := append([]byte(nil), raw...)
		tampered = append(tampered, 0x08, 0x01) // one more field
		if _, err := v.Verify(appID, c.method, nonce, tampered, sig); !errors.Is(err, reqsig.ErrResponseBadSignature) {
			t.Fatalf("%s: a tampered answer: %v", c.method, err)
		}
		if _, err := v.Verify(appID, c.method, "another-request-nonce-1", raw, sig); !errors.Is(err, reqsig.ErrResponseBadSignature) {
			t.Fatalf("%s: the answer taken for another request: %v", c.method, err)
		}
		// An unsigned call (the application need not sign) gets no
		// signature.
		trailer = nil
		if err := conn.Invoke(creds(), c.method, c.req, &raw, grpc.ForceCodecV2(rawCodec{}), grpc.Trailer(&trailer)); err != nil {
			t.Fatalf("%s unsigned: %v", c.method, err)
		}
		if got := grpcx.ResponseSignatureFrom(trailer); got != (reqsig.ResponseSignature{}) {
			t.Fatalf("%s unsigned: the answer is signed: %+v", c.method, got)
		}
	}

	// REST: the body as sent, the headers.
	rest := func(path, body string, sign bool) (*http.Request, *http.Response, []byte) {
		r, _ := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Uias-App-Id", appID)
		r.Header.Set("X-Uias-App-Secret", secret)
		if sign {
			ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), "answer-nonce-"+strconv.FormatInt(time.Now().UnixNano(), 36)
			sum := sha256.Sum256([]byte(body))
			sig, err := reqsig.Sign(ed, reqsig.StringToSign(appID, "POST "+path, ts, nonce, hex.EncodeToString(sum[:])))
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
			t.Fatalf("POST %s: %d %s", path, res.StatusCode, b)
		}
		for k := range res.Header {
			if strings.Contains(strings.ToLower(k), "sign-answer") {
				t.Fatalf("POST %s: the service's word to the edge reached the client: %s", path, k)
			}
		}
		return r, res, b
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/authenticate", `{"app_user_id":"nobody","password":"x","auth_type":"AUTH_TYPE_PASSWORD"}`},
		{"/v1/authz/check", `{"person":"nobody","resource":"docs","operation":"read"}`},
	} {
		r, res, b := rest(c.path, c.body, true)
		if _, err := v.VerifyHTTP(appID, r, res, b); err != nil {
			t.Fatalf("POST %s: the answer does not verify: %v (%v)", c.path, err, res.Header)
		}
		if err := verifyUIASAnswer(jwks, appID, r, res, b); err != nil {
			t.Fatalf("POST %s: the documented example: %v", c.path, err)
		}
		tampered := []byte(strings.Replace(string(b), "nobody", "nobodx", 1))
		if tampered[0] == b[0] && string(tampered) == string(b) {
			tampered = append(tampered, ' ')
		}
		if _, err := v.VerifyHTTP(appID, r, res, tampered); !errors.Is(err, reqsig.ErrResponseBadSignature) {
			t.Fatalf("POST %s: a tampered answer: %v", c.path, err)
		}
		if err := verifyUIASAnswer(jwks, appID, r, res, tampered); err == nil {
			t.Fatalf("POST %s: the documented example takes a tampered answer", c.path)
		}
		r, res, b = rest(c.path, c.body, false)
		if res.Header.Get(reqsig.HeaderResponseSignature) != "" || res.Header.Get(reqsig.HeaderResponseKeyID) != "" {
			t.Fatalf("POST %s unsigned: the answer is signed: %v", c.path, res.Header)
		}
		if _, err := v.VerifyHTTP(appID, r, res, b); !errors.Is(err, reqsig.ErrResponseUnsigned) {
			t.Fatalf("POST %s unsigned: %v", c.path, err)
		}
	}
}

// rawAnswer is an answer's bytes as received (rawCodec).
type rawAnswer []byte

// rawCodec sends an EncodedRequest as it is and keeps the answer's bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(grpcx.EncodedRequest); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*rawAnswer)) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }
