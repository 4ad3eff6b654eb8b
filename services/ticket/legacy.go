package ticket

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// The legacy ssoAuthService interface of the fingerprint server design
// (the platform side): an application on integration scheme 1 or 2
// receives the browser at <its ssoAuthService>?verb=ssoLogin&st=<ST> and
// asks the platform ssoAuthService?verb=validateServiceTicket&st=<ST>,
// which answers the person's account in that application (and, for
// scheme 1, the account's password, which the platform keeps sealed).
// Account association (the person links an existing account at the
// portal) asks the application ssoAuthService?verb=validatePrincipal.

// LegacyResult is the result code of the legacy interface.
type LegacyResult string

// Legacy result codes (docs/integrators.md lists them).
const (
	LegacyOK                LegacyResult = "RPC_OK"
	LegacyInvalidRequest    LegacyResult = "RPC_INVALID_REQUEST"
	LegacyInvalidTicket     LegacyResult = "RPC_INVALID_TICKET"
	LegacyInvalidService    LegacyResult = "RPC_INVALID_SERVICE"
	LegacyCallerNotAllowed  LegacyResult = "RPC_CALLER_NOT_ALLOWED"
	LegacyNoAccount         LegacyResult = "RPC_NO_ACCOUNT"
	LegacyInternalError     LegacyResult = "RPC_INTERNAL_ERROR"
	LegacyUnknownVerb       LegacyResult = "RPC_UNKNOWN_VERB"
	legacyCredentialAADBase              = "uias ticket app password v1:"
)

// LegacyApps is what the legacy interface needs of identity: checks of the
// calling application, and the person's account links. A refusal of the
// caller is an *apierr.Error with code Unauthenticated or
// PermissionDenied; other errors are faults.
type LegacyApps interface {
	// VerifyApp checks App_ID + secret, the caller's address against the
	// application's IP allow-list and cert, the client certificate the
	// edge verified (hex SHA-256, "" none), against its binding, and that
	// it may call interface api (caller.APISSO, caller.APIOIDC) now.
	VerifyApp(ctx context.Context, appID, secret, ip, cert, api string) error
	// CheckAddress checks a caller without a secret: the application must
	// be active, ip on its IP allow-list, which must not be empty, cert
	// its bound certificate (if any), and it must not require signed
	// requests.
	CheckAddress(ctx context.Context, appID, ip, cert string) error
	// Account returns the person's linked account in the application (""
	// when none).
	Account(ctx context.Context, userID, appID string) (string, error)
	// IDNumber returns the person's identity document number ("" when
	// none is recorded).
	IDNumber(ctx context.Context, userID string) (string, error)
	// Link links the person to account in the application.
	Link(ctx context.Context, userID, appID, account string) error
	// Links lists the person's active links (application id, name,
	// account).
	Links(ctx context.Context, userID string) ([]PersonLink, error)
	// Unlink removes the person's own link with the application (the
	// person is the actor; NOT_FOUND: none).
	Unlink(ctx context.Context, userID, appID string) error
}

// PersonLink is a person's account in an application.
type PersonLink struct {
	AppID, AppName, Account string
}

// PrincipalChecker asks an application whether an account belongs to the
// person with an identity document number (ssoAuthService
// verb=validatePrincipal). ok is the application's RPC_OK; an error is a
// fault (no answer after the retries).
type PrincipalChecker interface {
	ValidatePrincipal(ctx context.Context, endpoint, account, idNumber string) (ok bool, err error)
}

// AppCredential is a person's application password (scheme 1), sealed.
type AppCredential struct {
	UserID, AppID, Account string
	SecretEnc              string
	UpdatedAt              time.Time
}

// CredentialStore keeps sealed application passwords (the ticket
// component's SQL store). A missing credential is store.ErrNotFound.
type CredentialStore interface {
	PutCredential(ctx context.Context, c *AppCredential) error
	GetCredential(ctx context.Context, userID, appID string) (*AppCredential, error)
}

// Sealer seals and opens small values (crypto.Sealer).
type Sealer interface {
	Seal(plaintext, aad []byte) (string, error)
	Open(sealed string, aad []byte) ([]byte, error)
}

// LegacyDeps are the legacy interface's dependencies (all required for it;
// without them legacy validation answers RPC_INTERNAL_ERROR).
type LegacyDeps struct {
	Apps        LegacyApps
	Principals  PrincipalChecker
	Credentials CredentialStore
	Sealer      Sealer
}

// SetLegacy sets the legacy interface's dependencies.
func (s *Service) SetLegacy(d LegacyDeps) { s.legacy = d }

