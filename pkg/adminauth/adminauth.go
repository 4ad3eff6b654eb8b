// Package adminauth checks UIAS administrators for every component: who
// holds an administrator bearer token (identity's AdminSessionService.WhoAmI,
// over gRPC) and whether they may do an administrative action (the authz
// component's CheckAdmin, application "uias"). The BAD_ADMIN_TOKEN and
// ADMIN_NOT_ALLOWED reasons are declared here, once.
//
// The administration namespace (resources, operations and the built-in
// roles system_admin, security_auditor and unit_admin) is described in
// docs/operators.md; the Perm values below name every permission.
package adminauth

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// App is the application id UIAS's own administration is checked under.
const App = "uias"

// Reasons.
const (
	ReasonBadToken   = "BAD_ADMIN_TOKEN"
	ReasonNotAllowed = "ADMIN_NOT_ALLOWED"
	// ReasonSoDConflict: a grant, a role or a membership would let one
	// person hold both roles of a separation-of-duty pair.
	ReasonSoDConflict = "SOD_CONFLICT"
	// ReasonAuthzUnavailable: the authz component did not answer within
	// RetryFor, so an administrator's call could not be checked.
	ReasonAuthzUnavailable = "AUTHZ_UNAVAILABLE"
	// ReasonIdentityUnavailable: the identity component did not answer,
	// so an administrator's token (or, at authz, an application's
	// credentials) could not be checked.
	ReasonIdentityUnavailable = "IDENTITY_UNAVAILABLE"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonBadToken, Code: apierr.Unauthenticated,
			Doc: "The administrator bearer token is missing, invalid or expired; log in again."},
		apierr.Reason{Name: ReasonNotAllowed, Code: apierr.PermissionDenied,
			Doc: "The administrator's roles do not allow this action (here, or on this target: outside the org subtree they administer, a role they may not hand on, an administrator above them, their own grants). The message says which."},
		apierr.Reason{Name: ReasonSoDConflict, Code: apierr.FailedPrecondition,
			Doc: "The grant, role, group membership, move of a person or of an org would let one person hold both roles of a separation-of-duty pair, or a new pair is already broken by somebody (authz exclusions; the three administrators are one built in)."},
		apierr.Reason{Name: ReasonIdentityUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "An administrator's call, or an application's call to another component (authz), could not be checked: the identity service, which knows administrator tokens and application credentials, did not answer (stopped, unreachable). Nothing was done; retry once identity is back (its /readyz, the edge's /readyz)."},
		apierr.Reason{Name: ReasonAuthzUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "An administrator's call could not be checked: the authorization service (authz) did not answer for 10 s (stopped, unreachable, still loading its index). Nothing was done; retry once authz is back (its /readyz, the edge's /readyz)."},
	)
}

// ErrNoToken refuses an administrator call without a token.
var ErrNoToken = apierr.New(apierr.Unauthenticated, ReasonBadToken, "an administrator token is required (authorization: Bearer <token>)")

// Denied is the refusal of an administrative action, with a sentence
// saying why.
func Denied(msg string) error { return apierr.New(apierr.PermissionDenied, ReasonNotAllowed, msg) }

// Perm is one administrative permission: a resource of application "uias"
// and an operation.
type Perm struct {
	Resource  string
	Operation string
}

func (p Perm) String() string { return p.Resource + "." + p.Operation }

