package ticket_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
)

// fakeAccess is a ticket.AccessChecker with set answers: links[user+"/"+app],
// grants[user+"/"+app+"/"+resource+":"+operation]; down makes every
// question fail as an unreachable component does.
type fakeAccess struct {
	mu     sync.Mutex
	links  map[string]bool
	grants map[string]bool
	down   error
	asked  int
}

func (a *fakeAccess) HasAccount(_ context.Context, userID, appID string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked++
	if a.down != nil {
		return false, a.down
	}
	return a.links[userID+"/"+appID], nil
}

func (a *fakeAccess) Allowed(_ context.Context, userID, appID, resource, operation string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked++
	if a.down != nil {
		return false, a.down
	}
	return a.grants[userID+"/"+appID+"/"+resource+":"+operation], nil
}

func (a *fakeAccess) questions() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked
}

// accessFixture registers three services with rules besides the
// fixture's: "link" (account link), "perm" (docs:read), "both".
func accessFixture(t *testing.T) (*fixture, *fakeAccess) {
	t.Helper()
	f := newFixture(t, ticket.Config{})
	register(t, f.services, "link", ticket.RegisteredService{AppID: "appL", URL: "https://link.example.com/", RequireAccountLink: true})
	register(t, f.services, "perm", ticket.RegisteredService{AppID: "appP", URL: "https://perm.example.com/", RequiredPermission: "docs:read"})
	register(t, f.services, "both", ticket.RegisteredService{AppID: "appB", URL: "https://both.example.com/",
		RequireAccountLink: true, RequiredPermission: "docs.contract:approve"})
	register(t, f.services, "legacy", ticket.RegisteredService{AppID: "appG", URL: "https://legacy.example.com/oa/ssoAuthService",
		LegacyScheme: 2, RequiredPermission: "oa:enter"})
	f.svc.Registry().Invalidate()
	a := &fakeAccess{links: map[string]bool{}, grants: map[string]bool{}}
	f.svc.SetAccess(a)
	return f, a
}

func wantDenied(t *testing.T, err error, missing, inMessage string) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.PermissionDenied || ae.Reason != ticket.ReasonServiceAccessDenied {
		t.Fatalf("want PERMISSION_DENIED SERVICE_ACCESS_DENIED, got %v", err)
	}
	if ae.Meta["missing"] != missing {
		t.Errorf("metadata missing = %q, want %q", ae.Meta["missing"], missing)
	}
	if inMessage != "" && !strings.Contains(ae.Message, inMessage) {
		t.Errorf("message %q does not name %q", ae.Message, inMessage)
	}
}