func credentialAAD(userID, appID string) []byte {
	return []byte(legacyCredentialAADBase + userID + ":" + appID)
}

// LegacyValidate is a validateServiceTicket call.
type LegacyValidate struct {
	Ticket string
	// AppID and AppSecret the caller presented (may be empty).
	AppID, AppSecret string
	// ClientIP is the calling application's address; ClientCert the
	// fingerprint of the client certificate the edge verified on its
	// call ("" none).
	ClientIP, ClientCert string
}

// LegacyValidation is the answer of validateServiceTicket.
type LegacyValidation struct {
	Result   LegacyResult
	Message  string
	Account  string
	Password string
	LoggedIn bool
	UserID   string
	AppID    string
}

// refused reports whether err is a refusal of the caller (not a fault).
func refused(err error) (*apierr.Error, bool) {
	ae, ok := apierr.As(err)
	if !ok {
		return nil, false
	}
	switch ae.Code {
	case apierr.Unauthenticated, apierr.PermissionDenied, apierr.NotFound, apierr.InvalidArgument:
		return ae, true
	case apierr.ResourceExhausted:
		// the application's rate limit: an answer about the caller, not
		// a fault worth retrying (review sec22 M3)
		return ae, ae.Reason == caller.ErrRateLimited.Reason
	}
	return nil, false
}

