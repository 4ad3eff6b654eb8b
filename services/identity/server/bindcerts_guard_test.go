package server_test

// Review sec30a I2: BindCertificates reaches authz as a global request (no
// org, no target), which only an unscoped grant allows.

import (
	"context"
	"testing"

	"github.com/uias/uias/pkg/adminauth"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity/server"
)

type guardRecorder struct{ got []adminauth.Request }

func (c *guardRecorder) Check(_ context.Context, _ *adminauth.Admin, r adminauth.Request) error {
	c.got = append(c.got, r)
	return nil
}

func (c *guardRecorder) Authenticate(context.Context, string) (*adminauth.Admin, error) {
	return nil, nil
}
func (c *guardRecorder) Authorize(ctx context.Context, a *adminauth.Admin, p adminauth.Perm, target string, orgs ...string) error {
	return c.Check(ctx, a, adminauth.Request{Perm: p, Target: target, Orgs: orgs})
}

func TestBindCertificatesIsGlobal(t *testing.T) {
	c := &guardRecorder{}
	g := &server.Guard{Authz: c}
	ctx := adminauth.With(context.Background(), &adminauth.Admin{ID: "unit-admin"})
	if err := g.Check(ctx, identityv1.AdminService_BindCertificates_FullMethodName, &identityv1.BindCertificatesRequest{}); err != nil {
		t.Fatal(err)
	}
	if len(c.got) != 1 || len(c.got[0].Orgs) != 0 || c.got[0].Target != "" || c.got[0].Perm != adminauth.UsersPassword {
		t.Fatalf("BindCertificates asked authz %+v", c.got)
	}
}
