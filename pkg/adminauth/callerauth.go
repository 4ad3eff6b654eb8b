package adminauth

import (
	"context"
	"strings"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/module"
)

// CallerAuth is the caller authentication (grpcx.CallerAuth, the
// module.Component's Auth) of a component whose RPCs are all administrator
// calls (audit, sync): a call to a method under Prefix carries an
// administrator bearer token (Authenticate), the administrator is put in
// the context (With, the caller's and the origin's principal), and the
// method's permission in Perms is asked of authz (Authorize, a global
// action) before the handler runs. Health checks and reflection are open;
// any other method is UNIMPLEMENTED.
//
// Every method under Prefix must be listed in Perms (fail closed: an
// unlisted one is refused). A method whose permission depends on its
// request (a target person, an org) is listed with the zero Perm
// (HandlerDecides): its handler calls Authorize or Check itself.
type CallerAuth struct {
	Checker Checker
	// Prefix: the services' full method prefix, e.g. "/uias.audit.v1.".
	Prefix string
	// Perms: full method name -> permission.
	Perms map[string]Perm
	// Scoped: the methods of Perms that are listings an administrator may
	// call with grants over org subtrees only (a unit administrator): they
	// are asked of authz as listings (Lister.ListScope when Checker is
	// one), and the orgs the call is limited to travel in its context
	// (ScopeFrom): the subtrees' top orgs, expanded by Subtrees when it is
	// set (into every org of the subtrees, e.g. for a filter on exact
	// orgs).
	Scoped   map[string]bool
	Subtrees func(ctx context.Context, tops []string) ([]string, error)
}

type scopeKey struct{}

// ScopeFrom returns the orgs a Scoped call is limited to (CallerAuth), and
// whether it is limited: false for a call allowed everywhere (an unscoped
// grant) or not Scoped.
func ScopeFrom(ctx context.Context) ([]string, bool) {
	orgs, ok := ctx.Value(scopeKey{}).([]string)
	return orgs, ok
}

// HandlerDecides marks a method in CallerAuth.Perms whose handler asks for
// its permission itself (the administrator is authenticated only).
var HandlerDecides = Perm{}

// AuthenticateCaller implements grpcx.CallerAuth.
func (a CallerAuth) AuthenticateCaller(ctx context.Context, method string) (context.Context, error) {
	switch {
	case a.Prefix != "" && strings.HasPrefix(method, a.Prefix):
		ctx, adm, err := AuthenticateCall(ctx, a.Checker)
		if err != nil {
			return nil, err
		}
		p, listed := a.Perms[method]
		if !listed {
			return ctx, Denied("no administrator permission is defined for " + method)
		}
		if l, ok := a.Checker.(Lister); ok && a.Scoped[method] {
			tops, err := l.ListScope(ctx, adm, p)
			if err != nil {
				return ctx, err
			}
			if tops == nil {
				return ctx, nil
			}
			orgs := tops
			if a.Subtrees != nil {
				if orgs, err = a.Subtrees(ctx, tops); err != nil {
					return ctx, err
				}
			}
			return context.WithValue(ctx, scopeKey{}, orgs), nil
		}
		if p != HandlerDecides {
			if err := a.Checker.Authorize(ctx, adm, p, ""); err != nil {
				return ctx, err // the refused administrator is the access record's actor
			}
		}
		return ctx, nil
	case strings.HasPrefix(method, "/grpc.health.v1.Health/"), strings.HasPrefix(method, "/grpc.reflection."):
		return caller.With(ctx, newCaller(ctx)), nil
	default:
		return nil, apierr.New(apierr.Unimplemented, "UNIMPLEMENTED", "unknown method")
	}
}

// AuthenticateCall authenticates the administrator of an incoming call by
// its bearer token (UNAUTHENTICATED BAD_ADMIN_TOKEN without one, or the
// error of identity) and names them in the returned context: With, the
// caller's principal (pkg/caller: the actor of audit records and change
// events) and the origin's principal (passed on to other components).
// For components whose CallerAuth mixes administrator calls with others
// (ticket).
func AuthenticateCall(ctx context.Context, c Checker) (context.Context, *Admin, error) {
	adm, err := c.Authenticate(ctx, grpcx.BearerToken(ctx))
	if err != nil {
		return nil, nil, err
	}
	cl := newCaller(ctx)
	cl.Principal, cl.PrincipalLogin = adm.ID, adm.Login
	ctx = With(caller.With(ctx, cl), adm)
	o := grpcx.OriginFrom(ctx)
	o.Principal = adm.ID
	return grpcx.WithOrigin(ctx, o), adm, nil
}

func newCaller(ctx context.Context) *caller.Caller {
	return &caller.Caller{ClientIP: grpcx.ClientIP(ctx), RequestID: grpcx.RequestID(ctx), ClientCert: grpcx.ClientCertSHA256(ctx)}
}

// FromEnv returns the verifier of a component's Init: over the client of
// identity (the module Uses "identity") and of authz (it Calls "authz").
// When this process cannot reach authz (it does not run it and discovery is
// not etcd) the verifier has none: only identity's legacy rule
// (identity.admin_authz off) then lets administrators through.
func FromEnv(env *module.Env) (*Verifier, error) {
	idc, err := env.Client("identity")
	if err != nil {
		return nil, err
	}
	azc, err := env.Client("authz")
	if err != nil {
		env.Log.Warn("administrator calls cannot reach the authz component; only identity's legacy is_admin rule (identity.admin_authz off) lets administrators through",
			zap.Error(err))
		return New(idc, nil), nil
	}
	return New(idc, azc), nil
}
