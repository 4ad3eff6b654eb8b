// Package server adapts the ticket domain to gRPC: thin handlers, proto
// conversion and caller authentication.
package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

func init() {
	apierr.Register(apierr.Reason{Name: "UNKNOWN_TICKET_METHOD", Code: apierr.Unauthenticated,
		Doc: "A method the ticket service does not know how to authenticate callers for."})
}

// Apps checks that an application exists (identity's GetApp with the
// administrator's token) before a service is registered for it.
type Apps interface {
	CheckApp(ctx context.Context, appID string) error
}

// Model checks that a service's required permission ("resource:operation")
// names a resource and operation its application defines in authz, before
// the service is registered: a rule naming nothing would refuse everyone.
type Model interface {
	CheckPermission(ctx context.Context, appID, permission string) error
}

// WithModel sets the check of required permissions (without it they are
// not checked against the model).
func (s *Server) WithModel(m Model) *Server {
	s.model = m
	return s
}

// checkRule checks d's required permission against the model.
func (s *Server) checkRule(ctx context.Context, d *ticketv1.ServiceDefinition) error {
	if s.model == nil || d.GetRequiredPermission() == "" {
		return nil
	}
	return s.model.CheckPermission(ctx, d.GetAppId(), d.GetRequiredPermission())
}

// authorize asks authz whether the calling administrator (CallerAuth put
// them in ctx) may do p, on the person target ("" if none).
func (s *Server) authorize(ctx context.Context, p adminauth.Perm, target string) error {
	return s.admins.Authorize(ctx, adminauth.From(ctx), p, target)
}

// Server implements TicketService and TicketAdminService.
type Server struct {
	ticketv1.UnimplementedTicketServiceServer
	ticketv1.UnimplementedTicketAdminServiceServer
	ticketv1.UnimplementedServiceRegistryServiceServer
	svc    *ticket.Service
	admins adminauth.Checker
	apps   Apps
	attrs  Attributes
	model  Model
}

// Attributes answers what a validation releases of a person to an
// application (identity's PersonAttributes, cached).
type Attributes interface {
	Attributes(ctx context.Context, userID, appID string) (*ticketv1.PersonAttributes, error)
}

// WithAttributes sets where validations asking for attributes get them
// (without it they get none).
func (s *Server) WithAttributes(a Attributes) *Server {
	s.attrs = a
	return s
}

// New wraps svc; admins decides administrator calls (ticket.services,
// ticket.sessions), apps checks the applications of registered services.
func New(svc *ticket.Service, admins adminauth.Checker, apps Apps) *Server {
	return &Server{svc: svc, admins: admins, apps: apps}
}

// Register adds the services to g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	ticketv1.RegisterTicketServiceServer(g, s)
	ticketv1.RegisterTicketAdminServiceServer(g, s)
	ticketv1.RegisterServiceRegistryServiceServer(g, s)
}

// CallerAuth authenticates callers: ValidateServiceTicket is open (the
// ticket is the credential, as in CAS), the other TicketService calls are
// for UIAS components only, TicketAdminService and ServiceRegistryService
// calls carry an administrator token (pkg/adminauth; the handlers ask
// authz for ticket.sessions / ticket.services).
type CallerAuth struct {
	Admins adminauth.Checker
}

