// Package server adapts the identity domain to gRPC: thin handlers, proto
// conversion and caller authentication.
package server

import (
	"context"
	"math"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/reqsig"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// Server implements AuthService and AdminService.
type Server struct {
	identityv1.UnimplementedAuthServiceServer
	identityv1.UnimplementedAdminServiceServer
	svc     *identity.Service
	guard   *Guard
	answers *reqsig.ResponseSigner
}

// New wraps svc. Administrator calls are let through as before authz;
// WithGuard makes authz decide them.
func New(svc *identity.Service) *Server { return &Server{svc: svc} }

// WithGuard makes g decide every administrator call.
func (s *Server) WithGuard(g *Guard) *Server {
	s.guard = g
	return s
}

// WithResponseSigner makes the answers to signed AuthService calls signed
// with a (docs/adr/0016), signs the answers of the other components
// (CallerService.SignResponse) and publishes a's keys
// (ResponseKeyService). nil: answers are not signed.
func (s *Server) WithResponseSigner(a *reqsig.ResponseSigner) *Server {
	s.answers = a
	return s
}

// Register adds the services (AuthService, DirectoryService, AdminService, KeyService,
// AdminSessionService, FingerService, SSOService, CallerService,
// ReplicaService, ViewService) to g;
// the AdminService audits the calls it refuses (AuditedAdminService).
func (s *Server) Register(g grpc.ServiceRegistrar) {
	// Signed requests: the request bytes of a signed call are hashed as
	// received (grpcx.SignedBodies).
	var answers grpcx.ResponseSigner
	if s.answers != nil {
		answers = s.answers
	}
	g.RegisterService(grpcx.SignedBodies(&identityv1.AuthService_ServiceDesc, answers), s)
	g.RegisterService(grpcx.SignedBodies(&identityv1.DirectoryService_ServiceDesc, answers), directoryServer{svc: s.svc})
	identityv1.RegisterResponseKeyServiceServer(g, responseKeyServer{answers: s.answers})
	g.RegisterService(AuditedAdminService(s.svc, s.guard), s)
	g.RegisterService(Guarded(&identityv1.KeyService_ServiceDesc, s.guard), keyServer{svc: s.svc})
	identityv1.RegisterAdminSessionServiceServer(g, sessionServer{svc: s.svc, legacy: s.guard == nil})
	g.RegisterService(Guarded(&identityv1.FingerService_ServiceDesc, s.guard), fingerServer{svc: s.svc})
	identityv1.RegisterSSOServiceServer(g, ssoServer{svc: s.svc})
	identityv1.RegisterCallerServiceServer(g, callerServer{svc: s.svc, answers: s.answers})
	identityv1.RegisterReplicaServiceServer(g, replicaServer{svc: s.svc})
	identityv1.RegisterViewServiceServer(g, viewServer{svc: s.svc})
	identityv1.RegisterImportServiceServer(g, importServer{svc: s.svc, guard: s.guard})
	identityv1.RegisterExportServiceServer(g, exportServer{svc: s.svc, guard: s.guard})
}

// refusalCodes are the errors of an administrator call that are refusals
// of what the administrator asked (audited as admin.refused). A bad token
// is audited where it is checked (admin.auth); a fault (internal,
// unavailable, overloaded) is not the administrator's doing.
var refusalCodes = map[apierr.Code]bool{
	apierr.InvalidArgument: true, apierr.PermissionDenied: true,
	apierr.FailedPrecondition: true, apierr.AlreadyExists: true,
}

// AuditedAdminService is the AdminService description with every method
// reporting a refusal by its handler to svc (as admin.refused), with the
// authenticated caller; the request checks report theirs through
// BadRequestAudit. AdminLogin audits itself.
// The guard (nil: none) decides the call first; its refusal is audited
// alike.
func AuditedAdminService(svc *identity.Service, guard *Guard) *grpc.ServiceDesc {
	desc := identityv1.AdminService_ServiceDesc
	desc.Methods = make([]grpc.MethodDesc, len(identityv1.AdminService_ServiceDesc.Methods))
	for i, m := range identityv1.AdminService_ServiceDesc.Methods {
		h := m.Handler
		desc.Methods[i] = grpc.MethodDesc{MethodName: m.MethodName, Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			// The auditing goes innermost, after caller authentication,
			// so that it sees the caller.
			audited := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
				inner := func(ctx context.Context, req any) (any, error) {
					var resp any
					ctx, err := guard.Decide(ctx, info.FullMethod, req)
					if err == nil {
						resp, err = handler(ctx, req)
					}
					if err != nil && info.FullMethod != identityv1.AdminService_AdminLogin_FullMethodName {
						ae, ok := apierr.As(err)
						if !ok {
							ae, ok = apierr.FromStatus(err)
						}
						if ok && refusalCodes[ae.Code] {
							svc.AuditRefusedAdminCall(ctx, info.FullMethod, ae.Reason)
						}
					}
					return resp, err
				}
				if ic == nil {
					return inner(ctx, req)
				}
				return ic(ctx, req, info, inner)
			}
			return h(srv, ctx, dec, audited)
		}}
	}
	return &desc
}

