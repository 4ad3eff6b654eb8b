package commands

import (
	"context"
	"fmt"
	"slices"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// Administration of authz itself: every AuthzAdminService call is checked
// against the built-in administrator roles (application "uias"), with the
// same rules CheckAdmin answers other components with, plus the rules of
// delegation on grants.

// actorOf returns the administrator acting in ctx: the caller's principal,
// with identity's legacy flag when the token was checked here. nil: a call
// without an administrator (made inside the process: tests, tools), which
// is not checked.
func actorOf(ctx context.Context) *adminauth.Admin {
	c := caller.From(ctx)
	if c == nil || c.Principal == "" {
		return nil
	}
	if a := adminauth.From(ctx); a != nil && a.ID == c.Principal {
		return a
	}
	return &adminauth.Admin{ID: c.Principal}
}

// CheckAdmin answers another component's question (pkg/adminauth) once the
// index has reached atLeast; a refusal is audited here (admin.denied), for
// every component alike, unless the question is a probe (q.Probe).
func (s *Service) CheckAdmin(ctx context.Context, q index.AdminQuery, atLeast int64) (index.AdminDecision, error) {
	start := s.now()
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return index.AdminDecision{}, err
	}
	d := s.idx.CheckAdmin(q, s.now())
	if d.Allowed && q.MoveOrg != "" && q.JoinOrg != "" {
		if s.idx.MoveUnknown(q.MoveOrg, q.JoinOrg) && s.orgsExist(ctx, q.MoveOrg, q.JoinOrg) {
			// asked again by the component (adminauth.RetryFor) until the
			// org's creation reaches the mirror; an org identity does not
			// have is identity's to refuse (NOT_FOUND), at once
			return index.AdminDecision{}, apierr.ErrUnavailable.WithMessage("authz has not yet learned of the orgs of this move " +
				"(identity's change is on its way): try again in a moment")
		}
		if e, who, ok := s.idx.MoveConflict(q.MoveOrg, q.JoinOrg, s.now()); ok {
			d.SoD = &e
			s.appendRefusal(ctx, "admin.membership", "org:"+q.MoveOrg, SoDMessage(s.idx, e), start, map[string]string{
				"org": q.JoinOrg, "person": who})
		}
	}
	if d.Allowed && q.Target != "" && (q.JoinGroup != "" || q.JoinOrg != "") {
		if e, ok := s.idx.MembershipConflict(q.Target, q.JoinGroup, q.JoinOrg, s.now()); ok {
			d.SoD = &e
			s.appendRefusal(ctx, "admin.membership", "user:"+q.Target, SoDMessage(s.idx, e), start, map[string]string{
				"group": q.JoinGroup, "org": q.JoinOrg})
		}
	}
	if !d.Allowed && !q.Probe {
		s.appendRefusal(ctx, "admin.denied", "user:"+q.Person, adminauth.Denied(d.Detail), start, map[string]string{
			"permission": q.Resource + "." + q.Operation, "target": q.Target})
	}
	return d, nil
}

// Authorize checks the acting administrator (if any) for p on a global
// object (anywhere: a scoped grant suffices, for reads of the model and of
// grant lists). A refusal is audited.
func (s *Service) Authorize(ctx context.Context, api string, p adminauth.Perm, anywhere bool) error {
	start := s.now()
	_, err := s.authorize(ctx, p, "", nil, anywhere)
	if err != nil {
		s.appendRefusal(ctx, api, "", err, start, map[string]string{"permission": p.String()})
	}
	return err
}

// authorize decides; the caller audits a refusal (write does).
func (s *Service) authorize(ctx context.Context, p adminauth.Perm, target string, orgs []string, anywhere bool) (index.AdminDecision, error) {
	a := actorOf(ctx)
	if a == nil {
		return index.AdminDecision{Allowed: true, Global: true}, nil
	}
	q := index.AdminQuery{Person: a.ID, Resource: p.Resource, Operation: p.Operation, Orgs: orgs, Target: target,
		SystemAdminFlag: a.SystemAdminFlag}
	d := s.idx.CheckAdmin(q, s.now())
	if !d.Allowed && anywhere && len(orgs) == 0 && len(s.idx.AdminGrants(a.ID, p.Resource, p.Operation, s.now())) > 0 {
		d.Allowed = true
	}
	if !d.Allowed {
		return d, adminauth.Denied(fmt.Sprintf("not allowed to %s %s: %s", p.Operation, p.Resource, d.Detail))
	}
	return d, nil
}

// denied refuses an administrative write (audited by write's refusal path).
func denied(msg string) error { return adminauth.Denied(msg) }

// checkBuiltinModel refuses changes to what is built in and custom roles
// carrying administrator powers: those come only from the built-in roles,
// whose separation-of-duty pairs keep the three administrators apart.
func checkRoleAdminPowers(x *index.Index, r authz.Role) error {
	if authz.IsBuiltinRole(r.ID) {
		return denied("the built-in administrator roles cannot be changed")
	}
	for _, p := range r.Permissions {
		if p.App == authz.AdminApp {
			return denied("permissions of the " + authz.AdminApp + " application come only with the built-in administrator roles")
		}
	}
	for _, j := range r.Inherits {
		for _, id := range x.Closure(j) {
			if authz.IsBuiltinRole(id) {
				return denied("a role may not include a built-in administrator role; grant it instead")
			}
		}
	}
	return nil
}

