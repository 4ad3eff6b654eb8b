package ticket

import (
	"context"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
)

// Service access rules (Apereo CAS "access strategies", Keycloak's
// required client roles): a registered service may ask that the person
// signed in has an active account link with its application
// (RegisteredService.RequireAccountLink) and/or is allowed a permission in
// it by authz (RegisteredService.RequiredPermission). A ticket is issued
// only to a person who passes; one who does not keeps their session (they
// are signed in) but gets no ticket for that service. A service without a
// rule costs nothing more than before: the rule is asked only when set.

func init() {
	apierr.Register(apierr.Reason{Name: "SERVICE_ACCESS_DENIED", Code: apierr.PermissionDenied,
		Doc: "The person is signed in but may not use this application: its CAS service requires an account in the " +
			"application (an active account link) or a permission they are not granted (the message says which). " +
			"No ticket is issued; the session stays."})
}

// ReasonServiceAccessDenied is the reason of a refusal by a service's
// access rule.
const ReasonServiceAccessDenied = "SERVICE_ACCESS_DENIED"

// AccessChecker answers a service's access rule for a person (the
// component asks identity and authz; no answer is kept longer than they
// keep it). A fault (identity or authz unreachable) is an error, never a
// refusal nor a pass.
type AccessChecker interface {
	// HasAccount reports whether the person has an active account link
	// with the application.
	HasAccount(ctx context.Context, userID, appID string) (bool, error)
	// Allowed reports whether authz allows the person operation on
	// resource in the application.
	Allowed(ctx context.Context, userID, appID, resource, operation string) (bool, error)
}

// SetAccess sets the checker of services' access rules. Without one, a
// service with a rule issues no ticket (UNAVAILABLE: the rule cannot be
// checked); services without a rule are not affected.
func (s *Service) SetAccess(a AccessChecker) { s.access = a }

// HasAccessRule reports whether the service restricts who gets its
// tickets.
func (r *RegisteredService) HasAccessRule() bool {
	return r.RequireAccountLink || r.RequiredPermission != ""
}

// errAccessUnchecked: a service has a rule but no checker is configured.
var errAccessUnchecked = apierr.ErrUnavailable.WithMessage("this application's access rule cannot be checked now; retry later")

// What a person refused by a service's access rule lacks: the refusal's
// ErrorInfo metadata "missing" (the CAS page words it from this, never
// from the message).
const (
	MissingAccountLink = "account_link"
	MissingPermission  = "permission"
)

// ServiceAccessDenied is the refusal of a service's access rule: missing
// is MissingAccountLink or MissingPermission, msg names it.
func ServiceAccessDenied(missing, msg string) error {
	return apierr.New(apierr.PermissionDenied, ReasonServiceAccessDenied, msg).WithMeta("missing", missing)
}

// accessDenial is a refusal by a service's access rule: the error
// answered and what the person lacked (for the audit record).
type accessDenial struct {
	err     error
	missing string
}

// why says what the person lacks, in the third person (for a proxying
// service).
func (d *accessDenial) why() string {
	switch {
	case d.missing == MissingAccountLink:
		return "they have no account in it (no account link)"
	case strings.HasPrefix(d.missing, MissingPermission+" "):
		return "they are not granted " + strings.TrimPrefix(d.missing, MissingPermission+" ")
	}
	return "its access rule is not valid"
}

// checkAccess decides rs's access rule for userID: nil, nil when they pass
// (or the service has no rule); a denial naming what is missing; or the
// fault of identity or authz.
func (s *Service) checkAccess(ctx context.Context, userID string, rs *RegisteredService) (*accessDenial, error) {
	if !rs.HasAccessRule() {
		return nil, nil
	}
	if s.access == nil {
		return nil, errAccessUnchecked
	}
	if rs.RequireAccountLink {
		ok, err := s.access.HasAccount(ctx, userID, rs.AppID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &accessDenial{missing: MissingAccountLink,
				err: ServiceAccessDenied(MissingAccountLink, "you may not use this application: you have no account in it (no account link)")}, nil
		}
	}
	if rs.RequiredPermission != "" {
		res, op, valid := SplitPermission(rs.RequiredPermission)
		if !valid { // CheckService refuses such a rule; one written otherwise lets nobody in
			return &accessDenial{missing: "valid rule",
				err: ServiceAccessDenied(MissingPermission, "you may not use this application: its access rule is not valid")}, nil
		}
		ok, err := s.access.Allowed(ctx, userID, rs.AppID, res, op)
		if err != nil {
			return nil, err
		}
		if !ok {
			return &accessDenial{missing: MissingPermission + " " + res + ":" + op,
				err: ServiceAccessDenied(MissingPermission, "you may not use this application: you are not granted "+res+":"+op)}, nil
		}
	}
	return nil, nil
}

// auditAccessDenied records a refusal by a service's access rule (api:
// ticket.issue or ticket.proxy).
func (s *Service) auditAccessDenied(ctx context.Context, api string, start time.Time, userID, orgID, service string,
	rs *RegisteredService, d *accessDenial) {
	s.audit(ctx, audit.Action{API: api, Subject: "user:" + userID, Org: orgID, Result: audit.ResultDenied,
		Reason: ReasonServiceAccessDenied, Start: start, AppID: rs.AppID,
		Fields: detail("service", service, "app_id", rs.AppID, "service_id", rs.ID, "missing", d.missing)})
}
