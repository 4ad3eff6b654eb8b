package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// markingAuth answers every call, telling the edge to sign the answer
// (as grpcx.SignedCall does for a verified signature) when the login is
// "mark:<App_ID>", and failing when it is "refuse" (after marking).
type markingAuth struct {
	identityv1.UnimplementedAuthServiceServer
}

func (markingAuth) Authenticate(ctx context.Context, req *identityv1.AuthenticateRequest) (*identityv1.AuthenticateResponse, error) {
	if app, ok := strings.CutPrefix(req.GetAppUserId(), "mark:"); ok {
		_ = grpc.SetHeader(ctx, metadata.Pairs(grpcx.MetadataSignAnswer, app))
	}
	return &identityv1.AuthenticateResponse{Message: "answer to " + req.GetAppUserId()}, nil
}

// recordingSigner signs with a fixed signature and records what it signed.
type recordingSigner struct {
	mu   sync.Mutex
	got  []string
	fail bool
}

func (s *recordingSigner) SignResponse(_ context.Context, appID, target, nonce, sum string) (reqsig.ResponseSignature, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return reqsig.ResponseSignature{}, errors.New("identity unreachable")
	}
	s.got = append(s.got, appID+"|"+target+"|"+nonce+"|"+sum)
	return reqsig.ResponseSignature{Signature: "c2ln", KeyID: "s1", Timestamp: "1800000000"}, nil
}

// The edge signs the body it sends of the answer to a signed request when
// the service says the signature verified, and only then; the service's
// word never reaches the client; a signer that fails makes the answer a
// 503, never an unsigned answer.
func TestSignedAnswers(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	identityv1.RegisterAuthServiceServer(gs, markingAuth{})
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	signer := &recordingSigner{}
	e := newEnv(t, func(o *Options) {
		o.Backends = []Backend{{Name: "identity", Conn: conn, REST: identityREST}}
		o.ResponseSigner = signer
	})
	hdr := map[string]string{"X-Uias-App-Id": "app-1", "X-Uias-App-Secret": "s3cret",
		"X-Uias-Timestamp": "1800000000", "X-Uias-Nonce": "nonce-0123456789ab", "X-Uias-Signature": "c2ln"}
	leaks := func(r result) bool {
		for k := range r.header {
			if strings.Contains(strings.ToLower(k), "sign-answer") {
				return true
			}
		}
		return false
	}

	r := e.do(t, http.MethodPost, "/v1/authenticate?x=1", strings.NewReader(`{"app_user_id":"mark:app-1"}`), hdr)
	if r.code != http.StatusOK || r.header.Get(reqsig.HeaderResponseSignature) != "c2ln" ||
		r.header.Get(reqsig.HeaderResponseKeyID) != "s1" || r.header.Get(reqsig.HeaderResponseTimestamp) != "1800000000" || leaks(r) {
		t.Fatalf("signed and verified: %d %v %s", r.code, r.header, r.body)
	}
	sum := sha256.Sum256(r.body)
	if want := "app-1|POST /v1/authenticate?x=1|nonce-0123456789ab|" + hex.EncodeToString(sum[:]); len(signer.got) != 1 || signer.got[0] != want {
		t.Fatalf("signed %q, want %q (the body sent: %s)", signer.got, want, r.body)
	}

	// Signed but not verified by the service (another route, say): not
	// signed; unsigned requests are not held, and never signed.
	r = e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"plain"}`), hdr)
	if r.code != http.StatusOK || r.header.Get(reqsig.HeaderResponseSignature) != "" || len(signer.got) != 1 {
		t.Fatalf("signed, not verified: %d %v", r.code, r.header)
	}
	delete(hdr, "X-Uias-Signature")
	delete(hdr, "X-Uias-Timestamp")
	delete(hdr, "X-Uias-Nonce")
	r = e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"plain"}`), hdr)
	if r.code != http.StatusOK || r.header.Get(reqsig.HeaderResponseSignature) != "" || len(signer.got) != 1 {
		t.Fatalf("unsigned: %d %v", r.code, r.header)
	}

	hdr["X-Uias-Timestamp"], hdr["X-Uias-Nonce"], hdr["X-Uias-Signature"] = "1800000000", "nonce-0123456789ab", "c2ln"
	signer.fail = true
	r = e.do(t, http.MethodPost, "/v1/authenticate", strings.NewReader(`{"app_user_id":"mark:app-1"}`), hdr)
	if r.code != http.StatusServiceUnavailable || r.header.Get(reqsig.HeaderResponseSignature) != "" || leaks(r) ||
		strings.Contains(string(r.body), "answer to") {
		t.Fatalf("signer failing: %d %v %s", r.code, r.header, r.body)
	}
}

// An answer the service did not ask to sign is held only up to
// maxHeldAnswer: past it, it goes out as it comes, whole and unsigned
// (review sec23 L4); one it asks to sign is held whole and signed.
func TestHeldAnswersAreBounded(t *testing.T) {
	for _, sign := range []bool{false, true} {
		rec := httptest.NewRecorder()
		a := &answerWriter{w: rec}
		if sign {
			a.Header().Set(headerSignAnswer, "app-1")
		}
		chunk := strings.Repeat("x", 64<<10)
		n := 0
		for n <= maxHeldAnswer+len(chunk) {
			if _, err := a.Write([]byte(chunk)); err != nil {
				t.Fatal(err)
			}
			n += len(chunk)
		}
		if sign == (rec.Body.Len() > 0) {
			t.Fatalf("sign %v: %d bytes out before the end", sign, rec.Body.Len())
		}
		a.Flush()
		if rec.Flushed == sign {
			t.Fatalf("sign %v: flushed %v", sign, rec.Flushed)
		}
		s := &recordingSigner{}
		a.finish(context.Background(), s, "POST /v1/authenticate", "n1")
		if rec.Body.Len() != n || rec.Code != http.StatusOK {
			t.Fatalf("sign %v: %d of %d bytes, status %d", sign, rec.Body.Len(), n, rec.Code)
		}
		if signed := rec.Header().Get(reqsig.HeaderResponseSignature) != ""; signed != sign {
			t.Fatalf("sign %v: signature header %v", sign, signed)
		}
	}
}
