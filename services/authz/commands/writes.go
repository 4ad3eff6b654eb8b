package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
	"go.uber.org/zap"
)

// maxResourceDepth bounds the resource tree (module > menu > URL > entity
// and a few more levels).
const maxResourceDepth = 16

// PutResource creates or replaces a resource of an application.
func (s *Service) PutResource(ctx context.Context, r authz.Resource) (authz.Resource, int64, error) {
	r.Operations = compactStrings(r.Operations)
	r.Method = strings.ToUpper(r.Method)
	id := index.ResourceID(r.App, r.Code)
	ch, err := s.write(ctx, "resource.put", "resource:"+id, func() (authz.Change, error) {
		if err := s.modelWrite(ctx, r.App); err != nil {
			return authz.Change{}, err
		}
		if err := s.checkResource(r); err != nil {
			return authz.Change{}, err
		}
		return put(authz.ObjResource, id, r)
	})
	return r, ch.Rev, err
}

func (s *Service) checkResource(r authz.Resource) error {
	switch {
	case r.App == "" || r.Code == "":
		return badModel("a resource needs an application and a code")
	case strings.Contains(r.Code, "/"):
		return badModel("a resource code may not contain '/'")
	case !authz.ValidKind(r.Kind):
		return badModel("kind must be module, menu, url or entity")
	case len(r.Operations) == 0:
		return badModel("a resource needs at least one operation")
	case r.Kind == authz.KindURL && !strings.HasPrefix(r.PathPattern, "/"):
		return badModel("a URL resource needs a path_pattern starting with '/'")
	case r.Kind != authz.KindURL && (r.PathPattern != "" || r.Method != ""):
		return badModel("only URL resources have a method and a path_pattern")
	case r.Method != "" && r.Method != "*" && !validMethod(r.Method):
		return badModel("method must be an HTTP method (GET, POST, ...) or empty for any")
	}
	if r.Kind == authz.KindURL {
		for i, seg := range strings.Split(strings.Trim(r.PathPattern, "/"), "/") {
			if strings.Contains(seg, "**") && (seg != "**" || i != strings.Count(strings.Trim(r.PathPattern, "/"), "/")) {
				return badModel("'**' may only be the last segment of a path_pattern")
			}
		}
	}
	// The parent exists in the same application and the resource is not
	// (through its new parent) below itself.
	depth := 0
	for p := r.Parent; p != ""; depth++ {
		if p == r.Code {
			return badModel("a resource cannot be below itself")
		}
		if depth >= maxResourceDepth {
			return badModel(fmt.Sprintf("the resource tree may be at most %d levels deep", maxResourceDepth))
		}
		pr, ok := s.idx.Resource(r.App, p)
		if !ok {
			return badModel("the parent resource does not exist in this application")
		}
		p = pr.Parent
	}
	// Operations that roles use may not go away.
	if old, ok := s.idx.Resource(r.App, r.Code); ok {
		for _, op := range old.Operations {
			if slices.Contains(r.Operations, op) {
				continue
			}
			p := authz.Permission{App: r.App, Resource: r.Code, Operation: op}
			for _, role := range s.idx.Roles("", true) {
				if slices.Contains(role.Permissions, p) {
					return inUse(fmt.Sprintf("operation %q is held by role %q; take it out of the role first", op, role.Code))
				}
			}
			if n := s.idx.DirectGrants(p); n > 0 {
				return inUse(fmt.Sprintf("operation %q is granted directly by %d grant(s); revoke them first", op, n))
			}
		}
	}
	return nil
}

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return true
	}
	return false
}

// DeleteResource deletes a resource no resource is below and no role uses.
func (s *Service) DeleteResource(ctx context.Context, app, code string) (int64, error) {
	id := index.ResourceID(app, code)
	ch, err := s.write(ctx, "resource.delete", "resource:"+id, func() (authz.Change, error) {
		if err := s.modelWrite(ctx, app); err != nil {
			return authz.Change{}, err
		}
		if _, ok := s.idx.Resource(app, code); !ok {
			return authz.Change{}, store.NotFound("resource")
		}
		if s.idx.Children(app, code) {
			return authz.Change{}, inUse("resources are below this resource; delete or move them first")
		}
		if n := s.idx.ResourceUsers(app, code); n > 0 {
			return authz.Change{}, inUse(fmt.Sprintf("%d role(s) hold permissions on this resource", n))
		}
		if res, ok := s.idx.Resource(app, code); ok {
			n := 0
			for _, op := range res.Operations {
				n += s.idx.DirectGrants(authz.Permission{App: app, Resource: code, Operation: op})
			}
			if n > 0 {
				return authz.Change{}, inUse(fmt.Sprintf("%d grant(s) give a permission on this resource directly; revoke them first", n))
			}
		}
		return authz.Change{Obj: authz.ObjResource, Op: authz.OpDelete, ID: id}, nil
	})
	return ch.Rev, err
}

