package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// appsPage is the applications list.
type appsPage struct {
	Query string
	Apps  []*identityv1.App
	Next  template.URL
}

func (h *Handler) apps(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "apps")
	q := r.URL.Query()
	p := &appsPage{Query: q.Get("q")}
	d.Page = p
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Admin.ListApps(ctx, &identityv1.ListAppsRequest{PageSize: pageSize, PageToken: q.Get("page"), Query: p.Query})
	if err != nil {
		h.failed(w, r, err, "apps", &d)
		return
	}
	p.Apps = res.GetApps()
	if t := res.GetNextPageToken(); t != "" {
		nq := url.Values{"page": {t}}
		if p.Query != "" {
			nq.Set("q", p.Query)
		}
		p.Next = template.URL(nq.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	}
	h.render(w, r, http.StatusOK, "apps", d)
}

// appPage is one application; Secret is its App_Secret right after it
// was created or rotated (shown once, never again).
type appPage struct {
	App    *identityv1.App
	Secret string
}

// secretStamp is the rotation form's mark of the secret a page shows the
// application with: its issue time in milliseconds ("" when unknown: no
// check).
func secretStamp(a *identityv1.App) string {
	if t := a.GetSecretIssueTime(); t != nil {
		return strconv.FormatInt(t.AsTime().UnixMilli(), 10)
	}
	return ""
}

// appForm is the new-application form, filled again after a refusal
// (nothing secret in it).
type appForm struct {
	Type, Code, Name, IPs string
}

func (h *Handler) newApp(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "apps")
	d.Page = &appForm{Type: "WEB"}
	h.render(w, r, http.StatusOK, "newapp", d)
}

// createApp registers an application and shows its App_ID and App_Secret
// once (as uias ctl app create does): the page is answered, not
// redirected, so that the secret is in no URL and no later page.
func (h *Handler) createApp(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "apps")
	f := r.PostForm
	af := &appForm{Type: strings.TrimSpace(f.Get("app_type")), Code: strings.TrimSpace(f.Get("app_code")),
		Name: strings.TrimSpace(f.Get("name")), IPs: f.Get("ip_allow_list")}
	d.Page = af
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Admin.CreateApp(ctx, &identityv1.CreateAppRequest{AppType: af.Type, AppCode: af.Code, Name: af.Name,
		IpAllowList: strings.Fields(strings.ReplaceAll(af.IPs, ",", " "))})
	if err != nil {
		h.failed(w, r, err, "newapp", &d)
		return
	}
	d.Page = &appPage{App: res.GetApp(), Secret: res.GetAppSecret()}
	d.Done = d.T("done.appCreated")
	h.render(w, r, http.StatusOK, "app", d)
}

func (h *Handler) app(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "apps")
	d.Page = &appPage{}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	a, err := h.o.Admin.GetApp(ctx, &identityv1.GetAppRequest{Id: r.PathValue("id")})
	if err != nil {
		h.failed(w, r, err, "app", &d)
		return
	}
	d.Page = &appPage{App: a}
	h.render(w, r, http.StatusOK, "app", d)
}

// appAction suspends or resumes an application, or rotates its secret
// (the new one shown once; the old one keeps working for a day, as
// uias ctl app rotate-secret).
func (h *Handler) appAction(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "apps")
	id := r.PathValue("id")
	var st identityv1.AppStatus
	switch r.PathValue("action") {
	case "suspend":
		st = identityv1.AppStatus_APP_STATUS_SUSPENDED
	case "resume":
		st = identityv1.AppStatus_APP_STATUS_ACTIVE
	case "rotate":
	default:
		http.NotFound(w, r)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	var err error
	if st == identityv1.AppStatus_APP_STATUS_UNSPECIFIED {
		// The form names the secret it replaces (its issue time when the
		// page was shown): a double click or a reload of the answer issues
		// no second secret, which would end the one in use (identity:
		// SECRET_ROTATED_SINCE; review sec29b M4).
		req := &identityv1.RotateAppSecretRequest{Id: id}
		if ms, perr := strconv.ParseInt(r.PostForm.Get("secret_stamp"), 10, 64); perr == nil && ms > 0 {
			req.IfSecretIssuedAt = timestamppb.New(time.UnixMilli(ms))
		}
		var res *identityv1.CreateAppResponse
		if res, err = h.o.Admin.RotateAppSecret(ctx, req); err == nil {
			d.Page = &appPage{App: res.GetApp(), Secret: res.GetAppSecret()}
			d.Done = d.T("done.rotate")
			h.render(w, r, http.StatusOK, "app", d)
			return
		}
	} else {
		_, err = h.o.Admin.UpdateApp(ctx, &identityv1.UpdateAppRequest{Id: id, UpdateMask: []string{"status"}, Status: st})
	}
	if err != nil {
		pctx, pcancel := h.partCtx(r, s)
		defer pcancel()
		a, gerr := h.o.Admin.GetApp(pctx, &identityv1.GetAppRequest{Id: id})
		if gerr != nil {
			a = nil
		}
		d.Page = &appPage{App: a}
		h.failed(w, r, err, "app", &d)
		return
	}
	h.redirectDone(w, r, "apps/"+url.PathEscape(id), r.PathValue("action"))
}

