package ticket_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
)

// TestAttributePolicyApply: no policy releases every attribute in clear;
// a policy releases the protocol attributes and those it names, masking
// the ones it masks (a name keeps its first character).
func TestAttributePolicyApply(t *testing.T) {
	attrs := [][2]string{{"authenticationDate", "2026-12-07T10:00:00Z"}, {"isFromNewLogin", "true"}, {"userId", "u1"},
		{"login", "zhangsan"}, {"displayName", "欧阳娜娜"}, {"orgName", "某分行"}, {"groups", "g1"}, {"groups", "g2"}, {"memberOf", "g1"}}
	var none *ticket.AttributePolicy
	if got := none.Apply(append([][2]string{}, attrs...)); !reflect.DeepEqual(got, attrs) {
		t.Fatalf("no policy: %v", got)
	}
	rs := &ticket.RegisteredService{}
	if rs.Policy() != nil {
		t.Fatal("a service without lists has a policy")
	}
	rs.ReleaseAttributes, rs.MaskedAttributes = []string{"login", "displayName", "groups"}, []string{"displayName"}
	got := rs.Policy().Apply(append([][2]string{}, attrs...))
	want := [][2]string{{"authenticationDate", "2026-12-07T10:00:00Z"}, {"isFromNewLogin", "true"}, {"login", "zhangsan"},
		{"displayName", "欧***"}, {"groups", "g1"}, {"groups", "g2"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("limited and masked:\n got %v\nwant %v", got, want)
	}
	// Masking alone: everything released, the name masked.
	masked := (&ticket.RegisteredService{MaskedAttributes: []string{"displayName"}}).Policy().Apply(
		[][2]string{{"userId", "u1"}, {"displayName", "张三"}})
	if !reflect.DeepEqual(masked, [][2]string{{"userId", "u1"}, {"displayName", "张*"}}) {
		t.Fatalf("masked only: %v", masked)
	}
	claims := map[string]any{"sub": "u1", "preferred_username": "zhangsan", "name": "张三", "org_id": "o1",
		"org_name": "某分行", "groups": []string{"g1"}, "roles": []string{"clerk"}, "iss": "https://sso.example/cas/oidc"}
	rs.Policy().ApplyClaims(claims)
	wantClaims := map[string]any{"sub": "u1", "preferred_username": "zhangsan", "name": "张*", "groups": []string{"g1"},
		"iss": "https://sso.example/cas/oidc"}
	if !reflect.DeepEqual(claims, wantClaims) {
		t.Fatalf("claims:\n got %v\nwant %v", claims, wantClaims)
	}
}

// TestCheckServicePolicy: a policy naming an unknown attribute, one twice,
// masking one that has no mask rule or that it does not release, or set
// on a legacy service is refused BAD_SERVICE_DEFINITION, saying why.
func TestCheckServicePolicy(t *testing.T) {
	base := func() ticket.RegisteredService {
		return ticket.RegisteredService{AppID: "a", URL: "https://a.example/", MinAuthLevel: 1}
	}
	for name, tc := range map[string]struct {
		release, masked []string
		legacy          int
		msg             string
	}{
		"unknown":         {release: []string{"email"}, msg: `unknown attribute "email"; known: userId`},
		"twice":           {release: []string{"login", "login"}, msg: `names "login" twice`},
		"not maskable":    {masked: []string{"login"}, msg: `masked_attributes: unknown attribute "login"; known: displayName`},
		"masked unlisted": {release: []string{"login"}, masked: []string{"displayName"}, msg: "which release_attributes does not release"},
		"legacy":          {release: []string{"login"}, legacy: 2, msg: "a legacy service's validation answers the account only"},
	} {
		s := base()
		s.ReleaseAttributes, s.MaskedAttributes, s.LegacyScheme = tc.release, tc.masked, tc.legacy
		if tc.legacy != 0 {
			s.URL = "https://a.example/sso"
		}
		err := ticket.CheckService(&s)
		if e, ok := apierr.As(err); !ok || e.Reason != "BAD_SERVICE_DEFINITION" || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: %v, want BAD_SERVICE_DEFINITION %q", name, err, tc.msg)
		}
	}
	ok := base()
	ok.ReleaseAttributes, ok.MaskedAttributes = []string{"userId", "displayName", "roles"}, []string{"displayName"}
	if err := ticket.CheckService(&ok); err != nil {
		t.Fatalf("a good policy: %v", err)
	}
}