// subjectOrgs is the org a grant's subject lives in (as mirrored from
// identity): a person's org, a group's org, the org itself.
func (s *Service) subjectOrgs(sub authz.Subject) []string {
	var o string
	switch sub.Kind {
	case authz.SubjectUser:
		o = s.idx.UserOrg(sub.ID)
	case authz.SubjectGroup:
		o = s.idx.GroupOrg(sub.ID)
	case authz.SubjectOrg:
		o = sub.ID
	}
	if o == "" {
		return nil
	}
	return []string{o}
}

// checkGrantShape checks the fields of administrator grants.
func (s *Service) checkGrantShape(g authz.Grant) error {
	if g.DelegationDepth != 0 && (!g.Delegable || g.Role != authz.RoleUnitAdmin) {
		return badModel("delegation_depth is for delegable unit_admin grants")
	}
	if g.DelegationDepth < 0 || g.DelegationDepth > authz.MaxDelegationDepth {
		return badModel(fmt.Sprintf("delegation_depth is at most %d", authz.MaxDelegationDepth))
	}
	switch g.Role {
	case authz.RoleSystemAdmin, authz.RoleSecurityAuditor, authz.RolePersonalData:
		if g.ScopeOrg != "" || g.Delegable || len(g.Grantable) > 0 {
			return badModel("the system administrator, security auditor and personal_data_admin roles are granted without scope_org, delegable or grantable_roles")
		}
		if g.Subject.Kind != authz.SubjectUser {
			return badModel("administrator roles are granted to a person")
		}
	case authz.RoleUnitAdmin:
		if g.ScopeOrg == "" {
			return badModel("the unit_admin role is granted over an org subtree (scope_org)")
		}
		if g.Subject.Kind != authz.SubjectUser {
			return badModel("administrator roles are granted to a person")
		}
		for _, id := range g.Grantable {
			if authz.IsBuiltinRole(id) && id != authz.RoleUnitAdmin {
				return badModel("grantable_roles may not name the system administrator, security auditor or personal_data_admin roles")
			}
			if id == authz.RoleUnitAdmin {
				return badModel("grantable_roles: appointing unit administrators below is what delegable allows")
			}
			if _, ok := s.idx.Role(id); !ok {
				return badModel("a role of grantable_roles does not exist")
			}
		}
	default:
		if g.ScopeOrg != "" || g.Delegable || len(g.Grantable) > 0 {
			return badModel("scope_org, delegable and grantable_roles are for unit_admin grants")
		}
	}
	return nil
}

// checkGrantAuthority checks that the acting administrator may make (or,
// revoke, revoke=true) grant g: "an administrator can only pass on what they
// hold". A system administrator grants any role to anyone but themselves; a
// unit administrator grants, inside their scope, the roles of their
// grantable_roles (and the roles those include), and, when delegable,
// appoints unit administrators strictly below their scope org with a part
// of their grantable roles, delegable only to a smaller depth than theirs
// (one level: not delegable). The security auditor role is
// granted and revoked only by a security auditor (see auditors), except the
// first one.
func (s *Service) checkGrantAuthority(ctx context.Context, g authz.Grant, revoke bool) error {
	a := actorOf(ctx)
	if a == nil {
		return nil
	}
	if !revoke && s.idx.SubjectReaches(g.Subject, a.ID) {
		return denied("nobody grants roles to themselves (nor to a group or org they belong to)")
	}
	if g.Role == authz.RoleSecurityAuditor {
		auditors := s.auditors("")
		switch {
		case auditors[a.ID]:
			if revoke && len(s.holders(authz.RoleSecurityAuditor, g.ID, true)) == 0 {
				return denied("the last security auditor's grant cannot be revoked: appoint another security auditor first")
			}
			return nil
		case len(auditors) > 0:
			return denied("security auditors are appointed and removed only by a security auditor (separation of the three administrators)")
		}
		// No security auditor yet (a database from before the first-start
		// auditor): a system administrator appoints the first, below.
	}
	if revoke && g.Role == authz.RoleSystemAdmin && len(s.holders(authz.RoleSystemAdmin, g.ID, true)) == 0 {
		// nobody could appoint one again: people, applications and roles
		// would be managed by nobody for good (trial7 H4)
		return denied("the last system administrator's grant cannot be revoked: appoint another system administrator first")
	}
	target := ""
	if g.Subject.Kind == authz.SubjectUser && !revoke {
		target = g.Subject.ID
	}
	orgs := s.subjectOrgs(g.Subject)
	if len(orgs) == 0 && g.Subject.Kind != authz.SubjectUser {
		orgs = nil
	}
	if g.Role == authz.RolePersonalData {
		// Given on top of an administrator's role (to a system
		// administrator, who exports): a global grant only a system
		// administrator makes, not a change of the person managed by
		// nobody else.
		target, orgs = "", nil
	}
	d, err := s.authorize(ctx, adminauth.GrantsWrite, target, orgs, false)
	if err != nil {
		return err
	}
	if d.Global {
		return nil
	}
	if revoke && s.idx.SubjectReaches(g.Subject, a.ID) {
		// what they could not grant (a grant reaching themselves) they do
		// not revoke either (trial7 M5: a branch administrator revoked the
		// system administrator's grant to their whole branch)
		return denied("a grant reaching yourself (yours, your group's or your org's) is revoked by an administrator above you")
	}
	if g.Subject.Kind == authz.SubjectGroup {
		// a group's grant reaches its members wherever they are: a scoped
		// administrator grants (and revokes: review sec11 S7) to a group
		// whose every member is in their scope (trial7 H3: a project group
		// homed in the branch, with members of other branches)
		for _, m := range s.idx.GroupMembers(g.Subject.ID) {
			o := s.idx.UserOrg(m)
			if o == "" {
				o = "unknown-org-of-" + m // in no scope
			}
			orgs = append(orgs, o)
		}
	}
	for _, auth := range s.idx.AdminGrants(a.ID, "authz.grants", "write", s.now()) {
		if auth.ScopeOrg == "" || !s.withinAll(orgs, auth.ScopeOrg) {
			continue
		}
		if s.mayHandOn(auth, g) {
			return nil
		}
	}
	verb := "grant"
	if revoke {
		verb = "revoke"
	}
	why := "you may " + verb + " only the roles you were given to hand on (grantable_roles of your unit_admin grant), " +
		"to subjects inside your scope (a group's members too)"
	if g.Direct() {
		why = "you may " + verb + " directly only a permission held by a role you were given to hand on (grantable_roles of " +
			"your unit_admin grant, with the roles it includes), to subjects inside your scope (a group's members too)"
	}
	if g.Role == authz.RoleUnitAdmin {
		why = "you may appoint unit administrators only when your grant is delegable, strictly below your scope org, with a part of your grantable roles, " +
			"and delegable only to fewer levels than your grant allows (one level: not delegable)"
	}
	return denied(why)
}

