// Package caller is who calls a UIAS component and how an application
// caller is authenticated: App_ID + App_Secret (stored hashed, with the
// previous secret valid for an overlap after a rotation), suspended
// applications, the per-application IP allow-list and rate limit.
//
// A component authenticates application callers with an AppAuthenticator
// over an AppSource (identity reads its own store; another component asks
// identity), keeps the Caller in the request context (With) and reads it
// back where it audits or decides (From). The package has no gRPC imports:
// the transport reads the credentials (grpcx.AppCredentials) and hands
// them over.
package caller

import (
	"context"
	"net/netip"
	"strings"
)

// Caller is who made the current call.
type Caller struct {
	App       *App   // the authenticated application, for application callers
	Principal string // user id of the authenticated person (e.g. an administrator), if any
	// PrincipalLogin is the login name Principal had when authenticated
	// (an administrator's): audit records keep it (DetailActorLogin), so
	// that they name the administrator after a rename or a deletion.
	PrincipalLogin string
	ClientIP       netip.Addr
	// AppIP: ClientIP is the person's address as the calling application
	// reported it (Authenticate's extend_info client_ip), and AppIP the
	// address the call itself came from. Audit records keep both.
	AppIP     netip.Addr
	RequestID string
	// Remark is the caller's remark on the call (grpcx.MetadataRemark: an
	// administrator's reason, a ticket number): audit records keep it.
	Remark string
	// ClientCert is the SHA-256 fingerprint (lower case hex of the DER) of
	// the verified client certificate the call came with ("" if none; see
	// grpcx.ClientCertSHA256).
	ClientCert string
	// SignedKey is the thumbprint of the application signing key that
	// verified the call's request signature ("" for an unsigned call; see
	// AppAuthenticator.AuthenticateSigned). Audit records say so.
	SignedKey string
	// Signed is what the verified signature covered (signature,
	// timestamp, nonce, target, body hash), kept with SignedKey for the
	// records: with the application's copy of the request and the public
	// key, a third party can check the signature later (non-repudiation).
	// nil for an unsigned call.
	Signed *SignedRequest
	// AuthMode is how the application was identified when not by App_ID
	// and secret ("" for those): AuthModeIPOnly. Audit and access records
	// keep it (detail auth_mode).
	AuthMode string
	// Centre: the call applies changes of this other centre (the sync
	// component's replica calls): the records it writes name the centre
	// as their actor ("centre:<name>").
	Centre string
	// System: the process acts of itself, for nobody who called (the
	// first start's bootstrap): its records name "system:<System>".
	System string
}

// AuthModeIPOnly: the application was identified by its app_type and
// app_code and the address of the call alone (AuthenticateLegacyAddress).
const AuthModeIPOnly = "ip_only"

type key struct{}

// With returns ctx carrying c.
func With(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, key{}, c)
}

// From returns the caller carried by ctx, or an empty one (never nil).
func From(ctx context.Context) *Caller {
	if c, ok := ctx.Value(key{}).(*Caller); ok && c != nil {
		return c
	}
	return &Caller{}
}

// WithActor is ctx acting for the person an event's actor names
// ("user:<id>", Actor's form): a component doing what an administrator's
// change implies (in another component) records it in their name. Any
// other actor leaves ctx as it is.
func WithActor(ctx context.Context, actor string) context.Context {
	if id, ok := strings.CutPrefix(actor, "user:"); ok && id != "" {
		return With(ctx, &Caller{Principal: id})
	}
	return ctx
}

// Actor names the caller in audit records and change events: "user:<id>"
// for a person, "app:<App_ID>" for an application, "centre:<name>" for
// another centre's changes, "system:<what>" for the process itself, else
// "anonymous".
func (c *Caller) Actor() string {
	switch {
	case c.Principal != "":
		return "user:" + c.Principal
	case c.App != nil:
		return "app:" + c.App.ID
	case c.Centre != "":
		return "centre:" + c.Centre
	case c.System != "":
		return "system:" + c.System
	}
	return "anonymous"
}

// AppID is the App_ID of the calling application, or "".
func (c *Caller) AppID() string {
	if c.App != nil {
		return c.App.ID
	}
	return ""
}