// CreateRole creates a role (its id is chosen here).
func (s *Service) CreateRole(ctx context.Context, r authz.Role) (authz.Role, int64, error) {
	r.ID = ids.New()
	return s.putRole(ctx, "role.create", r, true)
}

// UpdateRole replaces a role's code, name, permissions and inherited roles
// (its application does not change).
func (s *Service) UpdateRole(ctx context.Context, r authz.Role) (authz.Role, int64, error) {
	return s.putRole(ctx, "role.update", r, false)
}

func (s *Service) putRole(ctx context.Context, api string, r authz.Role, create bool) (authz.Role, int64, error) {
	r.Inherits = compactStrings(r.Inherits)
	r.Permissions = compactPerms(r.Permissions)
	ch, err := s.write(ctx, api, "role:"+r.ID, func() (authz.Change, error) {
		if err := s.modelWrite(ctx, ""); err != nil {
			return authz.Change{}, err
		}
		if err := checkRoleAdminPowers(s.idx, r); err != nil {
			return authz.Change{}, err
		}
		if !create {
			old, ok := s.idx.Role(r.ID)
			if !ok {
				return authz.Change{}, store.NotFound("role")
			}
			if old.App != r.App {
				return authz.Change{}, badModel("the application of a role cannot change")
			}
		}
		if err := s.checkRole(r); err != nil {
			return authz.Change{}, err
		}
		return put(authz.ObjRole, r.ID, r)
	})
	return r, ch.Rev, err
}

func (s *Service) checkRole(r authz.Role) error {
	if r.Code == "" {
		return badModel("a role needs a code")
	}
	if other, ok := s.idx.RoleByCode(r.App, r.Code); ok && other.ID != r.ID {
		return store.Conflict("a role with this code already exists in this application")
	}
	for _, p := range r.Permissions {
		if r.App != "" && p.App != r.App {
			return badModel("an application role holds only its application's permissions")
		}
		res, ok := s.idx.Resource(p.App, p.Resource)
		if !ok {
			return badModel(fmt.Sprintf("permission on unknown resource %q", p.Resource))
		}
		if !slices.Contains(res.Operations, p.Operation) {
			return badModel(fmt.Sprintf("resource %q has no operation %q", p.Resource, p.Operation))
		}
	}
	for _, j := range r.Inherits {
		if j == r.ID {
			return badModel("a role cannot inherit itself")
		}
		jr, ok := s.idx.Role(j)
		if !ok {
			return badModel("an inherited role does not exist")
		}
		if r.App != "" && jr.App != r.App {
			return badModel("an application role inherits only roles of its application")
		}
		if slices.Contains(s.idx.Closure(j), r.ID) {
			return badModel(fmt.Sprintf("inheriting role %q would make a cycle", jr.Code))
		}
	}
	closure := s.idx.ClosureOf(r)
	for _, e := range s.idx.Exclusions() {
		if slices.Contains(closure, e.RoleA) && slices.Contains(closure, e.RoleB) {
			return sodConflict(s.idx, e)
		}
	}
	return nil
}

