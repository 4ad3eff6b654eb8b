package ticket

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
)

// Release of authorisation data (ADR 0019; Apereo CAS attribute release,
// Keycloak's roles claim): a registered service with ReleaseRoles or
// ReleasePermissions gets, with a validation that answers attributes (CAS
// 3.0 p3/, samlValidate) and in the claims of its OpenID Connect tokens,
// the person's roles of its application and their permissions in it, as
// authz answers them at that moment. Nothing is kept here: a grant revoked
// or expired is gone at the next validation.

// AuthorizationSource answers what authz says a person holds in an
// application now. A fault (authz unreachable) is an error, never an empty
// answer.
type AuthorizationSource interface {
	// Authorization answers the codes of the application's roles the
	// person holds and their permissions in it ("resource:operation"),
	// each sorted.
	Authorization(ctx context.Context, userID, appID string) (roles, permissions []string, err error)
}

// SetRelease sets where released roles and permissions come from. Without
// one, a validation of a service that releases them fails as when authz
// does not answer (INTERNAL_ERROR); other services are not affected.
func (s *Service) SetRelease(a AuthorizationSource) { s.release = a }

// Authorization is what a validation releases (Validation.Authorization).
type Authorization struct {
	// Roles and Permissions are the person's (empty: none), set only as
	// the service releases them.
	Roles, Permissions []string
	// RolesReleased and PermissionsReleased: the service releases them.
	RolesReleased, PermissionsReleased bool
	// user: the person asked about (an answer asked before a code was
	// used up is taken only for the code's person).
	user string
}

// errNoRelease: a service releases authz's answer but no source is
// configured (authz not reachable from this component).
var errNoRelease = errors.New("the authorization component is not reachable from the ticket component")

// authorization asks the service's release of authz for userID in appID
// (nil, nil when rs releases nothing).
func (s *Service) authorization(ctx context.Context, userID, appID string, rs *RegisteredService) (*Authorization, error) {
	if rs == nil || !rs.ReleasesAuthorization() {
		return nil, nil
	}
	if s.release == nil {
		return nil, errNoRelease
	}
	roles, perms, err := s.release.Authorization(ctx, userID, appID)
	if err != nil {
		return nil, err
	}
	a := &Authorization{RolesReleased: rs.ReleaseRoles, PermissionsReleased: rs.ReleasePermissions}
	if rs.ReleaseRoles {
		a.Roles = roles
	}
	if rs.ReleasePermissions {
		a.Permissions = perms
	}
	return a, nil
}

// msgAuthorizationUnavailable is the CAS answer's description when authz
// did not answer a release.
const msgAuthorizationUnavailable = "the person's roles and permissions could not be read (the authorization service did not answer); retry later"

// refuseRelease answers a validation whose release authz did not answer:
// CAS INTERNAL_ERROR, the fault logged (no ticket, no person) and recorded.
// spent: the ticket was used up before authz was asked (its instance could
// not be asked for its record); else it stays usable until it expires.
func (s *Service) refuseRelease(ctx context.Context, start time.Time, v Validate, t *Ticket, serial string, spent bool, err error) (*Validation, error) {
	s.log.Warn("CAS validation: authz did not answer the roles and permissions the service releases; "+
		"answered INTERNAL_ERROR", zapErr(err))
	s.auditCall(ctx, audit.Action{API: "ticket.validate", Subject: "user:" + t.UserID, Org: t.OrgID, Result: audit.ResultFailure,
		Reason: ReasonAuthorizationUnavailable, Start: start,
		Fields: detail("code", string(CodeInternalError), "service", v.Service, "serial", serial, "ticket_spent", strconv.FormatBool(spent))})
	return &Validation{Code: CodeInternalError, Message: msgAuthorizationUnavailable}, nil
}

// ReasonAuthorizationUnavailable is the audit reason of a validation
// refused because authz did not answer what the service releases.
const ReasonAuthorizationUnavailable = "AUTHORIZATION_UNAVAILABLE"

// releasedNames names what a validation released, for its record.
func releasedNames(a *Authorization) string {
	var n []string
	if a.RolesReleased {
		n = append(n, "roles")
	}
	if a.PermissionsReleased {
		n = append(n, "permissions")
	}
	return strings.Join(n, ",")
}

// releaseOf is what t's service releases to its OpenID Connect client
// (nil when nothing): pre when it was asked for t's person already, else
// asked now.
func (s *Service) releaseOf(ctx context.Context, t *AccessToken, pre *Authorization) (*Authorization, error) {
	if pre != nil && pre.user == t.UserID {
		return pre, nil
	}
	rs, err := s.reg.Match(ctx, t.Service)
	if errors.Is(err, ErrServiceNotRegistered) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.authorization(ctx, t.UserID, t.ClientID, rs)
}

// releaseFault is the error of an OpenID Connect request whose roles and
// permissions authz did not answer: UNAVAILABLE (the edge: 503
// temporarily_unavailable), logged and recorded. spent: the code was used
// up before (its instance could not be asked for its record).
func (s *Service) releaseFault(ctx context.Context, api string, start time.Time, userID, orgID, clientID string, spent bool, err error) error {
	s.log.Warn("OpenID Connect: authz did not answer the roles and permissions the client's service releases; no claims answered",
		zapErr(err))
	s.auditCall(ctx, audit.Action{API: api, Subject: "user:" + userID, Org: orgID, Result: audit.ResultFailure,
		Reason: ReasonAuthorizationUnavailable, Start: start, AppID: clientID,
		Fields: detail("client_id", clientID, "code_spent", strconv.FormatBool(spent))})
	return apierr.ErrUnavailable.WithMessage("the person's roles and permissions could not be read (the authorization service " +
		"did not answer); retry later").WithCause(err)
}

// releaseBefore asks authz for what rs releases of the person of the
// ticket under key before the ticket is used up (its record read, not
// taken: authz not answering leaves the ticket usable for a retry). nil,
// nil, nil when the ticket is not there, cannot be read so, or is not
// the one asked for (matches); the ticket read with authz's error.
func (s *Service) releaseBefore(ctx context.Context, replica, key string, rs *RegisteredService,
	matches func(*Ticket) bool) (*Authorization, *Ticket, error) {
	pt, err := s.store.PeekTicket(ctx, replica, key)
	if err != nil || !matches(pt) {
		return nil, nil, nil //nolint:nilerr // not readable before: decided when it is used up
	}
	a, err := s.authorization(ctx, pt.UserID, pt.AppID, rs)
	if err != nil {
		return nil, pt, err
	}
	a.user = pt.UserID
	return a, pt, nil
}
