package console

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// pageSize is the rows of one list page.
const pageSize = 25

// peoplePage is the people list.
type peoplePage struct {
	Query, Org, Status string
	People             []*identityv1.User
	// OrgNames are the names of the listed people's orgs by id (an org
	// the administrator may not read shows its id).
	OrgNames map[string]string
	// Next is the query of the next page ("" on the last).
	Next template.URL
}

func (h *Handler) people(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "people")
	q := r.URL.Query()
	p := peoplePage{Query: q.Get("q"), Org: q.Get("org"), Status: q.Get("status")}
	d.Page = &p
	req := &identityv1.ListUsersRequest{PageSize: pageSize, PageToken: q.Get("page"), Query: p.Query, OrgId: p.Org,
		IncludeDescendants: p.Org != ""}
	switch p.Status {
	case "active":
		req.Status = identityv1.UserStatus_USER_STATUS_ACTIVE
	case "disabled":
		req.Status = identityv1.UserStatus_USER_STATUS_DISABLED
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Admin.ListUsers(ctx, req)
	if err != nil {
		h.failed(w, r, err, "people", &d)
		return
	}
	p.People = res.GetUsers()
	p.OrgNames = h.orgNames(r, s, p.People)
	if t := res.GetNextPageToken(); t != "" {
		nq := url.Values{}
		for _, k := range []string{"q", "org", "status"} {
			if v := q.Get(k); v != "" {
				nq.Set(k, v)
			}
		}
		nq.Set("page", t)
		p.Next = template.URL(nq.Encode()) // #nosec G203 -- url.Values.Encode escapes every value
	}
	h.render(w, r, http.StatusOK, "people", d)
}

// personPage is one person, with what an action left to show once (a
// temporary password).
type personPage struct {
	User        *identityv1.User
	OneTimePass string
	// Roles: the person's grants and the grant form (nil: not shown).
	Roles *personRoles
	// Certs: the certificates bound to the person (nil: not shown).
	Certs    *personCerts
	OrgNames map[string]string
}

// personPageOf is person u's page (without a one-time password).
func (h *Handler) personPageOf(r *http.Request, s *session, d *pageData, u *identityv1.User) *personPage {
	return &personPage{User: u, Roles: h.rolesOf(r, s, d, u.GetId()), Certs: h.certsOf(r, s, d, u.GetId()),
		OrgNames: h.orgNames(r, s, []*identityv1.User{u})}
}

// orgNames reads the names of people's orgs (one GetOrg per distinct
// org of a page, at most pageSize).
func (h *Handler) orgNames(r *http.Request, s *session, people []*identityv1.User) map[string]string {
	names := map[string]string{}
	ctx, cancel := h.partCtx(r, s)
	defer cancel()
	for _, u := range people {
		id := u.GetOrgId()
		if _, ok := names[id]; ok || id == "" {
			continue
		}
		names[id] = id
		if o, err := h.o.Admin.GetOrg(ctx, &identityv1.GetOrgRequest{Id: id}); err == nil && o.GetName() != "" {
			names[id] = o.GetName()
		}
	}
	return names
}

func (h *Handler) person(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "people")
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	u, err := h.o.Admin.GetUser(ctx, &identityv1.GetUserRequest{Id: r.PathValue("id")})
	if err != nil {
		d.Page = &personPage{}
		h.failed(w, r, err, "person", &d)
		return
	}
	d.Page = h.personPageOf(r, s, &d, u)
	h.render(w, r, http.StatusOK, "person", d)
}

// personForm is the new person form, kept when the service refuses it.
type personForm struct {
	Login, Name, Email, Org, IDType string
	UserType                        string
	MustChange                      bool
}

func (h *Handler) newPerson(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "people")
	d.Page = &personForm{Org: r.URL.Query().Get("org"), MustChange: true}
	h.render(w, r, http.StatusOK, "newperson", d)
}

func idType(v string) identityv1.IdType {
	switch v {
	case "resident":
		return identityv1.IdType_ID_TYPE_RESIDENT_ID
	case "passport":
		return identityv1.IdType_ID_TYPE_PASSPORT
	case "military":
		return identityv1.IdType_ID_TYPE_MILITARY
	case "other":
		return identityv1.IdType_ID_TYPE_OTHER
	case "uscc":
		return identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE
	case "org_code":
		return identityv1.IdType_ID_TYPE_ORGANIZATION_CODE
	}
	return identityv1.IdType_ID_TYPE_UNSPECIFIED
}

func (h *Handler) createPerson(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "people")
	f := r.PostForm
	pf := &personForm{Login: strings.TrimSpace(f.Get("login_name")), Name: strings.TrimSpace(f.Get("display_name")),
		Email: strings.TrimSpace(f.Get("email")), Org: strings.TrimSpace(f.Get("org_id")), IDType: f.Get("id_type"),
		UserType: f.Get("user_type"), MustChange: f.Get("must_change") != ""}
	ut := identityv1.UserType_USER_TYPE_PERSON
	if pf.UserType == "unit" {
		ut = identityv1.UserType_USER_TYPE_UNIT
	}
	d.Page = pf
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	u, err := h.o.Admin.CreateUser(ctx, &identityv1.CreateUserRequest{LoginName: pf.Login, DisplayName: pf.Name, Email: pf.Email,
		OrgId: pf.Org, IdType: idType(pf.IDType), IdNumber: strings.TrimSpace(f.Get("id_number")), Phone: strings.TrimSpace(f.Get("phone")),
		Password: f.Get("password"), MustChangePassword: pf.MustChange, UserType: ut})
	if err != nil {
		// the ID number, phone and password are not sent back
		h.failed(w, r, err, "newperson", &d)
		return
	}
	h.redirectDone(w, r, "people/"+url.PathEscape(u.GetId()), "created")
}