// ResendRoles writes every role of application app again, unchanged: one
// change of each into CHANGES, audited role.resend. sync's projection,
// which learns roles only from their changes, then knows roles made
// before it followed them (turning deliver_roles on after an upgrade;
// ADR 0024, review sec27b I4); other centres apply them again (no
// difference). A role deleted meanwhile is skipped. It returns how many
// it sent and the last revision.
func (s *Service) ResendRoles(ctx context.Context, app string) (int, int64, error) {
	if app == "" {
		return 0, 0, badModel("name the application whose roles to send again")
	}
	if err := s.modelWrite(ctx, app); err != nil {
		s.appendRefusal(ctx, "role.resend", "app:"+app, err, s.now(), nil)
		return 0, 0, err
	}
	n, rev := 0, s.idx.Revision()
	for _, r := range s.idx.Roles(app, false) {
		ch, err := s.write(ctx, "role.resend", "role:"+r.ID, func() (authz.Change, error) {
			if err := s.modelWrite(ctx, app); err != nil {
				return authz.Change{}, err
			}
			cur, ok := s.idx.Role(r.ID)
			if !ok {
				return authz.Change{}, store.NotFound("role")
			}
			return put(authz.ObjRole, cur.ID, cur)
		})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, rev, err
		}
		n, rev = n+1, ch.Rev
	}
	return n, rev, nil
}

// DeleteRole deletes a role no grant, role or exclusion uses.
func (s *Service) DeleteRole(ctx context.Context, id string) (int64, error) {
	ch, err := s.write(ctx, "role.delete", "role:"+id, func() (authz.Change, error) {
		if err := s.modelWrite(ctx, ""); err != nil {
			return authz.Change{}, err
		}
		if authz.IsBuiltinRole(id) {
			return authz.Change{}, denied("the built-in administrator roles cannot be deleted")
		}
		if _, ok := s.idx.Role(id); !ok {
			return authz.Change{}, store.NotFound("role")
		}
		g, seniors, ex := s.idx.RoleUsers(id)
		if g+seniors+ex > 0 {
			return authz.Change{}, inUse(fmt.Sprintf("the role is used by %d grant(s), %d role(s) and %d exclusion(s)", g, seniors, ex))
		}
		return authz.Change{Obj: authz.ObjRole, Op: authz.OpDelete, ID: id}, nil
	})
	return ch.Rev, err
}

// CreateGrant grants a role, or directly one permission, to a subject. A
// grant of a role is refused when the subject would hold both roles of an
// exclusion (counting what it holds directly, through its groups and orgs,
// the roles the granted role inherits, and for a group or an org each
// person it reaches); a direct grant when it gives a holder of one role of
// an exclusion a permission only the other role gives
// (docs/adr/0018-direct-permission-grants.md).
func (s *Service) CreateGrant(ctx context.Context, g authz.Grant) (authz.Grant, int64, error) {
	g, rev, _, err := s.CreateGrantActivation(ctx, g)
	return g, rev, err
}

// CreateGrantActivation is CreateGrant that also returns the activation
// password of a person it makes an administrator (Deps.Appoint): asked
// once the grant is found allowed, before it is written; a grant whose
// person identity cannot ready is not made (a password their creator
// chose would otherwise open the administration to the creator).
func (s *Service) CreateGrantActivation(ctx context.Context, g authz.Grant) (authz.Grant, int64, string, error) {
	g.ID = ids.New()
	g.CreatedAt = s.now().UTC()
	g.CreatedBy = caller.From(ctx).Actor()
	if g.DelegationDepth == 1 && g.Delegable {
		g.DelegationDepth = 0 // one level is what delegable alone says
	}
	activation, appointed, checked := "", false, false
	ch, err := s.write(ctx, "grant.create", g.Subject.String(), func() (authz.Change, error) {
		if err := s.checkGrantShape(g); err != nil {
			return authz.Change{}, err
		}
		if err := s.checkGrantAuthority(ctx, g, false); err != nil {
			return authz.Change{}, err
		}
		if err := s.checkGrant(g); err != nil {
			return authz.Change{}, err
		}
		if err := s.checkAppointedElsewhere(g); err != nil {
			return authz.Change{}, err
		}
		if !checked {
			// after the authority check: only who may make the grant learns
			// whether its subject exists (review sec11 S10)
			if err := s.subjectExists(ctx, g.Subject); err != nil {
				return authz.Change{}, err
			}
			if g.ScopeOrg != "" {
				// a unit administrator of an org nobody has administers
				// nothing (trial7 L4)
				if err := s.subjectExists(ctx, authz.Subject{Kind: authz.SubjectOrg, ID: g.ScopeOrg}); err != nil {
					return authz.Change{}, err
				}
			}
			checked = true
		}
		if d, ok := s.sameGrant(g); ok {
			// one grant of it: revoking "the" grant revokes it (trial7 M3)
			what := "role"
			if g.Direct() {
				what = "permission"
			}
			return authz.Change{}, store.Conflict("the same grant exists already (" + d.ID + "): one is enough, and revoking it then revokes the " + what)
		}
		if s.appoint != nil && !appointed && g.Subject.Kind == authz.SubjectUser && s.administers(g.Role) {
			// once, however often a stale write is tried again
			pw, err := s.appoint(ctx, g.Subject.ID, g.Role)
			if err != nil {
				return authz.Change{}, err
			}
			activation, appointed = pw, true
		}
		return put(authz.ObjGrant, g.ID, g)
	})
	if err != nil && activation != "" {
		// the password was replaced, the grant not made: a new grant
		// replaces it again and answers its own activation password
		return g, 0, "", fmt.Errorf("%w (the person's password was replaced for the appointment: grant again for a new activation password)", err)
	}
	return g, ch.Rev, activation, err
}