// AuthenticateCaller implements grpcx.CallerAuth.
func (a CallerAuth) AuthenticateCaller(ctx context.Context, method string) (context.Context, error) {
	c := &caller.Caller{ClientIP: grpcx.ClientIP(ctx), RequestID: grpcx.RequestID(ctx), ClientCert: grpcx.ClientCertSHA256(ctx)}
	o := grpcx.OriginFrom(ctx)
	switch {
	case method == ticketv1.TicketService_ValidateServiceTicket_FullMethodName:
	case strings.HasPrefix(method, "/uias.ticket.v1.TicketService/"):
		if !grpcx.FromComponent(ctx) {
			return nil, ticket.ErrComponentsOnly
		}
		c.Principal = o.Principal
	case strings.HasPrefix(method, "/uias.ticket.v1.TicketAdminService/"),
		strings.HasPrefix(method, "/uias.ticket.v1.ServiceRegistryService/"),
		strings.HasPrefix(method, "/uias.ticket.v1.TicketSessionsService/"):
		ctx, _, err := adminauth.AuthenticateCall(ctx, a.Admins)
		return ctx, err
	case strings.HasPrefix(method, "/grpc.health.v1.Health/"), strings.HasPrefix(method, "/grpc.reflection."):
	default:
		return nil, apierr.New(apierr.Unauthenticated, "UNKNOWN_TICKET_METHOD", "unknown method")
	}
	return caller.With(ctx, c), nil
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func sessionPB(s *ticket.Session, idle time.Duration) *ticketv1.Session {
	out := &ticketv1.Session{Id: s.ID, UserId: s.UserID, Login: s.Login, AuthLevel: int32(s.AuthLevel), AuthMethod: ticketv1.AuthMethod(s.AuthMethod),
		CreatedAt: ts(s.CreatedAt), LastUsedAt: ts(s.LastUsedAt), ExpiresAt: ts(s.Expiry(idle)), ClientIp: s.ClientIP, Peer: s.Peer,
		AuthTime: ts(s.AuthTime())}
	seen := map[string]bool{}
	for _, u := range s.Services {
		if !seen[u.Service] {
			seen[u.Service] = true
			out.Services = append(out.Services, u.Service)
		}
	}
	return out
}

// CreateSession implements TicketService.
func (s *Server) CreateSession(ctx context.Context, r *ticketv1.CreateSessionRequest) (*ticketv1.CreateSessionResponse, error) {
	n := ticket.NewSession{UserID: r.GetUserId(), Login: r.GetLogin(), OrgID: r.GetOrgId(), AuthLevel: int(r.GetAuthLevel()),
		AuthMethod: int(r.GetAuthMethod()), ClientIP: clientIP(ctx), Peer: r.GetPeer(),
		PeerSID: r.GetPeerSid()}
	if t := r.GetAuthTime(); t != nil {
		n.AuthAt = t.AsTime()
	}
	if t := r.GetPasswordChangedAt(); t != nil {
		n.PasswordAt = t.AsTime()
	}
	if t := r.GetStateChangedAt(); t != nil {
		n.StateAt = t.AsTime()
	}
	if r.GetReplaceTgt() != "" {
		tgt, sess, replaced, err := s.svc.RaiseSession(ctx, r.GetReplaceTgt(), n)
		if err != nil {
			return nil, err
		}
		return &ticketv1.CreateSessionResponse{Tgt: tgt, Session: sessionPB(sess, s.svc.Config().TGTIdle), Replaced: replaced}, nil
	}
	tgt, sess, err := s.svc.CreateSession(ctx, n)
	if err != nil {
		return nil, err
	}
	return &ticketv1.CreateSessionResponse{Tgt: tgt, Session: sessionPB(sess, s.svc.Config().TGTIdle)}, nil
}

// IssuePeerAssertion implements TicketService.
func (s *Server) IssuePeerAssertion(ctx context.Context, r *ticketv1.IssuePeerAssertionRequest) (*ticketv1.IssuePeerAssertionResponse, error) {
	a, u, err := s.svc.IssuePeerAssertion(ctx, r.GetTgt(), r.GetAudience(), r.GetNonce())
	if err != nil {
		return nil, err
	}
	return &ticketv1.IssuePeerAssertionResponse{Assertion: a, AcceptUrl: u}, nil
}

// RedeemPeerAssertion implements TicketService.
func (s *Server) RedeemPeerAssertion(ctx context.Context, r *ticketv1.RedeemPeerAssertionRequest) (*ticketv1.RedeemPeerAssertionResponse, error) {
	a, err := s.svc.RedeemPeerAssertion(ctx, r.GetAssertion(), r.GetNonce())
	if err != nil {
		return nil, err
	}
	return &ticketv1.RedeemPeerAssertionResponse{Peer: a.Peer, UserId: a.UserID, AuthLevel: int32(a.AuthLevel),
		AuthMethod: ticketv1.AuthMethod(a.AuthMethod), AuthTime: ts(a.AuthTime), PeerSid: a.PeerSID}, nil
}

// PeerLogout implements TicketService.
func (s *Server) PeerLogout(ctx context.Context, r *ticketv1.PeerLogoutRequest) (*ticketv1.PeerLogoutResponse, error) {
	n, err := s.svc.PeerLogout(ctx, r.GetLogoutToken())
	if err != nil {
		return nil, err
	}
	return &ticketv1.PeerLogoutResponse{Ended: int32(min(n, 1<<20))}, nil // #nosec G115 -- bounded
}

// GetSession implements TicketService.
func (s *Server) GetSession(ctx context.Context, r *ticketv1.GetSessionRequest) (*ticketv1.Session, error) {
	sess, err := s.svc.GetSession(ctx, r.GetTgt())
	if err != nil {
		return nil, err
	}
	return sessionPB(sess, s.svc.Config().TGTIdle), nil
}

// DestroySession implements TicketService.
func (s *Server) DestroySession(ctx context.Context, r *ticketv1.DestroySessionRequest) (*ticketv1.DestroySessionResponse, error) {
	sess, err := s.svc.Logout(ctx, r.GetTgt())
	if err != nil {
		return nil, err
	}
	if sess == nil {
		return &ticketv1.DestroySessionResponse{}, nil
	}
	return &ticketv1.DestroySessionResponse{Ended: true, Peer: sess.Peer}, nil
}

// IssueServiceTicket implements TicketService.
func (s *Server) IssueServiceTicket(ctx context.Context, r *ticketv1.IssueServiceTicketRequest) (*ticketv1.IssueServiceTicketResponse, error) {
	st, exp, err := s.svc.IssueServiceTicketConsent(ctx, r.GetTgt(), r.GetService(), r.GetFromNewLogin(), r.GetConsentNonce())
	if err != nil {
		return nil, err
	}
	return &ticketv1.IssueServiceTicketResponse{Ticket: st, ExpiresAt: ts(exp)}, nil
}

var casCodes = map[ticket.CasCode]ticketv1.CasCode{
	ticket.CodeInvalidRequest:          ticketv1.CasCode_CAS_CODE_INVALID_REQUEST,
	ticket.CodeInvalidTicketSpec:       ticketv1.CasCode_CAS_CODE_INVALID_TICKET_SPEC,
	ticket.CodeUnauthorizedServiceProx: ticketv1.CasCode_CAS_CODE_UNAUTHORIZED_SERVICE_PROXY,
	ticket.CodeInvalidProxyCallback:    ticketv1.CasCode_CAS_CODE_INVALID_PROXY_CALLBACK,
	ticket.CodeInvalidTicket:           ticketv1.CasCode_CAS_CODE_INVALID_TICKET,
	ticket.CodeInvalidService:          ticketv1.CasCode_CAS_CODE_INVALID_SERVICE,
	ticket.CodeInternalError:           ticketv1.CasCode_CAS_CODE_INTERNAL_ERROR,
	ticket.CodeUnauthorizedService:     ticketv1.CasCode_CAS_CODE_UNAUTHORIZED_SERVICE,
}

// CasCodeOf maps a wire code back to the domain's (for the CAS edge).
func CasCodeOf(c ticketv1.CasCode) ticket.CasCode {
	for k, v := range casCodes {
		if v == c {
			return k
		}
	}
	return ticket.CodeInternalError
}

// ValidateServiceTicket implements TicketService.
func (s *Server) ValidateServiceTicket(ctx context.Context, r *ticketv1.ValidateServiceTicketRequest) (*ticketv1.ValidateServiceTicketResponse, error) {
	if r.GetIssuePgt() && !grpcx.FromComponent(ctx) {
		// A PGT goes to the pgtUrl only, over verified HTTPS (CAS 3.0
		// §2.5.4), which the CAS edge calls: never in an answer to an
		// application. Refused before the ticket is used.
		return nil, ticket.ErrPGTComponentsOnly
	}
	v, err := s.svc.ValidateTicket(ctx, ticket.Validate{Ticket: r.GetTicket(), Service: r.GetService(), Renew: r.GetRenew(),
		AllowProxy: r.GetAllowProxy(), IssuePGT: r.GetIssuePgt(), PGTURL: r.GetPgtUrl(), Attributes: r.GetAttributes()})
	if err != nil {
		return nil, err
	}
	if !v.Valid {
		return &ticketv1.ValidateServiceTicketResponse{Code: casCodes[v.Code], Message: v.Message}, nil
	}
	t := v.Ticket
	// The validation is the application's the ticket was issued for (its
	// registered service): the per-application metrics count it there.
	grpcx.NameApp(ctx, t.AppID)
	out := &ticketv1.ValidateServiceTicketResponse{Valid: true, UserId: t.UserID, Login: t.Login, AuthLevel: int32(t.AuthLevel),
		AuthMethod: ticketv1.AuthMethod(t.AuthMethod),
		AppId:      t.AppID, FromNewLogin: t.FromNewLogin, AuthenticatedAt: ts(t.AuthTime), Proxies: t.Proxies,
		Pgt: v.PGT, PgtIou: v.PGTIOU, SessionId: t.SessionID}
	if a := v.Authorization; a != nil {
		out.Authorization = &ticketv1.ReleasedAuthorization{Roles: a.Roles, Permissions: a.Permissions,
			RolesReleased: a.RolesReleased, PermissionsReleased: a.PermissionsReleased}
	}
	if r.GetAttributes() && s.attrs != nil {
		// Identity not answering leaves them out: the edge answers
		// without the person's attributes (logged there).
		if a, err := s.attrs.Attributes(ctx, t.UserID, t.AppID); err == nil {
			out.Attributes = a
		}
	}
	if p := v.Policy; p != nil {
		out.Release = &ticketv1.AttributeRelease{Attributes: p.Release, Masked: p.Masked}
		applyPolicy(p, out)
	}
	return out, nil
}

// applyPolicy filters and masks the person's attributes and authorization
// of a validation's answer by its service's policy (the edge applies it
// again to the whole list it answers, with the attributes it adds).
func applyPolicy(p *ticket.AttributePolicy, out *ticketv1.ValidateServiceTicketResponse) {
	if a := out.GetAttributes(); a != nil {
		c := &ticketv1.PersonAttributes{}
		c.Login, _ = p.Value("login", a.GetLogin())
		c.DisplayName, _ = p.Value("displayName", a.GetDisplayName())
		c.OrgId, _ = p.Value("orgId", a.GetOrgId())
		c.OrgName, _ = p.Value("orgName", a.GetOrgName())
		c.AppAccountId, _ = p.Value("appAccountId", a.GetAppAccountId())
		c.UserType, _ = p.Value("userType", a.GetUserType())
		if p.Releases("groups") || p.Releases("memberOf") {
			c.Groups = a.GetGroups()
		}
		out.Attributes = c
	}
	if a := out.GetAuthorization(); a != nil {
		if !p.Releases("roles") {
			a.Roles, a.RolesReleased = nil, false
		}
		if !p.Releases("permissions") {
			a.Permissions, a.PermissionsReleased = nil, false
		}
	}
}

// RevokeProxyGrantingTicket implements TicketService.
func (s *Server) RevokeProxyGrantingTicket(ctx context.Context, r *ticketv1.RevokeProxyGrantingTicketRequest) (*ticketv1.RevokeProxyGrantingTicketResponse, error) {
	if err := s.svc.RevokePGT(ctx, r.GetPgt()); err != nil {
		return nil, err
	}
	return &ticketv1.RevokeProxyGrantingTicketResponse{}, nil
}

// ValidateLegacyTicket implements TicketService. The calling application's
// address is the call's origin (the edge's client address).
func (s *Server) ValidateLegacyTicket(ctx context.Context, r *ticketv1.ValidateLegacyTicketRequest) (*ticketv1.ValidateLegacyTicketResponse, error) {
	v, err := s.svc.ValidateLegacy(ctx, ticket.LegacyValidate{Ticket: r.GetTicket(), AppID: r.GetAppId(),
		AppSecret: r.GetAppSecret(), ClientIP: clientIP(ctx), ClientCert: grpcx.ClientCertSHA256(ctx)})
	if err != nil {
		return nil, err
	}
	return &ticketv1.ValidateLegacyTicketResponse{Result: string(v.Result), Message: v.Message, Account: v.Account,
		Password: v.Password, LoggedIn: v.LoggedIn, UserId: v.UserID, AppId: v.AppID}, nil
}

// AssociateAccount implements TicketService.
func (s *Server) AssociateAccount(ctx context.Context, r *ticketv1.AssociateAccountRequest) (*ticketv1.AssociateAccountResponse, error) {
	if err := s.svc.Associate(ctx, r.GetTgt(), r.GetAppId(), r.GetAccount(), r.GetPassword()); err != nil {
		return nil, err
	}
	return &ticketv1.AssociateAccountResponse{}, nil
}

// PortalEntries implements TicketService.
func (s *Server) PortalEntries(ctx context.Context, r *ticketv1.PortalEntriesRequest) (*ticketv1.PortalEntriesResponse, error) {
	list, err := s.svc.PortalEntries(ctx, r.GetTgt())
	if err != nil {
		return nil, err
	}
	out := &ticketv1.PortalEntriesResponse{}
	for _, e := range list {
		out.Entries = append(out.Entries, &ticketv1.PortalEntry{AppId: e.AppID, Name: e.Name, LaunchUrl: e.LaunchURL,
			Account: e.Account, LegacyScheme: int32(e.LegacyScheme), Associable: e.Associable})
	}
	return out, nil
}

// IssueProxyTicket implements TicketService.
func (s *Server) IssueProxyTicket(ctx context.Context, r *ticketv1.IssueProxyTicketRequest) (*ticketv1.IssueProxyTicketResponse, error) {
	pt, code, msg, err := s.svc.IssueProxyTicket(ctx, r.GetPgt(), r.GetTargetService())
	if err != nil {
		return nil, err
	}
	return &ticketv1.IssueProxyTicketResponse{Ticket: pt, Code: casCodes[code], Message: msg}, nil
}

// ListUserSessions implements TicketAdminService.
func (s *Server) ListUserSessions(ctx context.Context, r *ticketv1.ListUserSessionsRequest) (*ticketv1.ListUserSessionsResponse, error) {
	if err := s.authorize(ctx, adminauth.TicketSessionsRead, r.GetUserId()); err != nil {
		return nil, err
	}
	list, err := s.svc.UserSessions(ctx, r.GetUserId())
	if err != nil {
		return nil, err
	}
	out := &ticketv1.ListUserSessionsResponse{}
	for _, sess := range list {
		out.Sessions = append(out.Sessions, sessionPB(sess, s.svc.Config().TGTIdle))
	}
	return out, nil
}

// RevokeUserSessions implements TicketAdminService.
func (s *Server) RevokeUserSessions(ctx context.Context, r *ticketv1.RevokeUserSessionsRequest) (*ticketv1.RevokeUserSessionsResponse, error) {
	if err := s.authorize(ctx, adminauth.TicketSessionsRevoke, r.GetUserId()); err != nil {
		return nil, err
	}
	n, err := s.svc.RevokeUserSessions(ctx, r.GetUserId(), r.GetSessionId(), "ADMIN_REVOKED")
	if err != nil {
		return nil, err
	}
	return &ticketv1.RevokeUserSessionsResponse{Ended: int32(n)}, nil
}

// ---- service registry ----

func servicePB(r *ticket.RegisteredService) *ticketv1.RegisteredService {
	return &ticketv1.RegisteredService{Id: r.ID, AppId: r.AppID, Name: r.Name, Url: r.URL, Pattern: r.Pattern,
		LogoutUrl: r.LogoutURL, MinAuthLevel: int32(r.MinAuthLevel), AllowProxy: r.AllowProxy, Enabled: r.Enabled,
		CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt), LegacyScheme: int32(r.LegacyScheme),
		LegacyRequireSecret: r.LegacyRequireSecret, RequireAccountLink: r.RequireAccountLink, RequiredPermission: r.RequiredPermission,
		CertificateRequired: r.CertificateRequired, ReleaseRoles: r.ReleaseRoles, ReleasePermissions: r.ReleasePermissions,
		ConsentRequired: r.ConsentRequired, ConsentTtlSeconds: int64(r.ConsentTTL / time.Second),
		ReleaseAttributes: r.ReleaseAttributes, MaskedAttributes: r.MaskedAttributes}
}

