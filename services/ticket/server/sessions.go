package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/adminauth"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// OrgTree expands org subtrees for scoped session listings.
type OrgTree interface {
	// Subtree returns org and every org below it.
	Subtree(ctx context.Context, org string) ([]string, error)
	// UserOrg is the org of person id (NOT_FOUND: no such person).
	UserOrg(ctx context.Context, id string) (string, error)
}

// SessionsServer implements TicketSessionsService: the live sessions,
// within what the calling administrator may list of ticket.sessions.
type SessionsServer struct {
	ticketv1.UnimplementedTicketSessionsServiceServer
	svc    *ticket.Service
	admins adminauth.Lister
	orgs   OrgTree
}

// NewSessions returns the session listing over svc; admins answers which
// org subtrees an administrator may list, orgs expands them.
func NewSessions(svc *ticket.Service, admins adminauth.Lister, orgs OrgTree) *SessionsServer {
	return &SessionsServer{svc: svc, admins: admins, orgs: orgs}
}

// Register adds the service to g.
func (s *SessionsServer) Register(g grpc.ServiceRegistrar) {
	ticketv1.RegisterTicketSessionsServiceServer(g, s)
}

// ListSessions implements TicketSessionsService.
func (s *SessionsServer) ListSessions(ctx context.Context, r *ticketv1.ListSessionsRequest) (*ticketv1.ListSessionsResponse, error) {
	tops, err := s.admins.ListScope(ctx, adminauth.From(ctx), adminauth.TicketSessionsRead)
	if err != nil {
		return nil, err
	}
	var orgs map[string]bool // nil: every org
	if tops != nil {
		if orgs, err = s.subtrees(ctx, tops...); err != nil {
			return nil, err
		}
	}
	if org := r.GetOrgId(); org != "" {
		if orgs != nil && !orgs[org] {
			return nil, adminauth.Denied("you may list only the sessions of the org subtrees you administer, and " + org + " is outside them")
		}
		if orgs, err = s.subtrees(ctx, org); err != nil {
			return nil, err
		}
	}
	if user := r.GetUserId(); user != "" && tops != nil {
		// a person outside the administrator's orgs is refused, as an org
		// is, not answered with an empty list (trial12 D7); one unknown
		// alike
		org, err := s.orgs.UserOrg(ctx, user)
		if status.Code(err) == codes.NotFound || (err == nil && !orgs[org]) {
			return nil, adminauth.Denied("you may list only the sessions of people in the org subtrees you administer, and " + user + " is not one of them")
		}
		if err != nil {
			return nil, err
		}
	}
	list, next, err := s.svc.ListSessions(ctx, ticket.SessionQuery{Orgs: orgs, UserID: r.GetUserId(), PageSize: int(r.GetPageSize()),
		PageToken: r.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &ticketv1.ListSessionsResponse{NextPageToken: next, Sessions: make([]*ticketv1.LiveSession, len(list))}
	idle := s.svc.Config().TGTIdle
	for i, sess := range list {
		out.Sessions[i] = &ticketv1.LiveSession{Session: sessionPB(sess, idle), OrgId: sess.OrgID, AppIds: sess.AppIDs(), Centre: sess.Centre}
	}
	return out, nil
}

// subtrees is the set of the orgs of the subtrees under tops.
func (s *SessionsServer) subtrees(ctx context.Context, tops ...string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, top := range tops {
		ids, err := s.orgs.Subtree(ctx, top)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			out[id] = true
		}
	}
	return out, nil
}

// IdentityOrgs expands org subtrees with identity's ListOrgs
// (include_descendants), asked with the calling administrator's token
// (identity answers only what they may read), and finds a person's org
// through SSOService, as the component.
type IdentityOrgs struct {
	Admin identityv1.AdminServiceClient
	SSO   identityv1.SSOServiceClient
}

// UserOrg implements OrgTree: asked as the component (SSOService), not
// with the administrator's token, so that a role reading sessions needs
// no permission to read people (review sec21 L2).
func (o IdentityOrgs) UserOrg(ctx context.Context, id string) (string, error) {
	a, err := o.SSO.PersonAttributes(ctx, &identityv1.PersonAttributesRequest{UserId: id})
	if err != nil {
		return "", err
	}
	return a.GetOrgId(), nil
}

// Subtree implements OrgTree.
func (o IdentityOrgs) Subtree(ctx context.Context, org string) ([]string, error) {
	out := []string{org}
	tok := ""
	for {
		res, err := o.Admin.ListOrgs(adminContext(ctx), &identityv1.ListOrgsRequest{ParentId: org, IncludeDescendants: true,
			PageSize: 500, PageToken: tok})
		if err != nil {
			return nil, err
		}
		for _, x := range res.GetOrgs() {
			out = append(out, x.GetId())
		}
		if tok = res.GetNextPageToken(); tok == "" {
			return out, nil
		}
	}
}