// TestServicesClosedByDefault: with ServicesDefaultLinked a service
// registered without an access rule requires an account link, unless
// registered OpenAccess or with a rule of its own; without the setting it
// stays open (as before). An update is given the same default.
func TestServicesClosedByDefault(t *testing.T) {
	ctx := context.Background()
	open := newFixture(t, ticket.Config{})
	rs, err := open.svc.CreateRegisteredService(ctx, ticket.RegisteredService{AppID: "app7", URL: "https://o.example.com/"})
	if err != nil || rs.RequireAccountLink {
		t.Fatalf("open by default: %+v %v", rs, err)
	}
	f := newFixture(t, ticket.Config{ServicesDefaultLinked: true})
	rs, err = f.svc.CreateRegisteredService(ctx, ticket.RegisteredService{AppID: "app7", URL: "https://c.example.com/"})
	if err != nil || !rs.RequireAccountLink || rs.OpenAccess {
		t.Fatalf("closed by default: %+v %v", rs, err)
	}
	if got, _ := f.svc.GetRegisteredService(ctx, rs.ID); got == nil || !got.RequireAccountLink {
		t.Fatalf("stored: %+v", got)
	}
	rs, err = f.svc.CreateRegisteredService(ctx, ticket.RegisteredService{AppID: "app7", URL: "https://p.example.com/", OpenAccess: true})
	if err != nil || rs.RequireAccountLink || rs.OpenAccess {
		t.Fatalf("registered open: %+v %v", rs, err)
	}
	rs, err = f.svc.CreateRegisteredService(ctx, ticket.RegisteredService{AppID: "app7", URL: "https://q.example.com/",
		RequiredPermission: "docs:read"})
	if err != nil || rs.RequireAccountLink || rs.RequiredPermission != "docs:read" {
		t.Fatalf("a rule of its own: %+v %v", rs, err)
	}
	up, err := f.svc.UpdateRegisteredService(ctx, rs.ID, ticket.RegisteredService{AppID: "app7", URL: "https://q.example.com/"})
	if err != nil || !up.RequireAccountLink || up.RequiredPermission != "" {
		t.Fatalf("an update that drops the rule is closed by default as at registration: %+v %v", up, err)
	}
	up, err = f.svc.UpdateRegisteredService(ctx, rs.ID, ticket.RegisteredService{AppID: "app7", URL: "https://q.example.com/", OpenAccess: true})
	if err != nil || up.RequireAccountLink || up.RequiredPermission != "" || up.OpenAccess {
		t.Fatalf("an update with open_access opens it: %+v %v", up, err)
	}
}

