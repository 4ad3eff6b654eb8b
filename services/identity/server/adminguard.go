package server

import (
	"context"
	"errors"
	"slices"

	"google.golang.org/grpc"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/caller"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// Guard asks authz (pkg/adminauth) before every administrator call of
// identity: which permission of the administration namespace the call
// needs, on which person, in which orgs (a unit administrator acts only
// inside the org subtree they administer). A nil Guard, or one without a
// Checker (identity.admin_authz off, for deployments without the authz
// component), lets every administrator do everything, as before authz.
type Guard struct {
	Svc   *identity.Service
	Authz adminauth.Checker
}

// need is what one call needs.
type need struct {
	perm   adminauth.Perm
	target string
	orgs   []string
	global bool // a global action: no org
	// joinGroup / joinOrg: the call makes target a member of the group
	// / moves them to the org (separation of duty is checked).
	joinGroup, joinOrg string
	// moveOrg: the call moves this org under joinOrg
	moveOrg string
	// listing: a listing that names no org; an administrator of org
	// subtrees gets what lies in them (identity.WithinOrgs).
	listing bool
}

// errLookup marks a target that could not be found: the check then asks
// for the permission as a global action (so that only a system
// administrator learns it does not exist).
var errLookup = errors.New("target not found")

// Verifier is the guard's verifier (nil when there is no guard or it does
// not ask authz through pkg/adminauth).
func (g *Guard) Verifier() *adminauth.Verifier {
	if g == nil {
		return nil
	}
	v, _ := g.Authz.(*adminauth.Verifier)
	return v
}

// orgOf finds what get returns for id and gives field of it: errLookup
// when there is no such thing.
func orgOf[T any](ctx context.Context, id string, get func(context.Context, string) (T, error), field func(T) string) (string, error) {
	v, err := get(ctx, id)
	if err != nil {
		if errors.Is(err, identity.ErrNotFound) {
			return "", errLookup
		}
		return "", err
	}
	return field(v), nil
}

func (g *Guard) userOrg(ctx context.Context, id string) (string, error) {
	return orgOf(ctx, id, g.Svc.UserOrg, func(org string) string { return org })
}

func (g *Guard) groupOrg(ctx context.Context, id string) (string, error) {
	return orgOf(ctx, id, g.Svc.GetGroup, func(gr *identity.Group) string { return gr.OrgID })
}

func (g *Guard) orgParent(ctx context.Context, id string) (string, error) {
	return orgOf(ctx, id, g.Svc.GetOrg, func(o *identity.Org) string { return o.ParentID })
}

func (g *Guard) linkUser(ctx context.Context, id string) (string, error) {
	return orgOf(ctx, id, g.Svc.GetLink, func(l *identity.AccountLink) string { return l.UserID })
}

// admin is the administrator of ctx (nil: not an administrator call).
func (g *Guard) admin(ctx context.Context) *adminauth.Admin {
	if g == nil || g.Authz == nil {
		return nil
	}
	if a := adminauth.From(ctx); a != nil {
		return a
	}
	if c := caller.From(ctx); c != nil && c.Principal != "" {
		return &adminauth.Admin{ID: c.Principal}
	}
	return nil
}

// Require checks a global permission (streams: Import).
func (g *Guard) Require(ctx context.Context, p adminauth.Perm) error {
	a := g.admin(ctx)
	if a == nil {
		return nil
	}
	return g.Authz.Authorize(ctx, a, p, "")
}

// Check decides a call (method = full method name, req its request).
func (g *Guard) Check(ctx context.Context, method string, req any) error {
	_, err := g.Decide(ctx, method, req)
	return err
}

// Decide is Check returning the context the handler runs with: a listing
// that names no org, by an administrator of org subtrees only, is limited
// to those subtrees (identity.WithinOrgs).
func (g *Guard) Decide(ctx context.Context, method string, req any) (context.Context, error) {
	a := g.admin(ctx)
	if a == nil {
		return ctx, nil // not an administrator call (AdminLogin, AuthService), or no guard
	}
	n, err := g.needOf(ctx, method, req)
	if errors.Is(err, errLookup) {
		n.orgs, n.global = nil, true
	} else if err != nil {
		return ctx, err
	}
	if n.perm == (adminauth.Perm{}) {
		return ctx, nil
	}
	if l, ok := g.Authz.(adminauth.Lister); ok && n.listing && len(n.orgs) == 0 {
		within, err := l.ListScope(ctx, a, n.perm)
		if err != nil {
			return ctx, err
		}
		return identity.WithinOrgs(ctx, within), nil
	}
	if !n.global && len(n.orgs) == 0 && n.target == "" {
		// An org-bound action without an org (e.g. a listing of every
		// org) is a global one.
		n.global = true
	}
	return ctx, g.Authz.Check(ctx, a, adminauth.Request{Perm: n.perm, Target: n.target, Orgs: n.orgs,
		JoinGroup: n.joinGroup, JoinOrg: n.joinOrg, MoveOrg: n.moveOrg})
}

// globalMethods need a permission of no org (applications, keys, the
// fingerprint bypass): only unscoped grants allow them.
var globalMethods = map[string]adminauth.Perm{
	identityv1.AdminService_CreateApp_FullMethodName:             adminauth.AppsWrite,
	identityv1.AdminService_UpdateApp_FullMethodName:             adminauth.AppsWrite,
	identityv1.AdminService_GetApp_FullMethodName:                adminauth.AppsRead,
	identityv1.AdminService_ListApps_FullMethodName:              adminauth.AppsRead,
	identityv1.AdminService_RotateAppSecret_FullMethodName:       adminauth.AppsSecret,
	identityv1.AdminService_DeleteApp_FullMethodName:             adminauth.AppsWrite,
	identityv1.KeyService_GetKeyStatus_FullMethodName:            adminauth.KeysRead,
	identityv1.KeyService_RotateKeys_FullMethodName:              adminauth.KeysRotate,
	identityv1.KeyService_ReencryptData_FullMethodName:           adminauth.KeysRotate,
	identityv1.FingerService_SetFingerprintBypass_FullMethodName: adminauth.FingersWrite,
	identityv1.FingerService_GetFingerprintBypass_FullMethodName: adminauth.FingersRead,
	// Certificates bound to the people they name: whom is found, not
	// named, so only an unscoped administrator's.
	identityv1.AdminService_BindCertificates_FullMethodName: adminauth.UsersPassword,
}

// personMethods act on one person (the request's user_id, or the id of a
// user method), inside that person's org.
var personMethods = map[string]adminauth.Perm{
	identityv1.AdminService_GetUser_FullMethodName:           adminauth.UsersRead,
	identityv1.AdminService_SetUserStatus_FullMethodName:     adminauth.UsersLock,
	identityv1.AdminService_LockUser_FullMethodName:          adminauth.UsersLock,
	identityv1.AdminService_UnlockUser_FullMethodName:        adminauth.UsersUnlock,
	identityv1.AdminService_SetPassword_FullMethodName:       adminauth.UsersPassword,
	identityv1.AdminService_ResetPassword_FullMethodName:     adminauth.UsersPassword,
	identityv1.AdminService_ResetUserTotp_FullMethodName:     adminauth.UsersPassword,
	identityv1.AdminService_DeleteUser_FullMethodName:        adminauth.UsersWrite,
	identityv1.AdminService_CreateAccountLink_FullMethodName: adminauth.LinksWrite,
	identityv1.FingerService_EnrollFinger_FullMethodName:     adminauth.FingersWrite,
	identityv1.FingerService_DeleteFinger_FullMethodName:     adminauth.FingersWrite,
	identityv1.FingerService_ListFingers_FullMethodName:      adminauth.FingersRead,
	// A certificate signs the person in: binding one is like setting
	// their password.
	identityv1.AdminService_BindUserCertificate_FullMethodName:   adminauth.UsersPassword,
	identityv1.AdminService_UnbindUserCertificate_FullMethodName: adminauth.UsersPassword,
	identityv1.AdminService_ListUserCertificates_FullMethodName:  adminauth.UsersRead,
}

func (g *Guard) needOf(ctx context.Context, method string, req any) (need, error) {
	var n need
	var err error
	user := func(p adminauth.Perm, id string) {
		n.perm, n.target = p, id
		var o string
		o, err = g.userOrg(ctx, id)
		n.orgs = []string{o}
	}
	if p, ok := globalMethods[method]; ok {
		n.perm, n.global = p, true
	} else if p, ok := personMethods[method]; ok {
		id := ""
		switch r := req.(type) {
		case interface{ GetUserId() string }:
			id = r.GetUserId()
		case interface{ GetId() string }:
			id = r.GetId()
		}
		user(p, id)
	} else {
		switch r := req.(type) {
		// orgs
		case *identityv1.CreateOrgRequest:
			n.perm, n.orgs = adminauth.OrgsWrite, []string{r.GetParentId()}
		case *identityv1.GetOrgRequest:
			n.perm, n.orgs = adminauth.OrgsRead, []string{r.GetId()}
		case *identityv1.ListOrgsRequest:
			n.perm, n.orgs, n.listing = adminauth.OrgsRead, []string{r.GetParentId()}, true
		case *identityv1.UpdateOrgRequest:
			n.perm, n.orgs = adminauth.OrgsWrite, []string{r.GetId()}
		case *identityv1.ResendOrgRequest:
			n.perm, n.orgs = adminauth.OrgsWrite, []string{r.GetId()}
		case *identityv1.MoveOrgRequest:
			// The org leaves its parent (which must be administered: a unit
			// administrator cannot move the top of their own subtree) for the
			// new parent.
			var p string
			p, err = g.orgParent(ctx, r.GetId())
			n.perm, n.orgs = adminauth.OrgsWrite, []string{p, r.GetNewParentId()}
			n.moveOrg, n.joinOrg = r.GetId(), r.GetNewParentId()
		case *identityv1.SetOrgStatusRequest:
			var p string
			p, err = g.orgParent(ctx, r.GetId())
			n.perm, n.orgs = adminauth.OrgsWrite, []string{p}
		case *identityv1.DeleteOrgRequest:
			// like disabling it: the parent must be administered
			var p string
			p, err = g.orgParent(ctx, r.GetId())
			n.perm, n.orgs = adminauth.OrgsWrite, []string{p}
		// people
		case *identityv1.CreateUserRequest:
			n.perm, n.orgs = adminauth.UsersWrite, []string{r.GetOrgId()}
			if r.GetIsAdmin() {
				// The legacy flag makes a system administrator: appointing
				// one is a global grant.
				n.perm, n.orgs, n.global = adminauth.GrantsWrite, nil, true
			}
		case *identityv1.ListUsersRequest:
			n.perm, n.orgs, n.listing = adminauth.UsersRead, []string{r.GetOrgId()}, true
		case *identityv1.UpdateUserRequest:
			user(adminauth.UsersWrite, r.GetId())
			if err == nil && slices.Contains(r.GetUpdateMask(), "org_id") {
				n.orgs = append(n.orgs, r.GetOrgId())
				n.joinOrg = r.GetOrgId()
			}
		// groups
		case *identityv1.CreateGroupRequest:
			n.perm, n.orgs = adminauth.GroupsWrite, []string{r.GetOrgId()}
		case *identityv1.DeleteGroupRequest:
			var o string
			o, err = g.groupOrg(ctx, r.GetId())
			n.perm, n.orgs = adminauth.GroupsWrite, []string{o}
		case *identityv1.UpdateGroupRequest:
			var o string
			o, err = g.groupOrg(ctx, r.GetId())
			n.perm, n.orgs = adminauth.GroupsWrite, []string{o}
		case *identityv1.GetGroupRequest:
			var o string
			o, err = g.groupOrg(ctx, r.GetId())
			n.perm, n.orgs = adminauth.GroupsRead, []string{o}
		case *identityv1.ListGroupsRequest:
			n.perm, n.orgs, n.listing = adminauth.GroupsRead, []string{r.GetOrgId()}, true
		case *identityv1.GroupMemberRequest:
			var o, uo string
			o, err = g.groupOrg(ctx, r.GetGroupId())
			if err == nil {
				uo, err = g.userOrg(ctx, r.GetUserId())
			}
			n.perm, n.orgs, n.target = adminauth.GroupsWrite, []string{o, uo}, r.GetUserId()
			if method == identityv1.AdminService_AddGroupMember_FullMethodName {
				n.joinGroup = r.GetGroupId()
			}
		case *identityv1.ListAccountLinksRequest:
			if r.GetUserId() != "" {
				user(adminauth.LinksRead, r.GetUserId())
			} else {
				n.perm, n.listing = adminauth.LinksRead, true
			}
		case *identityv1.DeleteAccountLinkRequest:
			// inside the subtree of the person the link is theirs
			var u string
			if u, err = g.linkUser(ctx, r.GetId()); err == nil {
				user(adminauth.LinksWrite, u)
			} else {
				n.perm = adminauth.LinksWrite
			}
		}
	}
	if n.global {
		n.orgs = nil
	}
	var orgs []string
	for _, o := range n.orgs {
		if o != "" {
			orgs = append(orgs, o)
		}
	}
	n.orgs = orgs
	return n, err
}

// Guarded returns desc with every unary method checked by g before its
// handler runs (after caller authentication and the request checks); a
// refusal is the handler's error, so AuditedAdminService audits it.
func Guarded(desc *grpc.ServiceDesc, g *Guard) *grpc.ServiceDesc {
	out := *desc
	out.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		out.Methods[i] = grpc.MethodDesc{MethodName: m.MethodName, Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			guard := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
				inner := func(ctx context.Context, req any) (any, error) {
					if err := g.Check(ctx, info.FullMethod, req); err != nil {
						return nil, err
					}
					return handler(ctx, req)
				}
				if ic == nil {
					return inner(ctx, req)
				}
				return ic(ctx, req, info, inner)
			}
			return h(srv, ctx, dec, guard)
		}}
	}
	return &out
}