// subjectExists refuses a grant to a subject identity does not know
// (trial7 M2: "--user alice", a login name for an id, made a grant to
// nobody, accepted and audited as a success). Subjects the mirror holds
// are known; identity is asked about the others; when it cannot answer
// for now (down, too slow) the grant is made (it is identity's word that
// is missing, not the subject) and the doubt logged. Any other answer (a
// refusal: authz not recognised as a component) refuses the grant: the
// check would otherwise never run, unnoticed (review sec11 S10).
func (s *Service) subjectExists(ctx context.Context, sub authz.Subject) error {
	if s.exists == nil || s.idx.Mirrored(sub) {
		return nil
	}
	ok, err := s.exists(ctx, sub)
	switch {
	case err != nil && transient(err):
		s.log.Warn("grant subject not checked with identity", zap.String("subject", sub.String()), zap.Error(err))
		return nil
	case err != nil:
		code := "an error"
		if e, ok := apierr.FromStatus(err); ok {
			code = e.Code.String()
		}
		s.log.Error("identity did not answer whether a grant's subject exists", zap.String("subject", sub.String()), zap.Error(err))
		return apierr.ErrUnavailable.WithMessage("identity could not confirm that the subject exists (it answered " + code +
			"; a refusal is a deployment setting to fix, see authz's log): the grant is not made")
	case !ok:
		return store.ErrNotFound.WithMessage(fmt.Sprintf("identity has no %s %q: grants name people, groups and orgs by id "+
			"(uias ctl user list --query NAME finds a person's)", sub.Kind, sub.ID))
	}
	return nil
}

// sameGrant returns a grant of the index equal to g in everything but its
// id and creation (role or permission, subject, period, scope and what it
// hands on).
func (s *Service) sameGrant(g authz.Grant) (authz.Grant, bool) {
	f := index.GrantFilter{Subject: &g.Subject, Role: g.Role, Permission: g.Permission}
	for _, h := range s.idx.Grants(f) {
		if h.Role != g.Role || h.Permission != g.Permission {
			continue
		}
		if h.ScopeOrg == g.ScopeOrg && h.ValidFrom.Equal(g.ValidFrom) && h.ValidUntil.Equal(g.ValidUntil) && h.Delegable == g.Delegable && h.Depth() == g.Depth() &&
			slices.Equal(slices.Sorted(slices.Values(h.Grantable)), slices.Sorted(slices.Values(g.Grantable))) {
			return h, true
		}
	}
	return authz.Grant{}, false
}

// administers reports whether role makes its holder an administrator: it
// is, or inherits, one of the three built-in administrator roles.
func (s *Service) administers(role string) bool {
	for _, r := range s.idx.Closure(role) {
		if r == authz.RoleSystemAdmin || r == authz.RoleSecurityAuditor || r == authz.RoleUnitAdmin {
			return true
		}
	}
	return false
}

