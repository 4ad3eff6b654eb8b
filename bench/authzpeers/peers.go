// Package authzpeers loads the authorization data set of issue 10 item 7
// (services/authz/dataset) into two peer engines, casbin (RBAC with
// domains) and OpenFGA (embedded, memory datastore), so that the same
// checks can be asked of them and of our in-process index. It is a module
// of its own, outside go.work: the uias binary does not link the peers.
//
// Time-boxed grants: every engine is loaded with the grants in force at
// one instant (the check time, now); our index is asked at that same
// instant, so it applies the same validity. The generated data set has no
// time-boxed grants, so all grants are loaded. ScopeOrg, Delegable and
// Grantable concern administration (who may grant), not Check, and are
// not loaded.
package authzpeers

import (
	"context"
	"fmt"
	"time"

	casbin "github.com/casbin/casbin/v2"
	casbinmodel "github.com/casbin/casbin/v2/model"
	defaultrolemanager "github.com/casbin/casbin/v2/rbac/default-role-manager"
	openfgav1 "github.com/openfga/api/proto/openfga/v1"
	"github.com/openfga/language/pkg/go/transformer"
	"github.com/openfga/openfga/pkg/server"
	"github.com/openfga/openfga/pkg/storage"
	"github.com/openfga/openfga/pkg/storage/memory"

	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/dataset"
)

// maxDepth bounds role-link chains in casbin (its default, 10, is shorter
// than person -> org -> ... -> root org -> role -> inherited roles).
const maxDepth = 64

// CasbinModel is RBAC with domains, the domain being the application.
// g links a person to a role, group or org, a group or org to a role, an
// org to its parent org, and a role to a junior role it inherits, in a
// domain; g2 links a resource to its parent resource (a permission on a
// module covers the resources below it). p holds a role's permissions.
const CasbinModel = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.dom == p.dom && r.act == p.act && g(r.sub, p.sub, r.dom) && g2(r.obj, p.obj)
`

func subjectName(s authz.Subject) string {
	switch s.Kind {
	case authz.SubjectGroup:
		return "group:" + s.ID
	case authz.SubjectOrg:
		return "org:" + s.ID
	default:
		return "user:" + s.ID
	}
}

func resName(app, code string) string { return app + "/" + code }

// Casbin is d loaded into a casbin enforcer.
type Casbin struct{ e *casbin.Enforcer }

// LoadCasbin loads d into casbin: a p rule per role permission and g links
// for grants, role inheritance, group members and the org tree. Casbin's
// domain role manager keys links by domain, so memberships (which are not
// per application) are linked in every application's domain.
func LoadCasbin(d *dataset.Data, now time.Time) (*Casbin, error) {
	m, err := casbinmodel.NewModelFromString(CasbinModel)
	if err != nil {
		return nil, err
	}
	e, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, err
	}
	e.SetRoleManager(defaultrolemanager.NewDomainManager(maxDepth))
	e.SetNamedRoleManager("g2", defaultrolemanager.NewRoleManager(maxDepth))
	var ps, gs, g2s [][]string
	apps := map[string]bool{}
	for _, r := range d.Resources {
		apps[r.App] = true
		if r.Parent != "" {
			g2s = append(g2s, []string{resName(r.App, r.Code), resName(r.App, r.Parent)})
		}
	}
	for _, r := range d.Roles {
		for _, p := range r.Permissions {
			ps = append(ps, []string{"role:" + r.ID, p.App, resName(p.App, p.Resource), p.Operation})
		}
		for _, j := range r.Inherits {
			gs = append(gs, []string{"role:" + r.ID, "role:" + j, r.App})
		}
	}
	roleApp := make(map[string]string, len(d.Roles))
	for _, r := range d.Roles {
		roleApp[r.ID] = r.App
	}
	for _, g := range d.Grants {
		if !g.ActiveAt(now) {
			continue
		}
		gs = append(gs, []string{subjectName(g.Subject), "role:" + g.Role, roleApp[g.Role]})
	}
	for app := range apps {
		for u, o := range d.UserOrg {
			gs = append(gs, []string{"user:" + u, "org:" + o, app})
		}
		for o, p := range d.OrgParent {
			if p != "" {
				gs = append(gs, []string{"org:" + o, "org:" + p, app})
			}
		}
		for g, us := range d.GroupUsers {
			for _, u := range us {
				gs = append(gs, []string{"user:" + u, "group:" + g, app})
			}
		}
	}
	if _, err := e.AddPolicies(ps); err != nil {
		return nil, err
	}
	if _, err := e.AddNamedGroupingPolicies("g", gs); err != nil {
		return nil, err
	}
	if _, err := e.AddNamedGroupingPolicies("g2", g2s); err != nil {
		return nil, err
	}
	return &Casbin{e: e}, nil
}

// Check asks casbin c.
func (cb *Casbin) Check(c dataset.Check) (bool, error) {
	return cb.e.Enforce("user:"+c.Person, c.App, resName(c.App, c.Resource), c.Operation)
}

// OpenFGAModel is the equivalent OpenFGA model. An org's members are its
// people and the members of its child orgs (org:P#member@org:C#member), so
// a grant to an org reaches its subtree; a role's assignees are the
// people, group members, org members and the assignees of the roles that
// inherit it (role:junior#assignee@role:senior#assignee); a permission
// object (app/resource/operation) is granted to the assignees of the roles
// holding it and to the grantees of the same operation on the parent
// resource.
const OpenFGAModel = `model
  schema 1.1
