package identity

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// The legacy Hessian/SOAP authenticate without App_ID and secret
// (docs/adr/0035-legacy-ip-only.md): the fingerprint server design's
// authenticate(appType, appCode, ...) carries no credential, and its
// interface security is the caller's address on a list kept by the
// server (002 3.4.2, 4.3.1, 4.4.1). An application opts in
// (App.LegacyIPOnly); its calls are then identified by (app_type,
// app_code), resolved here, and admitted by the address check the
// ssoAuthService address-only path uses, made stricter
// (caller.AppAuthenticator.AuthenticateLegacyAddress).

// ReasonLegacyIPOnly refuses legacy_ip_only for an application that may
// not have it.
const ReasonLegacyIPOnly = "LEGACY_IP_ONLY_REFUSED"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonLegacyIPOnly, Code: apierr.FailedPrecondition,
		Doc: "legacy_ip_only (the legacy Hessian/SOAP authenticate identifying the application by app_type, app_code and its address alone) " +
			"is for an A1 application with a non-empty IP allow-list that neither requires signed requests nor is bound to a client " +
			"certificate: the message says which of these it is not."})
}

// checkLegacyIPOnly refuses to let a identify itself by its address alone
// (LegacyIPOnly) when it is A2, requires signatures, is bound to a client
// certificate or has no IP allow-list: those measures would be bypassed
// by a call that presents no credential (gap2 G2, G4).
func checkLegacyIPOnly(a *App) error {
	why := ""
	switch {
	case a.SecurityLevel >= 2:
		why = "it is A2 (security_level 2), whose calls are signed"
	case a.RequireSignatures:
		why = "it requires signed requests, which a legacy call cannot carry"
	case a.ClientCertSHA256 != "":
		why = "it is bound to a client certificate, which a call without App_ID and secret does not prove"
	case len(a.IPAllowList) == 0:
		why = "it has no IP allow-list, the only check of such a call: set one first (uias ctl app update ID --allow CIDR)"
	default:
		return nil
	}
	return apierr.New(apierr.FailedPrecondition, ReasonLegacyIPOnly,
		"legacy_ip_only cannot be set for this application: "+why)
}

// Limits on the app_type and app_code that identify a legacy caller:
// longer ones name no application (checkApp's bounds are lower).
const maxLegacyCode = 128

// legacyAppTTL is how long a resolved (app_type, app_code) is reused,
// a miss included (a flood of unknown codes costs one read each per
// TTL): an application created or deleted meanwhile is seen after it.
const legacyAppTTL = 5 * time.Second

// ResolveLegacyApp returns the App_ID of the application of appType with
// code appCode, as the legacy authenticate names its caller ("" when
// there is none). It is the one resolver of (app_type, app_code) for
// callers: cached for legacyAppTTL.
func (s *Service) ResolveLegacyApp(ctx context.Context, appType, appCode string) (string, error) {
	if appType == "" || appCode == "" || len(appType) > maxLegacyCode || len(appCode) > maxLegacyCode {
		return "", nil
	}
	key := appType + "\x00" + appCode
	now := s.now()
	if id, ok := s.legacyApps.Get(key, now); ok {
		return id, nil
	}
	a, err := s.store.GetAppByCode(ctx, appType, appCode)
	switch {
	case errors.Is(err, ErrNotFound):
		s.legacyApps.Put(key, "", now)
		return "", nil
	case err != nil:
		return "", err
	}
	s.legacyApps.Put(key, a.ID, now)
	return a.ID, nil
}

// AuthenticateLegacyApp identifies the caller of a legacy authenticate
// that presents no App_ID and secret by appType and appCode (the
// request's) and admits it from address ip for interface api when the
// application opted in (LegacyIPOnly) and passes the address check
// (caller.AppAuthenticator.AuthenticateLegacyAddress: non-empty IP
// allow-list with ip on it, active, not A2, no required signatures, no
// certificate binding, granted api, rate limit). Refusals are audited as
// refused callers (caller.denied); an unknown (app_type, app_code) is
// refused BAD_APP_CREDENTIALS as an unknown App_ID is, its record naming
// the pair claimed (claimed_app_type, claimed_app_code: codes, not
// personal data; cut at maxLegacyCode, escaped by the audit builder). The
// caller in ctx is marked caller.AuthModeIPOnly first, so that refusals
// as well as admissions say how it was identified (review sec30b L2).
func (s *Service) AuthenticateLegacyApp(ctx context.Context, appType, appCode string, ip netip.Addr, api string) (*caller.App, error) {
	start := s.now()
	if c := caller.From(ctx); c != nil {
		c.AuthMode = caller.AuthModeIPOnly
	}
	id, err := s.ResolveLegacyApp(ctx, appType, appCode)
	if err != nil {
		return nil, err
	}
	if id == "" {
		ev := s.auditor.Event(ctx, audit.Action{API: audit.APICallerDenied, Subject: "app:", Result: audit.ResultDenied,
			Reason: caller.ErrBadAppCredentials.Reason, Start: start, Fields: []events.DetailField{{Key: "app_id"},
				{Key: "claimed_app_type", Value: claimedCode(appType)}, {Key: "claimed_app_code", Value: claimedCode(appCode)}}})
		s.appendAudit(ctx, ev)
		return nil, caller.ErrBadAppCredentials
	}
	return s.appAuth.AuthenticateLegacyAddress(ctx, id, ip, api)
}

// claimedCode is an app_type or app_code a legacy caller claimed, for its
// refusal's record: at most maxLegacyCode bytes (the audit builder
// escapes what is not printable).
func claimedCode(v string) string {
	if len(v) > maxLegacyCode {
		return v[:maxLegacyCode]
	}
	return v
}

// MetadataLegacyApp carries, on an Authenticate call the legacy
// transports (services/identity/legacy) make for a caller that presented
// no App_ID and secret, the app_type and app_code of the request
// (app_type, NUL, app_code; binary metadata: they may be any text). It is
// believed only from a UIAS component (grpcx.FromComponent): the edge.
const MetadataLegacyApp = "x-uias-legacy-app-bin"

// LegacyApp is the MetadataLegacyApp value naming appType and appCode.
func LegacyApp(appType, appCode string) string { return appType + "\x00" + appCode }

// ParseLegacyApp splits a MetadataLegacyApp value (ok false when it is
// not one).
func ParseLegacyApp(v string) (appType, appCode string, ok bool) {
	return strings.Cut(v, "\x00")
}
