package caller

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
)

// Interface grants and access periods of applications (JR/T 0185-2020
// 7.3.1, 9.3.2: applications are authorised per interface on the least
// privilege, and the period they may call is controlled). An application
// with no grants may call every interface an application may call (as
// before grants existed); one with grants calls those only. Its access
// period (AccessFrom, AccessUntil; zero: open) bounds every call.

// The interfaces an application can be granted.
const (
	// APIAuthenticate: AuthService.Authenticate (and the legacy Hessian
	// and SOAP authenticate, which are it).
	APIAuthenticate = "authenticate"
	// APIChangePassword: AuthService.ChangePassword.
	APIChangePassword = "change_password"
	// APIAuthzCheck: authz's Check, BatchCheck, ListPermissions, Explain.
	APIAuthzCheck = "authz.check"
	// APIAuthzSubjects: authz's ListSubjects (who holds a permission).
	APIAuthzSubjects = "authz.subjects"
	// APISSO: the legacy ssoAuthService interface (ticket validation).
	APISSO = "sso"
	// APIOIDC: the OpenID Connect token, introspection and revocation
	// endpoints (client authentication).
	APIOIDC = "oidc"
	// APIDirectory: identity's DirectoryService (the people with an
	// account in the application, the org tree). Granted only by name: an
	// application with no grants does not hold it (the design's "no
	// application not authorised reads these data", 004 2.1.5).
	APIDirectory = "directory"
)

// APIs are the interfaces an application can be granted, in the order
// they are listed.
var APIs = []string{APIAuthenticate, APIChangePassword, APIAuthzCheck, APIAuthzSubjects, APISSO, APIOIDC, APIDirectory}

// byNameOnly are the interfaces an application holds only when its grants
// name them (not with an empty list).
var byNameOnly = []string{APIDirectory}

// APIOf is the interface of the gRPC method fullMethod an application
// calls ("" for a method no grant covers).
func APIOf(fullMethod string) string {
	switch fullMethod {
	case "/uias.identity.v1.AuthService/Authenticate", "/uias.identity.v1.AuthService/GetCertificateChallenge":
		return APIAuthenticate
	case "/uias.identity.v1.AuthService/ChangePassword":
		return APIChangePassword
	case "/uias.authz.v1.AuthzService/Check", "/uias.authz.v1.AuthzService/BatchCheck",
		"/uias.authz.v1.AuthzService/ListPermissions", "/uias.authz.v1.AuthzService/Explain":
		return APIAuthzCheck
	case "/uias.authz.v1.AuthzService/ListSubjects":
		return APIAuthzSubjects
	}
	// Every method of the service, also one added later (review sec25
	// L3): a method no grant covers would be held to the period only.
	if strings.HasPrefix(fullMethod, "/uias.identity.v1.DirectoryService/") {
		return APIDirectory
	}
	// Nothing else an application calls (authz's model is administrators'
	// AuthzAdminService; CheckAdmin and AppointAdmin are components').
	return ""
}

// CheckAPIs checks a list of grants: known interfaces, each once.
func CheckAPIs(apis []string) error {
	seen := map[string]bool{}
	for _, a := range apis {
		if !slices.Contains(APIs, a) {
			return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, "granted_apis: unknown interface "+strconv.Quote(a)+
				"; the interfaces are "+strings.Join(APIs, ", ")).WithMeta(apierr.MetaField, "granted_apis")
		}
		if seen[a] {
			return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, "granted_apis: "+strconv.Quote(a)+" is listed twice").WithMeta(apierr.MetaField, "granted_apis")
		}
		seen[a] = true
	}
	return nil
}

// ReasonAppTerminated: the App_ID of an application that was deleted.
const ReasonAppTerminated = "APP_TERMINATED"

// AppTerminated is the notice a deleted application's calls with one of
// its last secrets get (JR/T 0185-2020 11: the service's end announced to
// the application, not answered as an unknown App_ID; App.Terminated).
func AppTerminated(at time.Time) *apierr.Error {
	return apierr.New(apierr.PermissionDenied, ReasonAppTerminated, "this application's access to UIAS was terminated on "+
		at.UTC().Format(time.RFC3339)+" (the application was removed); ask the UIAS operator")
}

// Reasons of grants and periods.
const (
	ReasonAPINotGranted     = "API_NOT_GRANTED"
	ReasonAppAccessExpired  = "APP_ACCESS_EXPIRED"
	ReasonAppAccessNotBegun = "APP_ACCESS_NOT_BEGUN"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonAPINotGranted, Code: apierr.PermissionDenied,
			Doc: "The application is not granted this interface (its granted_apis: least privilege, JR/T 0185-2020 9.3.2); an administrator grants it: uias ctl app update APP_ID --grant-api LIST."},
		apierr.Reason{Name: ReasonAppAccessExpired, Code: apierr.PermissionDenied,
			Doc: "The application's access period has ended (access_until, the term of its agreement); an administrator extends it: uias ctl app update APP_ID --access-until DATE."},
		apierr.Reason{Name: ReasonAppAccessNotBegun, Code: apierr.PermissionDenied,
			Doc: "The application's access period has not begun (access_from)."},
		apierr.Reason{Name: ReasonAppTerminated, Code: apierr.PermissionDenied,
			Doc: "The application was removed from UIAS (its service terminated, JR/T 0185-2020 11); the message says when. Its App_ID and secret no longer work."},
	)
}

// Permits says whether the application may call interface api at now:
// nil, or API_NOT_GRANTED, APP_ACCESS_NOT_BEGUN or APP_ACCESS_EXPIRED
// saying what to do. api "" (a call no grant covers) is only held to the
// period.
func (a *App) Permits(api string, now time.Time) *apierr.Error {
	switch {
	case !a.AccessFrom.IsZero() && now.Before(a.AccessFrom):
		return apierr.New(apierr.PermissionDenied, ReasonAppAccessNotBegun, "this application's access begins at "+
			a.AccessFrom.UTC().Format(time.RFC3339))
	case !a.AccessUntil.IsZero() && !now.Before(a.AccessUntil):
		return apierr.New(apierr.PermissionDenied, ReasonAppAccessExpired, "this application's access ended at "+
			a.AccessUntil.UTC().Format(time.RFC3339)+"; an administrator extends it: uias ctl app update "+a.ID+" --access-until DATE")
	case api != "" && len(a.GrantedAPIs) == 0 && slices.Contains(byNameOnly, api):
		return apierr.New(apierr.PermissionDenied, ReasonAPINotGranted, "the "+strconv.Quote(api)+
			" interface is granted only by name (it shares people's data); an administrator grants it: uias ctl app update "+
			a.ID+" --grant-api LIST")
	case api != "" && len(a.GrantedAPIs) > 0 && !slices.Contains(a.GrantedAPIs, api):
		return apierr.New(apierr.PermissionDenied, ReasonAPINotGranted, "this application is not granted the "+strconv.Quote(api)+
			" interface (it is granted "+strings.Join(a.GrantedAPIs, ", ")+"); an administrator grants it: uias ctl app update "+
			a.ID+" --grant-api LIST")
	}
	return nil
}
