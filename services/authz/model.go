// Package authz holds the authorization component's domain: the model
// (resources per application as a tree with operations, permissions, roles
// with inheritance, separation-of-duty pairs, grants to people, groups and
// orgs), the write commands that validate and store changes, and the
// queries answered from the in-memory index (package index). It has no gRPC
// imports; the server package adapts it to the wire.
//
// Every write bumps the component's revision (a counter in the store, one
// per committed change) and emits a CHANGES event; every answer says at
// which revision it was computed, and a caller may demand at least a
// revision it saw (as SpiceDB's ZedTokens).
package authz

import (
	"time"
)

// ResourceKind is the grain of a resource.
type ResourceKind string

// Resource kinds: modules hold menus, URLs and entities.
const (
	KindModule ResourceKind = "module"
	KindMenu   ResourceKind = "menu"
	KindURL    ResourceKind = "url"
	KindEntity ResourceKind = "entity"
)

// ValidKind reports whether k is a known resource kind.
func ValidKind(k ResourceKind) bool {
	switch k {
	case KindModule, KindMenu, KindURL, KindEntity:
		return true
	}
	return false
}

// Resource is one node of an application's resource tree. Code is unique
// within the application; Parent is the code of its parent ("" for a root).
// A permission on a resource covers the same operation on every resource
// below it (coarse grain). URL resources also name the HTTP method ("" =
// any) and a path pattern ("/api/orders/{id}", "*" = one segment, a final
// "**" = the rest) that Check by URL matches.
type Resource struct {
	App         string       `json:"app"`
	Code        string       `json:"code"`
	Parent      string       `json:"parent,omitempty"`
	Kind        ResourceKind `json:"kind"`
	Name        string       `json:"name,omitempty"`
	Operations  []string     `json:"operations"`
	Method      string       `json:"method,omitempty"`
	PathPattern string       `json:"path_pattern,omitempty"`
}

// Key is the resource's identity: application and code.
func (r *Resource) Key() string { return r.App + "\x00" + r.Code }

// Permission is application + resource + operation.
type Permission struct {
	App       string `json:"app"`
	Resource  string `json:"resource"`
	Operation string `json:"operation"`
}

// String is the permission as written on the command line and in audit
// records: "app:resource:operation".
func (p Permission) String() string { return p.App + ":" + p.Resource + ":" + p.Operation }

// IsZero reports whether p names nothing.
func (p Permission) IsZero() bool { return p == Permission{} }

// Role holds permissions and includes the permissions of the roles it
// inherits (a senior role includes its juniors). App "" is a global role,
// which may hold permissions of any application; an application role holds
// only its application's permissions and inherits only its application's
// roles. Code is unique within App.
type Role struct {
	ID          string       `json:"id"`
	App         string       `json:"app,omitempty"`
	Code        string       `json:"code"`
	Name        string       `json:"name,omitempty"`
	Permissions []Permission `json:"permissions,omitempty"`
	Inherits    []string     `json:"inherits,omitempty"` // ids of junior roles
}

// Exclusion declares two roles that one person may not hold together
// (separation of duty): a grant that would give someone both is refused.
type Exclusion struct {
	ID    string `json:"id"`
	RoleA string `json:"role_a"`
	RoleB string `json:"role_b"`
	Name  string `json:"name,omitempty"`
}

// SubjectKind is who a grant is made to.
type SubjectKind string

// Subject kinds.
const (
	SubjectUser  SubjectKind = "user"
	SubjectGroup SubjectKind = "group"
	SubjectOrg   SubjectKind = "org" // the org and every org below it
)

// Subject is a grantee.
type Subject struct {
	Kind SubjectKind `json:"kind"`
	ID   string      `json:"id"`
}

// String is "<kind>:<id>".
func (s Subject) String() string { return string(s.Kind) + ":" + s.ID }

// Grant gives a role, or directly one permission (a direct grant: Role
// "", Permission set; docs/adr/0018), to a subject, optionally only from
// ValidFrom and/or until ValidUntil (zero: unbounded). A grant to an org
// reaches every person of the org and of the orgs below it. ScopeOrg and
// Delegable are for administrator roles (delegated administration over an
// org subtree).
type Grant struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	// Permission: the permission a direct grant gives (zero for a grant of
	// a role). Stored in the grant's JSON, so grants written before it
	// existed read as role grants.
	Permission Permission `json:"permission,omitzero"`
	Subject    Subject    `json:"subject"`
	ValidFrom  time.Time  `json:"valid_from,omitzero"`
	ValidUntil time.Time  `json:"valid_until,omitzero"`
	ScopeOrg   string     `json:"scope_org,omitempty"`
	Delegable  bool       `json:"delegable,omitempty"`
	// DelegationDepth: for a delegable grant, how many levels of unit
	// administrators may be appointed below its holder, one below the
	// other (0 and 1: one level, the holder's appointees appoint nobody;
	// 2: they may be delegable with depth 1; ...; MaxDelegationDepth at
	// most). Grants written before it existed read as one level.
	DelegationDepth int `json:"delegation_depth,omitempty"`
	// Grantable: for an administrator role granted over ScopeOrg, the roles
	// (with their juniors) the holder may grant inside it.
	Grantable []string  `json:"grantable,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// MaxDelegationDepth bounds Grant.DelegationDepth.
const MaxDelegationDepth = 8

// Depth is how many levels of unit administrators g lets its holder
// appoint below them: 0 unless delegable, then DelegationDepth (at least 1).
func (g *Grant) Depth() int {
	if !g.Delegable {
		return 0
	}
	return max(g.DelegationDepth, 1)
}

// Direct reports whether g grants a permission directly (not a role).
func (g *Grant) Direct() bool { return !g.Permission.IsZero() }

// ActiveAt reports whether the grant is in force at t.
func (g *Grant) ActiveAt(t time.Time) bool {
	return (g.ValidFrom.IsZero() || !t.Before(g.ValidFrom)) && (g.ValidUntil.IsZero() || t.Before(g.ValidUntil))
}

// Object kinds of the store and of changes.
const (
	ObjResource  = "resource"
	ObjRole      = "role"
	ObjGrant     = "grant"
	ObjExclusion = "exclusion"
)

// Change operations.
const (
	OpPut    = "put"
	OpDelete = "delete"
)

// Change is one committed write: the object after a put (JSON), or only its
// id for a delete. Rev is the revision the write produced.
type Change struct {
	Rev  int64  `json:"rev"`
	Obj  string `json:"obj"`
	Op   string `json:"op"`
	ID   string `json:"id"`
	Data []byte `json:"data,omitempty"`
}
