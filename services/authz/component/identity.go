package component

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// Identity's CHANGES subjects authz mirrors: where people are in the org
// tree and which groups they belong to. Identity owns them; authz keeps
// only what its queries need, rebuilt from the stream at start.
var identitySubjects = []string{
	"uias.changes.identity.org.>",
	"uias.changes.identity.user.>",
	"uias.changes.identity.group.>",
	// app.deleted (app.replica.deleted at a centre holding the replica):
	// the application's model goes (commands.ForgetApp).
	"uias.changes.identity.app.>",
	// lock.disabled and lock.enabled (lock.replica.* at the home): the
	// level-1 centre's disable of a level-2 person (ADR 0048), kept
	// beside the home's status (index.SetPersonCentreDisabled).
	"uias.changes.identity.lock.>",
}

// identityEvent is the envelope of identity's CHANGES events.
type identityEvent struct {
	Entity string          `json:"entity"`
	Op     string          `json:"op"`
	ID     string          `json:"id"`
	Actor  string          `json:"actor"`
	Data   json.RawMessage `json:"data"`
}

// identityChange is what authz reads of one identity CHANGES event.
type identityChange struct {
	entity, op, id string
	actor          string // who made the change ("user:<id>", ...)
	parentID       *string
	orgID          *string
	userID         string
	isAdmin        *bool
	status         *int // identity's status: 1 active, 2 disabled
}