type user
type group
  relations
    define member: [user]
type org
  relations
    define member: [user, org#member]
type role
  relations
    define assignee: [user, group#member, org#member, role#assignee]
type permission
  relations
    define granted: [role#assignee, permission#granted]
`

func permObject(app, res, op string) string { return "permission:" + app + "/" + res + "/" + op }

// OpenFGATuples returns d's tuples for OpenFGAModel (grants in force at now).
func OpenFGATuples(d *dataset.Data, now time.Time) []*openfgav1.TupleKey {
	var ts []*openfgav1.TupleKey
	add := func(obj, rel, user string) {
		ts = append(ts, &openfgav1.TupleKey{Object: obj, Relation: rel, User: user})
	}
	for u, o := range d.UserOrg {
		add("org:"+o, "member", "user:"+u)
	}
	for o, p := range d.OrgParent {
		if p != "" {
			add("org:"+p, "member", "org:"+o+"#member")
		}
	}
	for g, us := range d.GroupUsers {
		for _, u := range us {
			add("group:"+g, "member", "user:"+u)
		}
	}
	for _, r := range d.Resources {
		if r.Parent == "" {
			continue
		}
		for _, op := range r.Operations {
			add(permObject(r.App, r.Code, op), "granted", permObject(r.App, r.Parent, op)+"#granted")
		}
	}
	for _, r := range d.Roles {
		for _, p := range r.Permissions {
			add(permObject(p.App, p.Resource, p.Operation), "granted", "role:"+r.ID+"#assignee")
		}
		for _, j := range r.Inherits {
			add("role:"+j, "assignee", "role:"+r.ID+"#assignee")
		}
	}
	for _, g := range d.Grants {
		if !g.ActiveAt(now) {
			continue
		}
		u := "user:" + g.Subject.ID
		switch g.Subject.Kind {
		case authz.SubjectGroup:
			u = "group:" + g.Subject.ID + "#member"
		case authz.SubjectOrg:
			u = "org:" + g.Subject.ID + "#member"
		}
		add("role:"+g.Role, "assignee", u)
	}
	// The generator may grant a role twice to one subject: OpenFGA refuses
	// a duplicate write, so keep the first.
	seen := make(map[string]bool, len(ts))
	out := ts[:0]
	for _, t := range ts {
		k := t.Object + "#" + t.Relation + "@" + t.User
		if !seen[k] {
			seen[k] = true
			out = append(out, t)
		}
	}
	return out
}

// OpenFGA is an embedded OpenFGA server over its memory datastore.
type OpenFGA struct {
	srv            *server.Server
	ds             storage.OpenFGADatastore
	store, modelID string
	Tuples         int
}

// Batch is the number of tuples written per datastore write.
const Batch = 1000

// LoadOpenFGA starts an embedded OpenFGA server with a memory datastore,
// writes OpenFGAModel through the server API and d's tuples through the
// datastore in batches of Batch.
func LoadOpenFGA(ctx context.Context, d *dataset.Data, now time.Time) (*OpenFGA, error) {
	ds := memory.New(memory.WithMaxTuplesPerWrite(Batch))
	srv, err := server.NewServerWithOpts(server.WithDatastore(ds))
	if err != nil {
		return nil, err
	}
	f := &OpenFGA{srv: srv, ds: ds}
	st, err := srv.CreateStore(ctx, &openfgav1.CreateStoreRequest{Name: "uias"})
	if err != nil {
		f.Close()
		return nil, err
	}
	f.store = st.GetId()
	m, err := transformer.TransformDSLToProto(OpenFGAModel)
	if err != nil {
		f.Close()
		return nil, err
	}
	wm, err := srv.WriteAuthorizationModel(ctx, &openfgav1.WriteAuthorizationModelRequest{
		StoreId: f.store, SchemaVersion: m.GetSchemaVersion(), TypeDefinitions: m.GetTypeDefinitions()})
	if err != nil {
		f.Close()
		return nil, err
	}
	f.modelID = wm.GetAuthorizationModelId()
	ts := OpenFGATuples(d, now)
	f.Tuples = len(ts)
	for i := 0; i < len(ts); i += Batch {
		if err := ds.Write(ctx, f.store, nil, ts[i:min(i+Batch, len(ts))]); err != nil {
			f.Close()
			return nil, fmt.Errorf("write tuples %d: %w", i, err)
		}
	}
	return f, nil
}

// Check asks OpenFGA c through the server's Check.
func (f *OpenFGA) Check(ctx context.Context, c dataset.Check) (bool, error) {
	r, err := f.srv.Check(ctx, &openfgav1.CheckRequest{StoreId: f.store, AuthorizationModelId: f.modelID,
		TupleKey: &openfgav1.CheckRequestTupleKey{User: "user:" + c.Person, Relation: "granted",
			Object: permObject(c.App, c.Resource, c.Operation)}})
	if err != nil {
		return false, err
	}
	return r.GetAllowed(), nil
}

// Close stops the server.
func (f *OpenFGA) Close() {
	f.srv.Close()
	f.ds.Close()
}