// ValidateLegacy consumes an ST issued to a legacy service and answers the
// person's account in the application. The ticket is used up by the call
// whatever follows (as CAS does for a ticket presented for the wrong
// service). Refusals are answers; only faults of the stores are errors.
func (s *Service) ValidateLegacy(ctx context.Context, v LegacyValidate) (*LegacyValidation, error) {
	start := s.now()
	refuse := func(res LegacyResult, reason, msg string, t *Ticket) (*LegacyValidation, error) {
		a := audit.Action{API: "ticket.validate", Subject: "ticket", Result: audit.ResultFailure, Reason: reason, Start: start,
			Fields: detail("code", string(res), "interface", "ssoAuthService")}
		if t != nil {
			a.Subject, a.Org = "user:"+t.UserID, t.OrgID
			a.Fields = append(a.Fields, events.DetailField{Key: "serial", Value: t.Serial}, events.DetailField{Key: "app_id", Value: t.AppID})
		}
		if reason == "CALLER_REFUSED" {
			a.Result = audit.ResultDenied
		}
		s.auditCall(ctx, a)
		return &LegacyValidation{Result: res, Message: msg}, nil
	}
	if v.Ticket == "" {
		return refuse(LegacyInvalidRequest, "MISSING_PARAMETER", "the st parameter is required", nil)
	}
	if s.legacy.Apps == nil {
		return nil, errors.New("ticket: the legacy interface is not configured")
	}
	sig, err := parseSigned(s.mac, PrefixST, v.Ticket)
	if err != nil {
		return refuse(LegacyInvalidTicket, "FORGED_OR_MALFORMED", fmt.Sprintf("ticket %s not recognized", shown(v.Ticket)), nil)
	}
	if !s.now().Before(sig.Expires) {
		return refuse(LegacyInvalidTicket, "EXPIRED", fmt.Sprintf("ticket %s has expired", shown(v.Ticket)), nil)
	}
	t, err := s.store.ConsumeTicket(ctx, sig.Replica, keyOf(v.Ticket))
	if errors.Is(err, ErrNotFound) {
		return refuse(LegacyInvalidTicket, "UNKNOWN_OR_USED", fmt.Sprintf("ticket %s not recognized", shown(v.Ticket)), nil)
	}
	if err != nil {
		return nil, err
	}
	rs, err := s.reg.Match(ctx, t.Service)
	if err != nil && !errors.Is(err, ErrServiceNotRegistered) {
		return nil, err
	}
	if rs == nil {
		// Issued for a registered service that is no longer (deleted, or
		// its application deleted in identity).
		return refuse(LegacyInvalidService, "SERVICE_NOT_REGISTERED", "the service is no longer registered or is disabled, or its application is suspended", t)
	}
	if t.OIDC != nil || rs.LegacyScheme == 0 || rs.AppID != t.AppID {
		return refuse(LegacyInvalidService, "NOT_A_LEGACY_SERVICE",
			"the ticket was not issued to an application of the ssoAuthService interface (validate it with CAS)", t)
	}
	// The caller must be the ticket's application.
	if v.AppID != "" && v.AppID != t.AppID {
		return refuse(LegacyCallerNotAllowed, "CALLER_REFUSED", "the ticket was issued to another application", t)
	}
	switch {
	case v.AppSecret != "":
		err = s.legacy.Apps.VerifyApp(ctx, t.AppID, v.AppSecret, v.ClientIP, v.ClientCert, caller.APISSO)
	case rs.LegacyRequireSecret:
		return refuse(LegacyCallerNotAllowed, "CALLER_REFUSED", "this application must present its App_ID and secret", t)
	default:
		err = s.legacy.Apps.CheckAddress(ctx, t.AppID, v.ClientIP, v.ClientCert)
	}
	if err != nil {
		if ae, ok := refused(err); ok && ae.Reason == caller.ReasonAppSecretExpired {
			// The right secret, expired: the caller proved it holds it,
			// so it is told when it expired and what to do.
			return refuse(LegacyCallerNotAllowed, ae.Reason, ae.Message, t)
		} else if ok {
			// say which check refused (trial11 D8: a wrong secret was
			// answered about the allow-list)
			why := "the caller is not allowed: call from an address on the application's IP allow-list (with its App_ID and secret where required)"
			switch ae.Reason {
			case caller.ErrBadAppCredentials.Reason:
				why = "the App_ID or App_Secret is wrong"
			case caller.ErrAppSuspended.Reason:
				why = "the application is suspended"
			case caller.ErrIPNotAllowed.Reason:
				why = "the caller is not allowed: calls from this address are not on the application's IP allow-list"
				if v.AppSecret == "" {
					// an application that meant to send its credentials
					// learns how they are read (its Basic header was not)
					why += ", and no App_ID and App_Secret were presented (headers X-Uias-App-Id and X-Uias-App-Secret, " +
						"HTTP Basic, or POST fields appId and appSecret)"
				}
			case caller.ErrClientCert.Reason:
				why = "the application is bound to a client certificate: call over TLS with it"
			case caller.ReasonSignatureRequired:
				why = "the application must sign its requests, which this interface cannot carry: use the REST or gRPC API"
			case caller.ErrRateLimited.Reason:
				why = "too many calls from this application: slow down (this ticket is used up: the person signs in again)"
			case caller.ReasonAPINotGranted, caller.ReasonAppAccessExpired, caller.ReasonAppAccessNotBegun:
				why = ae.Message // what the application may call, and when
			}
			return refuse(LegacyCallerNotAllowed, "CALLER_REFUSED", why, t)
		}
		return nil, err
	}
	if err := s.sessionOfTicket(ctx, t); err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return refuse(LegacyInvalidTicket, "SESSION_ENDED", fmt.Sprintf("ticket %s not recognized: the person has signed out", shown(v.Ticket)), t)
		}
		return nil, err
	}
	account, err := s.legacy.Apps.Account(ctx, t.UserID, t.AppID)
	if err != nil {
		return nil, err
	}
	if account == "" {
		return refuse(LegacyNoAccount, "NO_LINKED_ACCOUNT",
			"the person has no account linked in this application: link it at the portal first", t)
	}
	out := &LegacyValidation{Result: LegacyOK, Account: account, LoggedIn: true, UserID: t.UserID, AppID: t.AppID}
	if rs.LegacyScheme == 1 {
		pw, err := s.appPassword(ctx, t.UserID, t.AppID, account)
		if err != nil {
			return nil, err
		}
		out.Password = pw
	}
	s.auditCall(ctx, audit.Action{API: "ticket.validate", Subject: "user:" + t.UserID, Org: t.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start,
		Fields: detail("kind", "ST", "serial", t.Serial, "service", t.Service, "app_id", t.AppID,
			"interface", "ssoAuthService", "scheme", fmt.Sprint(rs.LegacyScheme), "password", fmt.Sprint(out.Password != ""))})
	return out, nil
}

// appPassword returns the sealed password of the person's account in the
// application ("" when none is kept, or when it was kept for another
// account than the one linked now).
func (s *Service) appPassword(ctx context.Context, userID, appID, account string) (string, error) {
	if s.legacy.Credentials == nil || s.legacy.Sealer == nil {
		return "", nil
	}
	c, err := s.legacy.Credentials.GetCredential(ctx, userID, appID)
	if err != nil {
		if ae, ok := apierr.As(err); ok && ae.Code == apierr.NotFound {
			return "", nil
		}
		return "", err
	}
	if c.Account != account {
		return "", nil
	}
	pw, err := s.legacy.Sealer.Open(c.SecretEnc, credentialAAD(userID, appID))
	if err != nil {
		s.log.Warn("a kept application password does not open with the key ring; answering without it")
		return "", nil //nolint:nilerr // a password that no longer opens is answered as none (logged), not as a failed validation
	}
	return string(pw), nil
}

