package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// Services: the business systems registered for single sign-on (CAS
// services, OpenID Connect clients): the list, and a service's page with
// the settings an administrator changes most (enabled, who may enter,
// sign-in level, consent, attribute release). Registration and the URL
// settings stay with `uias ctl service` and the API.

// servicesPage is the services list.
type servicesPage struct {
	App      string
	Services []*ticketv1.RegisteredService
}

func (h *Handler) services(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "services")
	p := &servicesPage{App: r.URL.Query().Get("app")}
	d.Page = p
	if h.o.Registry == nil {
		d.Error = d.T("noTicket")
		h.render(w, r, http.StatusServiceUnavailable, "services", d)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	res, err := h.o.Registry.ListServices(ctx, &ticketv1.ListServicesRequest{AppId: p.App})
	if err != nil {
		h.failed(w, r, err, "services", &d)
		return
	}
	p.Services = res.GetServices()
	h.render(w, r, http.StatusOK, "services", d)
}

// servicePage is one service with its settings form.
type servicePage struct {
	Service *ticketv1.RegisteredService
	// ConsentDays is the consent's validity in days (0: the default).
	ConsentDays int64
}

func (h *Handler) service(w http.ResponseWriter, r *http.Request, s *session) {
	d := h.data(r, s, "services")
	if h.o.Registry == nil {
		d.Error = d.T("noTicket")
		d.Page = &servicePage{}
		h.render(w, r, http.StatusServiceUnavailable, "service", d)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	svc, err := h.o.Registry.GetService(ctx, &ticketv1.GetServiceRequest{Id: r.PathValue("id")})
	if err != nil {
		d.Page = &servicePage{}
		h.failed(w, r, err, "service", &d)
		return
	}
	d.Page = &servicePage{Service: svc, ConsentDays: svc.GetConsentTtlSeconds() / 86400}
	h.render(w, r, http.StatusOK, "service", d)
}

// serviceDefinition is what an administrator set of a registered service
// (as `uias ctl service update` starts from it).
func serviceDefinition(r *ticketv1.RegisteredService) *ticketv1.ServiceDefinition {
	return &ticketv1.ServiceDefinition{AppId: r.GetAppId(), Name: r.GetName(), Url: r.GetUrl(), Pattern: r.GetPattern(),
		LogoutUrl: r.GetLogoutUrl(), MinAuthLevel: r.GetMinAuthLevel(), AllowProxy: r.GetAllowProxy(), Disabled: !r.GetEnabled(),
		LegacyScheme: r.GetLegacyScheme(), LegacyRequireSecret: r.GetLegacyRequireSecret(),
		RequireAccountLink: r.GetRequireAccountLink(), RequiredPermission: r.GetRequiredPermission(),
		CertificateRequired: r.GetCertificateRequired(), ReleaseRoles: r.GetReleaseRoles(), ReleasePermissions: r.GetReleasePermissions(),
		ConsentRequired: r.GetConsentRequired(), ConsentTtlSeconds: r.GetConsentTtlSeconds(),
		ReleaseAttributes: r.GetReleaseAttributes(), MaskedAttributes: r.GetMaskedAttributes()}
}

// attrList reads a form's comma- or space-separated attribute names.
func attrList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// serviceAction saves a service's settings form.
func (h *Handler) serviceAction(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	d := h.data(r, s, "services")
	if h.o.Registry == nil || r.PathValue("action") != "edit" {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := h.ctx(r, s)
	defer cancel()
	svc, err := h.o.Registry.GetService(ctx, &ticketv1.GetServiceRequest{Id: id})
	if err != nil {
		d.Page = &servicePage{}
		h.failed(w, r, err, "service", &d)
		return
	}
	f := r.PostForm
	def := serviceDefinition(svc)
	def.Disabled = f.Get("enabled") == ""
	def.RequireAccountLink = f.Get("require_link") != ""
	def.RequiredPermission = strings.TrimSpace(f.Get("required_permission"))
	// The form states who may enter: neither rule is "anyone signed in",
	// said explicitly (open_access), not left to the server's default,
	// which would close it (review sec30b L1).
	def.OpenAccess = !def.RequireAccountLink && def.RequiredPermission == ""
	def.CertificateRequired = f.Get("certificate_required") != ""
	if lvl, err := strconv.Atoi(f.Get("min_auth_level")); err == nil {
		def.MinAuthLevel = int32(min(max(lvl, 0), 2)) //nolint:gosec // bounded above
	}
	def.ConsentRequired = f.Get("consent_required") != ""
	if days, err := strconv.ParseInt(strings.TrimSpace(f.Get("consent_days")), 10, 64); err == nil && days >= 0 && days <= 3650 {
		def.ConsentTtlSeconds = int64(time.Duration(days) * 24 * time.Hour / time.Second)
	} else if strings.TrimSpace(f.Get("consent_days")) != "" {
		d.Error = d.T("badConsentDays")
		d.Page = &servicePage{Service: svc, ConsentDays: svc.GetConsentTtlSeconds() / 86400}
		h.render(w, r, http.StatusBadRequest, "service", d)
		return
	}
	def.ReleaseAttributes, def.MaskedAttributes = attrList(f.Get("release_attributes")), attrList(f.Get("masked_attributes"))
	if _, err := h.o.Registry.UpdateService(ctx, &ticketv1.UpdateServiceRequest{Id: id, Service: def}); err != nil {
		d.Page = &servicePage{Service: svc, ConsentDays: svc.GetConsentTtlSeconds() / 86400}
		h.failed(w, r, err, "service", &d)
		return
	}
	h.redirectDone(w, r, "services/"+url.PathEscape(id), "serviceSaved")
}
