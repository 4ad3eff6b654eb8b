package adminauth_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
)

// An administrator's call that authz does not answer (nothing listens
// where it is dialled) is refused, once the retries end with the call's
// deadline, as UNAVAILABLE AUTHZ_UNAVAILABLE (legacy -6) saying that authz
// is unavailable, not with the transport's words.
func TestAuthorizeAuthzUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := adminauth.New(conn, conn)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err = v.Authorize(ctx, &adminauth.Admin{ID: "adm1"}, adminauth.Perm{Resource: "identity.users", Operation: "read"}, "u1")
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.Unavailable || ae.Reason != adminauth.ReasonAuthzUnavailable {
		t.Fatalf("authz down: %v, want UNAVAILABLE %s", err, adminauth.ReasonAuthzUnavailable)
	}
	st := status.Convert(apierr.ToStatus(err))
	if info := apierr.Info(st); info.GetMetadata()["legacy_code"] != "-6" {
		t.Fatalf("legacy code %v", info)
	}
	if msg := st.Message(); !strings.Contains(msg, "authorization service (authz) is unavailable") || strings.Contains(msg, "connect") {
		t.Fatalf("message %q", msg)
	}
}

// An administrator's call whose token identity cannot check (identity
// down behind the component asked) says that identity is the one missing
// (trial12 D3).
func TestAuthenticateIdentityUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	v := adminauth.New(conn, conn)
	_, err = v.Authenticate(context.Background(), "some-token")
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.Unavailable || ae.Reason != adminauth.ReasonIdentityUnavailable ||
		!strings.Contains(ae.Message, "identity service is unavailable") {
		t.Fatalf("identity down: %v, want UNAVAILABLE %s", err, adminauth.ReasonIdentityUnavailable)
	}
}