// Errors of account association.
var (
	ErrNoAssociation = apierr.New(apierr.FailedPrecondition, "ASSOCIATION_NOT_SUPPORTED",
		"this application does not take part in account association")
	ErrAssociationRefused = apierr.New(apierr.FailedPrecondition, "ASSOCIATION_REFUSED",
		"the application did not confirm that this account is yours")
	ErrAssociationUnavailable = apierr.New(apierr.Unavailable, "ASSOCIATION_APP_UNAVAILABLE",
		"the application does not answer; try again later")
	ErrNoIDNumber = apierr.New(apierr.FailedPrecondition, "ASSOCIATION_NO_ID_NUMBER",
		"the person's identity document number is not recorded, and the application confirms accounts by it: an administrator records it first")
)

func init() {
	apierr.Register(
		apierr.Reason{Name: "ASSOCIATION_NOT_SUPPORTED", Code: apierr.FailedPrecondition,
			Doc: "Account association: the application has no legacy (ssoAuthService) service registered, so it cannot confirm accounts."},
		apierr.Reason{Name: "ASSOCIATION_REFUSED", Code: apierr.FailedPrecondition,
			Doc: "Account association: the application's validatePrincipal did not answer RPC_OK for the account and the person's identity document number."},
		apierr.Reason{Name: "ASSOCIATION_APP_UNAVAILABLE", Code: apierr.Unavailable,
			Doc: "Account association: the application's ssoAuthService did not answer after the retries."},
		apierr.Reason{Name: "ASSOCIATION_NO_ID_NUMBER", Code: apierr.FailedPrecondition,
			Doc: "Account association: the person has no identity document number recorded; validatePrincipal confirms the account by it (the fingerprint server design's userid), so the application is not asked."},
		apierr.Reason{Name: "BAD_ASSOCIATION", Code: apierr.InvalidArgument,
			Doc: "Account association: the account (1-128 characters, no control characters) and, for scheme 1, the password (1-256 characters) are required."},
	)
}

// LegacyServiceOf returns the legacy service of an application (nil when
// it has none).
func (s *Service) LegacyServiceOf(ctx context.Context, appID string) (*RegisteredService, error) {
	list, err := s.reg.store.ListServices(ctx, appID)
	if err != nil {
		return nil, err
	}
	for _, rs := range list {
		if rs.Enabled && rs.LegacyScheme != 0 {
			return rs, nil
		}
	}
	return nil, nil
}

// Associate links the person of the session tgt to account in application
// appID after the application confirmed it (validatePrincipal with the
// person's identity document number). For scheme 1 the password is kept
// sealed, to be handed to that application only at ticket validation.
func (s *Service) Associate(ctx context.Context, tgt, appID, account, password string) error {
	start := s.now()
	account = strings.TrimSpace(account)
	if account == "" || len(account) > 128 || strings.ContainsFunc(account, func(r rune) bool { return r < 0x20 || r == 0x7f }) ||
		len(password) > 256 {
		return apierr.New(apierr.InvalidArgument, "BAD_ASSOCIATION", "enter the account name (at most 128 characters)")
	}
	if !validTGT(tgt) {
		return ErrSessionNotFound
	}
	sess, _, err := s.liveSession(ctx, SessionID(tgt))
	if err != nil {
		return err
	}
	fail := func(err error, reason string) error {
		s.audit(ctx, audit.Action{API: "account.associate", Subject: "user:" + sess.UserID, Org: sess.OrgID,
			Result: audit.ResultFailure, Reason: reason, Start: start, Fields: detail("app_id", appID)})
		return err
	}
	if s.legacy.Apps == nil || s.legacy.Principals == nil {
		return fail(ErrNoAssociation, "NOT_CONFIGURED")
	}
	rs, err := s.LegacyServiceOf(ctx, appID)
	if err != nil {
		return err
	}
	if rs == nil {
		return fail(ErrNoAssociation, "NO_LEGACY_SERVICE")
	}
	if rs.LegacyScheme == 1 && password == "" {
		return apierr.New(apierr.InvalidArgument, "BAD_ASSOCIATION", "enter the account's password: this application signs in with it")
	}
	idNumber, err := s.legacy.Apps.IDNumber(ctx, sess.UserID)
	if err != nil {
		return err
	}
	if idNumber == "" {
		return fail(ErrNoIDNumber, "NO_ID_NUMBER")
	}
	ok, err := s.legacy.Principals.ValidatePrincipal(ctx, rs.URL, account, idNumber)
	if err != nil {
		s.log.Info("validatePrincipal did not answer", zapErr(err))
		return fail(ErrAssociationUnavailable, "APP_UNAVAILABLE")
	}
	if !ok {
		return fail(ErrAssociationRefused, "REFUSED_BY_APP")
	}
	if err := s.legacy.Apps.Link(ctx, sess.UserID, appID, account); err != nil {
		if ae, ok := apierr.As(err); ok {
			return fail(err, ae.Reason)
		}
		return err
	}
	if rs.LegacyScheme == 1 && s.legacy.Credentials != nil && s.legacy.Sealer != nil {
		enc, err := s.legacy.Sealer.Seal([]byte(password), credentialAAD(sess.UserID, appID))
		if err != nil {
			return err
		}
		if err := s.legacy.Credentials.PutCredential(ctx, &AppCredential{UserID: sess.UserID, AppID: appID, Account: account,
			SecretEnc: enc, UpdatedAt: s.now().UTC()}); err != nil {
			return err
		}
	}
	s.audit(ctx, audit.Action{API: "account.associate", Subject: "user:" + sess.UserID, Org: sess.OrgID,
		Result: audit.ResultSuccess, Reason: "OK", Start: start,
		Fields: detail("app_id", appID, "scheme", fmt.Sprint(rs.LegacyScheme))})
	return nil
}

