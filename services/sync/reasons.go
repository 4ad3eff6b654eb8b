package sync

import "github.com/uias/uias/pkg/apierr"

// Reasons of the sync component's errors (HOME_CENTRE_ELSEWHERE is
// pkg/centre's, answered by the components that write).
const (
	// ReasonNotACentre: the deployment has no centres (sync.centre unset).
	ReasonNotACentre = "SYNC_NOT_A_CENTRE"
	// ReasonForbidden: the administrator may not read the sync state.
	ReasonForbidden = "SYNC_FORBIDDEN"
)

// ErrNotACentre answers the calls that need a centre on a single-centre
// deployment.
var ErrNotACentre = apierr.New(apierr.FailedPrecondition, ReasonNotACentre,
	"this deployment is a single centre (sync.centre is not set): there is no replica to report")

// ErrForbidden refuses an administrator who is not a system administrator.
var ErrForbidden = apierr.New(apierr.PermissionDenied, ReasonForbidden,
	"only a system administrator may read the sync state of a centre")

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonNotACentre, Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "a sync report was asked of a single-centre deployment (sync.centre is not set)"},
		apierr.Reason{Name: ReasonForbidden, Code: apierr.PermissionDenied, Legacy: -5,
			Doc: "the sync state of a centre is read by system administrators only"},
	)
}
