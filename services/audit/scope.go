package audit

import (
	"github.com/uias/uias/pkg/apierr"
)

// Principal is the administrator calling the audit component.
type Principal struct {
	UserID string
	OrgID  string
	// All: authz allows the administrator the call's audit.records
	// permission without an org scope (the security auditor, the system
	// administrator).
	All bool
	// Orgs: the orgs of the subtrees a unit administrator administers (the
	// call's permission is theirs over those subtrees only).
	Orgs []string
}

// Scope is what part of the log an administrator may read.
type Scope struct {
	// All: every record (system administrator, security auditor).
	All bool
	// Orgs: the orgs whose records may be read (a unit administrator's
	// subtrees, every org in them).
	Orgs []string
}

// ReasonAuditForbidden is the reason of a refused audit read.
const ReasonAuditForbidden = "AUDIT_FORBIDDEN"

var errForbidden = apierr.New(apierr.PermissionDenied, ReasonAuditForbidden, "this administrator may not read the audit log")

// ErrPersonOutOfScope refuses a unit administrator a question about one
// person outside the org subtrees they administer (a scoped answer would
// read as "no records of this person").
var ErrPersonOutOfScope = errForbidden.WithMessage("this person is outside the org subtrees you administer")

func init() {
	apierr.Register(apierr.Reason{Name: ReasonAuditForbidden, Code: apierr.PermissionDenied,
		Doc: "Audit log: the administrator may not read the audit log, or not this part of it."})
}

// ScopeOf is the one place that decides what an administrator may read of
// the audit log (004 2.1.7.1): every record for whoever holds the
// permission without an org scope (the security auditor, the system
// administrator), the records of the orgs of their subtrees for a unit
// administrator, nothing for anyone else.
func ScopeOf(p Principal) (Scope, error) {
	switch {
	case p.All:
		return Scope{All: true}, nil
	case len(p.Orgs) > 0:
		return Scope{Orgs: p.Orgs}, nil
	}
	return Scope{}, errForbidden
}

// ErrOrgOutOfScope refuses an org filter outside the org subtrees a unit
// administrator administers.
var ErrOrgOutOfScope = errForbidden.WithMessage("this org is outside the org subtrees you administer")

// WithinOrg narrows scope to subtree, the orgs of one org's subtree (an
// org filter): every one of them for whoever reads everything, those the
// scope holds too for a unit administrator (none: ErrOrgOutOfScope).
func WithinOrg(scope Scope, subtree []string) (Scope, error) {
	if scope.All {
		if len(subtree) == 0 {
			return Scope{}, ErrOrgOutOfScope
		}
		return Scope{Orgs: subtree}, nil
	}
	in := make(map[string]bool, len(scope.Orgs))
	for _, o := range scope.Orgs {
		in[o] = true
	}
	var out []string
	for _, o := range subtree {
		if in[o] {
			out = append(out, o)
		}
	}
	if len(out) == 0 {
		return Scope{}, ErrOrgOutOfScope
	}
	return Scope{Orgs: out}, nil
}

// ScopeAll checks that the scope covers the whole log (proofs,
// verification and checkpoints concern every record).
func ScopeAll(s Scope) error {
	if !s.All {
		return errForbidden
	}
	return nil
}