// Errors: handlers and CallerAuth return domain errors as they are; the
// server's interceptor chain (pkg/grpcx) passes every one through the
// platform error funnel (apierr.ToStatus), which answers each reason as
// registered (the domain's reasons in services/identity/reasons.go, the
// store's in pkg/store, this package's below) and never leaks internals.
func init() {
	apierr.Register(apierr.Reason{Name: "UNKNOWN_METHOD", Code: apierr.Unauthenticated,
		Doc: "A method the identity service does not know how to authenticate callers for."})
}

// CallerAuth authenticates callers by service: AuthService needs App_ID +
// App_Secret, AdminService a bearer token (except AdminLogin), health and
// reflection are open.
type CallerAuth struct{ Svc *identity.Service }

// BadRequestAudit is grpcx.ServerOptions.OnBadRequest for the identity
// server: an Authenticate refused as malformed by the request checks (its
// handler never runs) still leaves its audit record, a failed login; so
// does an administrator call (admin.refused).
func BadRequestAudit(svc *identity.Service) func(ctx context.Context, fullMethod string, err error) {
	return func(ctx context.Context, method string, err error) {
		switch {
		case method == identityv1.AuthService_Authenticate_FullMethodName:
			if v := legacyMark(ctx); v == "" || !svc.AuditMalformedLegacy(ctx, v) {
				svc.AuditBadAuthenticate(ctx)
			}
		case method == identityv1.AdminService_AdminLogin_FullMethodName:
		case strings.HasPrefix(method, "/uias.identity.v1.AdminService/"),
			strings.HasPrefix(method, "/uias.identity.v1.FingerService/"):
			reason := "BAD_REQUEST"
			if ae, ok := apierr.As(err); ok {
				reason = ae.Reason
			}
			svc.AuditRefusedAdminCall(ctx, method, reason)
		}
	}
}

// AuthenticateCaller implements grpcx.CallerAuth.
func (a CallerAuth) AuthenticateCaller(ctx context.Context, method string) (context.Context, error) {
	c := &caller.Caller{ClientIP: grpcx.ClientIP(ctx), RequestID: grpcx.RequestID(ctx), ClientCert: grpcx.ClientCertSHA256(ctx)}
	ctx = caller.With(ctx, c)
	switch {
	case strings.HasPrefix(method, "/uias.identity.v1.AuthService/"),
		strings.HasPrefix(method, "/uias.identity.v1.DirectoryService/"):
		// AuthService and DirectoryService take signed requests (their
		// methods are registered through grpcx.SignedBodies).
		appID, secret := grpcx.AppCredentials(ctx)
		if appID == "" && secret == "" && method == identityv1.AuthService_Authenticate_FullMethodName {
			if typ, code, ok := legacyApp(ctx); ok {
				return a.legacyIPOnly(ctx, c, typ, code, method)
			}
		}
		sig := grpcx.RequestSignature(ctx, method)
		app, key, err := a.Svc.AuthenticateSignedApp(ctx, appID, secret, c.ClientIP, sig)
		if err != nil {
			return nil, err
		}
		// Refusals from here on come after the application's credentials
		// checked: the caller returned with them names it (the call's
		// access record and the per-application metrics).
		if err := a.Svc.AuthorizeApp(ctx, app, caller.APIOf(method)); err != nil {
			c.App = app
			return ctx, err
		}
		// Last of the checks: a slot of the application's concurrency
		// limit, given back when the call ends.
		leave, err := a.Svc.EnterApp(ctx, app)
		if err != nil {
			c.App = app
			return ctx, err
		}
		if leave != nil {
			ctx = grpcx.WithCallEnd(ctx, leave)
		}
		c.App, c.SignedKey = app, key
		if key != "" {
			c.Signed = &sig
			grpcx.SignedCall(ctx, app.ID, sig) // its answer is signed
		}
	case method == "/uias.identity.v1.AdminService/AdminLogin":
	case strings.HasPrefix(method, "/uias.identity.v1.AdminService/"),
		strings.HasPrefix(method, "/uias.identity.v1.KeyService/"),
		strings.HasPrefix(method, "/uias.identity.v1.AdminSessionService/"),
		strings.HasPrefix(method, "/uias.identity.v1.FingerService/"),
		strings.HasPrefix(method, "/uias.identity.v1.ImportService/"),
		strings.HasPrefix(method, "/uias.identity.v1.ExportService/"):
		u, err := a.Svc.AuthenticateAdmin(ctx, grpcx.BearerToken(ctx))
		if err != nil {
			return nil, err
		}
		c.Principal, c.PrincipalLogin = u.ID, u.LoginName
		ctx = adminauth.With(ctx, &adminauth.Admin{ID: u.ID, Login: u.LoginName, OrgID: u.OrgID, SystemAdminFlag: u.IsAdmin})
	case strings.HasPrefix(method, "/uias.identity.v1.SSOService/"):
		if !grpcx.FromComponent(ctx) {
			return nil, errSSOComponentsOnly
		}
	case strings.HasPrefix(method, "/grpc.health.v1.Health/"),
		strings.HasPrefix(method, "/grpc.reflection."),
		// CallerService calls carry the credentials they ask about.
		strings.HasPrefix(method, "/uias.identity.v1.CallerService/"),
		// The published response signing keys are public.
		strings.HasPrefix(method, "/uias.identity.v1.ResponseKeyService/"),
		// ReplicaService is for components only (its handlers check).
		strings.HasPrefix(method, "/uias.identity.v1.ReplicaService/"),
		// ViewService is for components only (its handler checks).
		strings.HasPrefix(method, "/uias.identity.v1.ViewService/"):
		if strings.HasPrefix(method, "/uias.identity.v1.ViewService/") && grpcx.FromComponent(ctx) {
			if o := grpcx.OriginFrom(ctx); o.App == "" && o.Principal == "" {
				// A component reading for itself (ticket's refresh of the
				// applications' statuses, once a minute per instance):
				// its access records say so, not "anonymous" (a caller
				// nobody authenticated).
				c.System = "component"
			}
		}
	default:
		return nil, apierr.New(apierr.Unauthenticated, "UNKNOWN_METHOD", "unknown method")
	}
	// Calls this component makes to others on the caller's behalf carry
	// who the caller is (grpcx origin).
	o := grpcx.OriginFrom(ctx)
	o.HTTPRequest = "" // the edge's request is this call's, not the calls it makes
	if c.App != nil {
		o.App = c.App.ID
	}
	if c.Principal != "" {
		o.Principal = c.Principal
	}
	return grpcx.WithOrigin(ctx, o), nil
}