func serviceDef(d *ticketv1.ServiceDefinition) ticket.RegisteredService {
	return ticket.RegisteredService{AppID: d.GetAppId(), Name: d.GetName(), URL: d.GetUrl(), Pattern: d.GetPattern(),
		LogoutURL: d.GetLogoutUrl(), MinAuthLevel: int(d.GetMinAuthLevel()), AllowProxy: d.GetAllowProxy(), Enabled: !d.GetDisabled(),
		LegacyScheme: int(d.GetLegacyScheme()), LegacyRequireSecret: d.GetLegacyRequireSecret(),
		RequireAccountLink: d.GetRequireAccountLink(), RequiredPermission: d.GetRequiredPermission(),
		CertificateRequired: d.GetCertificateRequired(), ReleaseRoles: d.GetReleaseRoles(), ReleasePermissions: d.GetReleasePermissions(),
		ConsentRequired: d.GetConsentRequired(), ConsentTTL: time.Duration(d.GetConsentTtlSeconds()) * time.Second,
		ReleaseAttributes: d.GetReleaseAttributes(), MaskedAttributes: d.GetMaskedAttributes(), OpenAccess: d.GetOpenAccess()}
}

// ---- consent and the person's own applications ----

func consentQuery(r *ticketv1.ConsentRequest) ticket.ConsentQuery {
	return ticket.ConsentQuery{TGT: r.GetTgt(), ClientID: r.GetClientId(), RedirectURI: r.GetRedirectUri(), Scope: r.GetScope(),
		Force: r.GetForce()}
}

