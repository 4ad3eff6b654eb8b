package ticket_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
)

// fakeRelease is a ticket.AuthorizationSource with set answers by
// user+"/"+app; down makes it fail as an unreachable authz does.
type fakeRelease struct {
	mu    sync.Mutex
	roles map[string][]string
	perms map[string][]string
	down  error
	asked []string
}

func (r *fakeRelease) Authorization(_ context.Context, userID, appID string) ([]string, []string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, userID+"/"+appID)
	if r.down != nil {
		return nil, nil, r.down
	}
	k := userID + "/" + appID
	return r.roles[k], r.perms[k], nil
}

func (r *fakeRelease) set(down error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *fakeRelease) questions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

const (
	svcBoth  = "https://both.example.org/app/"
	svcRoles = "https://roles.example.org/app/"
)

// releaseFixture registers "rel" (roles and permissions of appR) and
// "rol" (roles only, appR too) besides the fixture's services.
func releaseFixture(t *testing.T, wrap func(ticket.Store) ticket.Store) (*fixture, *fakeRelease) {
	t.Helper()
	f := newFixtureWith(t, ticket.Config{}, wrap)
	register(t, f.services, "rel", ticket.RegisteredService{AppID: "appR", URL: "https://both.example.org/", ReleaseRoles: true, ReleasePermissions: true})
	register(t, f.services, "rol", ticket.RegisteredService{AppID: "appR", URL: "https://roles.example.org/", ReleaseRoles: true})
	f.svc.Registry().Invalidate()
	r := &fakeRelease{roles: map[string][]string{"u1/appR": {"clerk", "head"}, "u1/app1": {"other"}},
		perms: map[string][]string{"u1/appR": {"docs:read"}, "u1/app1": {"x:y"}}}
	f.svc.SetRelease(r)
	return f, r
}

func validateAttrs(t *testing.T, s *ticket.Service, st, service string) *ticket.Validation {
	t.Helper()
	v, err := s.ValidateTicket(context.Background(), ticket.Validate{Ticket: st, Service: service, Attributes: true})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestReleaseAuthorization: a service that releases roles and permissions
// gets authz's answer for the ticket's application with a validation that
// answers attributes, and only what it releases; other services and
// validations without attributes cost no question.
func TestReleaseAuthorization(t *testing.T) {
	f, r := releaseFixture(t, nil)
	tgt := f.login(t, "u1")

	v := validateAttrs(t, f.svc, f.st(t, tgt, svcBoth), svcBoth)
	a := v.Authorization
	if !v.Valid || a == nil || !slices.Equal(a.Roles, []string{"clerk", "head"}) || !slices.Equal(a.Permissions, []string{"docs:read"}) ||
		!a.RolesReleased || !a.PermissionsReleased {
		t.Fatalf("released: %+v %+v", v, a)
	}
	if q := r.questions(); !slices.Equal(q, []string{"u1/appR"}) {
		t.Errorf("authz asked %v, want once about the service's application", q)
	}
	if !f.audit.find("ticket.validate", "success", "OK") {
		t.Error("no record of the validation")
	}

	v = validateAttrs(t, f.svc, f.st(t, tgt, svcRoles), svcRoles)
	if a := v.Authorization; !v.Valid || a == nil || !a.RolesReleased || a.PermissionsReleased || len(a.Permissions) != 0 ||
		len(a.Roles) != 2 {
		t.Fatalf("roles only: %+v", a)
	}

	// A service that releases nothing, and CAS 2.0 validation (no
	// attributes) of one that does: authz is not asked.
	n := len(r.questions())
	if v := validateAttrs(t, f.svc, f.st(t, tgt, svcA), svcA); !v.Valid || v.Authorization != nil {
		t.Fatalf("service without release: %+v", v)
	}
	if v := f.validate(t, f.st(t, tgt, svcBoth), svcBoth); !v.Valid || v.Authorization != nil {
		t.Fatalf("validation without attributes: %+v", v)
	}
	if len(r.questions()) != n {
		t.Errorf("authz asked for nothing to release: %v", r.questions())
	}

	// A person holding nothing: released, empty.
	tgt2 := f.login(t, "u2")
	if v := validateAttrs(t, f.svc, f.st(t, tgt2, svcBoth), svcBoth); !v.Valid || v.Authorization == nil ||
		len(v.Authorization.Roles)+len(v.Authorization.Permissions) != 0 {
		t.Fatalf("a person with no grant: %+v", v.Authorization)
	}
}

// TestReleaseAuthzDown: authz not answering fails the validation with
// INTERNAL_ERROR, recorded, and leaves the ticket usable: at the issuing
// instance and at another one (which reads the record from the issuer);
// the retry after authz is back succeeds, once.
func TestReleaseAuthzDown(t *testing.T) {
	f, r := releaseFixture(t, nil)
	other := f.replica(t)
	other.SetRelease(r)
	tgt := f.login(t, "u1")
	for name, s := range map[string]*ticket.Service{"issuer": f.svc, "another instance": other} {
		st := f.st(t, tgt, svcBoth)
		r.set(errors.New("authz unreachable"))
		v := validateAttrs(t, s, st, svcBoth)
		if v.Valid || v.Code != ticket.CodeInternalError || v.Message == "" {
			t.Fatalf("%s: authz down: %+v", name, v)
		}
		r.set(nil)
		if v := validateAttrs(t, s, st, svcBoth); !v.Valid || v.Authorization == nil || len(v.Authorization.Roles) != 2 {
			t.Fatalf("%s: retry: %+v", name, v)
		}
		if v := validateAttrs(t, s, st, svcBoth); v.Valid || v.Code != ticket.CodeInvalidTicket {
			t.Fatalf("%s: a third use: %+v", name, v)
		}
	}
	if !f.audit.find("ticket.validate", "failure", ticket.ReasonAuthorizationUnavailable) {
		t.Error("no record of the failed release")
	}
	// A ticket that would be refused anyway is not validated for it.
	r.set(errors.New("authz unreachable"))
	st := f.st(t, tgt, svcBoth)
	if v := validateAttrs(t, f.svc, st, svcRoles); v.Valid || v.Code != ticket.CodeInvalidService {
		t.Fatalf("wrong service while authz is down: %+v", v)
	}
	// Without a source configured: as authz down.
	f.svc.SetRelease(nil)
	if v := validateAttrs(t, f.svc, f.st(t, tgt, svcBoth), svcBoth); v.Valid || v.Code != ticket.CodeInternalError {
		t.Fatalf("no source: %+v", v)
	}
}

// noPeek is a store whose instances cannot be asked for a ticket's record
// (as an instance of an earlier version).
type noPeek struct{ ticket.Store }

func (noPeek) PeekTicket(context.Context, string, string) (*ticket.Ticket, error) {
	return nil, ticket.ErrNotFound
}

// TestReleaseWithoutPeek: where the ticket's record cannot be read before
// it is used up, authz is asked after: its answer is released the same,
// and its failure is INTERNAL_ERROR with the ticket spent.
func TestReleaseWithoutPeek(t *testing.T) {
	f, r := releaseFixture(t, func(s ticket.Store) ticket.Store { return noPeek{s} })
	tgt := f.login(t, "u1")
	if v := validateAttrs(t, f.svc, f.st(t, tgt, svcBoth), svcBoth); !v.Valid || v.Authorization == nil ||
		!slices.Equal(v.Authorization.Permissions, []string{"docs:read"}) {
		t.Fatalf("released after use: %+v", v)
	}
	st := f.st(t, tgt, svcBoth)
	r.set(errors.New("authz unreachable"))
	if v := validateAttrs(t, f.svc, st, svcBoth); v.Valid || v.Code != ticket.CodeInternalError {
		t.Fatalf("authz down: %+v", v)
	}
	r.set(nil)
	if v := validateAttrs(t, f.svc, st, svcBoth); v.Valid || v.Code != ticket.CodeInvalidTicket {
		t.Fatalf("the spent ticket again: %+v", v)
	}
}

// releasingClient is oidcFixture with app1's redirect URI releasing roles
// and permissions.
func releasingClient(t *testing.T) (*fixture, *fakeRelease) {
	t.Helper()
	f := newFixture(t, ticket.Config{})
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB, ReleaseRoles: true, ReleasePermissions: true})
	f.svc.Registry().Invalidate()
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	r := &fakeRelease{roles: map[string][]string{"u1/app1": {"clerk"}}, perms: map[string][]string{"u1/app1": {"docs:read"}}}
	f.svc.SetRelease(r)
	return f, r
}