// legacyApp is the (app_type, app_code) the legacy transports name for a
// caller of Authenticate without App_ID and secret
// (identity.MetadataLegacyApp), believed from a UIAS component only.
func legacyApp(ctx context.Context) (appType, appCode string, ok bool) {
	if !grpcx.FromComponent(ctx) {
		return "", "", false
	}
	v := metadata.ValueFromIncomingContext(ctx, identity.MetadataLegacyApp)
	if len(v) != 1 {
		return "", "", false
	}
	return identity.ParseLegacyApp(v[0])
}

// legacyIPOnly authenticates a legacy caller identified by appType and
// appCode and its address (identity.Service.AuthenticateLegacyApp), takes
// a slot of its concurrency limit; AuthenticateLegacyApp marks the caller
// as such before its checks (caller.AuthModeIPOnly: the records of
// refusals and admissions say so).
func (a CallerAuth) legacyIPOnly(ctx context.Context, c *caller.Caller, appType, appCode, method string) (context.Context, error) {
	app, err := a.Svc.AuthenticateLegacyApp(ctx, appType, appCode, c.ClientIP, caller.APIOf(method))
	if err != nil {
		return nil, err
	}
	leave, err := a.Svc.EnterApp(ctx, app)
	if err != nil {
		c.App = app
		return ctx, err
	}
	if leave != nil {
		ctx = grpcx.WithCallEnd(ctx, leave)
	}
	c.App = app
	o := grpcx.OriginFrom(ctx)
	o.HTTPRequest, o.App = "", app.ID
	return grpcx.WithOrigin(ctx, o), nil
}

// ---- AuthService ----

// Authenticate implements AuthService.
func (s *Server) Authenticate(ctx context.Context, r *identityv1.AuthenticateRequest) (*identityv1.AuthenticateResponse, error) {
	if v := legacyMark(ctx); v != "" {
		// A legacy request that never became a call (see
		// identity.MetadataLegacyMalformed): refused and audited as such.
		if !s.svc.AuditMalformedLegacy(ctx, v) {
			s.svc.AuditBadAuthenticate(ctx)
		}
		return nil, apierr.New(apierr.InvalidArgument, "BAD_REQUEST", "malformed legacy request")
	}
	res, err := s.svc.Authenticate(ctx, identity.AuthRequest{
		AppType: r.GetAppType(), AppCode: r.GetAppCode(), AppUserID: r.GetAppUserId(),
		Password: r.GetPassword(), Fingerprint: r.GetFingerprintFeature(), AuthType: int(r.GetAuthType()),
		Extend: r.GetExtendInfo(), ExtendLegacy: r.GetExtendInfoLegacy(), OTP: r.GetOtp(),
		Challenge: r.GetChallenge(), Certificate: r.GetCertificate(), Chain: r.GetChain(), Signature: r.GetSignature(),
		ExternalType: r.GetExternalType(), ExternalCredential: r.GetExternalCredential(),
	})
	if err != nil {
		return nil, err
	}
	out := &identityv1.AuthenticateResponse{
		ResultCode: res.Reason.LegacyCode(), Reason: identityv1.Reason(res.Reason), Message: res.Message,
		MustChangePassword: res.MustChange, Serial: res.Serial,
	}
	if res.User != nil {
		out.User = summary(res.User)
	}
	return out, nil
}