// The administration permissions.
var (
	ConsoleLogin = Perm{"system.console", "login"}

	SettingsRead  = Perm{"system.settings", "read"}
	SettingsWrite = Perm{"system.settings", "write"}

	OrgsRead       = Perm{"identity.orgs", "read"}
	OrgsWrite      = Perm{"identity.orgs", "write"}
	UsersRead      = Perm{"identity.users", "read"}
	UsersWrite     = Perm{"identity.users", "write"}
	UsersPassword  = Perm{"identity.users", "password"}
	UsersLock      = Perm{"identity.users", "lock"}
	UsersUnlock    = Perm{"identity.users", "unlock"}
	GroupsRead     = Perm{"identity.groups", "read"}
	GroupsWrite    = Perm{"identity.groups", "write"}
	LinksRead      = Perm{"identity.links", "read"}
	LinksWrite     = Perm{"identity.links", "write"}
	AppsRead       = Perm{"identity.apps", "read"}
	AppsWrite      = Perm{"identity.apps", "write"}
	AppsSecret     = Perm{"identity.apps", "secret"}
	KeysRead       = Perm{"identity.keys", "read"}
	KeysRotate     = Perm{"identity.keys", "rotate"}
	FingersRead    = Perm{"identity.fingers", "read"}
	FingersWrite   = Perm{"identity.fingers", "write"}
	ImportRun      = Perm{"identity.import", "run"}
	ExportRun      = Perm{"identity.export", "run"}
	AuthzModelRead = Perm{"authz.model", "read"}
	AuthzModel     = Perm{"authz.model", "write"}
	GrantsRead     = Perm{"authz.grants", "read"}
	GrantsWrite    = Perm{"authz.grants", "write"}

	// PersonalReveal: ID numbers and phone numbers in clear (an export's
	// reveal_personal); only the personal_data_admin role holds it.
	PersonalReveal = Perm{"identity.personal", "reveal"}

	TicketServicesRead   = Perm{"ticket.services", "read"}
	TicketServicesWrite  = Perm{"ticket.services", "write"}
	TicketSessionsRead   = Perm{"ticket.sessions", "read"}
	TicketSessionsRevoke = Perm{"ticket.sessions", "revoke"}

	// SyncRead: the replication state of a centre (status, skipped
	// changes, digests); SyncWrite: acting on it.
	SyncRead  = Perm{"sync.replication", "read"}
	SyncWrite = Perm{"sync.replication", "write"}

	AuditRead    = Perm{"audit.records", "read"}
	AuditVerify  = Perm{"audit.records", "verify"}
	AuditArchive = Perm{"audit.records", "archive"}
	AuditExport  = Perm{"audit.records", "export"}
)

// Admin is an authenticated administrator.
type Admin struct {
	ID    string
	Login string
	OrgID string
	// SystemAdminFlag: identity's account carries the legacy is_admin flag,
	// which authz counts as the system_admin role.
	SystemAdminFlag bool
	// LegacyRule: identity decides administrators by the is_admin flag
	// alone (identity.admin_authz off: a deployment without the authz
	// component). Check then allows SystemAdminFlag holders everything and
	// nobody else anything, without asking authz.
	LegacyRule bool
}

type ctxKey struct{}

// With returns ctx carrying a.
func With(ctx context.Context, a *Admin) context.Context { return context.WithValue(ctx, ctxKey{}, a) }

// From returns the administrator of ctx (nil if none).
func From(ctx context.Context) *Admin {
	a, _ := ctx.Value(ctxKey{}).(*Admin)
	return a
}

// Checker is what a component's admin RPCs need: Authenticate in its caller
// authentication, Authorize (or Check) in the handlers.
type Checker interface {
	Authenticate(ctx context.Context, token string) (*Admin, error)
	Authorize(ctx context.Context, a *Admin, p Perm, target string, orgs ...string) error
	Check(ctx context.Context, a *Admin, r Request) error
}

// Request is one question of Check.
type Request struct {
	Perm Perm
	// Target: the person acted on ("" if none).
	Target string
	// Orgs: every org the action touches (none: a global action, or the
	// target's org).
	Orgs []string
	// JoinGroup / JoinOrg: the action makes Target a member of the group /
	// moves them to the org: refused with FAILED_PRECONDITION SOD_CONFLICT
	// when they would then hold both roles of a separation-of-duty pair.
	JoinGroup string
	JoinOrg   string
	// MoveOrg: the action moves this org (and everything below it) under
	// JoinOrg: refused with SOD_CONFLICT when a person in it would then
	// hold both roles of a separation-of-duty pair.
	MoveOrg string
}

// Verifier checks tokens with identity and permissions with authz over
// gRPC (in-process or remote; the connections come from module.Env.Client).
type Verifier struct {
	sessions identityv1.AdminSessionServiceClient
	authz    authzv1.AuthzServiceClient
	cache    *decisionCache // CacheDecisions (cache.go); nil: ask every time
}

var _ Checker = (*Verifier)(nil)

// New returns the verifier over identity's and authz's connections.
func New(identity, authz grpc.ClientConnInterface) *Verifier {
	v := &Verifier{sessions: identityv1.NewAdminSessionServiceClient(identity)}
	if authz != nil {
		v.authz = authzv1.NewAuthzServiceClient(authz)
	}
	return v
}

// Authenticate returns the administrator holding token (UNAUTHENTICATED
// BAD_ADMIN_TOKEN when there is none or identity refuses it). Every call
// asks identity: a revoked token is refused at once.
func (v *Verifier) Authenticate(ctx context.Context, token string) (*Admin, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	r, err := v.sessions.WhoAmI(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), &identityv1.WhoAmIRequest{})
	if c := status.Code(err); c == codes.Unavailable || (c == codes.DeadlineExceeded && ctx.Err() == nil) {
		// the component asked is up; identity, behind it, is not: say so
		// (trial12 D3)
		return nil, apierr.Wrap(err, apierr.Unavailable, ReasonIdentityUnavailable,
			"the identity service is unavailable, so the administrator token cannot be checked; nothing was done, try again later")
	}
	if err != nil {
		return nil, err
	}
	u := r.GetUser()
	return &Admin{ID: u.GetId(), Login: u.GetLoginName(), OrgID: u.GetOrgId(), SystemAdminFlag: r.GetSystemAdmin(),
		LegacyRule: r.GetLegacyAdminRule()}, nil
}

