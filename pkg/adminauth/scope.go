package adminauth

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// Lister is what a component with org-bound listings needs besides Checker:
// which part of the org tree an administrator may list.
type Lister interface {
	// ListScope answers for a listing under p that names no org: nil and
	// no error when a may list everything (an unscoped grant, or the legacy
	// flag), the top orgs of the subtrees a administers when a's grants
	// allowing p are all scoped (the listing is then limited to them), or
	// PERMISSION_DENIED ADMIN_NOT_ALLOWED when no grant allows p.
	ListScope(ctx context.Context, a *Admin, p Perm) ([]string, error)
}

var _ Lister = (*Verifier)(nil)

// ListScope implements Lister. With CacheDecisions its answer is kept as
// any allowed answer (cache.go).
func (v *Verifier) ListScope(ctx context.Context, a *Admin, p Perm) ([]string, error) {
	if a == nil || a.ID == "" {
		return nil, ErrNoToken
	}
	if a.LegacyRule || v.authz == nil {
		// everything or nothing
		return nil, v.Check(ctx, a, Request{Perm: p})
	}
	r, err := v.checkAdmin(ctx, &authzv1.CheckAdminRequest{Person: a.ID, Resource: p.Resource, Operation: p.Operation,
		SystemAdminFlag: a.SystemAdminFlag, Listing: true})
	if err != nil {
		return nil, err
	}
	if !r.GetAllowed() {
		return nil, Denied(deniedMessage(p, r.GetDetail()))
	}
	if len(r.GetScopeOrgs()) == 0 {
		return nil, nil
	}
	return r.GetScopeOrgs(), nil
}

// Prober is what a component needs to show or hide something by an
// administrator's permission without the question counting as an attempt.
type Prober interface {
	// Allowed reports whether a holds p on a global object. A denial is not
	// audited as a refused attempt (the administrator did not try).
	Allowed(ctx context.Context, a *Admin, p Perm) (bool, error)
}

var _ Prober = (*Verifier)(nil)

// Allowed implements Prober. It asks authz each time (no decision cache:
// a probe's answer stands for nothing but itself).
func (v *Verifier) Allowed(ctx context.Context, a *Admin, p Perm) (bool, error) {
	if a == nil || a.ID == "" {
		return false, ErrNoToken
	}
	if a.LegacyRule || v.authz == nil {
		err := v.Check(ctx, a, Request{Perm: p})
		if err != nil && apierr.CodeOf(err) == apierr.PermissionDenied {
			return false, nil
		}
		return err == nil, err
	}
	r, err := v.askAdmin(ctx, &authzv1.CheckAdminRequest{Person: a.ID, Resource: p.Resource, Operation: p.Operation,
		SystemAdminFlag: a.SystemAdminFlag, Probe: true})
	if err != nil {
		return false, err
	}
	return r.GetAllowed(), nil
}
