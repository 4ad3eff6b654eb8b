package ticket

import "github.com/uias/uias/pkg/apierr"

// The ticket component's error reasons (docs/integrators.md lists them,
// generated from this table). Refused validations are not errors: they are
// answers carrying the CAS code.
func init() {
	apierr.Register(
		apierr.Reason{Name: "SESSION_NOT_FOUND", Code: apierr.NotFound,
			Doc: "The single sign-on session (TGT) has ended, expired or never existed: sign in again."},
		apierr.Reason{Name: "TICKET_STORE_UNAVAILABLE", Code: apierr.Unavailable, Legacy: -6,
			Doc: "The ticket store (NATS JetStream) does not answer in time; nothing was changed that the answer does not say. Retry later."},
		apierr.Reason{Name: "APP_SETTINGS_UNAVAILABLE", Code: apierr.Unavailable, Legacy: -6,
			Doc: "A ticket, code or token for a service of an application was asked before this ticket instance read the applications' sign-in levels from identity since its start (it tries every 2 seconds): nothing is issued until then, so that an application's minimum level is never skipped. Retry shortly."},
		apierr.Reason{Name: "COMPONENTS_ONLY", Code: apierr.PermissionDenied,
			Doc: "This TicketService call is made only by UIAS components (the CAS edge), not by applications."},
		apierr.Reason{Name: "PASSWORD_CHANGED_DURING_LOGIN", Code: apierr.FailedPrecondition,
			Doc: "CreateSession: the person's password was changed while they signed in with the previous one; no session was opened. Sign in with the new password."},
		apierr.Reason{Name: "ACCOUNT_CHANGED_DURING_LOGIN", Code: apierr.FailedPrecondition,
			Doc: "CreateSession: the person's account was locked or disabled while they signed in (their login saw it before); no session was opened."},
		apierr.Reason{Name: "SESSION_NOT_OF_USER", Code: apierr.NotFound,
			Doc: "RevokeUserSessions: the person has no live session with this id."},
		apierr.Reason{Name: "OIDC_UNAVAILABLE", Code: apierr.FailedPrecondition,
			Doc: "OpenID Connect is not available: the key ring has no keys to sign ID tokens with."},
		apierr.Reason{Name: "OAUTH_REDIRECT_NOT_OF_CLIENT", Code: apierr.InvalidArgument,
			Doc: "/cas/oidc/authorize: the redirect_uri is not a registered service of the client's application (or is one of the legacy interface): an error page, never a redirect."},
		apierr.Reason{Name: "OAUTH_INVALID_CLIENT", Code: apierr.Unauthenticated,
			Doc: "The token, introspection or revocation endpoint: the client's App_ID and secret are wrong or missing, or it called from an address not on its IP allow-list (OAuth invalid_client, HTTP 401)."},
		apierr.Reason{Name: "OAUTH_INVALID_GRANT", Code: apierr.InvalidArgument,
			Doc: "The token endpoint: the authorization code is unknown, expired or used, was issued to another client or redirect_uri, fails PKCE, or its session has ended (OAuth invalid_grant, HTTP 400)."},
		apierr.Reason{Name: "OAUTH_INVALID_SCOPE", Code: apierr.InvalidArgument,
			Doc: "The token endpoint's refresh_token grant: the scope asked for is not within the scope first granted (OAuth invalid_scope, HTTP 400); or an authorization code or consent asked for the scope cas, which is the consent to the application's CAS services and given only on their consent page."},
		// The CAS login page's Windows domain sign-in (ticket.kerberos,
		// cas/kerberos.go): refusals before identity is asked. The page
		// shows the login form with a message (HTTP 401, no new Negotiate
		// challenge); the reason is logged, never the token or principal.
		apierr.Reason{Name: ReasonKerberosTokenInvalid, Code: apierr.Unauthenticated,
			Doc: "/cas/login with Authorization: Negotiate: the token is not a Kerberos ticket this server's keytab opens (malformed, tampered, expired, for another service principal, or outside the 5-minute clock skew): the login form with a message."},
		apierr.Reason{Name: ReasonKerberosReplay, Code: apierr.Unauthenticated,
			Doc: "/cas/login with Authorization: Negotiate: the token's authenticator was presented before (a replay): the login form with a message."},
		apierr.Reason{Name: ReasonKerberosRealm, Code: apierr.Unauthenticated,
			Doc: "/cas/login with Authorization: Negotiate: the person's Kerberos realm is not in ticket.kerberos.realms: the login form with a message."},
		apierr.Reason{Name: ReasonKerberosUnmapped, Code: apierr.Unauthenticated,
			Doc: "/cas/login with Authorization: Negotiate: the principal maps to no login name (a name with an instance such as alice/admin, or longer than 128 characters): the login form with a message."},
		// Sign-in across centres (peer.go, cas/peer.go; ADR 0030).
		apierr.Reason{Name: ReasonPeerSignInOff, Code: apierr.FailedPrecondition,
			Doc: "Sign-in across centres: this centre has no ticket.peer_key_file (it vouches for nobody) or no ticket.peers (it trusts nobody)."},
		apierr.Reason{Name: ReasonPeerUnknown, Code: apierr.PermissionDenied,
			Doc: "Sign-in across centres: the centre named (the assertion's issuer, or the audience asked for) is not one of ticket.peers."},
		apierr.Reason{Name: ReasonPeerInvalid, Code: apierr.Unauthenticated,
			Doc: "/cas/peer/accept: the peer's assertion is malformed, not signed by one of the keys configured for that peer, or not bound to this browser (nonce): no session; the login form. /cas/peer/logout: the same for a logout token (HTTP 400)."},
		apierr.Reason{Name: ReasonPeerExpired, Code: apierr.Unauthenticated,
			Doc: "/cas/peer/accept: the peer's assertion (or, at /cas/peer/logout, its logout token) has expired (ticket.peer_assertion_ttl after it was signed): no session; the login form."},
		apierr.Reason{Name: ReasonPeerReplayed, Code: apierr.Unauthenticated,
			Doc: "/cas/peer/accept: the peer's assertion was used before (each is good once): no session; the login form. /cas/peer/logout: a logout token posted again (HTTP 400)."},
		apierr.Reason{Name: ReasonPeerWrongAudience, Code: apierr.Unauthenticated,
			Doc: "/cas/peer/accept: the peer's assertion is for another centre: no session; the login form."},
		// OpenID Connect consent and a person's own applications (consent.go; ADR 0036).
		apierr.Reason{Name: ReasonConsentRequired, Code: apierr.FailedPrecondition,
			Doc: "/cas/oidc/authorize and /cas/login: the client (any of its services) asks the person's consent and no remembered, unexpired consent covers the scope (for a CAS, ssoAuthService or proxy ticket: the CAS consent, scope cas, which an OpenID Connect consent does not cover): the consent page (with prompt=none: error=consent_required to the redirect_uri; CAS gateway=true: back to the service without a ticket; a proxy ticket: UNAUTHORIZED_SERVICE)."},
		apierr.Reason{Name: ReasonConsentUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "Consents cannot be read or recorded (the ticket component's database does not answer): no code or ticket is issued to a client asking consent (prompt=none: error=temporarily_unavailable to the redirect_uri), and a revocation is not made. Retry later."},
		apierr.Reason{Name: ReasonMyAppNotFound, Code: apierr.NotFound,
			Doc: "/cas/profile \"Remove access\": the person has given no access to that application (no remembered consent, no sign-in in a live session), or it was removed already."},
		apierr.Reason{Name: "OAUTH_INVALID_TOKEN", Code: apierr.Unauthenticated,
			Doc: "The userinfo endpoint: the access token is unknown, expired or revoked, or its session has ended (HTTP 401 with WWW-Authenticate: Bearer error=\"invalid_token\")."},
	)
}

