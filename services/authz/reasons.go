package authz

import (
	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
)

// Error reasons of the authorization component.
const (
	ReasonRevisionNotReached = "REVISION_NOT_REACHED"
	ReasonConcurrentChange   = "CONCURRENT_CHANGE"
	ReasonSoDConflict        = adminauth.ReasonSoDConflict // registered in pkg/adminauth
	ReasonInUse              = "IN_USE"
	ReasonBadModel           = "BAD_AUTHZ_MODEL"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonRevisionNotReached, Code: apierr.FailedPrecondition,
			Doc: "authz: this replica has not reached the at_least_revision asked for within a short wait; retry (or the revision was never issued)."},
		apierr.Reason{Name: ReasonConcurrentChange, Code: apierr.FailedPrecondition,
			Doc: "authz: other changes kept landing while this one was checked; retry it."},
		apierr.Reason{Name: ReasonInUse, Code: apierr.FailedPrecondition,
			Doc: "authz: the resource or role is still used (by resources below it, roles, grants or exclusions)."},
		apierr.Reason{Name: ReasonBadModel, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "authz: the resource, role, grant or exclusion breaks a rule of the model (unknown parent or role, cycle, operation not defined, wrong application, ...)."},
	)
}

// ErrStale is what Store.Write answers when the revision moved on.
var ErrStale = apierr.New(apierr.FailedPrecondition, ReasonConcurrentChange, "the authorization data changed meanwhile; retry")

func badModel(msg string) error { return apierr.New(apierr.InvalidArgument, ReasonBadModel, msg) }

func inUse(msg string) error { return apierr.New(apierr.FailedPrecondition, ReasonInUse, msg) }

// SoDError is the refusal of a separation-of-duty conflict.
func SoDError(msg string) error {
	return apierr.New(apierr.FailedPrecondition, ReasonSoDConflict, msg)
}

// BadModel is the refusal of a change that breaks a rule of the model.
func BadModel(msg string) error { return badModel(msg) }

// InUse is the refusal to delete what is still used.
func InUse(msg string) error { return inUse(msg) }