// rolesPage lists every role (the built-in administrator roles and the
// applications' roles).
type rolesPage struct {
	Roles []*authzv1.Role
}

func (h *Handler) roles(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "roles")
	d.Page = &rolesPage{}
	if h.o.Authz == nil {
		d.Error = d.T("noAuthz")
		h.render(w, r, http.StatusServiceUnavailable, "roles", d)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Authz.ListRoles(ctx, &authzv1.ListRolesRequest{All: true})
	if err != nil {
		h.failed(w, r, err, "roles", &d)
		return
	}
	d.Page = &rolesPage{Roles: res.GetRoles()}
	h.render(w, r, http.StatusOK, "roles", d)
}

// personRoles are the grants of a person and the roles that may be
// granted, shown on the person's page ("" Error: read; else why not).
type personRoles struct {
	Grants []*authzv1.Grant
	Roles  []*authzv1.Role
	Error  string
}

// rolesOf reads the grants of person id and the roles for the grant form.
// A refusal (an administrator who may not read grants) is shown in the
// section, not instead of the page.
func (h *Handler) rolesOf(r *http.Request, s *session, d *pageData, id string) *personRoles {
	if h.o.Authz == nil {
		return &personRoles{Error: d.T("noAuthz")}
	}
	ctx, cancel := h.partCtx(r, s)
	defer cancel()
	pr := &personRoles{}
	gs, err := h.o.Authz.ListGrants(ctx, &authzv1.ListGrantsRequest{SubjectKind: "user", SubjectId: id, PageSize: 100})
	if err != nil {
		pr.Error = message(statusOf(err), d)
		return pr
	}
	pr.Grants = gs.GetGrants()
	if rs, err := h.o.Authz.ListRoles(ctx, &authzv1.ListRolesRequest{All: true}); err == nil {
		pr.Roles = rs.GetRoles()
	}
	return pr
}

// grantAction grants a role to the person or revokes one of their grants.
// Appointing an administrator may answer an activation password, shown
// once like a reset password.
func (h *Handler) grantAction(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d := h.data(r, s, "people")
	if h.o.Authz == nil {
		d.Error = d.T("noAuthz")
		h.render(w, r, http.StatusServiceUnavailable, "message", d)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	var err error
	action := r.PathValue("action")
	switch action {
	case "grant":
		var res *authzv1.GrantResponse
		res, err = h.o.Authz.CreateGrant(ctx, &authzv1.Grant{RoleId: r.PostForm.Get("role_id"), Subject: &authzv1.Subject{Kind: "user", Id: id},
			ScopeOrg: r.PostForm.Get("scope_org")})
		if err == nil && res.GetActivationPassword() != "" {
			pctx, pcancel := h.partCtx(r, s)
			u, gerr := h.o.Admin.GetUser(pctx, &identityv1.GetUserRequest{Id: id})
			pcancel()
			if gerr != nil {
				// the activation password is shown all the same: it
				// exists nowhere else (review sec28a L5)
				u = &identityv1.User{Id: id}
			}
			pp := h.personPageOf(r, s, &d, u)
			pp.OneTimePass = res.GetActivationPassword()
			d.Page = pp
			d.Done = d.T("done.grant")
			h.render(w, r, http.StatusOK, "person", d)
			return
		}
	case "revoke":
		_, err = h.o.Authz.RevokeGrant(ctx, &authzv1.RevokeGrantRequest{Id: r.PostForm.Get("grant_id")})
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.personRefused(w, r, s, &d, id, err)
		return
	}
	h.redirectDone(w, r, "people/"+url.PathEscape(id), action)
}
