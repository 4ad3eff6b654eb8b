package component

import (
	"context"
	"errors"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// fakeAuthz answers ListPermissions with a set answer, or fails.
type fakeAuthz struct {
	authzv1.AuthzServiceClient
	got       *authzv1.ListPermissionsRequest
	principal string
	err       error
	old       bool // an authz of an earlier version: include_roles ignored
}

func (f *fakeAuthz) ListPermissions(ctx context.Context, r *authzv1.ListPermissionsRequest, _ ...grpc.CallOption) (*authzv1.ListPermissionsResponse, error) {
	f.got, f.principal = r, grpcx.OriginFrom(ctx).Principal
	if f.err != nil {
		return nil, f.err
	}
	return &authzv1.ListPermissionsResponse{RolesIncluded: !f.old,
		Roles: []*authzv1.Role{{Id: "r1", App: "oa", Code: "clerk", Name: "Clerk"}, {Id: "r2", App: "oa", Code: "head"}},
		Permissions: []*authzv1.Permission{{App: "oa", Resource: "docs", Operation: "read"},
			{App: "oa", Resource: "docs.inbox", Operation: "read"}}}, nil
}

// TestAuthzRelease: one ListPermissions with include_roles for the
// person and the service's application, asked on the person's behalf;
// roles answered as codes, permissions as resource:operation; authz's
// failure an error (never an empty answer).
func TestAuthzRelease(t *testing.T) {
	f := &fakeAuthz{}
	roles, perms, err := authzRelease{authz: f}.Authorization(context.Background(), "u1", "oa")
	if err != nil || !slices.Equal(roles, []string{"clerk", "head"}) || !slices.Equal(perms, []string{"docs:read", "docs.inbox:read"}) {
		t.Fatalf("answer: %v %v %v", roles, perms, err)
	}
	if f.got.GetPerson() != "u1" || f.got.GetApp() != "oa" || !f.got.GetIncludeRoles() || f.principal != "u1" {
		t.Errorf("asked %+v as %q", f.got, f.principal)
	}
	f.err = status.Error(codes.Unavailable, "no children to pick from")
	if roles, perms, err := (authzRelease{authz: f}).Authorization(context.Background(), "u1", "oa"); err == nil || roles != nil || perms != nil {
		t.Fatalf("authz down: %v %v %v", roles, perms, err)
	}
	// An authz that ignores include_roles is not taken as "no roles".
	f.err, f.old = nil, true
	if roles, _, err := (authzRelease{authz: f}).Authorization(context.Background(), "u1", "oa"); err == nil || roles != nil {
		t.Fatalf("an authz of an earlier version: %v %v", roles, err)
	}
	f.err, f.old = errors.New("closed"), false
	if _, _, err := (authzRelease{authz: f}).Authorization(context.Background(), "u1", "oa"); err == nil {
		t.Fatal("an error answered as no roles")
	}
}
