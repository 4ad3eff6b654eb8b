// Package server adapts the authz commands to gRPC: thin handlers (one
// command each), proto conversion and caller authentication.
package server

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/store"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
)

// Server implements AuthzService and AuthzAdminService.
type Server struct {
	authzv1.UnimplementedAuthzServiceServer
	authzv1.UnimplementedAuthzAdminServiceServer
	svc     *commands.Service
	answers grpcx.ResponseSigner
}

// New wraps svc.
func New(svc *commands.Service) *Server { return &Server{svc: svc} }

// WithResponseSigner signs the answers to signed AuthzService calls with
// a (identity's CallerService.SignResponse: authz holds no key ring;
// docs/adr/0016). nil: answers are not signed.
func (s *Server) WithResponseSigner(a grpcx.ResponseSigner) *Server {
	s.answers = a
	return s
}

// Register adds both services to g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	// Signed requests of applications: the request bytes of a signed call
	// are hashed as received (grpcx.SignedBodies); identity verifies the
	// signature (CallerService.VerifyApp) and signs the answer
	// (CallerService.SignResponse).
	g.RegisterService(grpcx.SignedBodies(&authzv1.AuthzService_ServiceDesc, s.answers), s)
	authzv1.RegisterAuthzAdminServiceServer(g, s)
}

// ---- AuthzService ----

// appOf is the application a query is about: the one named, else the
// calling application. A business system asks only about its own
// (FOREIGN_APP): another application's grants and roles are not its to
// read, over gRPC or through the REST edge. Administrators (reviews) and
// UIAS components (which call as no application) name any.
func appOf(ctx context.Context, app string) (string, error) {
	own := ""
	if c := caller.From(ctx); c != nil {
		own = c.AppID()
	}
	switch {
	case app == "":
		return own, nil
	case own != "" && app != own && adminauth.From(ctx) == nil:
		return "", caller.ForeignApp("an application may only ask about its own permissions (leave app empty)")
	}
	return app, nil
}

// reviewer checks an administrator asking AuthzService questions with a
// token (reviews: uias ctl authz check/explain): they need to read grants.
// Business systems (App_ID) and components are not checked here.
func (s *Server) reviewer(ctx context.Context, api string) error {
	if adminauth.From(ctx) == nil {
		return nil
	}
	return s.svc.Authorize(ctx, api, adminauth.GrantsRead, true)
}

func (s *Server) queryOf(ctx context.Context, api string, r *authzv1.CheckRequest) (index.Query, error) {
	if err := s.svc.MayReadPerson(ctx, api, r.GetPerson()); err != nil {
		return index.Query{}, err
	}
	app, err := appOf(ctx, r.GetApp())
	return index.Query{Person: r.GetPerson(), App: app, Resource: r.GetResource(),
		Operation: r.GetOperation(), Method: r.GetMethod(), Path: r.GetPath()}, err
}

// Check implements AuthzService.
func (s *Server) Check(ctx context.Context, r *authzv1.CheckRequest) (*authzv1.CheckResponse, error) {
	if err := s.reviewer(ctx, "check"); err != nil {
		return nil, err
	}
	q, err := s.queryOf(ctx, "check", r)
	if err != nil {
		return nil, err
	}
	ok, rev, err := s.svc.Check(ctx, q, r.GetAtLeastRevision())
	if err != nil {
		return nil, err
	}
	return &authzv1.CheckResponse{Allowed: ok, Revision: rev}, nil
}

// BatchCheck implements AuthzService.
func (s *Server) BatchCheck(ctx context.Context, r *authzv1.BatchCheckRequest) (*authzv1.BatchCheckResponse, error) {
	if err := s.reviewer(ctx, "check"); err != nil {
		return nil, err
	}
	qs := make([]index.Query, len(r.GetChecks()))
	for i, c := range r.GetChecks() {
		if c.GetAtLeastRevision() != 0 {
			// one revision answers the whole batch: one in an item was
			// silently ignored (trial7 L3)
			return nil, grpcx.BadRequest(fmt.Sprintf("checks[%d].at_least_revision", i),
				"at_least_revision is given once, on the batch, not on its checks")
		}
		q, err := s.queryOf(ctx, "check", c)
		if err != nil {
			return nil, err
		}
		qs[i] = q
	}
	out, rev, err := s.svc.BatchCheck(ctx, qs, r.GetAtLeastRevision())
	if err != nil {
		return nil, err
	}
	return &authzv1.BatchCheckResponse{Allowed: out, Revision: rev}, nil
}