// TestServiceAccessRule: a service's access rule decides who gets its
// tickets; a refused person keeps their session, gets no ticket, and the
// refusal is audited.
func TestServiceAccessRule(t *testing.T) {
	ctx := context.Background()
	f, a := accessFixture(t)
	tgt := f.login(t, "u1")

	t.Run("allowed", func(t *testing.T) {
		a.mu.Lock()
		a.links["u1/appL"], a.grants["u1/appP/docs:read"] = true, true
		a.links["u1/appB"], a.grants["u1/appB/docs.contract:approve"] = true, true
		a.mu.Unlock()
		for _, svc := range []string{"https://link.example.com/x", "https://perm.example.com/x", "https://both.example.com/x"} {
			st := f.st(t, tgt, svc)
			if v := f.validate(t, st, svc); !v.Valid || v.Ticket.UserID != "u1" {
				t.Fatalf("%s: %+v", svc, v)
			}
		}
	})

	t.Run("no link", func(t *testing.T) {
		tgt2 := f.login(t, "u2")
		a.mu.Lock()
		a.grants["u2/appB/docs.contract:approve"] = true // the permission alone is not enough
		a.mu.Unlock()
		for _, svc := range []string{"https://link.example.com/", "https://both.example.com/"} {
			st, _, err := f.svc.IssueServiceTicket(ctx, tgt2, svc, true)
			if st != "" {
				t.Fatalf("%s: a ticket was issued: %s", svc, st)
			}
			wantDenied(t, err, ticket.MissingAccountLink, "no account")
		}
		if !f.audit.find("ticket.issue", "denied", ticket.ReasonServiceAccessDenied) {
			t.Error("no audit record of the refusal")
		}
		// Still signed in.
		if _, err := f.svc.GetSession(ctx, tgt2); err != nil {
			t.Fatalf("the session ended with the refusal: %v", err)
		}
	})

	t.Run("no permission", func(t *testing.T) {
		tgt3 := f.login(t, "u3")
		a.mu.Lock()
		a.links["u3/appB"] = true
		a.mu.Unlock()
		_, _, err := f.svc.IssueServiceTicket(ctx, tgt3, "https://perm.example.com/", false)
		wantDenied(t, err, ticket.MissingPermission, "docs:read")
		_, _, err = f.svc.IssueServiceTicket(ctx, tgt3, "https://both.example.com/", false)
		wantDenied(t, err, ticket.MissingPermission, "docs.contract:approve")
		// A grant given afterwards lets them in at the next ticket
		// (nothing of the refusal is kept).
		a.mu.Lock()
		a.grants["u3/appP/docs:read"] = true
		a.mu.Unlock()
		if _, _, err := f.svc.IssueServiceTicket(ctx, tgt3, "https://perm.example.com/", false); err != nil {
			t.Fatalf("after the grant: %v", err)
		}
		// And its revocation refuses the next one.
		a.mu.Lock()
		delete(a.grants, "u3/appP/docs:read")
		a.mu.Unlock()
		_, _, err = f.svc.IssueServiceTicket(ctx, tgt3, "https://perm.example.com/", false)
		wantDenied(t, err, ticket.MissingPermission, "docs:read")
	})

	t.Run("legacy service", func(t *testing.T) {
		// The legacy ssoAuthService interface gets its tickets from the
		// same issue (the CAS login): the rule applies to it too.
		tgt7 := f.login(t, "u7")
		const legacy = "https://legacy.example.com/oa/ssoAuthService"
		_, _, err := f.svc.IssueServiceTicket(ctx, tgt7, legacy, false)
		wantDenied(t, err, ticket.MissingPermission, "oa:enter")
		a.mu.Lock()
		a.grants["u7/appG/oa:enter"] = true
		a.mu.Unlock()
		if _, _, err := f.svc.IssueServiceTicket(ctx, tgt7, legacy, false); err != nil {
			t.Fatalf("legacy service with the permission: %v", err)
		}
	})

	t.Run("audit detail", func(t *testing.T) {
		f.audit.mu.Lock()
		defer f.audit.mu.Unlock()
		found := false
		for _, e := range f.audit.evs {
			if e.API == "ticket.issue" && e.Result == "denied" && e.Reason == ticket.ReasonServiceAccessDenied &&
				e.Detail["service"] == "https://perm.example.com/" && e.Detail["app_id"] == "appP" && e.AppID == "appP" &&
				e.Detail["missing"] == "permission docs:read" && e.Subject == "user:u3" {
				found = true
			}
		}
		if !found {
			t.Errorf("no ticket.issue denied record of the application (app_id) naming the service and the permission: %+v", f.audit.evs)
		}
	})

	t.Run("rule unset", func(t *testing.T) {
		before := a.questions()
		tgt4 := f.login(t, "u4")
		st := f.st(t, tgt4, "https://a.example.com/")
		if v := f.validate(t, st, "https://a.example.com/"); !v.Valid {
			t.Fatalf("%+v", v)
		}
		if n := a.questions() - before; n != 0 {
			t.Errorf("a service without a rule asked the checker %d times", n)
		}
	})

	t.Run("checker down", func(t *testing.T) {
		tgt5 := f.login(t, "u5")
		a.mu.Lock()
		a.down = apierr.ErrUnavailable.WithMessage("authz does not answer")
		a.mu.Unlock()
		defer func() { a.mu.Lock(); a.down = nil; a.mu.Unlock() }()
		for _, svc := range []string{"https://perm.example.com/", "https://link.example.com/"} {
			st, _, err := f.svc.IssueServiceTicket(ctx, tgt5, svc, false)
			if st != "" || apierr.CodeOf(err) != apierr.Unavailable {
				t.Fatalf("%s: want UNAVAILABLE and no ticket, got %q %v", svc, st, err)
			}
		}
		// Services without a rule are not affected.
		f.st(t, tgt5, "https://a.example.com/")
	})

	t.Run("no checker", func(t *testing.T) {
		f.svc.SetAccess(nil)
		defer f.svc.SetAccess(a)
		tgt6 := f.login(t, "u6")
		if _, _, err := f.svc.IssueServiceTicket(ctx, tgt6, "https://perm.example.com/", false); apierr.CodeOf(err) != apierr.Unavailable {
			t.Fatalf("a rule without a checker: %v", err)
		}
		f.st(t, tgt6, "https://a.example.com/")
	})
}