// TestServiceUpdateKeepsClosed: with ServicesDefaultLinked, an update
// (a whole replace: REST PUT, gRPC UpdateService) with neither access
// rule and without open_access keeps the service closed, as at
// registration (review sec30b L1): re-sending the creation definition
// does not open it. An explicit open_access opens it; without the setting
// an update without a rule leaves it open (as before). What the update
// leaves out of the policy is cleared (PUT semantics, integrators.md).
func TestServiceUpdateKeepsClosed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ticket.Config{ServicesDefaultLinked: true})
	def := ticket.RegisteredService{AppID: "app7", URL: "https://c.example.com/", MaskedAttributes: []string{"displayName"}}
	rs, err := f.svc.CreateRegisteredService(ctx, def)
	if err != nil || !rs.RequireAccountLink {
		t.Fatalf("created: %+v %v", rs, err)
	}
	up, err := f.svc.UpdateRegisteredService(ctx, rs.ID, def)
	if err != nil || !up.RequireAccountLink {
		t.Fatalf("re-sending the creation definition opened a closed-by-default service: %+v %v", up, err)
	}
	if got, err := f.svc.GetRegisteredService(ctx, rs.ID); err != nil || !got.RequireAccountLink {
		t.Fatalf("stored: %+v %v", got, err)
	}
	up, err = f.svc.UpdateRegisteredService(ctx, rs.ID, ticket.RegisteredService{AppID: "app7", URL: "https://c.example.com/"})
	if err != nil || !up.RequireAccountLink || len(up.MaskedAttributes) != 0 {
		t.Fatalf("a whole replace without the policy: closed, the masking cleared: %+v %v", up, err)
	}
	def.OpenAccess = true
	up, err = f.svc.UpdateRegisteredService(ctx, rs.ID, def)
	if err != nil || up.RequireAccountLink {
		t.Fatalf("open_access opens it: %+v %v", up, err)
	}
	if got, err := f.svc.GetRegisteredService(ctx, rs.ID); err != nil || got.RequireAccountLink || got.OpenAccess {
		t.Fatalf("stored open: %+v %v", got, err)
	}
	open := newFixture(t, ticket.Config{})
	rs, err = open.svc.CreateRegisteredService(ctx, ticket.RegisteredService{AppID: "app7", URL: "https://o.example.com/", RequireAccountLink: true})
	if err != nil {
		t.Fatal(err)
	}
	up, err = open.svc.UpdateRegisteredService(ctx, rs.ID, ticket.RegisteredService{AppID: "app7", URL: "https://o.example.com/"})
	if err != nil || up.RequireAccountLink {
		t.Fatalf("open by default: an update without a rule opens it: %+v %v", up, err)
	}
}

// TestValidationCarriesPolicy: a validation answers its service's policy
// (the edge applies it to the attributes it answers); a service without
// one answers none.
func TestValidationCarriesPolicy(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	register(t, f.services, "m", ticket.RegisteredService{AppID: "app8", URL: "https://masked.example.com/",
		ReleaseAttributes: []string{"login", "displayName"}, MaskedAttributes: []string{"displayName"}})
	f.svc.Registry().Invalidate()
	tgt := f.login(t, "u1")
	v := f.validate(t, f.st(t, tgt, "https://masked.example.com/x"), "https://masked.example.com/x")
	if !v.Valid || v.Policy == nil || !reflect.DeepEqual(v.Policy.Release, []string{"login", "displayName"}) ||
		!reflect.DeepEqual(v.Policy.Masked, []string{"displayName"}) {
		t.Fatalf("validation: %+v", v)
	}
	if v := f.validate(t, f.st(t, tgt, svcA), svcA); !v.Valid || v.Policy != nil {
		t.Fatalf("no policy: %+v", v)
	}
}

// profiles answers one profile for everyone.
type profiles struct{ p ticket.Profile }

func (p profiles) Profile(context.Context, string, string) (ticket.Profile, error) { return p.p, nil }

// TestOIDCClaimsPolicy: a client whose service limits and masks gets, in
// its ID token and at userinfo, only the claims of the attributes
// released, the name masked; sub and the token's own claims stay.
func TestOIDCClaimsPolicy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, ticket.Config{})
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB,
		ReleaseAttributes: []string{"login", "displayName"}, MaskedAttributes: []string{"displayName"}})
	f.svc.Registry().Invalidate()
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	f.svc.SetProfiles(profiles{ticket.Profile{Login: "zhangsan", Name: "张三", OrgID: "o1", OrgName: "某分行", Groups: []string{"g1"}}})
	toks := f.codeGrant(t, f.login(t, "u1"), "openid profile groups")
	jwks, _ := f.svc.JWKS()
	claims := verifyJWT(t, jwks, toks.IDToken)
	if claims["sub"] != "u1" || claims["name"] != "张*" || claims["preferred_username"] != "zhangsan" || claims["aud"] != "app1" {
		t.Fatalf("ID token: %v", claims)
	}
	for _, c := range []string{"org_id", "org_name", "groups"} {
		if _, ok := claims[c]; ok {
			t.Errorf("ID token has %s: %v", c, claims)
		}
	}
	ui, err := f.svc.UserInfo(ctx, toks.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(ui, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sub": "u1", "preferred_username": "zhangsan", "name": "张*"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("userinfo %v, want %v", got, want)
	}
}

