package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// ForgetApp removes the model of application app, deleted in identity
// (CHANGES app.deleted): its resources and roles, the grants of its roles
// and the direct grants of its permissions, and the exclusions naming them, and, from the roles of other
// applications and the global roles, its permissions and its roles they
// inherit. It commits in one transaction (one revision per change, one
// CHANGES event each and one audit record app.forget) and returns the
// revision reached and how many changes it made (none when nothing of the
// application is left: a redelivered event). The model is global data:
// at several centres only the level-1 centre writes it (the others
// receive its changes); elsewhere ForgetApp does nothing.
func (s *Service) ForgetApp(ctx context.Context, app string) (int64, int, error) {
	start := s.now()
	if app == "" || app == authz.AdminApp {
		return 0, 0, nil
	}
	if s.homes != nil && s.homes.Top() != s.homes.Self {
		return 0, 0, nil
	}
	for attempt := 0; attempt < writeAttempts; attempt++ {
		if err := s.CatchUp(ctx); err != nil {
			return 0, 0, err
		}
		s.catchMu.Lock()
		expect := s.idx.Revision()
		chs, err := appModelChanges(s.idx, app)
		if err != nil || len(chs) == 0 {
			s.catchMu.Unlock()
			return expect, 0, err
		}
		evs := make([]events.Event, 0, len(chs)+1)
		for i := range chs {
			chs[i].Rev = expect + 1 + int64(i)
			evs = append(evs, s.changeEvent(ctx, chs[i]))
		}
		evs = append(evs, s.auditor.Event(ctx, audit.Action{API: "app.forget", Subject: "app:" + app, Result: audit.ResultSuccess,
			Reason: "OK", Start: start, Detail: map[string]string{"revision": fmt.Sprint(expect + int64(len(chs))),
				"changes": fmt.Sprint(len(chs))}}))
		got, err := s.st.WriteBatch(ctx, expect, chs, evs)
		if errors.Is(err, authz.ErrStale) {
			s.catchMu.Unlock()
			continue
		}
		if err != nil {
			s.catchMu.Unlock()
			return 0, 0, err
		}
		aerr := s.idx.Apply(got...)
		s.catchMu.Unlock()
		if aerr != nil {
			s.log.Warn("authz index: own changes not applied", zap.Error(aerr))
		}
		s.signal()
		s.kick()
		return got[len(got)-1].Rev, len(got), nil
	}
	return 0, 0, authz.ErrStale
}

// appModelChanges lists the changes that remove app's model, in an order
// where nothing refers to what is gone: grants of its roles and direct
// grants of its permissions, exclusions
// naming them, the other roles without its permissions and roles, its
// roles, then its resources, those below first.
func appModelChanges(x *index.Index, app string) ([]authz.Change, error) {
	mine := map[string]bool{}
	var others []authz.Role
	for _, r := range x.Roles("", true) {
		if r.App == app {
			mine[r.ID] = true
		} else if !authz.IsBuiltinRole(r.ID) {
			others = append(others, r)
		}
	}
	del := func(obj, id string) authz.Change { return authz.Change{Obj: obj, Op: authz.OpDelete, ID: id} }
	var out []authz.Change
	roles := make([]string, 0, len(mine))
	for id := range mine {
		roles = append(roles, id)
	}
	slices.Sort(roles)
	for _, id := range roles {
		for _, g := range x.Grants(index.GrantFilter{Role: id}) {
			out = append(out, del(authz.ObjGrant, g.ID))
		}
	}
	// direct grants of its permissions (docs/adr/0018)
	for _, r := range x.Resources(app) {
		for _, op := range r.Operations {
			for _, g := range x.Grants(index.GrantFilter{Permission: authz.Permission{App: app, Resource: r.Code, Operation: op}}) {
				out = append(out, del(authz.ObjGrant, g.ID))
			}
		}
	}
	for _, e := range x.Exclusions() {
		if mine[e.RoleA] || mine[e.RoleB] {
			out = append(out, del(authz.ObjExclusion, e.ID))
		}
	}
	for _, r := range others {
		perms := slices.DeleteFunc(slices.Clone(r.Permissions), func(p authz.Permission) bool { return p.App == app })
		inh := slices.DeleteFunc(slices.Clone(r.Inherits), func(id string) bool { return mine[id] })
		if len(perms) == len(r.Permissions) && len(inh) == len(r.Inherits) {
			continue
		}
		r.Permissions, r.Inherits = perms, inh
		ch, err := put(authz.ObjRole, r.ID, r)
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	for _, id := range roles {
		out = append(out, del(authz.ObjRole, id))
	}
	res := x.Resources(app)
	depth := func(r authz.Resource) int {
		n := 0
		for p := r.Parent; p != "" && n <= len(res); n++ {
			pr, ok := x.Resource(app, p)
			if !ok {
				break
			}
			p = pr.Parent
		}
		return n
	}
	slices.SortStableFunc(res, func(a, b authz.Resource) int {
		if c := depth(b) - depth(a); c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
	for _, r := range res {
		out = append(out, del(authz.ObjResource, index.ResourceID(app, r.Code)))
	}
	return out, nil
}