// ConsentPrompt implements TicketService.
func (s *Server) ConsentPrompt(ctx context.Context, r *ticketv1.ConsentRequest) (*ticketv1.ConsentPromptResponse, error) {
	p, err := s.svc.ConsentNeeded(ctx, consentQuery(r))
	if err != nil {
		return nil, err
	}
	return &ticketv1.ConsentPromptResponse{Needed: p.Needed, ServiceName: p.ServiceName, TtlSeconds: int64(p.TTL / time.Second),
		Until: ts(p.Until), Granted: p.Granted}, nil
}

// AnswerConsent implements TicketService.
func (s *Server) AnswerConsent(ctx context.Context, r *ticketv1.AnswerConsentRequest) (*ticketv1.AnswerConsentResponse, error) {
	q := consentQuery(r.GetRequest())
	if !r.GetAllow() {
		return &ticketv1.AnswerConsentResponse{}, s.svc.DenyConsent(ctx, q)
	}
	c, err := s.svc.GrantConsent(ctx, q)
	if err != nil {
		return nil, err
	}
	return &ticketv1.AnswerConsentResponse{Scope: c.Scope, ExpiresAt: ts(c.ExpiresAt)}, nil
}

// MyApplications implements TicketService.
func (s *Server) MyApplications(ctx context.Context, r *ticketv1.MyApplicationsRequest) (*ticketv1.MyApplicationsResponse, error) {
	list, err := s.svc.MyApplications(ctx, r.GetTgt())
	if err != nil {
		return nil, err
	}
	out := &ticketv1.MyApplicationsResponse{}
	for _, a := range list {
		out.Applications = append(out.Applications, &ticketv1.MyApplication{AppId: a.AppID, Name: a.Name, Account: a.Account,
			Scope: a.Scope, GrantedAt: ts(a.GrantedAt), ExpiresAt: ts(a.ExpiresAt), SignedInAt: ts(a.SignedInAt), Revocable: a.Revocable()})
	}
	return out, nil
}

