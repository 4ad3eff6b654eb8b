package commands

import (
	"context"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// AppointAdmin grants person the built-in role (system_admin,
// security_auditor or personal_data_admin, unscoped, without end) unless a grant of theirs gives
// it already: identity's migration of its legacy is_admin flag and its
// first-start security auditor (a UIAS component asks; there is no acting
// administrator). It returns the grant and whether it is new. The
// separation of duty holds: a person holding another of the three roles
// is refused (SOD_CONFLICT).
func (s *Service) AppointAdmin(ctx context.Context, person, role string) (authz.Grant, bool, int64, error) {
	if role != authz.RoleSystemAdmin && role != authz.RoleSecurityAuditor && role != authz.RolePersonalData {
		return authz.Grant{}, false, 0, badModel("only system_admin, security_auditor and personal_data_admin are appointed this way")
	}
	subject := authz.Subject{Kind: authz.SubjectUser, ID: person}
	g := authz.Grant{ID: ids.New(), Role: role, Subject: subject, CreatedBy: "uias:appointment"}
	if h, ok := s.heldUnscoped(subject, role); ok {
		return h, false, s.idx.Revision(), nil
	}
	var held *authz.Grant
	ch, err := s.write(ctx, "grant.appoint", subject.String(), func() (authz.Change, error) {
		held = nil
		if h, ok := s.heldUnscoped(subject, role); ok {
			held = &h
			return authz.Change{}, errAlreadyHeld
		}
		g.CreatedAt = s.now().UTC()
		if err := s.checkGrant(g); err != nil {
			return authz.Change{}, err
		}
		return put(authz.ObjGrant, g.ID, g)
	})
	if held != nil {
		return *held, false, s.idx.Revision(), nil
	}
	return g, err == nil, ch.Rev, err
}

// errAlreadyHeld ends an appointment's write without a change (another
// replica appointed the person meanwhile).
var errAlreadyHeld = apierr.New(apierr.AlreadyExists, "ALREADY_EXISTS", "the person holds the role already")

// heldUnscoped returns a grant of the person's own giving role without a
// scope and without an end.
func (s *Service) heldUnscoped(subject authz.Subject, role string) (authz.Grant, bool) {
	now := s.now()
	for _, g := range s.idx.Grants(index.GrantFilter{Subject: &subject, Role: role}) {
		if g.ScopeOrg == "" && g.ValidUntil.IsZero() && (g.ValidFrom.IsZero() || !g.ValidFrom.After(now)) {
			return g, true
		}
	}
	return authz.Grant{}, false
}
