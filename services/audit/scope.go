package audit

import (
	"github.com/uias/uias/pkg/apierr"
)

// Principal is the administrator calling the audit component.
type Principal struct {
	UserID string
	OrgID  string
	// Auditor: authz allows the administrator the audit.records permission
	// of the call without an org scope (the security auditor).
	Auditor bool
}

// Scope is what part of the log an administrator may read.
type Scope struct {
	// All: every record (system administrator, security auditor).
	All bool
	// Orgs: the org subtrees whose records may be read (unit
	// administrators, once the authorization component exists).
	Orgs []string
}

// ReasonAuditForbidden is the reason of a refused audit read.
const ReasonAuditForbidden = "AUDIT_FORBIDDEN"

var errForbidden = apierr.New(apierr.PermissionDenied, ReasonAuditForbidden, "this administrator may not read the audit log")

func init() {
	apierr.Register(apierr.Reason{Name: ReasonAuditForbidden, Code: apierr.PermissionDenied,
		Doc: "Audit log: the administrator may not read the audit log, or not this part of it."})
}

// ScopeOf is the one place that decides what an administrator may read of
// the audit log: the security auditor (audit.records, asked of authz by the
// server's caller authentication) reads everything, nobody else anything.
// Unit administrators reading their org subtrees would get Orgs here.
func ScopeOf(p Principal) (Scope, error) {
	if p.Auditor {
		return Scope{All: true}, nil
	}
	return Scope{}, errForbidden
}

// ScopeAll checks that the scope covers the whole log (proofs,
// verification and checkpoints concern every record).
func ScopeAll(s Scope) error {
	if !s.All {
		return errForbidden
	}
	return nil
}
