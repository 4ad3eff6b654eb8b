package component

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// accessRules is ticket.AccessChecker over identity and authz: the
// account link is the one validations release (identity's PersonAttributes,
// whose app account is set only for an active link, through the attribute
// cache, which every instance drops at once on identity's link.* and
// user.* events naming the person); the permission is authz's Check, asked
// every time (authz answers from its own index: a revoked grant is refused
// as soon as authz knows it, nothing here keeps an answer).
type accessRules struct {
	attrs interface {
		Attributes(ctx context.Context, userID, appID string) (*ticketv1.PersonAttributes, error)
	}
	authz authzv1.AuthzServiceClient // nil: the authz component is not reachable from here
}

var _ ticket.AccessChecker = accessRules{}

// HasAccount implements ticket.AccessChecker.
func (a accessRules) HasAccount(ctx context.Context, userID, appID string) (bool, error) {
	pa, err := a.attrs.Attributes(ctx, userID, appID)
	if err != nil {
		return false, unavailable("identity", err)
	}
	return pa.GetAppAccountId() != "", nil
}

// Allowed implements ticket.AccessChecker. The question is asked on behalf
// of the signed-in person (the origin's principal): the call is the
// component's, about the application the request names.
func (a accessRules) Allowed(ctx context.Context, userID, appID, resource, operation string) (bool, error) {
	if a.authz == nil {
		return false, apierr.ErrUnavailable.WithMessage("this application's access rule cannot be checked: the authorization component is not reachable")
	}
	r, err := a.authz.Check(asPerson(ctx, userID), &authzv1.CheckRequest{Person: userID, App: appID, Resource: resource, Operation: operation})
	if err != nil {
		return false, unavailable("authorization", err)
	}
	return r.GetAllowed(), nil
}

// asPerson is ctx for a call to authz on behalf of the signed-in person
// userID (the origin's principal; its client address kept): the call is
// the component's, about that person.
func asPerson(ctx context.Context, userID string) context.Context {
	o := grpcx.OriginFrom(ctx)
	return grpcx.WithOrigin(ctx, grpcx.Origin{ClientIP: o.ClientIP, Principal: userID})
}

// unavailable is the fault of a component asked about an access rule:
// UNAVAILABLE (the person is neither let in nor refused; they may retry),
// keeping the reason the component gave when it is itself UNAVAILABLE.
func unavailable(component string, err error) error {
	if ae, ok := apierr.As(domainErr(err)); ok && ae.Code == apierr.Unavailable {
		return ae
	}
	return apierr.ErrUnavailable.WithMessage("this application's access rule cannot be checked now: the " + component +
		" component did not answer; retry later").WithCause(err)
}