// Explain implements AuthzService.
func (s *Server) Explain(ctx context.Context, r *authzv1.CheckRequest) (*authzv1.ExplainResponse, error) {
	if err := s.reviewer(ctx, "explain"); err != nil {
		return nil, err
	}
	q, err := s.queryOf(ctx, "explain", r)
	if err != nil {
		return nil, err
	}
	e, err := s.svc.Explain(ctx, q, r.GetAtLeastRevision())
	if err != nil {
		return nil, err
	}
	out := &authzv1.ExplainResponse{Allowed: e.Allowed, Revision: e.Revision, Resource: e.Resource,
		Operation: e.Operation, Reason: e.Reason, Detail: e.Detail}
	if e.Path != nil {
		out.Grant, out.RolePath, out.Permission = grantPB(e.Path.Grant), e.Path.Roles, permPB(e.Path.Permission)
	}
	for _, g := range e.Inactive {
		out.Inactive = append(out.Inactive, grantPB(g))
	}
	return out, nil
}

// CheckAdmin implements AuthzService: UIAS components only.
func (s *Server) CheckAdmin(ctx context.Context, r *authzv1.CheckAdminRequest) (*authzv1.CheckAdminResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errComponentsOnly
	}
	d, err := s.svc.CheckAdmin(ctx, index.AdminQuery{Person: r.GetPerson(), Resource: r.GetResource(), Operation: r.GetOperation(),
		Orgs: r.GetOrgs(), Target: r.GetTargetPerson(), SystemAdminFlag: r.GetSystemAdminFlag(),
		JoinGroup: r.GetJoinGroup(), JoinOrg: r.GetJoinOrg(), MoveOrg: r.GetMoveOrg(), Listing: r.GetListing(), Probe: r.GetProbe()}, 0)
	if err != nil {
		return nil, err
	}
	out := &authzv1.CheckAdminResponse{Allowed: d.Allowed, Revision: d.Revision, Detail: d.Detail, ScopeOrgs: d.Scopes}
	if d.SoD != nil {
		if ae, ok := apierr.As(commands.SoDMessage(s.svc.Index(), *d.SoD)); ok {
			out.SodConflict = ae.Message
		}
	}
	return out, nil
}

// AppointAdmin implements AuthzService: UIAS components only (identity).
func (s *Server) AppointAdmin(ctx context.Context, r *authzv1.AppointAdminRequest) (*authzv1.AppointAdminResponse, error) {
	if !grpcx.FromComponent(ctx) {
		return nil, errComponentsOnly
	}
	g, created, rev, err := s.svc.AppointAdmin(ctx, r.GetPerson(), r.GetRole())
	if err != nil {
		return nil, err
	}
	return &authzv1.AppointAdminResponse{GrantId: g.ID, Created: created, Revision: rev}, nil
}

// errComponentsOnly refuses CheckAdmin and AppointAdmin from outside UIAS.
var errComponentsOnly = apierr.New(apierr.PermissionDenied, "PERMISSION_DENIED", "this call is for UIAS components only")

// ListPermissions implements AuthzService.
func (s *Server) ListPermissions(ctx context.Context, r *authzv1.ListPermissionsRequest) (*authzv1.ListPermissionsResponse, error) {
	if err := s.reviewer(ctx, "permissions.list"); err != nil {
		return nil, err
	}
	if err := s.svc.MayReadPerson(ctx, "permissions.list", r.GetPerson()); err != nil {
		return nil, err
	}
	app, err := appOf(ctx, r.GetApp())
	if err != nil {
		return nil, err
	}
	if !r.GetIncludeRoles() {
		ps, rev, err := s.svc.ListPermissions(ctx, r.GetPerson(), app, r.GetAtLeastRevision())
		if err != nil {
			return nil, err
		}
		return &authzv1.ListPermissionsResponse{Revision: rev, Permissions: permsPB(ps)}, nil
	}
	ps, roles, rev, err := s.svc.ListPermissionsAndRoles(ctx, r.GetPerson(), app, r.GetAtLeastRevision())
	if err != nil {
		return nil, err
	}
	out := &authzv1.ListPermissionsResponse{Revision: rev, Permissions: permsPB(ps), RolesIncluded: true}
	for _, x := range roles {
		out.Roles = append(out.Roles, &authzv1.Role{Id: x.ID, App: x.App, Code: x.Code, Name: x.Name})
	}
	return out, nil
}