func stringsOf(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestReleaseToOIDCClient: the ID token and userinfo of a releasing
// client carry roles and permissions (userinfo as authz answers now);
// authz down fails the exchange (UNAVAILABLE) leaving the code usable,
// and fails userinfo and refresh.
func TestReleaseToOIDCClient(t *testing.T) {
	ctx := context.Background()
	f, r := releasingClient(t)
	tgt := f.login(t, "u1")
	code, _, err := f.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tgt, RedirectURI: oidcCB,
		Binding: ticket.OIDCBinding{ClientID: "app1", Scope: "openid"}})
	if err != nil {
		t.Fatal(err)
	}
	x := ticket.Exchange{Client: app1, Code: code, RedirectURI: oidcCB}
	r.set(errors.New("authz unreachable"))
	if _, err := f.svc.ExchangeCode(ctx, x); !isUnavailable(err) {
		t.Fatalf("exchange with authz down: %v", err)
	}
	if !f.audit.find("oidc.token", "failure", ticket.ReasonAuthorizationUnavailable) {
		t.Error("no record of the failed release")
	}
	r.set(nil)
	toks, err := f.svc.ExchangeCode(ctx, x)
	if err != nil {
		t.Fatalf("the retry: %v", err)
	}
	jwks, _ := f.svc.JWKS()
	c := verifyJWT(t, jwks, toks.IDToken)
	if !slices.Equal(stringsOf(c["roles"]), []string{"clerk"}) || !slices.Equal(stringsOf(c["permissions"]), []string{"docs:read"}) {
		t.Fatalf("ID token claims: %v", c)
	}
	// userinfo answers what authz says now.
	r.mu.Lock()
	r.roles["u1/app1"] = nil
	r.mu.Unlock()
	ui, err := f.svc.UserInfo(ctx, toks.AccessToken)
	if err != nil || !strings.Contains(string(ui), `"roles":[]`) || !strings.Contains(string(ui), `"permissions":["docs:read"]`) {
		t.Fatalf("userinfo: %s %v", ui, err)
	}
	r.set(errors.New("authz unreachable"))
	if _, err := f.svc.UserInfo(ctx, toks.AccessToken); !isUnavailable(err) {
		t.Fatalf("userinfo with authz down: %v", err)
	}
	if _, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: app1, RefreshToken: toks.RefreshToken}); !isUnavailable(err) {
		t.Fatalf("refresh with authz down: %v", err)
	}
	r.set(nil)
	if _, err := f.svc.Refresh(ctx, ticket.RefreshRequest{Client: app1, RefreshToken: toks.RefreshToken}); err != nil {
		t.Fatalf("refresh after: %v", err)
	}
}

func isUnavailable(err error) bool {
	ae, ok := apierr.As(err)
	return ok && ae.Code == apierr.Unavailable
}
