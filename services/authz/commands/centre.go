package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/authz"
)

// Home centres (pkg/centre, authz/replica.go). Resources, roles and
// exclusions (the model) are global data: only the level-1 centre writes
// them. A grant is written at the home centre of its subject; a grant held
// as a replica of another centre is changed only there. Other centres
// refuse the write with HOME_CENTRE_ELSEWHERE naming the home.
//
// Grants of the built-in administrator roles are each centre's own: a
// centre appoints its administrators itself (as identity never replicates
// the legacy administrator flag), so they are not refused for their
// subject's home, and other centres' authz leave them out, but for one:
// a unit administrator level 1 appoints over a unit of a level-2 centre
// is applied there too, held from level 1 (appointedFromAbove; 004
// §2.1.6.2.1).

// ownChange refuses ch unless this centre is the home of its object.
func (s *Service) ownChange(ctx context.Context, ch authz.Change) error {
	if s.homes == nil {
		return nil
	}
	if ch.Obj != authz.ObjGrant {
		return s.homes.CheckGlobal("the authorization model (resources, roles and exclusions)")
	}
	if s.adminGrant(ch) {
		// a centre's own, but for a unit administrator level 1
		// appointed for a unit of this centre (appointedFromAbove),
		// changed at level 1 only
		if rs, ok := s.st.(authz.ReplicaStore); ok {
			origin, held, err := rs.ReplicaOrigin(ctx, ch.Obj, ch.ID)
			if err != nil {
				return err
			}
			if held {
				return s.homes.CheckHome(origin, s.grantNamed(ch))
			}
		}
		return nil
	}
	home, err := s.grantHome(ctx, ch)
	if err != nil {
		return err
	}
	return s.homes.CheckHome(home, s.grantNamed(ch))
}

// grantNamed names the grant ch writes by its subject, as a refusal says
// it (trial9 D7: a new grant's id, which nobody knows, was named).
func (s *Service) grantNamed(ch authz.Change) string {
	if old, ok := s.idx.Grant(ch.ID); ok {
		return "grant " + ch.ID + " (to " + old.Subject.String() + ")"
	}
	var g authz.Grant
	if ch.Op == authz.OpPut && json.Unmarshal(ch.Data, &g) == nil && g.Subject.ID != "" {
		return "a grant to " + g.Subject.String() + ", whose subject"
	}
	return "grant " + ch.ID
}

// grantHome is the home centre of the grant ch changes ("": this centre or
// unknown): the centre it is held from as a replica, else the home of its
// subject when this centre knows where the subject is.
func (s *Service) grantHome(ctx context.Context, ch authz.Change) (string, error) {
	if rs, ok := s.st.(authz.ReplicaStore); ok {
		origin, held, err := rs.ReplicaOrigin(ctx, ch.Obj, ch.ID)
		if err != nil {
			return "", err
		}
		if held {
			return origin, nil
		}
	}
	var g authz.Grant
	if ch.Op == authz.OpPut {
		// A grant that does not decode names no subject: its home is
		// unknown here, which is the answer (the write itself fails later).
		if decoded := json.Unmarshal(ch.Data, &g) == nil; !decoded {
			return "", nil
		}
	} else if g, _ = s.idx.Grant(ch.ID); g.ID == "" {
		return "", nil
	}
	home, _ := s.subjectHome(g.Subject)
	return home, nil
}

// subjectHome is the home centre of a grant's subject, as far as this
// centre's mirror of identity's org tree knows it (known false: the
// subject's org is not known here).
func (s *Service) subjectHome(sub authz.Subject) (string, bool) {
	var org string
	switch sub.Kind {
	case authz.SubjectUser:
		org = s.idx.UserOrg(sub.ID)
	case authz.SubjectGroup:
		org = s.idx.GroupOrg(sub.ID)
	case authz.SubjectOrg:
		org = sub.ID
	}
	if org == "" {
		return "", false
	}
	anc := s.idx.OrgAncestors(org) // the org, its parent, ... up to the root
	if len(anc) == 1 {
		// Only a root or an org unknown here: a listed subtree root
		// decides, anything else is unknown.
		if c, ok := s.homes.Subtrees[org]; ok {
			return c, true
		}
		return "", false
	}
	slices.Reverse(anc)
	return s.homes.HomeOfPath("/" + strings.Join(anc, "/") + "/"), true
}

// adminGrant reports whether ch changes a grant of a built-in
// administrator role (a put's data, or the grant a delete removes).
func (s *Service) adminGrant(ch authz.Change) bool {
	if ch.Op == authz.OpPut {
		return grantOfAdminRole(ch.Data)
	}
	g, ok := s.idx.Grant(ch.ID)
	return ok && authz.IsBuiltinRole(g.Role)
}

// grantOfAdminRole reports whether data is a grant of a built-in
// administrator role.
func grantOfAdminRole(data []byte) bool {
	var g struct {
		Role string `json:"role"`
	}
	return json.Unmarshal(data, &g) == nil && authz.IsBuiltinRole(g.Role)
}

// checkAppointedElsewhere: a person homed at another centre is appointed
// an administrator here only as a unit administrator of an org of their
// own centre (004 §2.1.6.2.1: level 1 appoints the units'
// administrators), never over this centre's orgs, whose administrators'
// passwords would then be another centre's to set (review sec15).
func (s *Service) checkAppointedElsewhere(g authz.Grant) error {
	if s.homes == nil || g.Subject.Kind != authz.SubjectUser || !authz.IsBuiltinRole(g.Role) {
		return nil
	}
	home, known := s.subjectHome(g.Subject)
	if !known || home == s.homes.Self {
		return nil
	}
	if g.Role == authz.RoleUnitAdmin && g.ScopeOrg != "" {
		if scope, ok := s.subjectHome(authz.Subject{Kind: authz.SubjectOrg, ID: g.ScopeOrg}); ok && scope == home {
			return nil
		}
	}
	return apierr.New(apierr.FailedPrecondition, centre.ReasonElsewhere, fmt.Sprintf("%s is homed at centre %q: "+
		"appointed here only as a unit administrator of an org of that centre; any other administrator role is given there",
		g.Subject, home)).WithMeta(centre.MetaHome, home)
}