// ChangePassword implements AuthService.
func (s *Server) ChangePassword(ctx context.Context, r *identityv1.ChangePasswordRequest) (*identityv1.ChangePasswordResponse, error) {
	if err := s.svc.ChangePassword(ctx, r.GetAppUserId(), r.GetOldPassword(), r.GetNewPassword()); err != nil {
		return nil, err
	}
	return &identityv1.ChangePasswordResponse{}, nil
}

// legacyMark is the identity.MetadataLegacyMalformed value of the call in
// ctx ("" if none).
func legacyMark(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, identity.MetadataLegacyMalformed); len(v) == 1 {
		return v[0]
	}
	return ""
}

// ---- AdminService ----

// AdminLogin implements AdminService.
func (s *Server) AdminLogin(ctx context.Context, r *identityv1.AdminLoginRequest) (*identityv1.AdminLoginResponse, error) {
	tok, exp, u, err := s.svc.AdminLoginOTP(ctx, r.GetLoginName(), r.GetPassword(), r.GetNewPassword(), r.GetOtp())
	if err != nil {
		return nil, err
	}
	return &identityv1.AdminLoginResponse{Token: tok, ExpiresAt: timestamppb.New(exp), User: summary(u), MustChangePassword: u.MustChange}, nil
}

// AdminLogout implements AdminService: it revokes the token the call was
// authenticated with.
func (s *Server) AdminLogout(ctx context.Context, _ *identityv1.AdminLogoutRequest) (*identityv1.AdminLogoutResponse, error) {
	if err := s.svc.AdminLogout(ctx, grpcx.BearerToken(ctx)); err != nil {
		return nil, err
	}
	return &identityv1.AdminLogoutResponse{}, nil
}

// CreateOrg implements AdminService.
func (s *Server) CreateOrg(ctx context.Context, r *identityv1.CreateOrgRequest) (*identityv1.Org, error) {
	return orgOut(s.svc.CreateOrg(ctx, r.GetCode(), r.GetName(), r.GetParentId()))
}

// GetOrg implements AdminService.
func (s *Server) GetOrg(ctx context.Context, r *identityv1.GetOrgRequest) (*identityv1.Org, error) {
	return orgOut(s.svc.GetOrg(ctx, r.GetId()))
}

// ListOrgs implements AdminService.
func (s *Server) ListOrgs(ctx context.Context, r *identityv1.ListOrgsRequest) (*identityv1.ListOrgsResponse, error) {
	list, next, err := s.svc.ListOrgs(ctx, identity.OrgFilter{ParentID: r.GetParentId(), Query: r.GetQuery(),
		Status: identity.Status(r.GetStatus()), Subtree: r.GetIncludeDescendants()}, r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListOrgsResponse{NextPageToken: next}
	for _, o := range list {
		out.Orgs = append(out.Orgs, orgPB(o))
	}
	return out, nil
}

// UpdateOrg implements AdminService.
func (s *Server) UpdateOrg(ctx context.Context, r *identityv1.UpdateOrgRequest) (*identityv1.Org, error) {
	return orgOut(s.svc.UpdateOrg(ctx, r.GetId(), r.GetName()))
}

// ResendOrg implements AdminService.
func (s *Server) ResendOrg(ctx context.Context, r *identityv1.ResendOrgRequest) (*identityv1.ResendOrgResponse, error) {
	res, err := s.svc.ResendOrg(ctx, r.GetId())
	if err != nil {
		return nil, err
	}
	return &identityv1.ResendOrgResponse{ResendId: res.ResendID, Orgs: int32(res.Orgs), People: int32(res.People),
		Groups: int32(res.Groups), AccountLinks: int32(res.Links), Fingers: int32(res.Fingers),
		AuthenticatorApps: int32(res.TOTPApps), Events: int32(res.Events)}, nil
}

// MoveOrg implements AdminService.
func (s *Server) MoveOrg(ctx context.Context, r *identityv1.MoveOrgRequest) (*identityv1.Org, error) {
	return orgOut(s.svc.MoveOrg(ctx, r.GetId(), r.GetNewParentId()))
}

// SetOrgStatus implements AdminService.
func (s *Server) SetOrgStatus(ctx context.Context, r *identityv1.SetOrgStatusRequest) (*identityv1.Org, error) {
	return orgOut(s.svc.SetOrgStatus(ctx, r.GetId(), identity.Status(r.GetStatus())))
}

// CreateUser implements AdminService.
func (s *Server) CreateUser(ctx context.Context, r *identityv1.CreateUserRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.CreateUser(ctx, identity.NewUser{
		LoginName: r.GetLoginName(), DisplayName: r.GetDisplayName(), IDType: identity.IDType(r.GetIdType()),
		IDNumber: r.GetIdNumber(), Phone: r.GetPhone(), Email: r.GetEmail(), OrgID: r.GetOrgId(),
		Password: r.GetPassword(), MustChange: r.GetMustChangePassword(), NeverExpires: r.GetPasswordNeverExpires(),
		CannotChange: r.GetUserCannotChangePassword(), IsAdmin: r.GetIsAdmin(), PasswordOnly: r.GetPasswordOnly(),
		MinAuthLevel: int(r.GetMinAuthLevel()), UserType: identity.UserType(r.GetUserType()),
	}))
}

