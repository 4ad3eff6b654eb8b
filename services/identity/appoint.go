package identity

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// Built-in administrator roles of the authz component that identity
// appoints people to (authz's system_admin and security_auditor).
const (
	RoleSystemAdmin     = "system_admin"
	RoleSecurityAuditor = "security_auditor"
	// RolePersonalData: ID numbers and phone numbers in clear in exports
	// (what identity.personal_data_admins named).
	RolePersonalData = "personal_data_admin"
	// RoleUnitAdmin: an administrator of an org subtree (granted with a
	// scope org), the one role appointed at another centre than the
	// person's home (PrepareAppointment).
	RoleUnitAdmin = "unit_admin"
)

// Appointment is a person identity still has to make an administrator in
// the authz component: a holder of the legacy is_admin flag (Legacy; role
// system_admin), or a recorded appointment (the first start's security
// auditor).
type Appointment struct {
	UserID string
	Role   string
	Legacy bool
}

// AppointmentStore keeps the appointments identity has still to make.
type AppointmentStore interface {
	// PendingAppointments lists every user with the is_admin flag (Legacy)
	// and every recorded appointment.
	PendingAppointments(ctx context.Context) ([]Appointment, error)
	// AddAppointment records that userID is to be appointed to role.
	AddAppointment(ctx context.Context, a Appointment) error
	// CreateFirstAdmins creates users and records appoint, with evs, in
	// one transaction (the first start: all of them or none).
	CreateFirstAdmins(ctx context.Context, users []*User, appoint []Appointment, evs []events.Event) error
	// FinishAppointment marks a made: it clears the user's is_admin flag
	// (Legacy; the admin tokens stay: the grant carries the same rights)
	// or deletes the recorded appointment, with evs. It reports whether it
	// changed anything (evs are written only then).
	FinishAppointment(ctx context.Context, a Appointment, now time.Time, evs []events.Event) (bool, error)
}

// Appointer makes userID hold role in authz (idempotent: holding it
// already is success). It answers an error wrapping ErrNotAppointable when
// authz refuses for good (separation of duty).
type Appointer func(ctx context.Context, userID, role string) error

// ErrNotAppointable: authz will not give the person the role (they hold
// another of the three administrator roles). The appointment is dropped
// (a legacy flag cleared without a grant).
var ErrNotAppointable = errors.New("not appointable")

// MigrateAdmins makes every pending appointment in authz, then finishes
// it: the legacy is_admin flag becomes a system_admin grant (the flag is
// cleared: from then on only grants make administrators), the first
// start's security auditor gets the security_auditor grant. It is
// idempotent and safe to run on several replicas at once. It returns how
// many it finished; a failed appointment is logged and left for the next
// run (err is the last failure).
func (s *Service) MigrateAdmins(ctx context.Context, appoint Appointer) (int, error) {
	if caller.From(ctx).Actor() == "anonymous" {
		// The process appoints (the first start's administrators, legacy
		// flags): its records say so ("system:appointments"), not
		// "anonymous", which reads as a caller nobody authenticated.
		c := *caller.From(ctx)
		c.System = "appointments"
		ctx = caller.With(ctx, &c)
	}
	pending, err := s.store.PendingAppointments(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var last error
	for _, a := range pending {
		start := s.now()
		u, err := s.store.GetUser(ctx, a.UserID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			last = err
			continue
		}
		var evs []events.Event
		if u != nil {
			// the person exists: appoint them (a recorded appointment of
			// somebody deleted meanwhile is just dropped)
			result, reason := "success", "OK"
			if err := appoint(ctx, a.UserID, a.Role); errors.Is(err, ErrNotAppointable) {
				s.log.Warn("administrator not appointed: authz refuses the role (separation of duty); the appointment is dropped",
					zap.String("user_id", a.UserID), zap.String("role", a.Role), zapErr(err))
				result, reason = "denied", "SOD_CONFLICT"
			} else if err != nil {
				s.log.Warn("administrator not appointed in authz yet", zap.String("user_id", a.UserID), zap.String("role", a.Role), zapErr(err))
				last = err
				continue
			}
			why := "first start"
			if a.Role == RolePersonalData {
				why = "identity.personal_data_admins"
			}
			if a.Legacy {
				why = "legacy is_admin flag"
				u.IsAdmin = false
				evs = append(evs, s.change(ctx, "user", "updated", u.ID, userView(u)))
			}
			evs = append(evs, s.audit(ctx, "admin.appointed", "user:"+u.ID, u.OrgID, result, reason, start,
				map[string]string{"role": a.Role, "why": why}))
		}
		done, err := s.store.FinishAppointment(ctx, a, s.now(), evs)
		if err != nil {
			last = err
			continue
		}
		if done {
			n++
			s.log.Info("administrator appointed in authz", zap.String("user_id", a.UserID), zap.String("role", a.Role), zap.Bool("legacy_flag", a.Legacy))
		}
	}
	return n, last
}

// OnAppointment makes f be called after a write that adds a pending
// appointment (a user created with the is_admin flag).
func (s *Service) OnAppointment(f func()) { s.appointed = f }

// RunAppointments runs MigrateAdmins at once and again whenever a write
// adds a pending appointment (kick), every interval, and after a failure
// (retrying sooner, up to interval), until ctx ends.
func (s *Service) RunAppointments(ctx context.Context, appoint Appointer, kick <-chan struct{}, interval time.Duration) {
	retry := time.Second
	for {
		wait := interval
		if _, err := s.MigrateAdmins(ctx, appoint); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait, retry = retry, min(2*retry, interval)
		} else {
			retry = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
		case <-t.C:
		}
		t.Stop()
	}
}