// TestProxyTicketAccessRule: a proxy ticket for a target service with a
// rule is refused (UNAUTHORIZED_SERVICE) to a person who fails it.
func TestProxyTicketAccessRule(t *testing.T) {
	ctx := context.Background()
	f, a := accessFixture(t)
	tgt := f.login(t, "u1")
	st := f.st(t, tgt, "https://a.example.com/app")
	v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: "https://a.example.com/app", IssuePGT: true,
		PGTURL: "https://a.example.com/pgt"})
	if err != nil || !v.Valid || v.PGT == "" {
		t.Fatalf("validate with pgtUrl: %+v %v", v, err)
	}
	pt, code, msg, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://perm.example.com/")
	// said to the proxying service, of the person (trial12 D4)
	if err != nil || pt != "" || code != ticket.CodeUnauthorizedService || !strings.Contains(msg, "docs:read") ||
		!strings.HasPrefix(msg, "the person may not use the target service's application: they are not granted") {
		t.Fatalf("proxy ticket without the permission: %q %q %q %v", pt, code, msg, err)
	}
	if !f.audit.find("ticket.proxy", "denied", ticket.ReasonServiceAccessDenied) {
		t.Error("no audit record of the refused proxy ticket")
	}
	a.mu.Lock()
	a.grants["u1/appP/docs:read"] = true
	a.mu.Unlock()
	if pt, code, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://perm.example.com/"); err != nil || pt == "" || code != "" {
		t.Fatalf("proxy ticket with the permission: %q %q %v", pt, code, err)
	}
	a.mu.Lock()
	a.down = errors.New("authz down")
	a.mu.Unlock()
	if pt, _, _, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://perm.example.com/"); err == nil || pt != "" {
		t.Fatalf("proxy ticket with authz down: %q %v", pt, err)
	}
}

// TestCheckServiceAccessRule: required_permission must be
// resource:operation.
func TestCheckServiceAccessRule(t *testing.T) {
	for p, ok := range map[string]bool{
		"docs:read": true, "docs.contract:approve": true, "a-b_c.d:op-1": true,
		"docs": false, ":read": false, "docs:": false, "docs:read:x": false, ".docs:read": false, "docs :read": false,
		"文档:read": false, "docs:re ad": false,
	} {
		s := ticket.RegisteredService{AppID: "a", URL: "https://x.example.com/", MinAuthLevel: 1, RequiredPermission: p}
		err := ticket.CheckService(&s)
		if (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", p, err, ok)
		}
	}
}

// portalApps is the part of ticket.LegacyApps the portal reads: the
// person's links.
type portalApps struct {
	ticket.LegacyApps
	links []ticket.PersonLink
}

func (p portalApps) Links(context.Context, string) ([]ticket.PersonLink, error) { return p.links, nil }

// TestPortalFollowsAccessRules: the portal lists a linked application only
// when its service's rule lets the person in, and an application open to
// account association unless its rule names a permission they lack (a rule
// asking for the link is what association gives).
func TestPortalFollowsAccessRules(t *testing.T) {
	ctx := context.Background()
	f, a := accessFixture(t)
	register(t, f.services, "assoc", ticket.RegisteredService{AppID: "appA", URL: "https://assoc.example.com/sso/ssoAuthService",
		LegacyScheme: 2, RequireAccountLink: true})
	f.svc.Registry().Invalidate()
	f.svc.SetLegacy(ticket.LegacyDeps{Apps: portalApps{links: []ticket.PersonLink{
		{AppID: "app1", Account: "p1"}, {AppID: "appL", Account: "pl"}, {AppID: "appP", Account: "pp"}}}})
	tgt := f.login(t, "u1")
	names := func() map[string]bool {
		t.Helper()
		es, err := f.svc.PortalEntries(ctx, tgt)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, e := range es {
			out[e.AppID] = true
		}
		return out
	}
	// app1 has no rule: listed. appL asks for an active link (the checker,
	// identity's answer, says none), appP for docs:read, appG (legacy, not
	// linked) for oa:enter: none listed. appA (legacy, not linked) asks
	// only for the link, which association gives: listed to associate.
	got := names()
	if !got["app1"] || got["appL"] || got["appP"] || got["appG"] || !got["appA"] {
		t.Fatalf("portal without grants: %v", got)
	}
	a.mu.Lock()
	a.links["u1/appL"], a.grants["u1/appP/docs:read"], a.grants["u1/appG/oa:enter"] = true, true, true
	a.mu.Unlock()
	got = names()
	if !got["app1"] || !got["appL"] || !got["appP"] || !got["appG"] || !got["appA"] {
		t.Fatalf("portal with the grants: %v", got)
	}
}
