package ctl

import (
	"flag"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// The CAS service registry of the ticket component
// (ServiceRegistryService): "service create|list|get|update|delete". A
// service's access rule (--require-link, --require-permission RES:OP) says
// who gets its tickets.

// serviceCommands are the verbs of the "service" noun.
func serviceCommands() map[string]command {
	return map[string]command{
		"create": serviceCreateCmd(),
		"list":   serviceListCmd(),
		"get":    serviceGetCmd(),
		"update": serviceUpdateCmd(),
		"delete": deleteCmd("service", "Deletes the CAS service: its tickets not yet validated are refused (INVALID_SERVICE).",
			func(s *session, id string) (proto.Message, error) {
				return ticketv1.NewServiceRegistryServiceClient(s.conn).DeleteService(s.ctx, &ticketv1.DeleteServiceRequest{Id: id})
			}),
	}
}

// serviceFlags are the flags of a service definition; set names those
// given on the command line.
type serviceFlags struct {
	app, name, url, pattern, logoutURL, permission *string
	releaseAttrs, maskAttrs                        *string
	minLevel, legacyScheme                         *int
	allowProxy, disabled, legacySecret, link       *bool
	certRequired, releaseRoles, releasePerms       *bool
	consent                                        *bool
	consentTTL                                     *time.Duration
}

func addServiceFlags(fs *flag.FlagSet) serviceFlags {
	return serviceFlags{
		app:          fs.String("app", "", "the application's `App_ID`"),
		name:         fs.String("name", "", "service `name` (shown on the login page and the portal)"),
		url:          fs.String("url", "", "service URL `prefix` (https; http only on loopback)"),
		pattern:      fs.String("pattern", "", "RE2 `regexp` the whole service URL must match (instead of --url)"),
		logoutURL:    fs.String("logout-url", "", "where single-logout requests go (`URL`; default: the service URL)"),
		minLevel:     fs.Int("min-auth-level", 1, "minimum authentication `level`: 1 password, 2 certificate or another strong method"),
		allowProxy:   fs.Bool("allow-proxy", false, "the service may obtain proxy-granting tickets"),
		disabled:     fs.Bool("disabled", false, "the service takes no tickets"),
		legacyScheme: fs.Int("legacy-scheme", 0, "0 CAS, or 1/2 the legacy ssoAuthService interface (`scheme`)"),
		legacySecret: fs.Bool("legacy-require-secret", false, "legacy calls must carry the App_ID and secret"),
		link: fs.Bool("require-link", false,
			"access rule: only people with an active account link with the application get tickets (=false clears it)"),
		certRequired: fs.Bool("certificate-required", false,
			"only a certificate login reaches the service (implies --min-auth-level 2; =false clears it)"),
		releaseRoles: fs.Bool("release-roles", false,
			"validations (CAS p3/, samlValidate, OpenID Connect) release the person's roles of the application (=false stops it)"),
		releasePerms: fs.Bool("release-permissions", false,
			"validations release the person's permissions in the application, as RES:OP (=false stops it)"),
		consent: fs.Bool("consent-required", false,
			"the application's OpenID Connect codes and CAS/ssoAuthService tickets are issued only after the person allowed them on "+
				"the consent page; the CAS consent is its own, an OpenID Connect consent does not cover it (=false stops it)"),
		consentTTL: fs.Duration("consent-ttl", 0, "how long an allowed consent is remembered (`duration`, e.g. 720h; 0: 90 days)"),
		permission: fs.String("require-permission", "",
			"access rule: only people authz allows `RES:OP` in the application get tickets (\"\" clears it)"),
		releaseAttrs: fs.String("release-attributes", "",
			"attribute release policy: only these `NAMES` (comma-separated, of "+strings.Join(ticket.ReleasableAttributes, ",")+
				") are released to the service, CAS attributes and OpenID Connect claims (\"\": all)"),
		maskAttrs: fs.String("mask-attributes", "",
			"released masked: `NAMES` of "+strings.Join(ticket.MaskableAttributes, ",")+" (a name keeps its first character: 张三 -> 张*; \"\": none)"),
	}
}

// names splits a comma-separated list of attribute names ("": none).
func names(s string) []string {
	var out []string
	for n := range strings.SplitSeq(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// checkNames refuses an attribute name not in known.
func checkNames(flagName, s string, known []string) error {
	for _, n := range names(s) {
		if !slices.Contains(known, n) {
			return usagef("--%s: unknown attribute %q; known: %s", flagName, n, strings.Join(known, ", "))
		}
	}
	return nil
}

// checkPermission checks --require-permission before anything is dialled.
func checkPermission(p string) error {
	if p == "" {
		return nil
	}
	if _, _, ok := ticket.SplitPermission(p); !ok {
		return usagef("--require-permission %q must be RESOURCE:OPERATION, e.g. docs.contract:approve", p)
	}
	return nil
}

// apply sets the flags given (set) on d.
func (f serviceFlags) apply(d *ticketv1.ServiceDefinition, set map[string]bool) {
	if set["app"] {
		d.AppId = *f.app
	}
	if set["name"] {
		d.Name = *f.name
	}
	if set["url"] {
		d.Url, d.Pattern = *f.url, ""
	}
	if set["pattern"] {
		d.Pattern, d.Url = *f.pattern, ""
	}
	if set["logout-url"] {
		d.LogoutUrl = *f.logoutURL
	}
	if set["min-auth-level"] {
		d.MinAuthLevel = int32(*f.minLevel)
	}
	if set["allow-proxy"] {
		d.AllowProxy = *f.allowProxy
	}
	if set["disabled"] {
		d.Disabled = *f.disabled
	}
	if set["legacy-scheme"] {
		d.LegacyScheme = int32(*f.legacyScheme)
	}
	if set["legacy-require-secret"] {
		d.LegacyRequireSecret = *f.legacySecret
	}
	if set["require-link"] {
		d.RequireAccountLink = *f.link
	}
	if set["require-permission"] {
		d.RequiredPermission = *f.permission
	}
	if set["release-roles"] {
		d.ReleaseRoles = *f.releaseRoles
	}
	if set["release-permissions"] {
		d.ReleasePermissions = *f.releasePerms
	}
	if set["consent-required"] {
		d.ConsentRequired = *f.consent
	}
	if set["consent-ttl"] {
		d.ConsentTtlSeconds = int64(*f.consentTTL / time.Second)
	}
	if set["release-attributes"] {
		d.ReleaseAttributes = names(*f.releaseAttrs)
	}
	if set["mask-attributes"] {
		d.MaskedAttributes = names(*f.maskAttrs)
	}
	if set["certificate-required"] {
		d.CertificateRequired = *f.certRequired
		if d.CertificateRequired && !set["min-auth-level"] {
			d.MinAuthLevel = 2
		}
	}
}

// check refuses values the server would refuse anyway, before dialling.
func (f serviceFlags) check(set map[string]bool) error {
	switch {
	case set["url"] && set["pattern"]:
		return usagef("--url and --pattern exclude each other")
	case set["min-auth-level"] && (*f.minLevel < 1 || *f.minLevel > 2):
		return usagef("--min-auth-level must be 1 or 2")
	case set["min-auth-level"] && *f.minLevel == 1 && *f.certRequired:
		return usagef("--certificate-required needs --min-auth-level 2 (a certificate login's level)")
	case set["legacy-scheme"] && (*f.legacyScheme < 0 || *f.legacyScheme > 2):
		return usagef("--legacy-scheme must be 0, 1 or 2")
	case set["consent-ttl"] && (*f.consentTTL < 0 || *f.consentTTL > ticket.MaxConsentTTL || *f.consentTTL%time.Second != 0):
		return usagef("--consent-ttl must be whole seconds, at most 87600h (3650 days); 0: 90 days")
	}
	if err := checkNames("release-attributes", *f.releaseAttrs, ticket.ReleasableAttributes); err != nil {
		return err
	}
	if err := checkNames("mask-attributes", *f.maskAttrs, ticket.MaskableAttributes); err != nil {
		return err
	}
	return checkPermission(*f.permission)
}

func flagsSet(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func serviceCreateCmd() command {
	return command{
		usage: "--app ID (--url PREFIX | --pattern RE) [--name N] [--logout-url URL] [--min-auth-level 1] [--allow-proxy] [--disabled] " +
			"[--legacy-scheme 0] [--legacy-require-secret] [--require-link] [--require-permission RES:OP] [--certificate-required] " +
			"[--release-roles] [--release-permissions] [--consent-required] [--consent-ttl D] [--release-attributes NAMES] [--mask-attributes NAMES] [--open]",
		help: "Registers a CAS service of an application: where it may receive service tickets.\n" +
			"Its access rule says who gets them: --require-link only people with an active account link with\n" +
			"the application, --require-permission RES:OP only people authz allows RES:OP in it (both: both);\n" +
			"without them anyone signed in, or, where the server sets ticket.services_default_access: linked,\n" +
			"only people linked to the application (--require-link is set) unless --open is given.\n" +
			"A person refused keeps their session and sees that they may not use the application (HTTP 403).\n" +
			"--release-attributes login,displayName limits the attributes (and OpenID Connect claims) released to\n" +
			"the service; --mask-attributes displayName releases the name masked (张三 -> 张*).\n" +
			"--release-roles and --release-permissions make its validations release the person's roles and\n" +
			"permissions in the application (attributes and claims roles, permissions), read from authz each time;\n" +
			"while authz does not answer, its validations fail (CAS INTERNAL_ERROR) and the application retries.\n" +
			"--consent-required makes /cas/oidc/authorize ask the person's consent to the scopes the client asks\n" +
			"for before it gets a code, and the CAS login (also ssoAuthService) ask it before a ticket, listing what\n" +
			"the service receives; the two consents are apart (scope cas for CAS), remembered for --consent-ttl\n" +
			"(default 90 days). The person sees and removes both under My applications on the profile page.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			f := addServiceFlags(fs)
			open := fs.Bool("open", false, "without --require-link or --require-permission, open to anyone signed in even where "+
				"the server closes new services by default (ticket.services_default_access: linked)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if err := required("app", *f.app); err != nil {
					return err
				}
				set := flagsSet(fs)
				if !set["url"] && !set["pattern"] {
					return usagef("give --url or --pattern")
				}
				if err := f.check(set); err != nil {
					return err
				}
				if *open && (*f.link || *f.permission != "") {
					return usagef("--open is for a service without an access rule: not with --require-link or --require-permission")
				}
				d := &ticketv1.ServiceDefinition{OpenAccess: *open}
				f.apply(d, set)
				return sessionCall(a, func(s *session) (*ticketv1.RegisteredService, error) {
					return ticketv1.NewServiceRegistryServiceClient(s.conn).CreateService(s.ctx, &ticketv1.CreateServiceRequest{Service: d})
				}, serviceTable)
			}
		},
	}
}

func serviceUpdateCmd() command {
	return command{
		usage: "ID [--name N] [--url PREFIX | --pattern RE] [--logout-url URL] [--min-auth-level L] [--allow-proxy[=false]] " +
			"[--disabled[=false]] [--legacy-scheme S] [--legacy-require-secret[=false]] [--require-link[=false]] [--require-permission RES:OP] " +
			"[--certificate-required[=false]] [--release-roles[=false]] [--release-permissions[=false]] " +
			"[--consent-required[=false]] [--consent-ttl D] [--release-attributes NAMES] [--mask-attributes NAMES] [--open]",
		help: "Only the flags given are changed (the service is read and written back whole).\n" +
			"--require-link=false and --require-permission \"\" clear the access rule's parts; where the server closes\n" +
			"services by default (ticket.services_default_access: linked) a service left with neither is closed\n" +
			"(require_account_link) unless --open: open to anyone signed in. A service open already stays open.\n" +
			"--release-attributes \"\" releases every attribute again, --mask-attributes \"\" none masked.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			f := addServiceFlags(fs)
			open := fs.Bool("open", false, "clear the access rule: open to anyone signed in even where the server closes "+
				"services by default (ticket.services_default_access: linked)")
			return func(args []string) error {
				if err := wantArgs(args, "ID"); err != nil {
					return err
				}
				set := flagsSet(fs)
				if set["app"] {
					return usagef("a service's application cannot change: delete it and register it for the other application")
				}
				if len(set) == 0 {
					return usagef("nothing to update: give at least one flag")
				}
				if err := f.check(set); err != nil {
					return err
				}
				if *open && (*f.link || *f.permission != "") {
					return usagef("--open is for a service without an access rule: not with --require-link or --require-permission")
				}
				return sessionCall(a, func(s *session) (*ticketv1.RegisteredService, error) {
					c := ticketv1.NewServiceRegistryServiceClient(s.conn)
					cur, err := c.GetService(s.ctx, &ticketv1.GetServiceRequest{Id: args[0]})
					if err != nil {
						return nil, err
					}
					d := definitionOf(cur)
					f.apply(d, set)
					switch {
					case *open:
						d.RequireAccountLink, d.RequiredPermission, d.OpenAccess = false, "", true
					case !set["require-link"] && !set["require-permission"]:
						// Access not named: a service open stays open (the
						// server would close it by default, review sec30b L1).
						d.OpenAccess = !d.GetRequireAccountLink() && d.GetRequiredPermission() == ""
					}
					return c.UpdateService(s.ctx, &ticketv1.UpdateServiceRequest{Id: args[0], Service: d})
				}, serviceTable)
			}
		},
	}
}

// definitionOf is what an administrator set of a registered service.
func definitionOf(r *ticketv1.RegisteredService) *ticketv1.ServiceDefinition {
	return &ticketv1.ServiceDefinition{AppId: r.GetAppId(), Name: r.GetName(), Url: r.GetUrl(), Pattern: r.GetPattern(),
		LogoutUrl: r.GetLogoutUrl(), MinAuthLevel: r.GetMinAuthLevel(), AllowProxy: r.GetAllowProxy(), Disabled: !r.GetEnabled(),
		LegacyScheme: r.GetLegacyScheme(), LegacyRequireSecret: r.GetLegacyRequireSecret(),
		RequireAccountLink: r.GetRequireAccountLink(), RequiredPermission: r.GetRequiredPermission(),
		CertificateRequired: r.GetCertificateRequired(), ReleaseRoles: r.GetReleaseRoles(), ReleasePermissions: r.GetReleasePermissions(),
		ConsentRequired: r.GetConsentRequired(), ConsentTtlSeconds: r.GetConsentTtlSeconds(),
		ReleaseAttributes: r.GetReleaseAttributes(), MaskedAttributes: r.GetMaskedAttributes()}
}

func serviceGetCmd() command {
	return idVerb(func(s *session, id string) (*ticketv1.RegisteredService, error) {
		return ticketv1.NewServiceRegistryServiceClient(s.conn).GetService(s.ctx, &ticketv1.GetServiceRequest{Id: id})
	}, serviceTable)
}

func serviceListCmd() command {
	return verb("[--app ID]", "Lists the registered CAS services (of one application with --app), with their access rules.", nil,
		func(_ *app, fs *flag.FlagSet) prepared[*ticketv1.ListServicesResponse] {
			appID := fs.String("app", "", "only the services of this `App_ID`")
			return func([]string) (func(s *session) (*ticketv1.ListServicesResponse, error), error) {
				return func(s *session) (*ticketv1.ListServicesResponse, error) {
					return ticketv1.NewServiceRegistryServiceClient(s.conn).ListServices(s.ctx, &ticketv1.ListServicesRequest{AppId: *appID})
				}, nil
			}
		}, func(tw *tabwriter.Writer, r *ticketv1.ListServicesResponse) {
			row(tw, "ID", "APP", "NAME", "URL OR PATTERN", "ENABLED", "ACCESS")
			for _, x := range r.GetServices() {
				where := x.GetUrl()
				if where == "" {
					where = x.GetPattern()
				}
				row(tw, x.GetId(), x.GetAppId(), x.GetName(), where, yesNo(x.GetEnabled()), accessRule(x))
			}
		})
}

// accessRule words a service's access rule.
func accessRule(r *ticketv1.RegisteredService) string {
	switch link, perm := r.GetRequireAccountLink(), r.GetRequiredPermission(); {
	case link && perm != "":
		return "account link + permission " + perm
	case link:
		return "account link"
	case perm != "":
		return "permission " + perm
	}
	return "anyone signed in"
}

func serviceTable(tw *tabwriter.Writer, r *ticketv1.RegisteredService) {
	fields(tw, "ID", r.GetId(), "App_ID", r.GetAppId(), "Name", r.GetName(), "URL", r.GetUrl(), "Pattern", r.GetPattern(),
		"Logout URL", r.GetLogoutUrl(), "Min auth level", strconv.Itoa(int(r.GetMinAuthLevel())),
		"Certificate required", yesNo(r.GetCertificateRequired()),
		"Allow proxy", yesNo(r.GetAllowProxy()), "Enabled", yesNo(r.GetEnabled()),
		"Legacy scheme", strconv.Itoa(int(r.GetLegacyScheme())), "Legacy requires secret", yesNo(r.GetLegacyRequireSecret()),
		"Requires account link", yesNo(r.GetRequireAccountLink()), "Required permission", r.GetRequiredPermission(),
		"Access", accessRule(r), "Releases", released(r), "Consent", consentOf(r), "Attributes released", attributePolicy(r), "Created", ts(r.GetCreatedAt()), "Updated", ts(r.GetUpdatedAt()))
}

// attributePolicy words a service's attribute release policy.
func attributePolicy(r *ticketv1.RegisteredService) string {
	out := "all"
	if a := r.GetReleaseAttributes(); len(a) > 0 {
		out = strings.Join(a, ", ")
	}
	if m := r.GetMaskedAttributes(); len(m) > 0 {
		out += " (masked: " + strings.Join(m, ", ") + ")"
	}
	return out
}

// released words what a service's validations release of authz.
func released(r *ticketv1.RegisteredService) string {
	switch roles, perms := r.GetReleaseRoles(), r.GetReleasePermissions(); {
	case roles && perms:
		return "roles, permissions"
	case roles:
		return "roles"
	case perms:
		return "permissions"
	}
	return "no roles or permissions"
}

// consentOf words whether a service's application asks consent (OpenID
// Connect and CAS, each its own).
func consentOf(r *ticketv1.RegisteredService) string {
	if !r.GetConsentRequired() {
		return "not asked"
	}
	ttl := time.Duration(r.GetConsentTtlSeconds()) * time.Second
	if ttl == 0 {
		ttl = ticket.DefaultConsentTTL
	}
	if ttl%(24*time.Hour) == 0 {
		return "asked, remembered " + strconv.Itoa(int(ttl/(24*time.Hour))) + " days"
	}
	return "asked, remembered " + ttl.String()
}