func (s *Service) checkGrant(g authz.Grant) error {
	switch g.Subject.Kind {
	case authz.SubjectUser, authz.SubjectGroup, authz.SubjectOrg:
	default:
		return badModel("subject kind must be user, group or org")
	}
	switch {
	case g.Subject.ID == "":
		return badModel("a grant needs a subject id")
	case !g.ValidFrom.IsZero() && !g.ValidUntil.IsZero() && !g.ValidUntil.After(g.ValidFrom):
		return badModel("valid_until must be after valid_from")
	case !g.ValidUntil.IsZero() && !g.ValidUntil.After(s.now()):
		return badModel("valid_until is in the past")
	}
	switch {
	case g.Direct() && g.Role != "":
		return badModel("a grant gives a role or one permission, not both (make two grants)")
	case g.Direct():
		if err := s.checkDirect(g.Permission); err != nil {
			return err
		}
	case g.Role == "":
		return badModel("a grant needs a role or a permission")
	default:
		if _, ok := s.idx.Role(g.Role); !ok {
			return badModel("the role does not exist")
		}
	}
	if e, ok := s.grantConflict(g); ok {
		return sodConflict(s.idx, e)
	}
	return nil
}

// checkDirect checks the permission of a direct grant: an operation of a
// resource of the model, not of the administration application (whose
// permissions come with the built-in administrator roles only, as for
// custom roles: checkRoleAdminPowers).
func (s *Service) checkDirect(p authz.Permission) error {
	if p.App == authz.AdminApp {
		return denied("permissions of the " + authz.AdminApp + " application come only with the built-in administrator roles; grant one of those")
	}
	res, ok := s.idx.Resource(p.App, p.Resource)
	if !ok {
		return badModel(fmt.Sprintf("permission %s: application %q has no resource %q", strconv.Quote(p.String()), p.App, p.Resource))
	}
	if !slices.Contains(res.Operations, p.Operation) {
		return badModel(fmt.Sprintf("permission %s: resource %q has no operation %q (it has: %s)", strconv.Quote(p.String()),
			p.Resource, p.Operation, strings.Join(res.Operations, ", ")))
	}
	return nil
}

// grantConflict returns a separation-of-duty pair grant g would give its
// subject, or anyone it reaches (a group's members, the people below an
// org), both roles of, with what they hold already; for a direct grant,
// a pair one of whose roles they hold while the permission is only the
// other's (review sec26 M2: a maker granted "approve" directly holds both
// sides; a permission both roles give conflicts with nothing).
func (s *Service) grantConflict(g authz.Grant) (authz.Exclusion, bool) {
	var granted []string
	exclusions := s.idx.Exclusions()
	// For a direct grant: whether the permission is only role B's (onlyB)
	// or only role A's (onlyA), per exclusion, whoever holds what.
	var onlyA, onlyB []bool
	if !g.Direct() {
		granted = s.idx.Closure(g.Role)
	} else {
		onlyA, onlyB = make([]bool, len(exclusions)), make([]bool, len(exclusions))
		for i, e := range exclusions {
			inA := s.idx.RolesAllow(s.idx.Closure(e.RoleA), g.Permission)
			inB := s.idx.RolesAllow(s.idx.Closure(e.RoleB), g.Permission)
			onlyA[i], onlyB[i] = inA && !inB, inB && !inA
		}
	}
	holders := []authz.Subject{g.Subject}
	var people []string
	switch g.Subject.Kind {
	case authz.SubjectGroup:
		people = s.idx.GroupMembers(g.Subject.ID)
	case authz.SubjectOrg:
		people = s.idx.PeopleUnder(g.Subject.ID)
	}
	for _, m := range people {
		holders = append(holders, authz.Subject{Kind: authz.SubjectUser, ID: m})
	}
	for _, h := range holders {
		held := s.idx.HeldRoles(h, s.now())
		for _, id := range granted {
			held[id] = true
		}
		for i, e := range exclusions {
			if held[e.RoleA] && held[e.RoleB] {
				return e, true
			}
			if g.Direct() && (held[e.RoleA] && onlyB[i] || held[e.RoleB] && onlyA[i]) {
				return e, true
			}
		}
	}
	return authz.Exclusion{}, false
}

func sodConflict(x *index.Index, e authz.Exclusion) error {
	a, _ := x.Role(e.RoleA)
	b, _ := x.Role(e.RoleB)
	msg := fmt.Sprintf("roles %q and %q are mutually exclusive", a.Code, b.Code)
	if e.Name != "" {
		msg += " (" + e.Name + ")"
	}
	return sodErr(msg + ": nobody may hold both")
}

