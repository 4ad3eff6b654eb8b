package adminauth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
)

// checker knows one token ("good", administrator "a1") and allows one
// permission.
type checker struct {
	allow adminauth.Perm
	asked []adminauth.Perm
}

func (c *checker) Authenticate(_ context.Context, token string) (*adminauth.Admin, error) {
	switch token {
	case "":
		return nil, adminauth.ErrNoToken
	case "good":
		return &adminauth.Admin{ID: "a1", Login: "ann", OrgID: "o1"}, nil
	}
	return nil, apierr.New(apierr.Unauthenticated, adminauth.ReasonBadToken, "the administrator token is invalid or expired")
}

func (c *checker) Authorize(ctx context.Context, a *adminauth.Admin, p adminauth.Perm, target string, orgs ...string) error {
	return c.Check(ctx, a, adminauth.Request{Perm: p, Target: target, Orgs: orgs})
}

func (c *checker) Check(_ context.Context, a *adminauth.Admin, r adminauth.Request) error {
	c.asked = append(c.asked, r.Perm)
	if a == nil || r.Perm != c.allow {
		return adminauth.Denied("not allowed to " + r.Perm.String())
	}
	return nil
}

func withToken(tok string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
}

func reason(err error) string {
	if e, ok := apierr.As(err); ok {
		return e.Reason
	}
	return ""
}

// The admin-only caller authentication: the token, then the method's
// permission; health open; unknown methods and unlisted ones refused.
func TestCallerAuth(t *testing.T) {
	const read, verify, own, unlisted = "/x.v1.S/Read", "/x.v1.S/Verify", "/x.v1.S/Own", "/x.v1.S/New"
	c := &checker{allow: adminauth.AuditRead}
	auth := adminauth.CallerAuth{Checker: c, Prefix: "/x.v1.", Perms: map[string]adminauth.Perm{
		read: adminauth.AuditRead, verify: adminauth.AuditVerify, own: adminauth.HandlerDecides}}

	ctx, err := auth.AuthenticateCaller(withToken("good"), read)
	if err != nil {
		t.Fatal(err)
	}
	if a := adminauth.From(ctx); a == nil || a.ID != "a1" {
		t.Fatalf("administrator in the context: %+v", a)
	}
	if c := caller.From(ctx); c == nil || c.Principal != "a1" {
		t.Fatalf("caller principal: %+v", c)
	}
	if o := grpcx.OriginFrom(ctx); o.Principal != "a1" {
		t.Fatalf("origin principal: %+v", o)
	}

	refused, err := auth.AuthenticateCaller(withToken("good"), verify)
	if e, ok := apierr.As(err); !ok || e.Code != apierr.PermissionDenied || e.Reason != adminauth.ReasonNotAllowed || !strings.Contains(e.Message, "verify") {
		t.Fatalf("a permission not held: %v", err)
	}
	// The refused administrator is known: the call's access record names them.
	if c := caller.From(refused); c == nil || c.Principal != "a1" {
		t.Fatalf("refused call's caller: %+v", c)
	}
	c.asked = nil
	if _, err := auth.AuthenticateCaller(withToken("good"), own); err != nil || len(c.asked) != 0 {
		t.Fatalf("a method whose handler decides: %v (asked %v)", err, c.asked)
	}
	_, err = auth.AuthenticateCaller(withToken("good"), unlisted)
	if reason(err) != adminauth.ReasonNotAllowed || !strings.Contains(err.Error(), unlisted) {
		t.Fatalf("a method without a permission: %v", err)
	}
	for _, tok := range []string{"", "stale"} {
		_, err = auth.AuthenticateCaller(withToken(tok), read)
		if e, ok := apierr.As(err); !ok || e.Code != apierr.Unauthenticated || e.Reason != adminauth.ReasonBadToken {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	// without a token, an unlisted method is refused for the token first
	if _, err = auth.AuthenticateCaller(withToken(""), unlisted); reason(err) != adminauth.ReasonBadToken {
		t.Fatalf("unlisted without token: %v", err)
	}
	if _, err := auth.AuthenticateCaller(context.Background(), "/grpc.health.v1.Health/Check"); err != nil {
		t.Fatalf("health: %v", err)
	}
	_, err = auth.AuthenticateCaller(withToken("good"), "/y.v1.Other/Call")
	if e, ok := apierr.As(err); !ok || e.Code != apierr.Unimplemented {
		t.Fatalf("another service: %v", err)
	}
}

// With identity's legacy rule (identity.admin_authz off) the is_admin flag
// decides without authz (the verifier has no authz connection here).
func TestLegacyRule(t *testing.T) {
	v := adminauth.New(nil, nil)
	ctx := context.Background()
	if err := v.Authorize(ctx, &adminauth.Admin{ID: "u1", SystemAdminFlag: true, LegacyRule: true}, adminauth.AuditRead, ""); err != nil {
		t.Fatalf("legacy system administrator: %v", err)
	}
	err := v.Authorize(ctx, &adminauth.Admin{ID: "u2", LegacyRule: true}, adminauth.SyncRead, "")
	if e, ok := apierr.As(err); !ok || e.Code != apierr.PermissionDenied || !strings.Contains(e.Message, "is_admin") {
		t.Fatalf("legacy non-administrator: %v", err)
	}
	// without the legacy rule and without authz: unavailable, not allowed
	err = v.Authorize(ctx, &adminauth.Admin{ID: "u1", SystemAdminFlag: true}, adminauth.AuditRead, "")
	if e, ok := apierr.As(err); !ok || e.Code != apierr.Unavailable {
		t.Fatalf("no authz: %v", err)
	}
	if err := v.Authorize(ctx, nil, adminauth.AuditRead, ""); !errors.Is(err, adminauth.ErrNoToken) {
		t.Fatalf("no administrator: %v", err)
	}
}
