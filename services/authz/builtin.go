package authz

import "encoding/json"

// AdminApp is the application id under which UIAS's own administrative
// actions are checked (reserved: its resources and the built-in roles are
// part of the code, not of the store, and cannot be changed).
const AdminApp = "uias"

// The built-in administrator roles (global roles; id = code). The three
// are mutually exclusive: one person never holds two of them.
const (
	RoleSystemAdmin     = "system_admin"
	RoleSecurityAuditor = "security_auditor"
	RoleUnitAdmin       = "unit_admin"
	// RolePersonalData is not one of the three: it adds, to whoever also
	// may export people (identity.export run), ID numbers and phone numbers
	// in clear (identity.personal reveal). It replaces the setting
	// identity.personal_data_admins.
	RolePersonalData = "personal_data_admin"
)

// PersonalResource is the resource of personal data in clear, held only by
// RolePersonalData.
const PersonalResource = "identity.personal"

// AdminResource is one resource of the "uias" application with its
// operations.
type AdminResource struct {
	Code       string
	Parent     string
	Operations []string
}

// AdminResources is the administration namespace (docs/operators.md).
var AdminResources = []AdminResource{
	{Code: "system", Operations: []string{"read"}},
	{Code: "system.console", Parent: "system", Operations: []string{"login"}},
	{Code: "system.settings", Parent: "system", Operations: []string{"read", "write"}},
	{Code: "identity", Operations: []string{"read"}},
	{Code: "identity.orgs", Parent: "identity", Operations: []string{"read", "write"}},
	{Code: "identity.users", Parent: "identity", Operations: []string{"read", "write", "password", "lock", "unlock"}},
	{Code: "identity.groups", Parent: "identity", Operations: []string{"read", "write"}},
	{Code: "identity.links", Parent: "identity", Operations: []string{"read", "write"}},
	{Code: "identity.apps", Parent: "identity", Operations: []string{"read", "write", "secret"}},
	{Code: "identity.keys", Parent: "identity", Operations: []string{"read", "rotate"}},
	{Code: "identity.fingers", Parent: "identity", Operations: []string{"read", "write"}},
	{Code: "identity.import", Parent: "identity", Operations: []string{"run"}},
	{Code: "identity.export", Parent: "identity", Operations: []string{"run"}},
	{Code: PersonalResource, Parent: "identity", Operations: []string{"reveal"}},
	{Code: "authz", Operations: []string{"read"}},
	{Code: "authz.model", Parent: "authz", Operations: []string{"read", "write"}},
	{Code: "authz.grants", Parent: "authz", Operations: []string{"read", "write"}},
	{Code: "ticket", Operations: []string{"read"}},
	{Code: "ticket.services", Parent: "ticket", Operations: []string{"read", "write"}},
	{Code: "ticket.sessions", Parent: "ticket", Operations: []string{"read", "revoke"}},
	{Code: "sync", Operations: []string{"read"}},
	{Code: "sync.subscriptions", Parent: "sync", Operations: []string{"read", "write"}},
	{Code: "sync.replication", Parent: "sync", Operations: []string{"read", "write"}},
	{Code: "audit", Operations: []string{"read"}},
	{Code: "audit.records", Parent: "audit", Operations: []string{"read", "verify", "archive", "export"}},
}

// unitAdminResources are what a unit administrator manages inside its
// scope (every operation), besides reading the model, the console and the
// SSO sessions of its people (ticket.sessions read).
var unitAdminResources = []string{"identity.orgs", "identity.users", "identity.groups", "identity.links", "authz.grants"}

// BuiltinRoles returns the built-in roles.
func BuiltinRoles() []Role {
	var sys, aud, unit, personal []Permission
	for _, r := range AdminResources {
		for _, op := range r.Operations {
			p := Permission{App: AdminApp, Resource: r.Code, Operation: op}
			top := r.Code
			if r.Parent != "" {
				top = r.Parent
			}
			if r.Code == PersonalResource {
				personal = append(personal, p)
				continue
			}
			// The system administrator queries all logs, and the unit
			// administrators their own orgs' (004 2.1.7.1); backing up
			// and removing them is the security auditor's alone.
			if top != "audit" || op != "archive" {
				sys = append(sys, p)
			}
			if r.Code == "audit.records" && (op == "read" || op == "export") {
				unit = append(unit, p)
			}
			if op == "read" && top != "system" || top == "audit" || r.Code == "system.console" {
				aud = append(aud, p)
			}
			for _, u := range unitAdminResources {
				if r.Code == u {
					unit = append(unit, p)
				}
			}
			if r.Code == "system.console" || r.Code == "authz.model" && op == "read" || r.Code == "ticket.sessions" && op == "read" {
				unit = append(unit, p)
			}
		}
	}
	return []Role{
		{ID: RoleSystemAdmin, Code: RoleSystemAdmin, Name: "System administrator", Permissions: sys},
		{ID: RoleSecurityAuditor, Code: RoleSecurityAuditor, Name: "Security auditor", Permissions: aud},
		{ID: RoleUnitAdmin, Code: RoleUnitAdmin, Name: "Unit administrator (granted over an org subtree)", Permissions: unit},
		{ID: RolePersonalData, Code: RolePersonalData, Name: "Personal data in clear (with the right to export people)", Permissions: personal},
	}
}

// IsBuiltinRole reports whether id is a built-in role.
func IsBuiltinRole(id string) bool {
	return id == RoleSystemAdmin || id == RoleSecurityAuditor || id == RoleUnitAdmin || id == RolePersonalData
}

// BuiltinExclusions are the separation-of-duty pairs of the three
// administrators.
func BuiltinExclusions() []Exclusion {
	return []Exclusion{
		{ID: "builtin-sys-aud", RoleA: RoleSystemAdmin, RoleB: RoleSecurityAuditor, Name: "three administrators"},
		{ID: "builtin-sys-unit", RoleA: RoleSystemAdmin, RoleB: RoleUnitAdmin, Name: "three administrators"},
		{ID: "builtin-aud-unit", RoleA: RoleSecurityAuditor, RoleB: RoleUnitAdmin, Name: "three administrators"},
	}
}

// IsBuiltinExclusion reports whether id is a built-in exclusion.
func IsBuiltinExclusion(id string) bool {
	for _, e := range BuiltinExclusions() {
		if e.ID == id {
			return true
		}
	}
	return false
}

// BuiltinChanges are the built-in resources, roles and exclusions as
// snapshot changes (Rev 0) for an index.
func BuiltinChanges() []Change {
	var out []Change
	add := func(obj, id string, v any) {
		b, _ := json.Marshal(v)
		out = append(out, Change{Obj: obj, Op: OpPut, ID: id, Data: b})
	}
	for _, r := range AdminResources {
		kind := KindEntity
		if r.Parent == "" {
			kind = KindModule
		}
		add(ObjResource, AdminApp+"/"+r.Code, Resource{App: AdminApp, Code: r.Code, Parent: r.Parent, Kind: kind, Operations: r.Operations})
	}
	for _, r := range BuiltinRoles() {
		add(ObjRole, r.ID, r)
	}
	for _, e := range BuiltinExclusions() {
		add(ObjExclusion, e.ID, e)
	}
	return out
}