// TestOIDCIntrospectionPolicy: introspection answers username (the login)
// only when the client's service releases login, as the ID token and
// userinfo answer preferred_username (review sec30b I1); without a policy
// it is answered as before. sub and the token's own fields stay.
func TestOIDCIntrospectionPolicy(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		what    string
		release []string
		want    bool
	}{{"login not released", []string{"displayName"}, false}, {"login released", []string{"login"}, true}, {"no policy", nil, true}} {
		f := newFixture(t, ticket.Config{})
		register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB, ReleaseAttributes: c.release})
		f.svc.Registry().Invalidate()
		f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
		toks := f.codeGrant(t, f.login(t, "u1"), "openid profile")
		j, err := f.svc.Introspect(ctx, ticket.Client{ID: "app1", Secret: "s1"}, toks.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(j, &got); err != nil {
			t.Fatal(err)
		}
		if got["active"] != true || got["sub"] != "u1" || got["client_id"] != "app1" {
			t.Fatalf("%s: %v", c.what, got)
		}
		if u, has := got["username"]; has != c.want || (has && u != "login-u1") {
			t.Errorf("%s: introspection %v (username wanted: %v)", c.what, got, c.want)
		}
	}
}

// TestUserTypeClaim (ADR 0039): the account's type is the profile scope's
// user_type claim ("person" or "unit"), in the ID token and at userinfo,
// under the service's release policy: a service whose release_attributes
// leave out userType does not get it; an unknown type is no claim.
func TestUserTypeClaim(t *testing.T) {
	ctx := context.Background()
	if ticket.UserTypeName(1) != "person" || ticket.UserTypeName(2) != "unit" || ticket.UserTypeName(0) != "" || ticket.UserTypeName(7) != "" {
		t.Fatal("UserTypeName")
	}
	for _, c := range []struct {
		name     string
		release  []string
		userType string
		want     any
	}{
		{"no policy", nil, "unit", "unit"},
		{"released", []string{"login", "userType"}, "unit", "unit"},
		{"person", nil, "person", "person"},
		{"not released", []string{"login", "displayName"}, "unit", nil},
		{"not known", nil, "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, ticket.Config{})
			register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB, ReleaseAttributes: c.release})
			f.svc.Registry().Invalidate()
			f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
			f.svc.SetProfiles(profiles{ticket.Profile{Login: "acme", Name: "某某航运有限公司", OrgID: "o1", UserType: c.userType}})
			toks := f.codeGrant(t, f.login(t, "u1"), "openid profile")
			jwks, _ := f.svc.JWKS()
			if got := verifyJWT(t, jwks, toks.IDToken)["user_type"]; got != c.want {
				t.Errorf("ID token user_type %v, want %v", got, c.want)
			}
			ui, err := f.svc.UserInfo(ctx, toks.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(ui, &got); err != nil {
				t.Fatal(err)
			}
			if got["user_type"] != c.want {
				t.Errorf("userinfo user_type %v, want %v", got["user_type"], c.want)
			}
		})
	}
	// Without the profile scope: no user_type.
	f := newFixture(t, ticket.Config{})
	register(t, f.services, "oa", ticket.RegisteredService{AppID: "app1", URL: oidcCB})
	f.svc.Registry().Invalidate()
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: clientApps{secrets: map[string]string{"app1": "s1"}}})
	f.svc.SetProfiles(profiles{ticket.Profile{Login: "acme", UserType: "unit"}})
	jwks, _ := f.svc.JWKS()
	if claims := verifyJWT(t, jwks, f.codeGrant(t, f.login(t, "u1"), "openid").IDToken); claims["user_type"] != nil {
		t.Fatalf("user_type without the profile scope: %v", claims)
	}
}