// GetUser implements AdminService.
func (s *Server) GetUser(ctx context.Context, r *identityv1.GetUserRequest) (*identityv1.User, error) {
	u, at, err := s.svc.UserWithTOTP(ctx, r.GetId())
	if err != nil {
		return nil, err
	}
	out := s.userPB(&u)
	if !at.IsZero() {
		out.TotpEnrolled, out.TotpEnrolledAt = true, ts(at)
	}
	if out.CredentialSource, err = s.svc.CredentialSourceOf(ctx, &u); err != nil {
		return nil, err
	}
	return out, nil
}

// ResetUserTotp implements AdminService.
func (s *Server) ResetUserTotp(ctx context.Context, r *identityv1.ResetUserTotpRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.ResetUserTOTP(ctx, r.GetId()))
}

// ListUsers implements AdminService.
func (s *Server) ListUsers(ctx context.Context, r *identityv1.ListUsersRequest) (*identityv1.ListUsersResponse, error) {
	list, next, err := s.svc.ListUsers(ctx, identity.UserFilter{OrgID: r.GetOrgId(), Query: r.GetQuery(),
		Status: identity.Status(r.GetStatus()), Subtree: r.GetIncludeDescendants(), PasswordExpired: r.GetPasswordExpired(),
		UserType: identity.UserType(r.GetUserType())},
		r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListUsersResponse{NextPageToken: next}
	for _, u := range list {
		out.Users = append(out.Users, s.userPB(u))
	}
	return out, nil
}

// UpdateUser implements AdminService.
func (s *Server) UpdateUser(ctx context.Context, r *identityv1.UpdateUserRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.UpdateUser(ctx, r.GetId(), identity.UserUpdate{
		Mask: r.GetUpdateMask(), DisplayName: r.GetDisplayName(), Phone: r.GetPhone(), Email: r.GetEmail(),
		OrgID: r.GetOrgId(), MustChange: r.GetMustChangePassword(), NeverExpires: r.GetPasswordNeverExpires(),
		CannotChange: r.GetUserCannotChangePassword(), PasswordOnly: r.GetPasswordOnly(),
		IDType: identity.IDType(r.GetIdType()), IDNumber: r.GetIdNumber(), MinAuthLevel: int(r.GetMinAuthLevel()),
		UserType: identity.UserType(r.GetUserType()),
	}))
}

// SetUserStatus implements AdminService.
func (s *Server) SetUserStatus(ctx context.Context, r *identityv1.SetUserStatusRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.SetUserStatus(ctx, r.GetId(), identity.Status(r.GetStatus())))
}

// LockUser implements AdminService.
func (s *Server) LockUser(ctx context.Context, r *identityv1.LockUserRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.LockUser(ctx, r.GetId(), time.Duration(r.GetDurationSeconds())*time.Second))
}

// UnlockUser implements AdminService.
func (s *Server) UnlockUser(ctx context.Context, r *identityv1.UnlockUserRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.UnlockUser(ctx, r.GetId()))
}

// SetPassword implements AdminService.
func (s *Server) SetPassword(ctx context.Context, r *identityv1.SetPasswordRequest) (*identityv1.User, error) {
	return s.userOut(s.svc.SetPassword(ctx, r.GetId(), r.GetPassword(), r.GetMustChangePassword()))
}

// ResetPassword implements AdminService.
func (s *Server) ResetPassword(ctx context.Context, r *identityv1.ResetPasswordRequest) (*identityv1.ResetPasswordResponse, error) {
	var ifChanged *time.Time
	if t := r.GetIfPasswordChangedAt(); t != nil {
		at := t.AsTime()
		if at.UnixMilli() == 0 {
			at = time.Time{} // no password set
		}
		ifChanged = &at
	}
	u, pw, err := s.svc.ResetPassword(ctx, r.GetId(), ifChanged)
	if err != nil {
		return nil, err
	}
	return &identityv1.ResetPasswordResponse{User: s.userPB(u), TemporaryPassword: pw}, nil
}

// CreateGroup implements AdminService.
func (s *Server) CreateGroup(ctx context.Context, r *identityv1.CreateGroupRequest) (*identityv1.Group, error) {
	return groupOut(s.svc.CreateGroup(ctx, r.GetCode(), r.GetName(), r.GetOrgId()))
}

// GetGroup implements AdminService.
func (s *Server) GetGroup(ctx context.Context, r *identityv1.GetGroupRequest) (*identityv1.Group, error) {
	return groupOut(s.svc.GetGroup(ctx, r.GetId()))
}