func parseIdentityEvent(payload []byte) (identityChange, bool) {
	var ev identityEvent
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" {
		return identityChange{}, false
	}
	var d struct {
		ParentID *string `json:"parent_id"`
		OrgID    *string `json:"org_id"`
		UserID   string  `json:"user_id"`
		IsAdmin  *bool   `json:"is_admin"`
		Status   *int    `json:"status"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	return identityChange{entity: ev.Entity, op: ev.Op, id: ev.ID, actor: ev.Actor, parentID: d.ParentID, orgID: d.OrgID,
		userID: d.UserID, isAdmin: d.IsAdmin, status: d.Status}, true
}

// ApplyIdentityEvent applies one identity CHANGES event to idx; events that
// say nothing authz needs are ignored. It reports whether it used it.
func ApplyIdentityEvent(idx *index.Index, payload []byte) bool {
	c, ok := parseIdentityEvent(payload)
	return ok && c.apply(idx)
}

// statusActive is identity's active status (its events' data.status).
const statusActive = 1

func (c identityChange) apply(idx *index.Index) bool {
	switch c.entity + "." + c.op {
	case "org.created", "org.moved":
		if c.parentID != nil {
			idx.SetOrgParent(c.id, *c.parentID)
			return true
		}
	case "org.status_changed":
		if c.status != nil {
			idx.SetOrgDisabled(c.id, *c.status != statusActive)
			return true
		}
	case "org.deleted":
		idx.ForgetOrg(c.id)
		return true
	case "user.status_changed":
		if c.status != nil {
			idx.SetPersonDisabled(c.id, *c.status != statusActive)
			return true
		}
	case "lock.disabled", "lock.enabled":
		// level 1's disable of a person homed at a level-2 centre (ADR
		// 0048): written at level 1 as lock.disabled, at the home as
		// lock.replica.disabled (the last token is the op either way);
		// the home's status is not touched, so it is its own flag
		idx.SetPersonCentreDisabled(c.id, c.op == "disabled")
		return true
	case "user.created", "user.updated":
		used := false
		if c.op == "created" {
			idx.PersonCreated(c.id)
		}
		if c.status != nil {
			idx.SetPersonDisabled(c.id, *c.status != statusActive)
			used = true
		}
		if c.isAdmin != nil {
			idx.SetUserAdminFlag(c.id, *c.isAdmin)
			used = true
		}
		if c.orgID != nil {
			idx.SetUserOrg(c.id, *c.orgID)
			used = true
		}
		return used
	case "user.deleted":
		idx.ForgetPerson(c.id)
		return true
	case "group.deleted":
		idx.ForgetGroup(c.id)
		return true
	case "group.created":
		if c.orgID != nil {
			idx.SetGroupOrg(c.id, *c.orgID)
			return true
		}
	case "group.member_added", "group.member_removed":
		if c.userID != "" {
			idx.SetGroupMember(c.id, c.userID, c.op == "member_added")
			return true
		}
	}
	return false
}

// deletedSubject is the grant subject c deletes (user.deleted,
// group.deleted, org.deleted): its grants go with it (forget.go).
func (c identityChange) deletedSubject() (authz.Subject, bool) {
	if c.op != "deleted" {
		return authz.Subject{}, false
	}
	switch c.entity {
	case "user":
		return authz.Subject{Kind: authz.SubjectUser, ID: c.id}, true
	case "group":
		return authz.Subject{Kind: authz.SubjectGroup, ID: c.id}, true
	case "org":
		// an org is deleted empty; its grants would wait for an org of
		// the same id that never comes (trial7 L7)
		return authz.Subject{Kind: authz.SubjectOrg, ID: c.id}, true
	}
	return authz.Subject{}, false
}

// narrows reports whether c may take something away from an administrator
// (an org moved, a person moved or their legacy flag changed): components
// that keep authz's answers to administrators are told when it is applied
// (adminauth.MirrorSubject). Creations only ever allow more, refusals are
// never kept, and group members do not count: administrator roles are
// granted to people only, and the questions where membership counts (a
// join, separation of duty) are never kept.
func (c identityChange) narrows() bool {
	switch c.entity + "." + c.op {
	case "org.moved":
		return c.parentID != nil
	case "user.updated":
		return c.orgID != nil || c.isAdmin != nil
	case "user.deleted", "user.status_changed", "org.status_changed", "group.deleted", "lock.disabled":
		return true
	}
	return false
}

// deletedApp is the App_ID of an application c deletes ("" for any other
// change): its model is removed from the store (commands.ForgetApp), not
// only from the mirror.
func (c identityChange) deletedApp() string {
	if c.entity == "app" && c.op == "deleted" {
		return c.id
	}
	return ""
}

func isIdentitySubject(s string) bool { return strings.HasPrefix(s, "uias.changes.identity.") }

// identityVerifier checks credentials with identity: application
// credentials with CallerService, administrator tokens with
// AdminSessionService (pkg/adminauth).
type identityVerifier struct {
	c      identityv1.CallerServiceClient
	admins *adminauth.Verifier
}

func (v identityVerifier) VerifyApp(ctx context.Context, appID, secret string, ip netip.Addr, cert string, sig caller.SignedRequest, api string) (*caller.App, string, error) {
	req := &identityv1.VerifyAppRequest{AppId: appID, AppSecret: secret, ClientCertSha256: cert,
		Signature: sig.Signature, Timestamp: sig.Timestamp, Nonce: sig.Nonce, SignedTarget: sig.Target,
		BodySha256: sig.BodySHA256, SignedUntrusted: sig.Untrusted, Api: api}
	if ip.IsValid() {
		req.ClientIp = ip.String()
	}
	r, err := v.c.VerifyApp(ctx, req)
	if c := status.Code(err); c == codes.Unavailable || (c == codes.DeadlineExceeded && ctx.Err() == nil) {
		// authz is up, identity behind it is not: say so, as for an
		// administrator's token (not the bare "service temporarily
		// unavailable", which reads as if authz itself were down).
		return nil, "", apierr.Wrap(err, apierr.Unavailable, adminauth.ReasonIdentityUnavailable,
			"the identity service is unavailable, so the application's credentials cannot be checked; nothing was done, try again later")
	}
	if err != nil {
		return nil, "", err
	}
	app := &caller.App{ID: r.GetAppId(), Type: r.GetAppType(), Code: r.GetAppCode(), Active: true,
		RateLimit: r.GetRateLimit(), RateBurst: int(r.GetRateBurst()), GrantedAPIs: r.GetGrantedApis(),
		MaxConcurrent: int(r.GetMaxConcurrent())}
	if r.GetAccessFrom() != nil {
		app.AccessFrom = r.GetAccessFrom().AsTime()
	}
	if r.GetAccessUntil() != nil {
		app.AccessUntil = r.GetAccessUntil().AsTime()
	}
	return app, r.GetSignedKey(), nil
}

func (v identityVerifier) VerifyAdmin(ctx context.Context, token string) (*adminauth.Admin, error) {
	return v.admins.Authenticate(ctx, token)
}