func permsPB(ps []authz.Permission) []*authzv1.Permission {
	out := make([]*authzv1.Permission, 0, len(ps))
	for _, p := range ps {
		out = append(out, permPB(p))
	}
	return out
}

// ListSubjects implements AuthzService.
func (s *Server) ListSubjects(ctx context.Context, r *authzv1.ListSubjectsRequest) (*authzv1.ListSubjectsResponse, error) {
	if err := s.reviewer(ctx, "subjects.list"); err != nil {
		return nil, err
	}
	app, err := appOf(ctx, r.GetApp())
	if err != nil {
		return nil, err
	}
	sg, rev, err := s.svc.ListSubjects(ctx, app, r.GetResource(), r.GetOperation(), r.GetAtLeastRevision())
	if err != nil {
		return nil, err
	}
	out := &authzv1.ListSubjectsResponse{Revision: rev}
	keep := s.svc.ReadScope(ctx)
	for _, x := range sg {
		if keep != nil && !keep(x.Subject) {
			continue
		}
		sg := &authzv1.SubjectGrant{Subject: subjectPB(x.Subject), GrantId: x.Grant.ID, RoleId: x.Grant.Role}
		if x.Grant.Direct() {
			sg.Permission = permPB(x.Grant.Permission)
		}
		out.Subjects = append(out.Subjects, sg)
	}
	return out, nil
}

// ---- AuthzAdminService ----

// PutResource implements AuthzAdminService.
func (s *Server) PutResource(ctx context.Context, r *authzv1.Resource) (*authzv1.ResourceResponse, error) {
	res, rev, err := s.svc.PutResource(ctx, resourceOf(r))
	if err != nil {
		return nil, err
	}
	return &authzv1.ResourceResponse{Resource: resourcePB(res), Revision: rev}, nil
}

// ListResources implements AuthzAdminService.
func (s *Server) ListResources(ctx context.Context, r *authzv1.ListResourcesRequest) (*authzv1.ListResourcesResponse, error) {
	if err := s.svc.Authorize(ctx, "resource.list", adminauth.AuthzModelRead, true); err != nil {
		return nil, err
	}
	rs, rev := s.svc.Resources(r.GetApp())
	out := &authzv1.ListResourcesResponse{Revision: rev}
	for _, x := range rs {
		out.Resources = append(out.Resources, resourcePB(x))
	}
	return out, nil
}

// DeleteResource implements AuthzAdminService.
func (s *Server) DeleteResource(ctx context.Context, r *authzv1.DeleteResourceRequest) (*authzv1.WriteResponse, error) {
	rev, err := s.svc.DeleteResource(ctx, r.GetApp(), r.GetCode())
	return writeResp(rev, err)
}

// CreateRole implements AuthzAdminService.
func (s *Server) CreateRole(ctx context.Context, r *authzv1.Role) (*authzv1.RoleResponse, error) {
	role, rev, err := s.svc.CreateRole(ctx, roleOf(r))
	if err != nil {
		return nil, err
	}
	return &authzv1.RoleResponse{Role: rolePB(role), Revision: rev}, nil
}

// UpdateRole implements AuthzAdminService.
func (s *Server) UpdateRole(ctx context.Context, r *authzv1.Role) (*authzv1.RoleResponse, error) {
	role, rev, err := s.svc.UpdateRole(ctx, roleOf(r))
	if err != nil {
		return nil, err
	}
	return &authzv1.RoleResponse{Role: rolePB(role), Revision: rev}, nil
}

// GetRole implements AuthzAdminService.
func (s *Server) GetRole(ctx context.Context, r *authzv1.GetRoleRequest) (*authzv1.RoleResponse, error) {
	if err := s.svc.Authorize(ctx, "role.get", adminauth.AuthzModelRead, true); err != nil {
		return nil, err
	}
	role, rev, ok := s.svc.Role(r.GetId())
	if !ok {
		return nil, store.NotFound("role")
	}
	return &authzv1.RoleResponse{Role: rolePB(role), Revision: rev}, nil
}

