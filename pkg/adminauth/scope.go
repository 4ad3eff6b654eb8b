package adminauth

import (
	"context"

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
