package commands

import (
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
func (s *Service) ListGrants(f index.GrantFilter, size int, token string) ([]authz.Grant, string, int64, error) {
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
