package server

import (
	"context"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// directoryServer implements DirectoryService (the information-sharing
// service, identity.DirectoryPerson): applications granted "directory".
type directoryServer struct {
	identityv1.UnimplementedDirectoryServiceServer
	svc *identity.Service
}

func personPB(p *identity.DirectoryPerson) *identityv1.Person {
	u := p.User
	out := &identityv1.Person{UserId: u.ID, LoginName: u.LoginName, DisplayName: u.DisplayName, AppUserId: p.Link.AppAccountID,
		OrgId: u.OrgID, Email: u.Email, PhoneMasked: u.PhoneMask, Status: identityv1.UserStatus(u.Status),
		AccountStatus: identityv1.Status(p.Link.Status), UpdateTime: ts(u.UpdatedAt), UserType: identityv1.UserType(u.UserType.Norm())}
	if p.Org != nil {
		out.OrgCode, out.OrgName = p.Org.Code, p.Org.Name
	}
	return out
}

// GetPerson implements DirectoryService.
func (d directoryServer) GetPerson(ctx context.Context, r *identityv1.GetPersonRequest) (*identityv1.Person, error) {
	p, err := d.svc.DirectoryPerson(ctx, r.GetAppUserId())
	if err != nil {
		return nil, err
	}
	return personPB(p), nil
}

// ListPeople implements DirectoryService.
func (d directoryServer) ListPeople(ctx context.Context, r *identityv1.ListPeopleRequest) (*identityv1.ListPeopleResponse, error) {
	people, next, err := d.svc.DirectoryPeople(ctx, r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListPeopleResponse{NextPageToken: next, People: make([]*identityv1.Person, 0, len(people))}
	for _, p := range people {
		out.People = append(out.People, personPB(p))
	}
	return out, nil
}

// ListOrgs implements DirectoryService.
func (d directoryServer) ListOrgs(ctx context.Context, r *identityv1.ListDirectoryOrgsRequest) (*identityv1.ListDirectoryOrgsResponse, error) {
	orgs, next, err := d.svc.DirectoryOrgs(ctx, r.GetPageSize(), r.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &identityv1.ListDirectoryOrgsResponse{NextPageToken: next, Orgs: make([]*identityv1.DirectoryOrg, 0, len(orgs))}
	for _, o := range orgs {
		out.Orgs = append(out.Orgs, &identityv1.DirectoryOrg{Id: o.ID, Code: o.Code, Name: o.Name, ParentId: o.ParentID,
			Status: identityv1.Status(o.Status)})
	}
	return out, nil
}
