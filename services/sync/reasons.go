package sync

import "github.com/uias/uias/pkg/apierr"

// Reasons of the sync component's errors (HOME_CENTRE_ELSEWHERE is
// pkg/centre's, answered by the components that write).
const (
	// ReasonNotACentre: the deployment has no centres (sync.centre unset).
	ReasonNotACentre = "SYNC_NOT_A_CENTRE"
)

// ErrNotACentre answers the calls that need a centre on a single-centre
// deployment.
var ErrNotACentre = apierr.New(apierr.FailedPrecondition, ReasonNotACentre,
	"this deployment is a single centre (sync.centre is not set): there is no replica to report")

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonNotACentre, Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "a sync report was asked of a single-centre deployment (sync.centre is not set)"},
	)
}
