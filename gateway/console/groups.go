package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// groupsPage is the groups list (of an org, or every one the
// administrator may see).
type groupsPage struct {
	Query, Org string
	Groups     []*identityv1.Group
	OrgNames   map[string]string
	Next       template.URL
}

func (h *Handler) groups(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "groups")
	q := r.URL.Query()
	p := &groupsPage{Query: q.Get("q"), Org: q.Get("org")}
	d.Page = p
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Admin.ListGroups(ctx, &identityv1.ListGroupsRequest{PageSize: pageSize, PageToken: q.Get("page"), Query: p.Query,
		OrgId: p.Org})
	if err != nil {
		h.failed(w, r, err, "groups", &d)
		return
	}
	p.Groups = res.GetGroups()
	orgs := make([]*identityv1.User, 0, len(p.Groups))
	for _, g := range p.Groups {
		orgs = append(orgs, &identityv1.User{OrgId: g.GetOrgId()})
	}
	p.OrgNames = h.orgNames(r, s, orgs)
	if t := res.GetNextPageToken(); t != "" {
		nq := url.Values{"page": {t}}
		for k, v := range map[string]string{"q": p.Query, "org": p.Org} {
			if v != "" {
				nq.Set(k, v)
			}
		}
		p.Next = template.URL(nq.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	}
	h.render(w, r, http.StatusOK, "groups", d)
}

// groupForm is the new-group form, filled again after a refusal.
type groupForm struct {
	Code, Name, Org string
}

func (h *Handler) newGroup(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "groups")
	d.Page = &groupForm{Org: r.URL.Query().Get("org")}
	h.render(w, r, http.StatusOK, "newgroup", d)
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "groups")
	f := r.PostForm
	gf := &groupForm{Code: strings.TrimSpace(f.Get("code")), Name: strings.TrimSpace(f.Get("name")), Org: strings.TrimSpace(f.Get("org_id"))}
	d.Page = gf
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	g, err := h.o.Admin.CreateGroup(ctx, &identityv1.CreateGroupRequest{Code: gf.Code, Name: gf.Name, OrgId: gf.Org})
	if err != nil {
		h.failed(w, r, err, "newgroup", &d)
		return
	}
	h.redirectDone(w, r, "groups/"+url.PathEscape(g.GetId()), "groupCreated")
}

// groupPage is one group with its members (those the administrator may
// read; at most pageSize shown by name).
type groupPage struct {
	Group    *identityv1.Group
	Members  []*identityv1.User
	Unread   int // members not shown (beyond the page, or not readable)
	OrgNames map[string]string
}

func (h *Handler) group(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "groups")
	d.Page = &groupPage{}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	g, err := h.o.Admin.GetGroup(ctx, &identityv1.GetGroupRequest{Id: r.PathValue("id")})
	if err != nil {
		h.failed(w, r, err, "group", &d)
		return
	}
	d.Page = h.groupPageOf(r, s, g)
	h.render(w, r, http.StatusOK, "group", d)
}

// groupPageOf reads g's members by id, as part of the page's call.
func (h *Handler) groupPageOf(r *http.Request, s *session, g *identityv1.Group) *groupPage {
	p := &groupPage{Group: g}
	ids := g.GetMemberIds()
	pctx, pcancel := h.partCtx(r, s)
	defer pcancel()
	for i, id := range ids {
		if i >= pageSize {
			p.Unread += len(ids) - i
			break
		}
		u, err := h.o.Admin.GetUser(pctx, &identityv1.GetUserRequest{Id: id})
		if err != nil {
			p.Unread++
			continue
		}
		p.Members = append(p.Members, u)
	}
	p.OrgNames = h.orgNames(r, s, append([]*identityv1.User{{OrgId: g.GetOrgId()}}, p.Members...))
	return p
}

// groupAction renames or deletes a group, or adds or removes a member
// (by the person's ID or login name).
func (h *Handler) groupAction(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "groups")
	id := r.PathValue("id")
	action := r.PathValue("action")
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	var err error
	switch action {
	case "rename":
		_, err = h.o.Admin.UpdateGroup(ctx, &identityv1.UpdateGroupRequest{Id: id, Name: strings.TrimSpace(r.PostForm.Get("name"))})
	case "delete":
		if _, err = h.o.Admin.DeleteGroup(ctx, &identityv1.DeleteGroupRequest{Id: id}); err == nil {
			h.redirectDone(w, r, "groups", "groupDeleted")
			return
		}
	case "add":
		var uid string
		if uid, err = h.personID(r, s, strings.TrimSpace(r.PostForm.Get("person"))); err == nil && uid == "" {
			// nobody has that ID or login name (that this administrator
			// may read): said in the console's words
			h.groupRefused(w, r, s, &d, id, http.StatusNotFound, d.T("noSuchPerson"))
			return
		}
		if err == nil {
			_, err = h.o.Admin.AddGroupMember(ctx, &identityv1.GroupMemberRequest{GroupId: id, UserId: uid})
		}
	case "remove":
		_, err = h.o.Admin.RemoveGroupMember(ctx, &identityv1.GroupMemberRequest{GroupId: id, UserId: r.PostForm.Get("user_id")})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		if code, ok := h.refusal(w, r, err, &d); ok {
			h.groupRefused(w, r, s, &d, id, code, d.Error)
		}
		return
	}
	h.redirectDone(w, r, "groups/"+url.PathEscape(id), "group."+action)
}

// groupRefused shows group id's page again (read afresh, as part of the
// page's call) with the refusal msg and HTTP status code.
func (h *Handler) groupRefused(w http.ResponseWriter, r *http.Request, s *session, d *pageData, id string, code int, msg string) {
	pctx, pcancel := h.partCtx(r, s)
	g, gerr := h.o.Admin.GetGroup(pctx, &identityv1.GetGroupRequest{Id: id})
	pcancel()
	d.Page = &groupPage{}
	if gerr == nil {
		d.Page = h.groupPageOf(r, s, g)
	}
	d.Error = msg
	h.render(w, r, code, "group", *d)
}

// personID is the ID of the person named v, by ID or by exact login name
// (searched as part of the page's call); "" when nobody is.
func (h *Handler) personID(r *http.Request, s *session, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	pctx, pcancel := h.partCtx(r, s)
	defer pcancel()
	if u, err := h.o.Admin.GetUser(pctx, &identityv1.GetUserRequest{Id: v}); err == nil {
		return u.GetId(), nil
	}
	// login names are one account whatever their case (identity folds
	// them); the exact name sorts among the first hits of its search
	res, err := h.o.Admin.ListUsers(pctx, &identityv1.ListUsersRequest{Query: v, PageSize: 100})
	if err != nil {
		return "", err
	}
	for _, u := range res.GetUsers() {
		if strings.EqualFold(u.GetLoginName(), v) {
			return u.GetId(), nil
		}
	}
	return "", nil
}