// personAction is one of the buttons of a person's page.
func (h *Handler) personAction(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d := h.data(r, s, "people")
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	var err error
	action := r.PathValue("action")
	switch action {
	case "lock":
		_, err = h.o.Admin.LockUser(ctx, &identityv1.LockUserRequest{Id: id})
	case "unlock":
		_, err = h.o.Admin.UnlockUser(ctx, &identityv1.UnlockUserRequest{Id: id})
	case "disable":
		_, err = h.o.Admin.SetUserStatus(ctx, &identityv1.SetUserStatusRequest{Id: id, Status: identityv1.UserStatus_USER_STATUS_DISABLED})
	case "enable":
		_, err = h.o.Admin.SetUserStatus(ctx, &identityv1.SetUserStatusRequest{Id: id, Status: identityv1.UserStatus_USER_STATUS_ACTIVE})
	case "edit":
		f := r.PostForm
		req := &identityv1.UpdateUserRequest{Id: id}
		for _, k := range []string{"display_name", "email", "phone", "org_id"} {
			v, ok := f[k]
			if !ok || (k == "phone" && strings.TrimSpace(v[0]) == "") {
				// an empty phone field keeps the phone (the page shows it masked)
				continue
			}
			req.UpdateMask = append(req.UpdateMask, k)
			val := strings.TrimSpace(v[0])
			switch k {
			case "display_name":
				req.DisplayName = val
			case "email":
				req.Email = val
			case "phone":
				req.Phone = val
			case "org_id":
				req.OrgId = val
			}
		}
		_, err = h.o.Admin.UpdateUser(ctx, req)
	case "type":
		// The account's type (ADR 0039), with its ID when given: identity
		// refuses a type the ID type does not fit (ID_TYPE_MISMATCH) and
		// changes nothing then.
		_, err = h.o.Admin.UpdateUser(ctx, typeUpdate(id, r.PostForm))
	case "reset-password":
		// The form names the password it replaces (its change time when
		// the page was shown): a reload of the answer re-posts it, and
		// identity resets nothing then (PASSWORD_CHANGED_SINCE; review
		// sec28a L1, rr29 A2).
		req := &identityv1.ResetPasswordRequest{Id: id}
		if st := r.PostForm.Get("password_stamp"); st == "none" {
			req.IfPasswordChangedAt = timestamppb.New(time.UnixMilli(0))
		} else if ms, perr := strconv.ParseInt(st, 10, 64); perr == nil && ms > 0 {
			req.IfPasswordChangedAt = timestamppb.New(time.UnixMilli(ms))
		}
		var res *identityv1.ResetPasswordResponse
		res, err = h.o.Admin.ResetPassword(ctx, req)
		if err == nil {
			// shown on this answer only (no redirect: a reload does not
			// show it again, the page is not stored)
			pp := h.personPageOf(r, s, &d, res.GetUser())
			pp.OneTimePass = res.GetTemporaryPassword()
			d.Page = pp
			d.Done = d.T("done.reset")
			h.render(w, r, http.StatusOK, "person", d)
			return
		}
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

// typeUpdate is the update of the "Account type" form: user_type, and
// the ID type and number when the form gives them (id_type "none": no
// ID; "": the current one kept). An unknown value is sent as one identity
// refuses (never taken as the default).
func typeUpdate(id string, f url.Values) *identityv1.UpdateUserRequest {
	req := &identityv1.UpdateUserRequest{Id: id, UpdateMask: []string{"user_type"}}
	switch f.Get("user_type") {
	case "person":
		req.UserType = identityv1.UserType_USER_TYPE_PERSON
	case "unit":
		req.UserType = identityv1.UserType_USER_TYPE_UNIT
	default:
		req.UserType = identityv1.UserType(-1)
	}
	switch v := f.Get("id_type"); v {
	case "":
	case "none":
		req.UpdateMask = append(req.UpdateMask, "id_type", "id_number")
	default:
		req.IdType = idType(v)
		if req.IdType == identityv1.IdType_ID_TYPE_UNSPECIFIED {
			req.IdType = identityv1.IdType(-1)
		}
		req.UpdateMask = append(req.UpdateMask, "id_type")
	}
	if n := strings.TrimSpace(f.Get("id_number")); n != "" && f.Get("id_type") != "none" {
		req.IdNumber = n
		req.UpdateMask = append(req.UpdateMask, "id_number")
	}
	return req
}

// personRefused shows person id's page again with the refusal err of an
// action on it: the person, their roles and org name read afresh (as
// part of the page's call), or the refusal alone when they cannot be read.
func (h *Handler) personRefused(w http.ResponseWriter, r *http.Request, s *session, d *pageData, id string, err error) {
	pctx, pcancel := h.partCtx(r, s)
	u, gerr := h.o.Admin.GetUser(pctx, &identityv1.GetUserRequest{Id: id})
	pcancel()
	p := &personPage{}
	if gerr == nil {
		p = h.personPageOf(r, s, d, u)
	}
	d.Page = p
	h.failed(w, r, err, "person", d)
}

// passwordStamp is the form's mark of the password a page shows the
// person with: its change time, "none" without one.
func passwordStamp(u *identityv1.User) string {
	if t := u.GetPasswordChangedAt(); t != nil {
		return strconv.FormatInt(t.AsTime().UnixMilli(), 10)
	}
	return "none"
}