// RevokeMyApplication implements TicketService.
func (s *Server) RevokeMyApplication(ctx context.Context, r *ticketv1.RevokeMyApplicationRequest) (*ticketv1.RevokeMyApplicationResponse, error) {
	if err := s.svc.RevokeMyApplication(ctx, r.GetTgt(), r.GetAppId()); err != nil {
		return nil, err
	}
	return &ticketv1.RevokeMyApplicationResponse{}, nil
}

// MatchService implements TicketService.
func (s *Server) MatchService(ctx context.Context, r *ticketv1.MatchServiceRequest) (*ticketv1.RegisteredService, error) {
	rs, err := s.svc.Registry().Match(ctx, r.GetService())
	if err != nil {
		return nil, err
	}
	return servicePB(rs), nil
}

// CreateService implements ServiceRegistryService.
func (s *Server) CreateService(ctx context.Context, r *ticketv1.CreateServiceRequest) (*ticketv1.RegisteredService, error) {
	if err := s.authorize(ctx, adminauth.TicketServicesWrite, ""); err != nil {
		return nil, err
	}
	if err := s.apps.CheckApp(ctx, r.GetService().GetAppId()); err != nil {
		return nil, err
	}
	if err := s.checkRule(ctx, r.GetService()); err != nil {
		return nil, err
	}
	rs, err := s.svc.CreateRegisteredService(ctx, serviceDef(r.GetService()))
	if err != nil {
		return nil, err
	}
	return servicePB(rs), nil
}

