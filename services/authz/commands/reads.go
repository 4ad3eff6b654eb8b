package commands

import (
	"context"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// Administrative reads, from the replica's index, with its revision.

// Resources lists the resources of app.
func (s *Service) Resources(app string) ([]authz.Resource, int64) {
	rev := s.idx.Revision()
	return s.idx.Resources(app), rev
}

// Role returns role id.
func (s *Service) Role(id string) (authz.Role, int64, bool) {
	rev := s.idx.Revision()
	r, ok := s.idx.Role(id)
	return r, rev, ok
}

// Roles lists roles (see index.Roles).
func (s *Service) Roles(app string, all bool) ([]authz.Role, int64) {
	rev := s.idx.Revision()
	return s.idx.Roles(app, all), rev
}

// Exclusions lists the separation-of-duty pairs.
func (s *Service) Exclusions() ([]authz.Exclusion, int64) {
	rev := s.idx.Revision()
	return s.idx.Exclusions(), rev
}

// Page sizes of ListGrants.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// ListGrants lists grants by id, a page at a time.
func (s *Service) ListGrants(f index.GrantFilter, size int, token string, keep func(authz.Subject) bool) ([]authz.Grant, string, int64, error) {
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	after := ""
	if token != "" {
		var err error
		if after, err = store.PageAfter(token); err != nil {
			return nil, "", 0, err
		}
	}
	rev := s.idx.Revision()
	all := s.idx.Grants(f)
	if keep != nil {
		kept := all[:0]
		for _, g := range all {
			if keep(g.Subject) {
				kept = append(kept, g)
			}
		}
		all = kept
	}
	i := 0
	if after != "" {
		for i < len(all) && all[i].ID <= after {
			i++
		}
	}
	page := all[i:min(len(all), i+size)]
	next := ""
	if i+size < len(all) {
		next = store.PageToken(page[len(page)-1].ID)
	}
	return page, next, rev, nil
}

// ReadScope returns, for an administrator reading grants, permissions or
// the subjects of a permission, whether a subject is theirs to read: all
// of them (nil) for one allowed to read grants unscoped (a system
// administrator, the security auditor) and for callers that are no
// administrator (business systems ask about their own application); for
// a unit administrator the people, groups and orgs inside the subtrees
// they administer, as identity shows them (trial7 M1: they read every
// grant of the deployment, who the system administrators are, and what a
// person of another branch may do).
func (s *Service) ReadScope(ctx context.Context) func(authz.Subject) bool {
	a := actorOf(ctx) // the token's administrator, or the person a component acts for (review sec11 S8)
	if a == nil || a.SystemAdminFlag {
		return nil
	}
	var scopes []string
	for _, g := range s.idx.AdminGrants(a.ID, "authz.grants", "read", s.now()) {
		if g.ScopeOrg == "" {
			return nil
		}
		scopes = append(scopes, g.ScopeOrg)
	}
	return func(sub authz.Subject) bool {
		if sub.Kind == authz.SubjectUser && sub.ID == a.ID {
			return true // their own
		}
		orgs := s.subjectOrgs(sub)
		for _, sc := range scopes {
			if s.withinAll(orgs, sc) {
				return true
			}
		}
		return false
	}
}

// errOutsideScope refuses a unit administrator's read of a person outside
// their subtrees.
var errOutsideScope = adminauth.Denied("the person is outside the org subtrees you administer")

// MayRead refuses (ADMIN_NOT_ALLOWED) a read, for the API api, of the
// grants or permissions of sub that keep (ReadScope) does not allow; the
// refusal is audited (admin.denied), as the administrators' other
// refusals are: a unit administrator probing other branches' people leaves
// a trace (review sec11 S11).
func (s *Service) MayRead(ctx context.Context, api string, keep func(authz.Subject) bool, sub authz.Subject) error {
	if keep == nil || keep(sub) {
		return nil
	}
	s.appendRefusal(ctx, api, sub.String(), errOutsideScope, s.now(), nil)
	return errOutsideScope
}

// MayReadPerson is MayRead of person, in the scope of the caller in ctx.
func (s *Service) MayReadPerson(ctx context.Context, api, person string) error {
	return s.MayRead(ctx, api, s.ReadScope(ctx), authz.Subject{Kind: authz.SubjectUser, ID: person})
}
