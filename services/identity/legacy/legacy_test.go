package legacy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/hessian"
	"github.com/uias/uias/pkg/soap"
)

// down is a connection to an identity service that is not there.
type down struct{ err error }

func (d down) Invoke(context.Context, string, any, any, ...grpc.CallOption) error { return d.err }
func (d down) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, d.err
}

// TestFaults: a failing service answers -6, a refused request -5, in both
// transports.
func TestFaults(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int32
	}{
		{status.Error(codes.Unavailable, "no connection"), -6},
		{status.Error(codes.Internal, "boom"), -6},
		{status.Error(codes.Unauthenticated, "bad app"), -5},
		{apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "x"), -5},
	} {
		h := New(down{c.err}, zap.NewNop())
		call := []byte{'C'}
		call = hessian.AppendString(call, "authenticate")
		call = hessian.AppendInt(call, 7)
		for _, a := range []string{"OA", "oa", "m001", "", "pw", "1", ""} {
			call = hessian.AppendString(call, a)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, HessianPath, strings.NewReader(string(call))))
		if want := string(hessian.EncodeReply(c.want)); rec.Body.String() != want {
			t.Errorf("Hessian, %v: %q, want %q", c.err, rec.Body.String(), want)
		}
		env := `<s:Envelope xmlns:s="` + soap.EnvelopeNS + `"><s:Body><a:authenticate xmlns:a="` + soap.Namespace +
			`"><authType>1</authType></a:authenticate></s:Body></s:Envelope>`
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, SOAPPath, strings.NewReader(env)))
		if want := string(soap.EncodeResponse(c.want)); rec.Body.String() != want {
			t.Errorf("SOAP, %v: %q, want %q", c.err, rec.Body.String(), want)
		}
	}
	// Unknown paths and methods.
	h := New(down{}, zap.NewNop())
	for _, c := range []struct {
		method, path string
		code         int
	}{{"GET", HessianPath, 405}, {"PUT", SOAPPath, 405}, {"POST", Prefix + "other", 404}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, rec.Code, c.code)
		}
	}
}