// ListGroups implements AdminService.
func (s *Server) ListGroups(ctx context.Context, r *identityv1.ListGroupsRequest) (*identityv1.ListGroupsResponse, error) {
	list, next, err := s.svc.ListGroups(ctx, identity.GroupFilter{OrgID: r.GetOrgId(), Query: r.GetQuery()},
		r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListGroupsResponse{NextPageToken: next}
	for _, g := range list {
		out.Groups = append(out.Groups, groupPB(g))
	}
	return out, nil
}

// AddGroupMember implements AdminService.
func (s *Server) AddGroupMember(ctx context.Context, r *identityv1.GroupMemberRequest) (*identityv1.Group, error) {
	return groupOut(s.svc.SetGroupMember(ctx, r.GetGroupId(), r.GetUserId(), true))
}

// RemoveGroupMember implements AdminService.
func (s *Server) RemoveGroupMember(ctx context.Context, r *identityv1.GroupMemberRequest) (*identityv1.Group, error) {
	return groupOut(s.svc.SetGroupMember(ctx, r.GetGroupId(), r.GetUserId(), false))
}

// CreateApp implements AdminService.
func (s *Server) CreateApp(ctx context.Context, r *identityv1.CreateAppRequest) (*identityv1.CreateAppResponse, error) {
	a, secret, err := s.svc.CreateApp(ctx, identity.NewApp{Type: r.GetAppType(), Code: r.GetAppCode(), Name: r.GetName(),
		IPAllowList: r.GetIpAllowList(), RateLimit: r.GetRateLimit(), RateBurst: int(r.GetRateBurst()),
		ClientCertSHA256: r.GetClientCertSha256(), SecretLifetime: seconds(r.GetSecretLifetimeSeconds()),
		SigningKeys: r.GetSigningKeys(), RequireSignatures: r.GetRequireSignedRequests(), GrantedAPIs: r.GetGrantedApis(),
		AccessFrom: timeOf(r.GetAccessFrom()), AccessUntil: timeOf(r.GetAccessUntil()), SecurityLevel: int(r.GetSecurityLevel()),
		MinAuthLevel: int(r.GetMinAuthLevel()), MaxConcurrent: int(r.GetMaxConcurrent()), LegacyIPOnly: r.GetLegacyIpOnly(),
		NameRelease: nameRelease(r.GetNameRelease())})
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateAppResponse{App: appPB(a), AppSecret: secret}, nil
}

// GetApp implements AdminService.
func (s *Server) GetApp(ctx context.Context, r *identityv1.GetAppRequest) (*identityv1.App, error) {
	a, err := s.svc.GetApp(ctx, r.GetId())
	if err != nil {
		return nil, err
	}
	return appPB(a), nil
}

// ListApps implements AdminService.
func (s *Server) ListApps(ctx context.Context, r *identityv1.ListAppsRequest) (*identityv1.ListAppsResponse, error) {
	f := identity.AppFilter{Type: r.GetAppType(), Query: r.GetQuery(), Status: identity.AppStatus(r.GetStatus())}
	if r.SecretExpiresWithinSeconds != nil {
		d := seconds(r.GetSecretExpiresWithinSeconds())
		f.SecretExpiresWithin = &d
	}
	list, next, err := s.svc.ListApps(ctx, f, r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListAppsResponse{NextPageToken: next}
	for _, a := range list {
		out.Apps = append(out.Apps, appPB(a))
	}
	return out, nil
}

// UpdateApp implements AdminService.
func (s *Server) UpdateApp(ctx context.Context, r *identityv1.UpdateAppRequest) (*identityv1.App, error) {
	a, err := s.svc.UpdateApp(ctx, r.GetId(), identity.AppUpdate{Mask: r.GetUpdateMask(), Name: r.GetName(),
		Status: identity.AppStatus(r.GetStatus()), IPAllowList: r.GetIpAllowList(), RateLimit: r.GetRateLimit(),
		RateBurst: int(r.GetRateBurst()), ClientCertSHA256: r.GetClientCertSha256(),
		SecretLifetime: seconds(r.GetSecretLifetimeSeconds()), SigningKeys: r.GetSigningKeys(),
		RequireSignatures: r.GetRequireSignedRequests(), GrantedAPIs: r.GetGrantedApis(),
		AccessFrom: timeOf(r.GetAccessFrom()), AccessUntil: timeOf(r.GetAccessUntil()), SecurityLevel: int(r.GetSecurityLevel()),
		MinAuthLevel: int(r.GetMinAuthLevel()), MaxConcurrent: int(r.GetMaxConcurrent()), LegacyIPOnly: r.GetLegacyIpOnly(),
		NameRelease: nameRelease(r.GetNameRelease())})
	if err != nil {
		return nil, err
	}
	return appPB(a), nil
}

// timeOf is the time of an optional timestamp (zero when unset).
func timeOf(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// RotateAppSecret implements AdminService.
func (s *Server) RotateAppSecret(ctx context.Context, r *identityv1.RotateAppSecretRequest) (*identityv1.CreateAppResponse, error) {
	var overlap *time.Duration
	if r.OverlapSeconds != nil {
		d := seconds(r.GetOverlapSeconds())
		overlap = &d
	}
	var ifIssued *time.Time
	if t := r.GetIfSecretIssuedAt(); t != nil {
		at := t.AsTime()
		ifIssued = &at
	}
	a, secret, err := s.svc.RotateAppSecret(ctx, r.GetId(), overlap, ifIssued)
	if err != nil {
		return nil, err
	}
	return &identityv1.CreateAppResponse{App: appPB(a), AppSecret: secret}, nil
}

// CreateAccountLink implements AdminService.
func (s *Server) CreateAccountLink(ctx context.Context, r *identityv1.CreateAccountLinkRequest) (*identityv1.AccountLink, error) {
	l, err := s.svc.CreateLink(ctx, r.GetUserId(), r.GetAppId(), r.GetAppAccountId())
	if err != nil {
		return nil, err
	}
	return linkPB(l), nil
}

// ListAccountLinks implements AdminService.
func (s *Server) ListAccountLinks(ctx context.Context, r *identityv1.ListAccountLinksRequest) (*identityv1.ListAccountLinksResponse, error) {
	list, next, err := s.svc.ListLinks(ctx, identity.LinkFilter{UserID: r.GetUserId(), AppID: r.GetAppId()},
		r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListAccountLinksResponse{NextPageToken: next}
	for _, l := range list {
		out.Links = append(out.Links, linkPB(l))
	}
	return out, nil
}

// DeleteApp implements AdminService.
func (s *Server) DeleteApp(ctx context.Context, r *identityv1.DeleteAppRequest) (*identityv1.DeleteAppResponse, error) {
	if err := s.svc.DeleteApp(ctx, r.GetId()); err != nil {
		return nil, err
	}
	return &identityv1.DeleteAppResponse{}, nil
}

// DeleteOrg implements AdminService.
func (s *Server) DeleteOrg(ctx context.Context, r *identityv1.DeleteOrgRequest) (*identityv1.DeleteOrgResponse, error) {
	if err := s.svc.DeleteOrg(ctx, r.GetId()); err != nil {
		return nil, err
	}
	return &identityv1.DeleteOrgResponse{}, nil
}

// UpdateGroup implements AdminService.
func (s *Server) UpdateGroup(ctx context.Context, r *identityv1.UpdateGroupRequest) (*identityv1.Group, error) {
	return groupOut(s.svc.UpdateGroup(ctx, r.GetId(), r.GetName()))
}

// DeleteGroup implements AdminService.
func (s *Server) DeleteGroup(ctx context.Context, r *identityv1.DeleteGroupRequest) (*identityv1.DeleteGroupResponse, error) {
	if err := s.svc.DeleteGroup(ctx, r.GetId()); err != nil {
		return nil, err
	}
	return &identityv1.DeleteGroupResponse{}, nil
}

// DeleteUser implements AdminService.
func (s *Server) DeleteUser(ctx context.Context, r *identityv1.DeleteUserRequest) (*identityv1.DeleteUserResponse, error) {
	if err := s.svc.DeleteUser(ctx, r.GetId()); err != nil {
		return nil, err
	}
	return &identityv1.DeleteUserResponse{}, nil
}

// DeleteAccountLink implements AdminService.
func (s *Server) DeleteAccountLink(ctx context.Context, r *identityv1.DeleteAccountLinkRequest) (*identityv1.DeleteAccountLinkResponse, error) {
	if err := s.svc.DeleteLink(ctx, r.GetId()); err != nil {
		return nil, err
	}
	return &identityv1.DeleteAccountLinkResponse{}, nil
}

// ---- conversion ----

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	// Stored times have millisecond precision; answers made before a
	// write (create) show the same time as later reads.
	return timestamppb.New(t.Truncate(time.Millisecond))
}

func summary(u *identity.User) *identityv1.UserSummary {
	return &identityv1.UserSummary{Id: u.ID, LoginName: u.LoginName, DisplayName: u.DisplayName, OrgId: u.OrgID}
}

func orgPB(o *identity.Org) *identityv1.Org {
	return &identityv1.Org{Id: o.ID, Code: o.Code, Name: o.Name, ParentId: o.ParentID,
		Status: identityv1.Status(o.Status), CreateTime: ts(o.CreatedAt), UpdateTime: ts(o.UpdatedAt)}
}

func orgOut(o *identity.Org, err error) (*identityv1.Org, error) {
	if err != nil {
		return nil, err
	}
	return orgPB(o), nil
}

func (s *Server) userPB(u *identity.User) *identityv1.User {
	now := time.Now()
	out := &identityv1.User{Id: u.ID, LoginName: u.LoginName, DisplayName: u.DisplayName,
		IdType: identityv1.IdType(u.IDType), IdNumberMasked: u.IDNumberMask, PhoneMasked: u.PhoneMask,
		Email: u.Email, OrgId: u.OrgID, Status: identityv1.UserStatus(u.Status), FeatureCode: u.FeatureCode,
		Locked: u.Locked(now), MustChangePassword: u.MustChange, PasswordNeverExpires: u.NeverExpires,
		UserCannotChangePassword: u.CannotChange, PasswordChangedAt: ts(u.PasswordChangedAt), IsAdmin: u.IsAdmin,
		CreateTime: ts(u.CreatedAt), UpdateTime: ts(u.UpdatedAt), PasswordOnly: u.PasswordOnly, MinAuthLevel: int32(u.MinAuthLevel),
		UserType: identityv1.UserType(u.UserType.Norm())}
	if out.Locked {
		out.LockedUntil = ts(u.LockedUntil)
	}
	if u.DisabledCentre != "" {
		out.DisabledByCentre, out.DisabledByCentreTime, out.DisabledByCentreActor = u.DisabledCentre, ts(u.DisabledCentreAt), u.DisabledCentreBy
	}
	if at, expired := s.svc.PasswordExpiry(u, now); !at.IsZero() {
		out.PasswordExpireTime, out.PasswordExpired = ts(at), expired
	}
	return out
}

func (s *Server) userOut(u *identity.User, err error) (*identityv1.User, error) {
	if err != nil {
		return nil, err
	}
	return s.userPB(u), nil
}

func groupPB(g *identity.Group) *identityv1.Group {
	return &identityv1.Group{Id: g.ID, Code: g.Code, Name: g.Name, OrgId: g.OrgID, MemberIds: g.MemberIDs,
		CreateTime: ts(g.CreatedAt)}
}

func groupOut(g *identity.Group, err error) (*identityv1.Group, error) {
	if err != nil {
		return nil, err
	}
	return groupPB(g), nil
}

func appPB(a *identity.App) *identityv1.App {
	return &identityv1.App{Id: a.ID, AppType: a.Type, AppCode: a.Code, Name: a.Name,
		Status: identityv1.AppStatus(a.Status), IpAllowList: a.IPAllowList, RateLimit: a.RateLimit,
		RateBurst: int32(a.RateBurst), CreateTime: ts(a.CreatedAt), UpdateTime: ts(a.UpdatedAt),
		ClientCertSha256: a.ClientCertSHA256, SecretLifetimeSeconds: int64(a.SecretLifetime / time.Second),
		SecretIssueTime: ts(a.SecretIssuedAt), SecretExpireTime: ts(a.SecretExpires),
		SigningKeys: signingKeysPB(a), RequireSignedRequests: a.RequireSignatures, GrantedApis: a.GrantedAPIs,
		AccessFrom: ts(a.AccessFrom), AccessUntil: ts(a.AccessUntil), SecurityLevel: int32(max(a.SecurityLevel, 1)),
		MinAuthLevel: int32(a.MinAuthLevel), MaxConcurrent: int32(a.MaxConcurrent), LegacyIpOnly: a.LegacyIPOnly,
		NameRelease: nameReleasePB(a.NameRelease)}
}

// nameRelease is the domain's value of an application's name_release
// ("full" is the default, "").
func nameRelease(v string) string {
	if v == "full" {
		return identity.NameReleaseFull
	}
	return v
}

// nameReleasePB is the wire value of an application's name release.
func nameReleasePB(v string) string {
	if v == identity.NameReleaseFull {
		return "full"
	}
	return v
}

// signingKeysPB shows a's request signing keys: thumbprint, algorithm, the
// public key and when it was added.
func signingKeysPB(a *identity.App) []*identityv1.SigningKey {
	var out []*identityv1.SigningKey
	for _, sk := range a.SigningKeys {
		if k, err := reqsig.ParseKey(sk.PEM); err == nil {
			out = append(out, &identityv1.SigningKey{Thumbprint: k.Thumbprint, Algorithm: k.Algorithm, PublicKeyPem: k.PEM,
				AddTime: ts(sk.AddedAt), ExpireTime: ts(sk.ExpiresAt)})
		}
	}
	return out
}

// seconds is a request's count of seconds as a duration, saturated (a
// count beyond what a duration holds does not wrap around into a valid
// looking one: the domain refuses it as out of range).
func seconds(v int64) time.Duration {
	const limit = int64(math.MaxInt64 / time.Second)
	switch {
	case v > limit:
		return math.MaxInt64
	case v < -limit:
		return math.MinInt64
	}
	return time.Duration(v) * time.Second
}

func linkPB(l *identity.AccountLink) *identityv1.AccountLink {
	return &identityv1.AccountLink{Id: l.ID, UserId: l.UserID, AppId: l.AppID, AppAccountId: l.AppAccountID,
		Status: identityv1.Status(l.Status), CreateTime: ts(l.CreatedAt)}
}