// GetService implements ServiceRegistryService.
func (s *Server) GetService(ctx context.Context, r *ticketv1.GetServiceRequest) (*ticketv1.RegisteredService, error) {
	if err := s.authorize(ctx, adminauth.TicketServicesRead, ""); err != nil {
		return nil, err
	}
	rs, err := s.svc.GetRegisteredService(ctx, r.GetId())
	if err != nil {
		return nil, err
	}
	return servicePB(rs), nil
}

// ListServices implements ServiceRegistryService.
func (s *Server) ListServices(ctx context.Context, r *ticketv1.ListServicesRequest) (*ticketv1.ListServicesResponse, error) {
	if err := s.authorize(ctx, adminauth.TicketServicesRead, ""); err != nil {
		return nil, err
	}
	list, err := s.svc.ListRegisteredServices(ctx, r.GetAppId())
	if err != nil {
		return nil, err
	}
	out := &ticketv1.ListServicesResponse{}
	for _, rs := range list {
		out.Services = append(out.Services, servicePB(rs))
	}
	return out, nil
}

// UpdateService implements ServiceRegistryService.
func (s *Server) UpdateService(ctx context.Context, r *ticketv1.UpdateServiceRequest) (*ticketv1.RegisteredService, error) {
	if err := s.authorize(ctx, adminauth.TicketServicesWrite, ""); err != nil {
		return nil, err
	}
	if err := s.apps.CheckApp(ctx, r.GetService().GetAppId()); err != nil {
		return nil, err
	}
	if err := s.checkRule(ctx, r.GetService()); err != nil {
		return nil, err
	}
	rs, err := s.svc.UpdateRegisteredService(ctx, r.GetId(), serviceDef(r.GetService()))
	if err != nil {
		return nil, err
	}
	return servicePB(rs), nil
}

