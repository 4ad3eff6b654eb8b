package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestCtlPageSizeBound: ctl refuses a --page-size larger than the identity
// service answers (a usage error naming the bound, nothing called) and
// accepts the bound itself; the service refuses one more, so ctl's bound is
// the service's.
func TestCtlPageSizeBound(t *testing.T) {
	a, c, _ := ctlSetup(t)
	for _, noun := range []string{"org", "user", "group", "app", "link"} {
		c.run("", noun, "list", "--page-size", "500")
		for _, n := range []string{"501", "2147483647", "2147483648", "-1"} {
			stderr := c.fail(2, "", noun, "list", "--page-size", n)
			if !strings.HasPrefix(stderr, "error: --page-size must be between 0 and 500 (the most the server answers in one page") &&
				!strings.Contains(stderr, "invalid value") {
				t.Errorf("%s list --page-size %s: %s", noun, n, stderr)
			}
		}
	}
	stderr := c.fail(2, "", "authz", "grants", "--page-size", "2147483648")
	if !strings.Contains(stderr, "--page-size must be between 0 and 1000") && !strings.Contains(stderr, "invalid value") {
		t.Errorf("authz grants: %s", stderr)
	}
	c.fail(2, "", "authz", "grants", "--page-size", "1001")

	tok, err := os.ReadFile(filepath.Join(c.env["UIAS_CONFIG_DIR"], "token"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(tok)))
	admin := identityv1.NewAdminServiceClient(conn)
	if _, err := admin.ListUsers(ctx, &identityv1.ListUsersRequest{PageSize: 500}); err != nil {
		t.Fatalf("the service refuses 500: %v", err)
	}
	if _, err := admin.ListUsers(ctx, &identityv1.ListUsersRequest{PageSize: 501}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("the service answers 501 with %v: ctl's bound is not the service's", err)
	}
}