// Authorize answers nil when a may do p, on target (a person's user id, or
// "") in orgs (every org the action touches: the target's org, a new
// parent...; none for a global action), or PERMISSION_DENIED
// ADMIN_NOT_ALLOWED saying why. Every call asks authz (fresh: a revoked
// grant is refused at once), unless CacheDecisions (cache.go) bounds
// that freshness.
func (v *Verifier) Authorize(ctx context.Context, a *Admin, p Perm, target string, orgs ...string) error {
	return v.Check(ctx, a, Request{Perm: p, Target: target, Orgs: orgs})
}

// Check is Authorize with a membership change to check for separation of
// duty.
func (v *Verifier) Check(ctx context.Context, a *Admin, rq Request) error {
	p := rq.Perm
	if a == nil || a.ID == "" {
		return ErrNoToken
	}
	if a.LegacyRule {
		if a.SystemAdminFlag {
			return nil
		}
		return Denied(deniedMessage(p, "only system administrators (is_admin) administer this deployment"))
	}
	if v.authz == nil {
		return apierr.ErrUnavailable.WithMessage("the authorization component is not configured")
	}
	if v.cache != nil && v.cache.allowedKept(a, rq) {
		return nil
	}
	var os []string
	for _, o := range rq.Orgs {
		if o != "" {
			os = append(os, o)
		}
	}
	req := &authzv1.CheckAdminRequest{Person: a.ID, Resource: p.Resource, Operation: p.Operation,
		Orgs: os, TargetPerson: rq.Target, SystemAdminFlag: a.SystemAdminFlag, JoinGroup: rq.JoinGroup, JoinOrg: rq.JoinOrg, MoveOrg: rq.MoveOrg}
	r, err := v.checkAdmin(ctx, req)
	if err != nil {
		return err
	}
	if !r.GetAllowed() {
		return Denied(deniedMessage(p, r.GetDetail()))
	}
	if r.GetSodConflict() != "" {
		return apierr.New(apierr.FailedPrecondition, ReasonSoDConflict, r.GetSodConflict())
	}
	return nil
}

// RetryFor bounds how long Authorize keeps asking an authz component that
// answers UNAVAILABLE (starting, its index still loading, a replica
// restarting), within the call's deadline.
const RetryFor = 10 * time.Second

func (v *Verifier) checkAdmin(ctx context.Context, req *authzv1.CheckAdminRequest) (*authzv1.CheckAdminResponse, error) {
	if v.cache != nil {
		return v.cache.cachedCheckAdmin(req, func() (*authzv1.CheckAdminResponse, error) { return v.askAdmin(ctx, req) })
	}
	return v.askAdmin(ctx, req)
}

func (v *Verifier) askAdmin(ctx context.Context, req *authzv1.CheckAdminRequest) (*authzv1.CheckAdminResponse, error) {
	deadline := time.Now().Add(RetryFor)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		r, err := v.authz.CheckAdmin(ctx, req)
		if status.Code(err) != codes.Unavailable {
			return r, err
		}
		if time.Now().Add(delay).After(deadline) {
			return r, errAuthzUnavailable(err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, errAuthzUnavailable(err)
		case <-t.C:
		}
	}
}

// errAuthzUnavailable is the refusal of an administrator's call that authz
// did not answer (err, its last answer, kept as the cause for the log).
func errAuthzUnavailable(err error) error {
	return apierr.Wrap(err, apierr.Unavailable, ReasonAuthzUnavailable,
		"the authorization service (authz) is unavailable, so administrator calls cannot be checked; nothing was done, try again later")
}

// actions names, for a refusal, the operations whose verb alone would
// misname the call refused ("lock" also enables, disables and unlocks).
var actions = map[Perm]string{
	UsersLock:     "lock, disable or enable users",
	UsersPassword: "set users' passwords",
	AppsSecret:    "rotate application secrets",
}

func deniedMessage(p Perm, detail string) string {
	what, ok := actions[p]
	if !ok {
		what = p.Operation + " " + strings.TrimPrefix(p.Resource, "identity.")
	}
	msg := "not allowed to " + what
	if detail != "" {
		msg += ": " + detail
	}
	return msg
}
