package ctl

import (
	"crypto"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
)

// The Go example of docs/integrators.md ("Signed answers") is the code
// between the markers below, word for word (TestAnswerExampleInDocs);
// TestSignedAnswersMonolith runs it against a server.

// answer-verify:begin

// verifyUIASAnswer checks UIAS's signature of res, the answer to the
// signed REST request r of application appID (body: res's body, read in
// full), with the keys published at GET /v1/keys/response-signing (jwks).
func verifyUIASAnswer(jwks []byte, appID string, r *http.Request, res *http.Response, body []byte) error {
	keys, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		return err
	}
	// reqsig.ErrResponseUnsigned, ErrResponseUnknownKey (fetch the keys
	// again) or ErrResponseBadSignature when it does not verify.
	_, err = keys.VerifyHTTP(appID, r, res, body)
	return err
}

// dialUIAS connects over gRPC: every call is signed with key and every
// answer checked (a call whose answer does not verify returns an error).
func dialUIAS(addr, appID string, key crypto.Signer, jwks []byte, tls credentials.TransportCredentials) (*grpc.ClientConn, error) {
	keys, err := reqsig.ParseResponseKeys(jwks)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, grpc.WithTransportCredentials(tls),
		grpc.WithChainUnaryInterceptor(grpcx.SignRequests(appID, key, grpcx.VerifyAnswers(keys))))
}

// answer-verify:end

// TestAnswerExampleInDocs: docs/integrators.md shows the example above as
// it is.
func TestAnswerExampleInDocs(t *testing.T) {
	between := func(name, s, begin, end string) string {
		_, rest, ok := strings.Cut(s, begin)
		got, _, ok2 := strings.Cut(rest, end)
		if !ok || !ok2 {
			t.Fatalf("%s has no %s ... %s", name, begin, end)
		}
		return strings.TrimSpace(got)
	}
	src, err := os.ReadFile("answers_doc_test.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := between("answers_doc_test.go", string(src), "// answer-verify:"+"begin", "// answer-verify:"+"end")
	got := between("docs/integrators.md", string(doc), "<!-- answer-verify:begin -->", "<!-- answer-verify:end -->")
	got = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(got, "```go"), "```"))
	if got != want {
		t.Fatalf("the example in docs/integrators.md differs from the tested one in answers_doc_test.go:\n--- docs\n%s\n--- test\n%s", got, want)
	}
}
