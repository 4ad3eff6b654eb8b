package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// maxOrgs bounds the orgs the tree page reads (its pages of 500).
const maxOrgs = 5000

// orgNode is an org of the tree with its children.
type orgNode struct {
	Org      *identityv1.Org
	Children []*orgNode
}

// orgsPage is the org tree, with one org selected (its forms shown).
type orgsPage struct {
	Roots    []*orgNode
	All      []*identityv1.Org
	Selected *identityv1.Org
	// Truncated: there were more orgs than the page reads.
	Truncated bool
}

// orgTree arranges orgs by parent; an org whose parent the administrator
// does not see (above their subtree) is a root.
func orgTree(orgs []*identityv1.Org) []*orgNode {
	nodes := make(map[string]*orgNode, len(orgs))
	for _, o := range orgs {
		nodes[o.GetId()] = &orgNode{Org: o}
	}
	var roots []*orgNode
	for _, o := range orgs {
		n := nodes[o.GetId()]
		if p, ok := nodes[o.GetParentId()]; ok && o.GetParentId() != o.GetId() {
			p.Children = append(p.Children, n)
		} else {
			roots = append(roots, n)
		}
	}
	var sortAll func([]*orgNode)
	sortAll = func(ns []*orgNode) {
		sort.Slice(ns, func(i, j int) bool { return ns[i].Org.GetCode() < ns[j].Org.GetCode() })
		for _, n := range ns {
			sortAll(n.Children)
		}
	}
	sortAll(roots)
	return roots
}

func (h *Handler) orgs(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "orgs")
	h.orgsInto(w, r, s, &d, http.StatusOK)
}

// orgsInto renders the tree page with code (and d's message).
func (h *Handler) orgsInto(w http.ResponseWriter, r *http.Request, s *session, d *pageData, code int) {
	p := &orgsPage{}
	d.Page = p
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	token := ""
	for {
		res, err := h.o.Admin.ListOrgs(ctx, &identityv1.ListOrgsRequest{PageSize: 500, PageToken: token})
		if err != nil {
			h.failed(w, r, err, "orgs", d)
			return
		}
		p.All = append(p.All, res.GetOrgs()...)
		token = res.GetNextPageToken()
		if token == "" {
			break
		}
		if len(p.All) >= maxOrgs {
			p.Truncated = true
			break
		}
	}
	sel := r.URL.Query().Get("org")
	if sel == "" {
		sel = r.PathValue("id")
	}
	for _, o := range p.All {
		if o.GetId() == sel {
			p.Selected = o
		}
	}
	p.Roots = orgTree(p.All)
	h.render(w, r, code, "orgs", *d)
}

func (h *Handler) createOrg(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "orgs")
	f := r.PostForm
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	o, err := h.o.Admin.CreateOrg(ctx, &identityv1.CreateOrgRequest{Code: strings.TrimSpace(f.Get("code")),
		Name: strings.TrimSpace(f.Get("name")), ParentId: strings.TrimSpace(f.Get("parent_id"))})
	if err != nil {
		h.orgFailed(w, r, s, &d, err)
		return
	}
	h.redirectDone(w, r, "orgs?org="+url.QueryEscape(o.GetId())+"", "orgCreated")
}

func (h *Handler) orgAction(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "orgs")
	id := r.PathValue("id")
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	var err error
	action := r.PathValue("action")
	switch action {
	case "rename":
		_, err = h.o.Admin.UpdateOrg(ctx, &identityv1.UpdateOrgRequest{Id: id, Name: strings.TrimSpace(r.PostForm.Get("name"))})
	case "move":
		_, err = h.o.Admin.MoveOrg(ctx, &identityv1.MoveOrgRequest{Id: id, NewParentId: strings.TrimSpace(r.PostForm.Get("parent_id"))})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.orgFailed(w, r, s, &d, err)
		return
	}
	h.redirectDone(w, r, "orgs?org="+url.QueryEscape(id)+"", "org"+strings.ToUpper(action[:1])+action[1:])
}

// orgFailed shows the tree with the service's refusal.
func (h *Handler) orgFailed(w http.ResponseWriter, r *http.Request, s *session, d *pageData, err error) {
	if code, ok := h.refusal(w, r, err, d); ok {
		h.orgsInto(w, r, s, d, code)
	}
}