// DeleteService implements ServiceRegistryService.
func (s *Server) DeleteService(ctx context.Context, r *ticketv1.DeleteServiceRequest) (*ticketv1.DeleteServiceResponse, error) {
	if err := s.authorize(ctx, adminauth.TicketServicesWrite, ""); err != nil {
		return nil, err
	}
	if err := s.svc.DeleteRegisteredService(ctx, r.GetId()); err != nil {
		return nil, err
	}
	return &ticketv1.DeleteServiceResponse{}, nil
}

// IdentityApps checks applications with identity: GetApp with the call's
// bearer token.
type IdentityApps struct {
	Apps identityv1.AdminServiceClient
}

// CheckApp implements Apps.
func (a IdentityApps) CheckApp(ctx context.Context, appID string) error {
	_, err := a.Apps.GetApp(adminContext(ctx), &identityv1.GetAppRequest{Id: appID})
	return err
}

// AuthzModel checks required permissions with authz's model: ListResources
// of the application, with the call's bearer token (registering services is
// the system administrator's, who reads the model). When authz cannot
// answer, or refuses the token, nothing is checked.
type AuthzModel struct {
	Admin authzv1.AuthzAdminServiceClient
}

// CheckPermission implements Model. A malformed permission is left to the
// service's own check (BAD_SERVICE_DEFINITION).
func (m AuthzModel) CheckPermission(ctx context.Context, appID, permission string) error {
	res, op, ok := strings.Cut(permission, ":")
	if !ok {
		return nil
	}
	l, err := m.Admin.ListResources(adminContext(ctx), &authzv1.ListResourcesRequest{App: appID})
	switch {
	case err == nil:
	case apierr.CodeOf(err) == apierr.PermissionDenied, apierr.CodeOf(err) == apierr.Unavailable, apierr.CodeOf(err) == apierr.Unimplemented:
		// The model cannot be read here (authz down or elsewhere, or the
		// administrator's token not taken there): the check is a help to
		// the administrator, not a guard; the rule is registered as given.
		return nil
	default:
		return err
	}
	for _, r := range l.GetResources() {
		if r.GetCode() == res && slices.Contains(r.GetOperations(), op) {
			return nil
		}
	}
	return apierr.New(apierr.InvalidArgument, "BAD_SERVICE_DEFINITION", fmt.Sprintf(
		"required_permission %q: application %s defines no resource %q with the operation %q in authz, so nobody could be granted it "+
			"(uias ctl authz resources %s lists what it defines; define the resource first)", permission, appID, res, op, appID))
}

// adminContext carries the call's bearer token to identity.
func adminContext(ctx context.Context) context.Context {
	out := metadata.MD{}
	if tok := grpcx.BearerToken(ctx); tok != "" {
		out.Set("authorization", "Bearer "+tok)
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// IssueAuthorizationCode implements TicketService.
func (s *Server) IssueAuthorizationCode(ctx context.Context, r *ticketv1.IssueAuthorizationCodeRequest) (*ticketv1.IssueAuthorizationCodeResponse, error) {
	code, exp, err := s.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: r.GetTgt(), RedirectURI: r.GetRedirectUri(),
		FromNewLogin: r.GetFromNewLogin(), Binding: ticket.OIDCBinding{ClientID: r.GetClientId(), Scope: r.GetScope(),
			Nonce: r.GetNonce(), Challenge: r.GetCodeChallenge(), Issuer: r.GetIssuer()}})
	if err != nil {
		return nil, err
	}
	return &ticketv1.IssueAuthorizationCodeResponse{Code: code, ExpiresAt: ts(exp)}, nil
}

