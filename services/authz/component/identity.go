package component

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/caller"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/authz/index"
)

// Identity's CHANGES subjects authz mirrors: where people are in the org
// tree and which groups they belong to. Identity owns them; authz keeps
// only what its queries need, rebuilt from the stream at start.
var identitySubjects = []string{
	"uias.changes.identity.org.>",
	"uias.changes.identity.user.>",
	"uias.changes.identity.group.>",
}

// identityEvent is the envelope of identity's CHANGES events.
type identityEvent struct {
	Entity string          `json:"entity"`
	Op     string          `json:"op"`
	ID     string          `json:"id"`
	Data   json.RawMessage `json:"data"`
}

// ApplyIdentityEvent applies one identity CHANGES event to idx; events that
// say nothing authz needs are ignored. It reports whether it used it.
func ApplyIdentityEvent(idx *index.Index, payload []byte) bool {
	var ev identityEvent
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" {
		return false
	}
	var d struct {
		ParentID *string `json:"parent_id"`
		OrgID    *string `json:"org_id"`
		UserID   string  `json:"user_id"`
		IsAdmin  *bool   `json:"is_admin"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	switch ev.Entity + "." + ev.Op {
	case "org.created", "org.moved":
		if d.ParentID != nil {
			idx.SetOrgParent(ev.ID, *d.ParentID)
			return true
		}
	case "user.created", "user.updated":
		used := false
		if d.IsAdmin != nil {
			idx.SetUserAdminFlag(ev.ID, *d.IsAdmin)
			used = true
		}
		if d.OrgID != nil {
			idx.SetUserOrg(ev.ID, *d.OrgID)
			used = true
		}
		return used
	case "group.created":
		if d.OrgID != nil {
			idx.SetGroupOrg(ev.ID, *d.OrgID)
			return true
		}
	case "group.member_added", "group.member_removed":
		if d.UserID != "" {
			idx.SetGroupMember(ev.ID, d.UserID, ev.Op == "member_added")
			return true
		}
	}
	return false
}

func isIdentitySubject(s string) bool { return strings.HasPrefix(s, "uias.changes.identity.") }

// identityVerifier checks credentials with identity: application
// credentials with CallerService, administrator tokens with
// AdminSessionService (pkg/adminauth).
type identityVerifier struct {
	c      identityv1.CallerServiceClient
	admins *adminauth.Verifier
}

func (v identityVerifier) VerifyApp(ctx context.Context, appID, secret string, ip netip.Addr, cert string) (*caller.App, error) {
	req := &identityv1.VerifyAppRequest{AppId: appID, AppSecret: secret, ClientCertSha256: cert}
	if ip.IsValid() {
		req.ClientIp = ip.String()
	}
	r, err := v.c.VerifyApp(ctx, req)
	if err != nil {
		return nil, err
	}
	return &caller.App{ID: r.GetAppId(), Type: r.GetAppType(), Code: r.GetAppCode(), Active: true,
		RateLimit: r.GetRateLimit(), RateBurst: int(r.GetRateBurst())}, nil
}

func (v identityVerifier) VerifyAdmin(ctx context.Context, token string) (*adminauth.Admin, error) {
	return v.admins.Authenticate(ctx, token)
}