// auditors returns the people holding the security auditor role now, by
// a grant other than except. The system administrator manages people and
// grants; were they to appoint or remove security auditors they could make
// or take over an account that reads the audit log kept on their own
// actions. So an auditor appoints and removes auditors, and the last one
// stays.
func (s *Service) auditors(except string) map[string]bool {
	return s.holders(authz.RoleSecurityAuditor, except, false)
}

// holders returns the people holding role now by a grant of their own
// (not through a group or an org) other than except; lasting: only those
// who will still hold it (a grant without end, an active account: review
// sec11 S2, a disabled holder, or one whose grant ends tomorrow, let the
// last usable grant go).
func (s *Service) holders(role, except string, lasting bool) map[string]bool {
	now := s.now()
	held := map[string]bool{}
	for _, g := range s.idx.Grants(index.GrantFilter{Role: role}) {
		if g.ID == except || g.Subject.Kind != authz.SubjectUser || !g.ActiveAt(now) ||
			lasting && (!g.ValidUntil.IsZero() || !s.idx.PersonActive(g.Subject.ID)) {
			continue
		}
		held[g.Subject.ID] = true
	}
	return held
}

// orgsExist reports whether identity has every one of ids (true when it
// cannot be asked: the move then waits for the mirror).
func (s *Service) orgsExist(ctx context.Context, ids ...string) bool {
	if s.exists == nil {
		return true
	}
	for _, id := range ids {
		if ok, err := s.exists(ctx, authz.Subject{Kind: authz.SubjectOrg, ID: id}); err == nil && !ok {
			return false
		}
	}
	return true
}

func (s *Service) withinAll(orgs []string, scope string) bool {
	if len(orgs) == 0 {
		return false
	}
	for _, o := range orgs {
		if !s.idx.Within(o, scope) {
			return false
		}
	}
	return true
}

// mayHandOn reports whether holding authority grant auth lets one grant g.
func (s *Service) mayHandOn(auth, g authz.Grant) bool {
	var handable []string
	for _, r := range auth.Grantable {
		handable = append(handable, s.idx.Closure(r)...)
	}
	if g.Direct() {
		// a part of a role they may grant: no more than that role gives
		return s.idx.RolesAllow(handable, g.Permission)
	}
	if g.Role != authz.RoleUnitAdmin {
		return slices.Contains(handable, g.Role)
	}
	if auth.Role != authz.RoleUnitAdmin || !auth.Delegable || g.Depth() >= auth.Depth() ||
		g.ScopeOrg == auth.ScopeOrg || !s.idx.Within(g.ScopeOrg, auth.ScopeOrg) {
		return false
	}
	for _, r := range g.Grantable {
		if !slices.Contains(handable, r) {
			return false
		}
	}
	return true
}

// SoDMessage is the refusal of a separation-of-duty conflict on e.
func SoDMessage(x *index.Index, e authz.Exclusion) error { return sodConflict(x, e) }