// PortalEntry is an application on the portal.
type PortalEntry struct {
	AppID, Name string
	// LaunchURL is the registered service URL to enter it at.
	LaunchURL    string
	Account      string
	LegacyScheme int
	Associable   bool
}

// PortalEntries lists the applications the person of tgt may enter (a
// linked account and a registered service URL whose access rule they pass)
// and those open to account association (unless their rule names a
// permission the person lacks), by name.
func (s *Service) PortalEntries(ctx context.Context, tgt string) ([]PortalEntry, error) {
	if !validTGT(tgt) {
		return nil, ErrSessionNotFound
	}
	sess, _, err := s.liveSession(ctx, SessionID(tgt))
	if err != nil {
		return nil, err
	}
	if s.legacy.Apps == nil {
		return nil, nil
	}
	links, err := s.legacy.Apps.Links(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	all, err := s.reg.services(ctx)
	if err != nil {
		return nil, err
	}
	// The launch service of an application: its legacy service, else its
	// first service registered by URL (patterns have no URL to launch).
	launch := map[string]*RegisteredService{}
	for _, c := range all {
		rs := c.RegisteredService
		if rs.URL == "" || !rs.StrongEnough(sess.AuthLevel, sess.AuthMethod) && rs.LegacyScheme == 0 {
			continue
		}
		if cur, ok := launch[rs.AppID]; !ok || rs.LegacyScheme != 0 && cur.LegacyScheme == 0 {
			launch[rs.AppID] = rs
		}
	}
	var out []PortalEntry
	seen := map[string]bool{}
	for _, l := range links {
		rs := launch[l.AppID]
		if rs == nil || seen[l.AppID] {
			continue
		}
		seen[l.AppID] = true
		// A service whose access rule the person fails is not offered
		// (its login would be refused).
		if denied, err := s.checkAccess(ctx, sess.UserID, rs); err != nil {
			return nil, err
		} else if denied != nil {
			continue
		}
		name := rs.Name
		if name == "" {
			name = l.AppName
		}
		out = append(out, PortalEntry{AppID: l.AppID, Name: name, LaunchURL: launchURL(rs.URL), Account: l.Account,
			LegacyScheme: rs.LegacyScheme, Associable: rs.LegacyScheme != 0})
	}
	for appID, rs := range launch {
		if !seen[appID] && rs.LegacyScheme != 0 {
			// Open to association: a rule asking for an account link is
			// what association gives; a permission the person lacks
			// keeps the application off the page.
			if rs.RequiredPermission != "" {
				perm := *rs
				perm.RequireAccountLink = false
				if denied, err := s.checkAccess(ctx, sess.UserID, &perm); err != nil {
					return nil, err
				} else if denied != nil {
					continue
				}
			}
			out = append(out, PortalEntry{AppID: appID, Name: rs.Name, LaunchURL: launchURL(rs.URL), LegacyScheme: rs.LegacyScheme,
				Associable: true})
		}
	}
	slices.SortFunc(out, func(a, b PortalEntry) int {
		if (a.Account == "") != (b.Account == "") {
			if a.Account != "" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}
