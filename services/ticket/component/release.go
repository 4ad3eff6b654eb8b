package component

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	"github.com/uias/uias/services/ticket"
)

// authzRelease is ticket.AuthorizationSource over authz's ListPermissions
// with include_roles, asked at every validation of a service that releases
// them: authz answers from its own index (grants in force now, their
// groups and orgs, inherited roles), so a revoked grant is gone at the next
// validation; nothing is kept here.
type authzRelease struct {
	authz authzv1.AuthzServiceClient
}

var _ ticket.AuthorizationSource = authzRelease{}

// errRolesNotAnswered: authz answered without the roles asked for.
var errRolesNotAnswered = apierr.ErrUnavailable.WithMessage("the authorization component did not answer the person's roles " +
	"(an earlier version: upgrade it)")

// Authorization implements ticket.AuthorizationSource. As the access rule
// does, it asks on behalf of the person (the origin's principal): the call
// is the component's, about the application of the service.
func (a authzRelease) Authorization(ctx context.Context, userID, appID string) ([]string, []string, error) {
	r, err := a.authz.ListPermissions(asPerson(ctx, userID), &authzv1.ListPermissionsRequest{Person: userID, App: appID, IncludeRoles: true})
	if err != nil {
		return nil, nil, domainErr(err)
	}
	if !r.GetRolesIncluded() {
		// An authz of an earlier version ignored include_roles: its empty
		// roles would read as "none".
		return nil, nil, errRolesNotAnswered
	}
	roles := make([]string, 0, len(r.GetRoles()))
	for _, x := range r.GetRoles() {
		roles = append(roles, x.GetCode())
	}
	perms := make([]string, 0, len(r.GetPermissions()))
	for _, p := range r.GetPermissions() {
		perms = append(perms, p.GetResource()+":"+p.GetOperation())
	}
	return roles, perms, nil
}