// ListRoles implements AuthzAdminService.
func (s *Server) ListRoles(ctx context.Context, r *authzv1.ListRolesRequest) (*authzv1.ListRolesResponse, error) {
	if err := s.svc.Authorize(ctx, "role.list", adminauth.AuthzModelRead, true); err != nil {
		return nil, err
	}
	roles, rev := s.svc.Roles(r.GetApp(), r.GetAll())
	out := &authzv1.ListRolesResponse{Revision: rev}
	for _, x := range roles {
		out.Roles = append(out.Roles, rolePB(x))
	}
	return out, nil
}

// DeleteRole implements AuthzAdminService.
func (s *Server) DeleteRole(ctx context.Context, r *authzv1.DeleteRoleRequest) (*authzv1.WriteResponse, error) {
	rev, err := s.svc.DeleteRole(ctx, r.GetId())
	return writeResp(rev, err)
}

// ResendRoles implements AuthzAdminService.
func (s *Server) ResendRoles(ctx context.Context, r *authzv1.ResendRolesRequest) (*authzv1.ResendRolesResponse, error) {
	n, rev, err := s.svc.ResendRoles(ctx, r.GetApp())
	if err != nil {
		return nil, err
	}
	return &authzv1.ResendRolesResponse{Roles: int32(n), Revision: rev}, nil
}

// CreateGrant implements AuthzAdminService.
func (s *Server) CreateGrant(ctx context.Context, r *authzv1.Grant) (*authzv1.GrantResponse, error) {
	g, rev, activation, err := s.svc.CreateGrantActivation(ctx, grantOf(r))
	if err != nil {
		return nil, err
	}
	return &authzv1.GrantResponse{Grant: grantPB(g), Revision: rev, ActivationPassword: activation}, nil
}

// ListGrants implements AuthzAdminService.
func (s *Server) ListGrants(ctx context.Context, r *authzv1.ListGrantsRequest) (*authzv1.ListGrantsResponse, error) {
	f := index.GrantFilter{Role: r.GetRoleId()}
	if p := r.GetPermission(); p != nil {
		f.Permission = permOf(p)
	}
	if r.GetSubjectKind() != "" || r.GetSubjectId() != "" {
		switch k := authz.SubjectKind(r.GetSubjectKind()); {
		case k != authz.SubjectUser && k != authz.SubjectGroup && k != authz.SubjectOrg:
			// a misspelt kind matched nothing: an empty page read as "no grants" (trial7 L3)
			return nil, grpcx.BadRequest("subject_kind", "subject_kind must be user, group or org (with subject_id)")
		case r.GetSubjectId() == "":
			return nil, grpcx.BadRequest("subject_id", "subject_id is required with subject_kind")
		}
		f.Subject = &authz.Subject{Kind: authz.SubjectKind(r.GetSubjectKind()), ID: r.GetSubjectId()}
	}
	if err := s.svc.Authorize(ctx, "grant.list", adminauth.GrantsRead, true); err != nil {
		return nil, err
	}
	keep := s.svc.ReadScope(ctx)
	if f.Subject != nil {
		// refused, not an empty page read as "no grants" (review sec11 S11)
		if err := s.svc.MayRead(ctx, "grant.list", keep, *f.Subject); err != nil {
			return nil, err
		}
	}
	gs, next, rev, err := s.svc.ListGrants(f, int(r.GetPageSize()), r.GetPageToken(), keep)
	if err != nil {
		return nil, err
	}
	out := &authzv1.ListGrantsResponse{NextPageToken: next, Revision: rev}
	for _, g := range gs {
		out.Grants = append(out.Grants, grantPB(g))
	}
	return out, nil
}

// RevokeGrant implements AuthzAdminService.
func (s *Server) RevokeGrant(ctx context.Context, r *authzv1.RevokeGrantRequest) (*authzv1.WriteResponse, error) {
	rev, err := s.svc.RevokeGrant(ctx, r.GetId())
	return writeResp(rev, err)
}

// CreateExclusion implements AuthzAdminService.
func (s *Server) CreateExclusion(ctx context.Context, r *authzv1.Exclusion) (*authzv1.ExclusionResponse, error) {
	e, rev, err := s.svc.CreateExclusion(ctx, authz.Exclusion{RoleA: r.GetRoleA(), RoleB: r.GetRoleB(), Name: r.GetName()})
	if err != nil {
		return nil, err
	}
	return &authzv1.ExclusionResponse{Exclusion: exclusionPB(e), Revision: rev}, nil
}

