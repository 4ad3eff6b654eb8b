package ticket

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
)

// Administration of the service registry. Every change writes a CHANGES
// event (uias.changes.ticket.service.<op>) and an audit record with it.

// extra are more key, value pairs for the audit record.
func (s *Service) serviceEvents(ctx context.Context, op string, r *RegisteredService, extra ...string) []events.Event {
	now := s.now().UTC()
	payload, _ := json.Marshal(map[string]any{"entity": "service", "op": op, "id": r.ID, "actor": caller.From(ctx).Actor(),
		"time": now, "data": map[string]any{"app_id": r.AppID, "name": r.Name, "url": r.URL, "pattern": r.Pattern,
			"logout_url": r.LogoutURL, "min_auth_level": r.MinAuthLevel, "allow_proxy": r.AllowProxy, "enabled": r.Enabled,
			"require_account_link": r.RequireAccountLink, "required_permission": r.RequiredPermission,
			"certificate_required": r.CertificateRequired, "release_roles": r.ReleaseRoles,
			"release_permissions": r.ReleasePermissions,
			"consent_required":    r.ConsentRequired, "consent_ttl_seconds": int64(r.ConsentTTL / time.Second),
			"release_attributes": r.ReleaseAttributes, "masked_attributes": r.MaskedAttributes}})
	change := events.Event{ID: ids.New(), Subject: "uias.changes.ticket.service." + op, Type: "ticket.service." + op,
		Time: now, Payload: payload}
	return []events.Event{change, s.auditor.Event(ctx, audit.Action{API: "service." + op, Subject: "service:" + r.ID,
		Result: audit.ResultSuccess, Reason: "OK", Start: now, Fields: detail(append([]string{"app_id", r.AppID}, extra...)...)})}
}

// defaultLevel is def's minimum level: 0 means 1, or 2 for a service that
// requires a certificate login.
func defaultLevel(def RegisteredService) int {
	switch {
	case def.MinAuthLevel != 0:
		return def.MinAuthLevel
	case def.CertificateRequired:
		return 2
	}
	return 1
}

// defaultAccess applies the services' default access to def, registered
// or updated (one rule for both: review sec30b L1): a definition with
// neither access rule gets require_account_link when the server closes
// services by default (ticket.services_default_access: linked), unless it
// says open_access. It returns the audit detail that says so ("access":
// "open" or "linked_by_default"; none when def has its own rule or the
// default is open). def.OpenAccess is cleared: it is not stored.
func (s *Service) defaultAccess(def *RegisteredService) []string {
	var extra []string
	if !def.RequireAccountLink && def.RequiredPermission == "" {
		switch {
		case def.OpenAccess:
			extra = []string{"access", "open"}
		case s.cfg.ServicesDefaultLinked:
			// Closed by default (ticket.services_default_access: linked):
			// only people linked to the application get its tickets.
			def.RequireAccountLink = true
			extra = []string{"access", "linked_by_default"}
		}
	}
	def.OpenAccess = false
	return extra
}

// CreateRegisteredService registers a service.
func (s *Service) CreateRegisteredService(ctx context.Context, def RegisteredService) (*RegisteredService, error) {
	def.MinAuthLevel = defaultLevel(def)
	if err := CheckService(&def); err != nil {
		return nil, err
	}
	extra := s.defaultAccess(&def)
	now := s.now().UTC()
	def.ID, def.CreatedAt, def.UpdatedAt = ids.New(), now, now
	if err := s.reg.store.CreateService(ctx, &def, s.serviceEvents(ctx, "created", &def, extra...)...); err != nil {
		return nil, err
	}
	s.reg.Invalidate()
	return &def, nil
}

// GetRegisteredService returns a registered service.
func (s *Service) GetRegisteredService(ctx context.Context, id string) (*RegisteredService, error) {
	return s.reg.store.GetService(ctx, id)
}

// ListRegisteredServices lists the services of appID (all when empty).
func (s *Service) ListRegisteredServices(ctx context.Context, appID string) ([]*RegisteredService, error) {
	return s.reg.store.ListServices(ctx, appID)
}

// UpdateRegisteredService replaces the definition of service id (a whole
// replace: what def leaves out, such as masked_attributes, is cleared). A
// definition with neither access rule is given the services' default
// access as at registration (defaultAccess): with the default linked it
// stays closed unless it says open_access.
func (s *Service) UpdateRegisteredService(ctx context.Context, id string, def RegisteredService) (*RegisteredService, error) {
	old, err := s.reg.store.GetService(ctx, id)
	if err != nil {
		return nil, err
	}
	def.MinAuthLevel = defaultLevel(def)
	if err := CheckService(&def); err != nil {
		return nil, err
	}
	extra := s.defaultAccess(&def)
	def.ID, def.CreatedAt, def.UpdatedAt = id, old.CreatedAt, s.now().UTC()
	if err := s.reg.store.UpdateService(ctx, &def, s.serviceEvents(ctx, "updated", &def, extra...)...); err != nil {
		return nil, err
	}
	s.reg.Invalidate()
	return &def, nil
}

// DeleteRegisteredService removes service id.
func (s *Service) DeleteRegisteredService(ctx context.Context, id string) error {
	old, err := s.reg.store.GetService(ctx, id)
	if err != nil {
		return err
	}
	if err := s.reg.store.DeleteService(ctx, id, s.serviceEvents(ctx, "deleted", old)...); err != nil {
		return err
	}
	s.reg.Invalidate()
	return nil
}

// DeleteAppServices removes every service registered for application
// appID (deleted in identity: CHANGES app.deleted, cause CauseAppDeleted;
// or found unknown to identity, CauseAppUnknown) and returns how many;
// their outstanding tickets no longer validate (ValidateTicket refuses a
// service that is not registered). The audit records carry cause.
// Causes of DeleteAppServices, in its audit records ("cause").
const (
	CauseAppDeleted = "APP_DELETED" // identity's app.deleted event
	CauseAppUnknown = "APP_UNKNOWN" // identity no longer knows the App_ID (the event was missed)
)

func (s *Service) DeleteAppServices(ctx context.Context, appID, cause string) (int, error) {
	if appID == "" {
		return 0, nil
	}
	rs, err := s.reg.store.ListServices(ctx, appID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rs {
		if r.AppID != appID {
			continue
		}
		err := s.reg.store.DeleteService(ctx, r.ID, s.serviceEvents(ctx, "deleted", r, "cause", cause)...)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile (another instance)
		}
		if err != nil {
			s.reg.Invalidate()
			return n, err
		}
		n++
	}
	s.reg.Invalidate()
	return n, nil
}
