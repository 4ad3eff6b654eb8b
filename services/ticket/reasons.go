package ticket

import "github.com/uias/uias/pkg/apierr"

// The ticket component's error reasons (docs/integrators.md lists them,
// generated from this table). Refused validations are not errors: they are
// answers carrying the CAS code.
func init() {
	apierr.Register(
		apierr.Reason{Name: "SESSION_NOT_FOUND", Code: apierr.NotFound,
			Doc: "The single sign-on session (TGT) has ended, expired or never existed: sign in again."},
		apierr.Reason{Name: "TICKET_STORE_UNAVAILABLE", Code: apierr.Unavailable, Legacy: -6,
			Doc: "The ticket store (NATS JetStream) does not answer in time; nothing was changed that the answer does not say. Retry later."},
		apierr.Reason{Name: "COMPONENTS_ONLY", Code: apierr.PermissionDenied,
			Doc: "This TicketService call is made only by UIAS components (the CAS edge), not by applications."},
		apierr.Reason{Name: "SESSION_NOT_OF_USER", Code: apierr.NotFound,
			Doc: "RevokeUserSessions: the person has no live session with this id."},
	)
}

// Errors of the domain.
var (
	ErrSessionNotFound  = apierr.New(apierr.NotFound, "SESSION_NOT_FOUND", "the session has ended or does not exist")
	ErrStoreUnavailable = apierr.New(apierr.Unavailable, "TICKET_STORE_UNAVAILABLE", "the ticket store is unavailable, retry later")
	ErrComponentsOnly   = apierr.New(apierr.PermissionDenied, "COMPONENTS_ONLY", "this call is made only by UIAS components")
	// ErrPGTComponentsOnly refuses issue_pgt to a caller that is no UIAS
	// component.
	ErrPGTComponentsOnly = ErrComponentsOnly.WithMessage("issue_pgt is for the CAS edge, which hands the proxy-granting ticket to the pgtUrl: " +
		"validate without it, or use /cas/serviceValidate with pgtUrl")
	ErrNoSuchUserSession = apierr.New(apierr.NotFound, "SESSION_NOT_OF_USER", "the person has no live session with this id")
)
