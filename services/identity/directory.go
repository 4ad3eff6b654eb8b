package identity

import (
	"context"
	"errors"
	"strconv"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
)

// The information-sharing service (maritime design 004 2.1.5: "应用系统
// 必须通过信息共享服务和数据同步的方式获取这些数据", applications obtain
// org and user data through an information-sharing service and
// synchronisation; no application not authorised reads them). An
// application granted the "directory" interface (caller.APIDirectory,
// granted only by name) reads the people who have an account in it and the
// org tree; never an ID number, the phone masked, the name as the
// application's name_release says (releasedTo, the same as Authenticate:
// review sec30b M1). Each call is audited.

// ReasonNoSuchPerson: GetPerson names no account of the calling
// application.
const ReasonNoSuchPerson = "PERSON_NOT_FOUND"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonNoSuchPerson, Code: apierr.NotFound,
		Doc: "DirectoryService.GetPerson: no person has this account (account id or login name) in the calling application. A person without an account link in it is not shown to it."})
}

var errNoSuchPerson = apierr.New(apierr.NotFound, ReasonNoSuchPerson, "no person has this account in the calling application").
	WithMeta(apierr.MetaField, "app_user_id")

// DirectoryPerson is what an application may know of a person with an
// account in it.
type DirectoryPerson struct {
	User *User
	Link *AccountLink
	// Org is the person's org (nil when it could not be read: a replica's
	// org not yet applied).
	Org *Org
}

// directoryApp is the calling application (the interceptor checked its
// credentials and its "directory" grant).
func directoryApp(ctx context.Context) (*caller.App, error) {
	c := caller.From(ctx)
	if c == nil || c.App == nil {
		return nil, caller.ErrBadAppCredentials
	}
	return c.App, nil
}

// DirectoryPerson returns the person whose account in the calling
// application is account (its account id, or the person's login name).
func (s *Service) DirectoryPerson(ctx context.Context, account string) (*DirectoryPerson, error) {
	start := s.now()
	app, err := directoryApp(ctx)
	if err != nil {
		return nil, err
	}
	link, err := s.store.FindLink(ctx, app.ID, account)
	var u *User
	if err == nil {
		u, err = s.store.GetUser(ctx, link.UserID)
	}
	if errors.Is(err, ErrNotFound) {
		s.appendAudit(ctx, s.audit(ctx, "directory.get_person", claimedAccount(account), "", "failure", ReasonNoSuchPerson, start, nil))
		return nil, errNoSuchPerson
	}
	if err != nil {
		return nil, err
	}
	p := &DirectoryPerson{User: releasedTo(u, app.NameRelease), Link: link, Org: s.directoryOrg(ctx, u.OrgID, nil)}
	s.appendAudit(ctx, s.audit(ctx, "directory.get_person", "user:"+u.ID, u.OrgID, "success", "OK", start, nil))
	return p, nil
}

// directoryOrg reads org id once per call (seen: the orgs read so far).
func (s *Service) directoryOrg(ctx context.Context, id string, seen map[string]*Org) *Org {
	if id == "" {
		return nil
	}
	if o, ok := seen[id]; ok {
		return o
	}
	o, err := s.store.GetOrg(ctx, id)
	if err != nil {
		o = nil
	}
	if seen != nil {
		seen[id] = o
	}
	return o
}

// DirectoryPeople lists the people with an account in the calling
// application, a page at a time (by account link).
func (s *Service) DirectoryPeople(ctx context.Context, size int32, token string) ([]*DirectoryPerson, string, error) {
	start := s.now()
	app, err := directoryApp(ctx)
	if err != nil {
		return nil, "", err
	}
	if size == 0 {
		size = 100
	}
	// Not in the administrators' read slots (listRead): an application's
	// pages, bounded by its rate limit, do not crowd out the consoles
	// (review sec25 L2).
	p, err := pageOf(size, token)
	if err != nil {
		return nil, "", err
	}
	links, next, err := s.store.ListLinks(ctx, LinkFilter{AppID: app.ID}, p)
	if err != nil {
		return nil, "", err
	}
	orgs := map[string]*Org{}
	out := make([]*DirectoryPerson, 0, len(links))
	for _, l := range links {
		u, err := s.store.GetUser(ctx, l.UserID)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, &DirectoryPerson{User: releasedTo(u, app.NameRelease), Link: l, Org: s.directoryOrg(ctx, u.OrgID, orgs)})
	}
	s.appendAudit(ctx, s.audit(ctx, "directory.list_people", "app:"+app.ID, "", "success", "OK", start,
		map[string]string{"people": strconv.Itoa(len(out)), "next_page": strconv.FormatBool(next != "")}))
	return out, next, nil
}

// DirectoryOrgs lists the org tree, a page at a time.
func (s *Service) DirectoryOrgs(ctx context.Context, size int32, token string) ([]*Org, string, error) {
	start := s.now()
	app, err := directoryApp(ctx)
	if err != nil {
		return nil, "", err
	}
	if size == 0 {
		size = 100
	}
	p, err := pageOf(size, token)
	if err != nil {
		return nil, "", err
	}
	orgs, next, err := s.store.ListOrgs(ctx, OrgFilter{}, p)
	if err != nil {
		return nil, "", err
	}
	s.appendAudit(ctx, s.audit(ctx, "directory.list_orgs", "app:"+app.ID, "", "success", "OK", start,
		map[string]string{"orgs": strconv.Itoa(len(orgs)), "next_page": strconv.FormatBool(next != "")}))
	return orgs, next, nil
}