// oidcClient is the client a call names, with the address it called from
// (the call's origin: the edge's client address).
func oidcClient(ctx context.Context, id, secret string) ticket.Client {
	return ticket.Client{ID: id, Secret: secret, IP: clientIP(ctx), Cert: grpcx.ClientCertSHA256(ctx)}
}

// clientIP is the call's origin address (the edge's client), "" if none.
func clientIP(ctx context.Context) string {
	if a := grpcx.ClientIP(ctx); a.IsValid() {
		return a.String()
	}
	return ""
}

// ExchangeAuthorizationCode implements TicketService.
func (s *Server) ExchangeAuthorizationCode(ctx context.Context, r *ticketv1.ExchangeAuthorizationCodeRequest) (*ticketv1.TokenResponse, error) {
	t, err := s.svc.ExchangeCode(ctx, ticket.Exchange{Client: oidcClient(ctx, r.GetClientId(), r.GetClientSecret()),
		Code: r.GetCode(), RedirectURI: r.GetRedirectUri(), CodeVerifier: r.GetCodeVerifier(), Issuer: r.GetIssuer()})
	if err != nil {
		return nil, err
	}
	grpcx.NameApp(ctx, r.GetClientId()) // the client authenticated: an App_ID
	return tokenResponse(t), nil
}

func tokenResponse(t *ticket.Tokens) *ticketv1.TokenResponse {
	return &ticketv1.TokenResponse{AccessToken: t.AccessToken, TokenType: "Bearer", ExpiresIn: t.ExpiresIn, IdToken: t.IDToken,
		Scope: t.Scope, RefreshToken: t.RefreshToken}
}

// RefreshAccessToken implements TicketService.
func (s *Server) RefreshAccessToken(ctx context.Context, r *ticketv1.RefreshAccessTokenRequest) (*ticketv1.TokenResponse, error) {
	t, err := s.svc.Refresh(ctx, ticket.RefreshRequest{Client: oidcClient(ctx, r.GetClientId(), r.GetClientSecret()),
		RefreshToken: r.GetRefreshToken(), Scope: r.GetScope(), Issuer: r.GetIssuer()})
	if err != nil {
		return nil, err
	}
	grpcx.NameApp(ctx, r.GetClientId())
	return tokenResponse(t), nil
}

// UserInfo implements TicketService.
func (s *Server) UserInfo(ctx context.Context, r *ticketv1.UserInfoRequest) (*ticketv1.UserInfoResponse, error) {
	c, err := s.svc.UserInfo(ctx, r.GetAccessToken())
	if err != nil {
		return nil, err
	}
	return &ticketv1.UserInfoResponse{Claims: string(c)}, nil
}

// IntrospectToken implements TicketService.
func (s *Server) IntrospectToken(ctx context.Context, r *ticketv1.IntrospectTokenRequest) (*ticketv1.IntrospectTokenResponse, error) {
	j, err := s.svc.Introspect(ctx, oidcClient(ctx, r.GetClientId(), r.GetClientSecret()), r.GetToken())
	if err != nil {
		return nil, err
	}
	grpcx.NameApp(ctx, r.GetClientId())
	return &ticketv1.IntrospectTokenResponse{Json: string(j)}, nil
}

// RevokeToken implements TicketService.
func (s *Server) RevokeToken(ctx context.Context, r *ticketv1.RevokeTokenRequest) (*ticketv1.RevokeTokenResponse, error) {
	if err := s.svc.Revoke(ctx, oidcClient(ctx, r.GetClientId(), r.GetClientSecret()), r.GetToken()); err != nil {
		return nil, err
	}
	grpcx.NameApp(ctx, r.GetClientId())
	return &ticketv1.RevokeTokenResponse{}, nil
}

// SigningKeys implements TicketService.
func (s *Server) SigningKeys(context.Context, *ticketv1.SigningKeysRequest) (*ticketv1.SigningKeysResponse, error) {
	j, err := s.svc.JWKS()
	if err != nil {
		return nil, err
	}
	return &ticketv1.SigningKeysResponse{Jwks: string(j)}, nil
}

// EndSessionOfIDToken implements TicketService.
func (s *Server) EndSessionOfIDToken(ctx context.Context, r *ticketv1.EndSessionOfIDTokenRequest) (*ticketv1.DestroySessionResponse, error) {
	ok, err := s.svc.EndSessionOfIDToken(ctx, r.GetIdTokenHint(), r.GetClientId())
	if err != nil {
		return nil, err
	}
	return &ticketv1.DestroySessionResponse{Ended: ok}, nil
}
