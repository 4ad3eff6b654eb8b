package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// MaxBatch is the most checks one BatchCheck answers.
const MaxBatch = 100

// Check answers q once the index has reached atLeast.
func (s *Service) Check(ctx context.Context, q index.Query, atLeast int64) (bool, int64, error) {
	if err := checkQuery(q, ""); err != nil {
		return false, 0, err
	}
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return false, 0, err
	}
	ok, rev := s.idx.Check(q, s.now())
	return ok, rev, nil
}

// BatchCheck answers every query at one revision.
func (s *Service) BatchCheck(ctx context.Context, qs []index.Query, atLeast int64) ([]bool, int64, error) {
	if len(qs) > MaxBatch {
		return nil, 0, apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, "at most 100 checks per batch")
	}
	for i, q := range qs {
		if err := checkQuery(q, fmt.Sprintf("checks[%d].", i)); err != nil {
			return nil, 0, err
		}
	}
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, 0, err
	}
	out, rev := s.idx.BatchCheck(qs, s.now())
	return out, rev, nil
}

// Explain answers q with the grant path or why not.
func (s *Service) Explain(ctx context.Context, q index.Query, atLeast int64) (index.Explanation, error) {
	if err := checkQuery(q, ""); err != nil {
		return index.Explanation{}, err
	}
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return index.Explanation{}, err
	}
	return s.idx.Explain(q, s.now()), nil
}

// ListPermissions lists what person may do in app.
func (s *Service) ListPermissions(ctx context.Context, person, app string, atLeast int64) ([]authz.Permission, int64, error) {
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, 0, err
	}
	ps, rev := s.idx.ListPermissions(person, app, s.now())
	return ps, rev, nil
}

// ListSubjects lists who may do op on resource of app.
func (s *Service) ListSubjects(ctx context.Context, app, resource, op string, atLeast int64) ([]index.SubjectGrant, int64, error) {
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, 0, err
	}
	out, rev := s.idx.ListSubjects(app, resource, op, s.now())
	return out, rev, nil
}

// checkQuery refuses a check that names no permission: a resource with its
// operation, or a URL (path, and a method or none); not both. prefix is
// the path of the query in its request (a batch's checks[i].).
func checkQuery(q index.Query, prefix string) error {
	bad := func(field, msg string) error {
		return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, prefix+msg).WithMeta(apierr.MetaField, prefix+field)
	}
	switch {
	case q.Resource != "" && (q.Method != "" || q.Path != ""):
		return bad("resource", "give a resource and its operation, or a URL (method and path), not both")
	case q.Resource != "" && q.Operation == "":
		return bad("operation", "operation is required with a resource")
	case q.Resource == "" && q.Path == "":
		return bad("resource", "a resource and its operation, or a URL path, is required")
	case q.Path != "":
		if why := pathProblem(q.Path); why != "" {
			return bad("path", "path "+why+": ask with the path the application serves, cleaned (as its router resolves it)")
		}
	}
	return nil
}

// pathProblem says why a URL path may not be matched as given ("" when it
// may): it starts with "/"; it has no dot segment ("." or ".."), no empty
// segment ("//"), no percent-encoded dot, slash or backslash and no
// backslash or control character. A path that resolves elsewhere than it
// reads (/pub/../api/admin matched by /pub/**) would answer for one path
// while the application's router serves another (trial7 H2); the CAS
// service URLs are held to the same rule.
func pathProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "must start with /"
	}
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return "is the path alone, without a query or fragment"
	}
	lower := strings.ToLower(p)
	for _, enc := range []string{"%2e", "%2f", "%5c", "%00"} {
		if strings.Contains(lower, enc) {
			return "has an encoded dot, slash or backslash (" + enc + ")"
		}
	}
	for _, c := range p {
		if c == '\\' || c < 0x20 || c == 0x7f {
			return "has a backslash or a control character"
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "." || seg == "..":
			return "has a dot segment (. or ..)"
		case seg == "" && i < len(segs)-1:
			return "has an empty segment (//)"
		}
	}
	return ""
}
