// Package scim is the SCIM 2.0 transport of provisioning (RFC 7643 and
// 7644): people become Users, groups become Groups, created with POST,
// updated with PATCH (a person who left the selection of a subscription
// with on_leave=disable: active false) and removed with DELETE, each update and removal
// carrying the resource's version (If-Match) from the lookup before it.
//
// A subscription with deliver_roles gives each User the roles of the
// application the person holds in the RFC 7643 roles attribute (value: the
// role's code, display: its name, type: the App_ID; docs/adr/0024), or,
// with the setting roles_as=groups, writes a Group per role named
// role_group_prefix (default "role:") and the role's code, externalId the
// role's id, members the people who hold it (docs/adr/0044): for service
// providers that authorise by group membership and keep no roles.
//
// Each delivery first looks the resource up (Users by userName, Groups by
// displayName, keeping the one whose externalId is ours), so delivering
// the same item twice (a retry after a lost answer, a restart mid-batch)
// updates instead of creating a second resource.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/uias/uias/services/sync/provision"
)

// Schema URNs.
const (
	SchemaUser    = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup   = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaList    = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// Transport talks to one SCIM service provider.
type Transport struct {
	// Base is the service provider's base URL (e.g. https://app/scim/v2).
	Base   string
	Token  string
	Client *http.Client
	// RoleGroups: roles are Groups named RolePrefix + code
	// (roles_as=groups); otherwise they are written on the Users only.
	RoleGroups bool
	RolePrefix string
}

// New returns the transport of s (the secret is the bearer token).
func New(s *provision.Subscription) (provision.Transport, error) {
	return &Transport{Base: strings.TrimRight(s.Endpoint, "/"), Token: s.Secret, Client: provision.HTTPClient(),
		RoleGroups: !provision.RolesOnPeople(s), RolePrefix: provision.RoleGroupName(s, "")}, nil
}

// Close implements provision.Transport.
func (t *Transport) Close() error { t.Client.CloseIdleConnections(); return nil }

// Deliver implements provision.Transport.
func (t *Transport) Deliver(ctx context.Context, it provision.Item) error {
	switch it.Delivery.Kind {
	case provision.KindUser:
		return t.user(ctx, it)
	case provision.KindGroup:
		return t.group(ctx, it)
	case provision.KindRole:
		if t.RoleGroups {
			return t.role(ctx, it)
		}
	}
	// SCIM has no resource for orgs, and a role reaches the service
	// provider as a value of its holders' roles attribute unless
	// roles_as=groups: nothing to do
	return nil
}

type resource struct {
	ID         string `json:"id"`
	ExternalID string `json:"externalId"`
	Meta       struct {
		Version string `json:"version"`
	} `json:"meta"`
}

func (t *Transport) user(ctx context.Context, it provision.Item) error {
	o, d := it.Object, it.Delivery
	login := o.Field("login_name")
	if login == "" {
		return fmt.Errorf("scim: user %s has no login name in the projection (resync after its creation is seen)", d.ObjectID)
	}
	cur, err := t.find(ctx, "Users", "userName", login, d.ObjectID)
	if err != nil {
		return err
	}
	if d.Op == provision.OpDelete {
		if cur == nil {
			return nil
		}
		return t.remove(ctx, "Users", cur)
	}
	if d.Op == provision.OpDisable && cur == nil {
		return nil // never provisioned there: nothing to disable
	}
	attrs := map[string]any{
		"userName":    login,
		"displayName": o.Field("display_name"),
		// left the selection (on_leave=disable): kept, inactive
		"active": d.Op != provision.OpDisable && provision.ActivePerson(o),
	}
	if dn := o.Field("display_name"); dn != "" {
		attrs["name"] = map[string]any{"formatted": dn}
	}
	if em := o.Field("email"); em != "" {
		attrs["emails"] = []any{map[string]any{"value": em, "primary": true}}
	}
	if it.Roles != nil && !t.RoleGroups {
		// deliver_roles: the roles of the application the person holds,
		// as RFC 7643 4.1.2's roles (replaced whole: [] when none)
		roles := make([]any, 0, len(it.Roles))
		for _, r := range it.Roles {
			roles = append(roles, map[string]any{"value": r.Code, "display": r.Name, "type": d.App})
		}
		attrs["roles"] = roles
	}
	if cur == nil {
		attrs["schemas"] = []string{SchemaUser}
		attrs["externalId"] = d.ObjectID
		_, err := t.do(ctx, http.MethodPost, t.Base+"/Users", "", attrs, http.StatusCreated)
		return err
	}
	return t.patch(ctx, "Users", cur, attrs)
}

func (t *Transport) group(ctx context.Context, it provision.Item) error {
	o, d := it.Object, it.Delivery
	name := o.Field("name")
	if name == "" {
		name = o.Field("code")
	}
	if name == "" {
		return fmt.Errorf("scim: group %s has no name in the projection", d.ObjectID)
	}
	if t.RoleGroups && d.Op != provision.OpDelete && strings.HasPrefix(name, t.RolePrefix) {
		// Roles and groups share the business system's /Groups: a group
		// named like a role's Group would hand its members the role
		// wherever permissions follow Group names (review sec31c M2).
		return provision.Permanent(fmt.Errorf("scim: group %s is named %q, which starts with the roles' Group prefix %q: "+
			"not delivered (its members would look like the role's holders); rename the group or change role_group_prefix",
			d.ObjectID, name, t.RolePrefix))
	}
	cur, err := t.find(ctx, "Groups", "displayName", name, d.ObjectID)
	if err != nil {
		return err
	}
	if d.Op == provision.OpDelete {
		if cur == nil {
			return nil
		}
		return t.remove(ctx, "Groups", cur)
	}
	members, err := t.members(ctx, it.Members)
	if err != nil {
		return err
	}
	attrs := map[string]any{"displayName": name, "members": members}
	if cur == nil {
		attrs["schemas"] = []string{SchemaGroup}
		attrs["externalId"] = d.ObjectID
		_, err := t.do(ctx, http.MethodPost, t.Base+"/Groups", "", attrs, http.StatusCreated)
		return err
	}
	return t.patch(ctx, "Groups", cur, attrs)
}

// members lists the SCIM ids of the members provisioned there already.
func (t *Transport) members(ctx context.Context, ms []provision.Member) ([]any, error) {
	out := []any{}
	for _, m := range ms {
		u, err := t.find(ctx, "Users", "userName", m.Login, m.ID)
		if err != nil {
			return nil, err
		}
		if u != nil {
			out = append(out, map[string]any{"value": u.ID})
		}
	}
	return out, nil
}

// role writes a role as a Group (roles_as=groups): displayName the prefix
// and the role's code, externalId the role's id, members the selected
// people who hold it (none disabled). A role whose code changed is found
// by its externalId and renamed; a deleted one is removed.
func (t *Transport) role(ctx context.Context, it provision.Item) error {
	o, d := it.Object, it.Delivery
	code := o.Field("code")
	if code == "" {
		return fmt.Errorf("scim: role %s has no code in the projection", d.ObjectID)
	}
	name := t.RolePrefix + code
	cur, err := t.find(ctx, "Groups", "displayName", name, d.ObjectID)
	if err != nil {
		return err
	}
	if cur == nil {
		// its code changed since it was written (or it was never): the
		// Group is found by its externalId
		if cur, err = t.find(ctx, "Groups", "externalId", d.ObjectID, d.ObjectID); err != nil {
			return err
		}
		if cur != nil && cur.ExternalID != d.ObjectID {
			cur = nil // a Group without externalId is adopted by its name only
		}
	}
	if d.Op == provision.OpDelete {
		if cur == nil {
			return nil
		}
		return t.remove(ctx, "Groups", cur)
	}
	members, err := t.members(ctx, it.Members)
	if err != nil {
		return err
	}
	attrs := map[string]any{"displayName": name, "members": members}
	if cur == nil {
		attrs["schemas"] = []string{SchemaGroup}
		attrs["externalId"] = d.ObjectID
		_, err := t.do(ctx, http.MethodPost, t.Base+"/Groups", "", attrs, http.StatusCreated)
		return err
	}
	return t.patch(ctx, "Groups", cur, attrs)
}

func (t *Transport) patch(ctx context.Context, endpoint string, cur *resource, attrs map[string]any) error {
	body := map[string]any{"schemas": []string{SchemaPatchOp},
		"Operations": []any{map[string]any{"op": "replace", "value": attrs}}}
	_, err := t.do(ctx, http.MethodPatch, t.Base+"/"+endpoint+"/"+url.PathEscape(cur.ID), cur.Meta.Version, body,
		http.StatusOK, http.StatusNoContent)
	return err
}

func (t *Transport) remove(ctx context.Context, endpoint string, cur *resource) error {
	_, err := t.do(ctx, http.MethodDelete, t.Base+"/"+endpoint+"/"+url.PathEscape(cur.ID), cur.Meta.Version, nil,
		http.StatusNoContent, http.StatusOK, http.StatusNotFound)
	return err
}

// find looks a resource up by attr eq value, keeping the one whose
// externalId is ours (or that has none: provisioned before, adopted).
func (t *Transport) find(ctx context.Context, endpoint, attr, value, externalID string) (*resource, error) {
	filter := attr + ` eq "` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(value) + `"`
	b, err := t.do(ctx, http.MethodGet, t.Base+"/"+endpoint+"?filter="+url.QueryEscape(filter), "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var list struct {
		Schemas   []string          `json:"schemas"`
		Total     *int              `json:"totalResults"`
		Resources []json.RawMessage `json:"Resources"`
	}
	if err := json.Unmarshal(b, &list); err != nil || list.Total == nil {
		return nil, fmt.Errorf("scim: the answer to a %s lookup is not a SCIM list response (%s)", endpoint, short(b))
	}
	var adopt *resource
	for _, raw := range list.Resources {
		var r resource
		if json.Unmarshal(raw, &r) != nil || r.ID == "" {
			return nil, fmt.Errorf("scim: a %s resource of the list has no id (%s)", endpoint, short(raw))
		}
		switch r.ExternalID {
		case externalID:
			return &r, nil
		case "":
			adopt = &r
		}
	}
	return adopt, nil
}

// do sends one request and checks the status; it returns the body.
func (t *Transport) do(ctx context.Context, method, u, ifMatch string, body any, ok ...int) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("scim: bad endpoint: %w", err)
	}
	req.Header.Set("Accept", "application/scim+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	// No redirect is followed, whatever client the transport was given
	// (provision.HTTPClient): after a 307/308 the person's record would go
	// to the host the answer names, and a 301/302/303 turns a write into a
	// GET that answers 200.
	resp, err := provision.NoRedirects(t.Client).Do(req)
	if err != nil {
		return nil, fmt.Errorf("scim: %s %s: %w", method, pathOf(u), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("scim: %s %s: reading the answer: %w", method, pathOf(u), err)
	}
	if provision.IsRedirect(resp.StatusCode) {
		return nil, provision.Redirected("scim: "+method+" "+pathOf(u), resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return b, nil
		}
	}
	var se struct {
		Detail   string `json:"detail"`
		ScimType string `json:"scimType"`
	}
	_ = json.Unmarshal(b, &se)
	msg := "HTTP " + strconv.Itoa(resp.StatusCode)
	if se.Detail != "" {
		msg += ": " + se.Detail
	} else if len(b) > 0 {
		msg += ": " + short(b)
	}
	if resp.StatusCode == http.StatusPreconditionFailed {
		msg += " (the resource changed since it was read: version mismatch)"
	}
	return nil, errors.New("scim: " + method + " " + pathOf(u) + " answered " + msg)
}

func pathOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?"
	}
	return p.Path
}

func short(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return strconv.Quote(s)
}