// ListExclusions implements AuthzAdminService.
func (s *Server) ListExclusions(ctx context.Context, _ *authzv1.ListExclusionsRequest) (*authzv1.ListExclusionsResponse, error) {
	if err := s.svc.Authorize(ctx, "exclusion.list", adminauth.AuthzModelRead, true); err != nil {
		return nil, err
	}
	es, rev := s.svc.Exclusions()
	out := &authzv1.ListExclusionsResponse{Revision: rev}
	for _, e := range es {
		out.Exclusions = append(out.Exclusions, exclusionPB(e))
	}
	return out, nil
}

// DeleteExclusion implements AuthzAdminService.
func (s *Server) DeleteExclusion(ctx context.Context, r *authzv1.DeleteExclusionRequest) (*authzv1.WriteResponse, error) {
	rev, err := s.svc.DeleteExclusion(ctx, r.GetId())
	return writeResp(rev, err)
}

func writeResp(rev int64, err error) (*authzv1.WriteResponse, error) {
	if err != nil {
		return nil, err
	}
	return &authzv1.WriteResponse{Revision: rev}, nil
}

// ---- conversion ----

func permPB(p authz.Permission) *authzv1.Permission {
	return &authzv1.Permission{App: p.App, Resource: p.Resource, Operation: p.Operation}
}

func permOf(p *authzv1.Permission) authz.Permission {
	return authz.Permission{App: p.GetApp(), Resource: p.GetResource(), Operation: p.GetOperation()}
}

func subjectPB(s authz.Subject) *authzv1.Subject {
	return &authzv1.Subject{Kind: string(s.Kind), Id: s.ID}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func grantPB(g authz.Grant) *authzv1.Grant {
	out := &authzv1.Grant{Id: g.ID, RoleId: g.Role, Subject: subjectPB(g.Subject), ValidFrom: ts(g.ValidFrom),
		ValidUntil: ts(g.ValidUntil), ScopeOrg: g.ScopeOrg, Delegable: g.Delegable, CreatedAt: ts(g.CreatedAt), CreatedBy: g.CreatedBy,
		GrantableRoles: g.Grantable, DelegationDepth: uint32(g.DelegationDepth)}
	if g.Direct() {
		out.Permission = permPB(g.Permission)
	}
	return out
}

func grantOf(g *authzv1.Grant) authz.Grant {
	out := authz.Grant{Role: g.GetRoleId(), Subject: authz.Subject{Kind: authz.SubjectKind(g.GetSubject().GetKind()), ID: g.GetSubject().GetId()},
		ValidFrom: timeOf(g.GetValidFrom()), ValidUntil: timeOf(g.GetValidUntil()), ScopeOrg: g.GetScopeOrg(), Delegable: g.GetDelegable(),
		Grantable: g.GetGrantableRoles(), DelegationDepth: int(g.GetDelegationDepth())}
	if p := g.GetPermission(); p != nil {
		out.Permission = permOf(p)
	}
	return out
}

func resourcePB(r authz.Resource) *authzv1.Resource {
	return &authzv1.Resource{App: r.App, Code: r.Code, Parent: r.Parent, Kind: string(r.Kind), Name: r.Name,
		Operations: r.Operations, Method: r.Method, PathPattern: r.PathPattern}
}

func resourceOf(r *authzv1.Resource) authz.Resource {
	return authz.Resource{App: r.GetApp(), Code: r.GetCode(), Parent: r.GetParent(), Kind: authz.ResourceKind(r.GetKind()),
		Name: r.GetName(), Operations: r.GetOperations(), Method: r.GetMethod(), PathPattern: r.GetPathPattern()}
}

func rolePB(r authz.Role) *authzv1.Role {
	out := &authzv1.Role{Id: r.ID, App: r.App, Code: r.Code, Name: r.Name, Inherits: r.Inherits}
	for _, p := range r.Permissions {
		out.Permissions = append(out.Permissions, permPB(p))
	}
	return out
}

func roleOf(r *authzv1.Role) authz.Role {
	out := authz.Role{ID: r.GetId(), App: r.GetApp(), Code: r.GetCode(), Name: r.GetName(), Inherits: r.GetInherits()}
	for _, p := range r.GetPermissions() {
		out.Permissions = append(out.Permissions, permOf(p))
	}
	return out
}

func exclusionPB(e authz.Exclusion) *authzv1.Exclusion {
	return &authzv1.Exclusion{Id: e.ID, RoleA: e.RoleA, RoleB: e.RoleB, Name: e.Name}
}