// RevokeGrant removes a grant.
func (s *Service) RevokeGrant(ctx context.Context, id string) (int64, error) {
	ch, err := s.write(ctx, "grant.revoke", "grant:"+id, func() (authz.Change, error) {
		g, ok := s.idx.Grant(id)
		if !ok {
			return authz.Change{}, store.NotFound("grant")
		}
		if err := s.checkGrantAuthority(ctx, g, true); err != nil {
			return authz.Change{}, err
		}
		return authz.Change{Obj: authz.ObjGrant, Op: authz.OpDelete, ID: id}, nil
	})
	return ch.Rev, err
}

// CreateExclusion declares two roles mutually exclusive. It is refused when
// a role already includes both.
func (s *Service) CreateExclusion(ctx context.Context, e authz.Exclusion) (authz.Exclusion, int64, error) {
	e.ID = ids.New()
	ch, err := s.write(ctx, "exclusion.create", "exclusion:"+e.ID, func() (authz.Change, error) {
		if err := s.modelWrite(ctx, ""); err != nil {
			return authz.Change{}, err
		}
		if e.RoleA == e.RoleB {
			return authz.Change{}, badModel("an exclusion names two different roles")
		}
		for _, id := range []string{e.RoleA, e.RoleB} {
			if _, ok := s.idx.Role(id); !ok {
				return authz.Change{}, badModel("a role of the exclusion does not exist")
			}
		}
		for _, o := range s.idx.Exclusions() {
			if (o.RoleA == e.RoleA && o.RoleB == e.RoleB) || (o.RoleA == e.RoleB && o.RoleB == e.RoleA) {
				return authz.Change{}, store.Conflict("these roles are already exclusive")
			}
		}
		for _, r := range s.idx.Roles("", true) {
			c := s.idx.Closure(r.ID)
			if slices.Contains(c, e.RoleA) && slices.Contains(c, e.RoleB) {
				return authz.Change{}, sodErr(fmt.Sprintf("role %q already includes both roles", r.Code))
			}
		}
		if who, ok := s.idx.HolderOfBoth(e.RoleA, e.RoleB, s.now()); ok {
			return authz.Change{}, sodErr(fmt.Sprintf("person %s holds both roles already (by their grants, groups or orgs): "+
				"revoke one first", who))
		}
		return put(authz.ObjExclusion, e.ID, e)
	})
	return e, ch.Rev, err
}

// DeleteExclusion removes an exclusion.
func (s *Service) DeleteExclusion(ctx context.Context, id string) (int64, error) {
	ch, err := s.write(ctx, "exclusion.delete", "exclusion:"+id, func() (authz.Change, error) {
		if err := s.modelWrite(ctx, ""); err != nil {
			return authz.Change{}, err
		}
		if authz.IsBuiltinExclusion(id) {
			return authz.Change{}, denied("the separation of the three administrators is built in")
		}
		found := false
		for _, e := range s.idx.Exclusions() {
			found = found || e.ID == id
		}
		if !found {
			return authz.Change{}, store.NotFound("exclusion")
		}
		return authz.Change{Obj: authz.ObjExclusion, Op: authz.OpDelete, ID: id}, nil
	})
	return ch.Rev, err
}

func compactStrings(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

func compactPerms(in []authz.Permission) []authz.Permission {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b authz.Permission) int {
		return strings.Compare(a.App+"\x00"+a.Resource+"\x00"+a.Operation, b.App+"\x00"+b.Resource+"\x00"+b.Operation)
	})
	return slices.Compact(out)
}

// modelWrite checks the acting administrator may change the model, and
// that the change is not to the built-in administration application.
func (s *Service) modelWrite(ctx context.Context, app string) error {
	if app == authz.AdminApp {
		return denied("the resources of the " + authz.AdminApp + " application are built in")
	}
	_, err := s.authorize(ctx, adminauth.AuthzModel, "", nil, false)
	return err
}

// transient reports whether err, from a call to another component, says
// it could not answer for now (unavailable, out of time, canceled) rather
// than refusing the question.
func transient(err error) bool {
	e, ok := apierr.FromStatus(err)
	if !ok {
		e, ok = apierr.As(err)
	}
	if !ok {
		return true // not a status: the call did not get through
	}
	return e.Code == apierr.Unavailable || e.Code == apierr.DeadlineExceeded || e.Code == apierr.Canceled
}