// The Windows domain (Kerberos) sign-in's refusals on the CAS login page.
const (
	ReasonKerberosTokenInvalid = "KERBEROS_TOKEN_INVALID"
	ReasonKerberosReplay       = "KERBEROS_REPLAY"
	ReasonKerberosRealm        = "KERBEROS_REALM_NOT_ACCEPTED"
	ReasonKerberosUnmapped     = "KERBEROS_PRINCIPAL_UNMAPPED"
)

// Errors of the domain.
var (
	ErrSessionNotFound  = apierr.New(apierr.NotFound, "SESSION_NOT_FOUND", "the session has ended or does not exist")
	ErrStoreUnavailable = apierr.New(apierr.Unavailable, "TICKET_STORE_UNAVAILABLE", "the ticket store is unavailable, retry later")
	ErrComponentsOnly   = apierr.New(apierr.PermissionDenied, "COMPONENTS_ONLY", "this call is made only by UIAS components")
	// ErrPGTComponentsOnly refuses issue_pgt to a caller that is no UIAS
	// component.
	ErrPGTComponentsOnly = ErrComponentsOnly.WithMessage("issue_pgt is for the CAS edge, which hands the proxy-granting ticket to the pgtUrl: " +
		"validate without it, or use /cas/serviceValidate with pgtUrl")
	// ErrPasswordChanged refuses a session whose login checked a password
	// that was replaced meanwhile (Store.NotePassword).
	ErrPasswordChanged = apierr.New(apierr.FailedPrecondition, "PASSWORD_CHANGED_DURING_LOGIN",
		"the password was changed while signing in: sign in with the new password")
	// ErrAccountChanged refuses a session whose login saw the account
	// before it was locked or disabled meanwhile (Store.NoteState).
	ErrAccountChanged = apierr.New(apierr.FailedPrecondition, "ACCOUNT_CHANGED_DURING_LOGIN",
		"the account was locked or disabled while signing in: no session was opened")
	ErrNoSuchUserSession = apierr.New(apierr.NotFound, "SESSION_NOT_OF_USER", "the person has no live session with this id")
)
