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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/hessian"
	"github.com/uias/uias/pkg/soap"
	"github.com/uias/uias/services/identity"
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

// recorder is a connection to identity that records the legacy marks of
// the Authenticate calls made on it, and the App_ID they carry.
type recorder struct{ marks, apps []string }

func (c *recorder) Invoke(ctx context.Context, _ string, _ any, _ any, _ ...grpc.CallOption) error {
	md, _ := metadata.FromOutgoingContext(ctx)
	mark := md.Get(identity.MetadataLegacyMalformed)
	if len(mark) == 1 {
		c.marks = append(c.marks, mark[0])
		c.apps = append(c.apps, strings.Join(md.Get(grpcx.MetadataAppID), ","))
		return apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "malformed legacy request")
	}
	return status.Error(codes.Unavailable, "not in this test")
}
func (c *recorder) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unavailable, "no streams")
}

// TestMalformedRequestsReported: every request that cannot become an
// Authenticate call is reported to identity with the caller's credentials
// and a mark naming the transport and what was wrong (never its content),
// so that identity audits it; the caller still gets -5 or a fault.
func TestMalformedRequestsReported(t *testing.T) {
	hcall := func(method string, args ...string) []byte {
		b := []byte{'C'}
		b = hessian.AppendString(b, method)
		b = hessian.AppendInt(b, int32(len(args)))
		for _, a := range args {
			b = hessian.AppendString(b, a)
		}
		return b
	}
	env := func(fields string) string {
		return `<s:Envelope xmlns:s="` + soap.EnvelopeNS + `"><s:Body><a:authenticate xmlns:a="` + soap.Namespace +
			`">` + fields + `</a:authenticate></s:Body></s:Envelope>`
	}
	for _, c := range []struct {
		path, body, mark string
	}{
		{HessianPath, "garbage", "hessian;call;0"},
		{HessianPath, string(hcall("authenticate", "OA")[:9]), "hessian;call;1"},
		{HessianPath, string(hcall("delete", "OA", "oa", "m001", "", "pw", "1", "")), "hessian;method"},
		{HessianPath, string(hcall("authenticate", "OA", "oa", "m001", "not base64!", "", "2", "")), "hessian;finger_feature"},
		{HessianPath, string(hcall("authenticate", "OA", "oa", "m001", "", "pw", "9", "")), "hessian;auth_type"},
		{SOAPPath, "<not-soap/>", "soap;envelope"},
		{SOAPPath, env("<authType>one</authType>"), "soap;auth_type"},
		{SOAPPath, env("<authType>2</authType><fingerFeature>%%%</fingerFeature>"), "soap;finger_feature"},
	} {
		rec := &recorder{}
		h := New(rec, zap.NewNop())
		req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
		req.SetBasicAuth("app-1", "secret-1")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if len(rec.marks) != 1 || rec.marks[0] != c.mark || rec.apps[0] != "app-1" {
			t.Errorf("%s %.20q: reported %v for %v, want %q for app-1", c.path, c.body, rec.marks, rec.apps, c.mark)
		}
		switch {
		case c.path == SOAPPath && c.mark == "soap;envelope":
			if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "soap:Client") {
				t.Errorf("bad envelope: %d %s", w.Code, w.Body)
			}
		case c.path == SOAPPath:
			if w.Body.String() != string(soap.EncodeResponse(-5)) {
				t.Errorf("%.20q: %s, want -5", c.body, w.Body)
			}
		case c.mark == "hessian;method":
			if !strings.Contains(w.Body.String(), "NoSuchMethodException") {
				t.Errorf("other method: %q", w.Body)
			}
		default:
			if w.Body.String() != string(hessian.EncodeReply(-5)) {
				t.Errorf("%.20q: %q, want -5", c.body, w.Body)
			}
		}
	}
}

// named is a connection to identity that records, of each Authenticate
// call, the App_ID and the legacy application name it carries.
type named struct{ ids, apps []string }

func (c *named) Invoke(ctx context.Context, _ string, _ any, out any, _ ...grpc.CallOption) error {
	md, _ := metadata.FromOutgoingContext(ctx)
	c.ids = append(c.ids, strings.Join(md.Get(grpcx.MetadataAppID), ","))
	c.apps = append(c.apps, strings.Join(md.Get(identity.MetadataLegacyApp), ","))
	return nil
}
func (c *named) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unavailable, "no streams")
}

// TestCallerWithoutCredentials: a call without App_ID and secret names its
// application by the call's appType and appCode (identity admits it by
// address when the application opted in: legacy_ip_only); one with
// credentials sends them and no name, over both transports.
func TestCallerWithoutCredentials(t *testing.T) {
	call := []byte{'C'}
	call = hessian.AppendString(call, "authenticate")
	call = hessian.AppendInt(call, 7)
	for _, a := range []string{"OA", "oa", "m001", "", "pw", "1", ""} {
		call = hessian.AppendString(call, a)
	}
	env := `<s:Envelope xmlns:s="` + soap.EnvelopeNS + `"><s:Body><a:authenticate xmlns:a="` + soap.Namespace +
		`"><appType>OA</appType><appCode>办公</appCode><authType>1</authType></a:authenticate></s:Body></s:Envelope>`
	for _, c := range []struct {
		path, body, app string
	}{{HessianPath, string(call), "OA\x00oa"}, {SOAPPath, env, "OA\x00办公"}} {
		rec := &named{}
		h := New(rec, zap.NewNop())
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body)))
		req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
		req.SetBasicAuth("app-1", "secret-1")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if len(rec.ids) != 2 || rec.ids[0] != "" || rec.apps[0] != c.app || rec.ids[1] != "app-1" || rec.apps[1] != "" {
			t.Errorf("%s: App_IDs %q, names %q", c.path, rec.ids, rec.apps)
		}
	}
}
