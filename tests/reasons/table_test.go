// Package reasons checks the error reason table as a whole: every registered
// reason answers its code and legacy code over gRPC and its HTTP status over
// REST (through the real interceptor chain and the real gateway error
// handler), every reason used in the sources is registered, and
// docs/integrators.md lists the table as it is.
package reasons

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	// The binary's components, so every reason they register is in the table.
	_ "github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/gateway"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// reasonAuth answers Authenticate with an error of the reason named by
// app_user_id (a reason nobody registered when the name is unknown), caused
// by an error whose text must never reach the caller.
type reasonAuth struct {
	identityv1.UnimplementedAuthServiceServer
}

const secretCause = "dial tcp 10.1.2.3:5432: SELECT password FROM users"

func (reasonAuth) Authenticate(_ context.Context, req *identityv1.AuthenticateRequest) (*identityv1.AuthenticateResponse, error) {
	name := req.GetAppUserId()
	code := apierr.NotFound
	if r, ok := apierr.Lookup(name); ok {
		code = r.Code
	}
	return nil, apierr.Wrap(errors.New(secretCause), code, name, "answer for "+name)
}

type stack struct {
	auth identityv1.AuthServiceClient
	rest string
}

// newStack serves reasonAuth behind the real gRPC interceptor chain (with
// its error funnel) and the real REST edge.
func newStack(t *testing.T) *stack {
	t.Helper()
	gs, _ := grpcx.NewServer(grpcx.ServerOptions{Logger: zaptest.NewLogger(t)})
	identityv1.RegisterAuthServiceServer(gs, reasonAuth{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rest := func(ctx context.Context, mux *runtime.ServeMux, conn grpc.ClientConnInterface) error {
		return identityv1.RegisterAuthServiceHandlerClient(ctx, mux, identityv1.NewAuthServiceClient(conn))
	}
	h, err := gateway.New(ctx, gateway.Options{Logger: zaptest.NewLogger(t),
		Backends: []gateway.Backend{{Name: "reasons", Conn: conn, REST: rest}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &stack{auth: identityv1.NewAuthServiceClient(conn), rest: srv.URL}
}

type restAnswer struct {
	http       int
	retryAfter string
	code       int
	message    string
	reason     string
	legacy     string
	raw        string
}

func (s *stack) restCall(t *testing.T, reason string) restAnswer {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"app_user_id": reason})
	resp, err := http.Post(s.rest+"/v1/authenticate", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var eb struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details []struct {
			Reason   string            `json:"reason"`
			Domain   string            `json:"domain"`
			Metadata map[string]string `json:"metadata"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &eb); err != nil {
		t.Fatalf("REST error body %s: %v", raw, err)
	}
	a := restAnswer{http: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), code: eb.Code,
		message: eb.Message, raw: string(raw)}
	for _, d := range eb.Details {
		if d.Domain == apierr.Domain {
			a.reason, a.legacy = d.Reason, d.Metadata[apierr.MetaLegacyCode]
		}
	}
	return a
}

func legacyString(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// Every registered reason, answered by a service: over gRPC its code, reason,
// legacy code and message; over REST its HTTP status (Retry-After on 429) and
// the same body fields. Internal errors show neither message nor cause.
func TestEveryReasonAnswers(t *testing.T) {
	s := newStack(t)
	all := apierr.Reasons()
	names := map[string]bool{}
	for _, r := range all {
		names[r.Name] = true
	}
	// The table holds the platform's, the edge's and identity's reasons.
	for _, want := range []string{"INTERNAL", "STORAGE_UNAVAILABLE", "REQUEST_TOO_LARGE", "WEAK_PASSWORD", "UNKNOWN_METHOD"} {
		if !names[want] {
			t.Fatalf("reason %s is not registered; the test does not see every component", want)
		}
	}
	for _, r := range all {
		t.Run(r.Name, func(t *testing.T) {
			wantMsg := "answer for " + r.Name
			if r.Code == apierr.Internal {
				wantMsg = "internal error"
			}
			_, err := s.auth.Authenticate(context.Background(), &identityv1.AuthenticateRequest{AppUserId: r.Name})
			st := status.Convert(err)
			info := apierr.Info(st)
			if st.Code() != r.Code.GRPCCode() || info.GetReason() != r.Name ||
				info.GetMetadata()[apierr.MetaLegacyCode] != legacyString(r.Legacy) || st.Message() != wantMsg {
				t.Errorf("gRPC: %v %q reason %q meta %v; want %v %q reason %s legacy %q", st.Code(), st.Message(),
					info.GetReason(), info.GetMetadata(), r.Code.GRPCCode(), wantMsg, r.Name, legacyString(r.Legacy))
			}

			a := s.restCall(t, r.Name)
			if a.http != r.HTTPStatus() || a.code != int(r.Code.GRPCCode()) || a.reason != r.Name ||
				a.legacy != legacyString(r.Legacy) || a.message != wantMsg {
				t.Errorf("REST: %+v; want HTTP %d code %d reason %s legacy %q message %q", a, r.HTTPStatus(),
					r.Code.GRPCCode(), r.Name, legacyString(r.Legacy), wantMsg)
			}
			if (a.http == http.StatusTooManyRequests) != (a.retryAfter == "1") {
				t.Errorf("REST: HTTP %d with Retry-After %q", a.http, a.retryAfter)
			}
			if strings.Contains(st.Message()+a.raw, "10.1.2.3") || strings.Contains(a.raw, "SELECT") {
				t.Errorf("the cause leaks: %s", a.raw)
			}
		})
	}
}

// A reason nobody registered reaches the funnel as an internal error: 500,
// INTERNAL, -6, no message, no cause.
func TestUnregisteredReasonAnswersInternal(t *testing.T) {
	s := newStack(t)
	_, err := s.auth.Authenticate(context.Background(), &identityv1.AuthenticateRequest{AppUserId: "NOBODY_REGISTERED_THIS"})
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" ||
		apierr.Info(st).GetReason() != apierr.ReasonInternal {
		t.Fatalf("gRPC: %v", st)
	}
	a := s.restCall(t, "NOBODY_REGISTERED_THIS")
	if a.http != 500 || a.reason != apierr.ReasonInternal || a.legacy != "-6" || a.message != "internal error" ||
		strings.Contains(a.raw, "NOBODY") || strings.Contains(a.raw, "10.1.2.3") {
		t.Fatalf("REST: %+v", a)
	}
}
