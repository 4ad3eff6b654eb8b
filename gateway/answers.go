package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
)

// Signed answers (docs/adr/0016-signed-answers.md).
//
// The answer to a signed REST request whose signature the service verified
// is signed over the HTTP body the edge sends, which only the edge sees:
// the answer to a signed request is held here (answerWriter) until the
// service has answered; when the service said the call's signature
// verified (its response header metadata x-uias-sign-answer, never
// forwarded), the edge hashes the body, has it signed
// (Options.ResponseSigner: identity, which holds the key ring, through
// CallerService.SignResponse) and sends it with X-Uias-Response-Signature,
// -Key-Id and -Timestamp. Unsigned requests are not held, nor are the
// answers of file routes (streamed; not signed answers).

// headerSignAnswer is the service's word as grpc-gateway sets it on the
// response (outgoingHeaderMatcher).
var headerSignAnswer = http.CanonicalHeaderKey(runtime.MetadataHeaderPrefix + grpcx.MetadataSignAnswer)

// answerWriter holds an answer (its status and body; its headers are the
// response's own) until it is signed.
type answerWriter struct {
	w     http.ResponseWriter
	code  int
	wrote bool
	body  bytes.Buffer
	// passing: the answer is not to be signed and grew past
	// maxHeldAnswer: it goes out as it comes (review sec23 L4: a request
	// that only carries a signature header held any answer whole).
	passing bool
}

// maxHeldAnswer bounds what is held of an answer the service did not ask
// to sign (those it asks to sign are AuthService's and AuthzService's
// answers to one call each: small).
const maxHeldAnswer = 1 << 20

func (a *answerWriter) Header() http.Header { return a.w.Header() }

func (a *answerWriter) WriteHeader(code int) {
	if !a.wrote {
		a.code, a.wrote = code, true
	}
}

func (a *answerWriter) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	if a.passing {
		return a.w.Write(b)
	}
	if a.body.Len()+len(b) > maxHeldAnswer && a.w.Header().Get(headerSignAnswer) == "" {
		// Not an answer to sign: let it go out as it comes.
		a.passing = true
		a.w.WriteHeader(a.code)
		if _, err := a.w.Write(a.body.Bytes()); err != nil {
			return 0, err
		}
		a.body = bytes.Buffer{}
		return a.w.Write(b)
	}
	return a.body.Write(b)
}

// Flush implements http.Flusher: nothing leaves before the answer is
// signed; an answer let through (passing) is flushed.
func (a *answerWriter) Flush() {
	if f, ok := a.w.(http.Flusher); a.passing && ok {
		f.Flush()
	}
}

// finish sends the answer held, signed for application's request to target
// with nonce when the service asked for it and the answer is a success.
// A signing failure answers 503 instead: a signed call is never answered
// unsigned (the client would take it for a forgery).
func (a *answerWriter) finish(ctx context.Context, signer grpcx.ResponseSigner, target, nonce string) {
	h := a.w.Header()
	app := h.Get(headerSignAnswer)
	h.Del(headerSignAnswer)
	if !a.wrote || a.passing {
		return
	}
	if app != "" && signer != nil && a.code >= 200 && a.code < 300 {
		sum := sha256.Sum256(a.body.Bytes())
		s, err := signer.SignResponse(ctx, app, target, nonce, hex.EncodeToString(sum[:]))
		if err != nil {
			st := status.Convert(apierr.ToStatus(apierr.ErrUnavailable.WithMessage(
				"the answer could not be signed now; retry with a new nonce and signature")))
			writeStatusJSON(a.w, apierr.HTTPStatus(st), st)
			return
		}
		h.Set(reqsig.HeaderResponseSignature, s.Signature)
		h.Set(reqsig.HeaderResponseKeyID, s.KeyID)
		h.Set(reqsig.HeaderResponseTimestamp, s.Timestamp)
	}
	a.w.WriteHeader(a.code)
	_, _ = a.w.Write(a.body.Bytes())
}
