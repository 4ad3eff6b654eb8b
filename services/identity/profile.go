package identity

import (
	"context"
	"errors"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
)

// The person's own profile ("My profile" on the single sign-on pages):
// what they may see of their account, and the contact fields they may
// change themselves after re-entering their password (maritime SSO design
// 004 §2.1.2.1; as Keycloak's account console). The ID number, the org and
// the login name stay the administrator's.

func init() {
	apierr.Register(apierr.Reason{Name: "NO_OWN_PASSWORD", Code: apierr.FailedPrecondition,
		Doc: "UpdateOwnProfile: the person has no password to re-enter (e.g. signs in only with a certificate); an administrator changes their details (UpdateUser)."})
	apierr.Register(apierr.Reason{Name: "SELF_SERVICE_FIELD", Code: apierr.PermissionDenied,
		Doc: "My profile: the person asked to change a field only an administrator changes (login name, org, ID number; the display name unless identity.policy.self_service_display_name)."})
}

// OwnProfile is what the person signed in may see of their own account:
// the ID number and phone masked only.
type OwnProfile struct {
	User    *User
	OrgName string
	// PasswordExpiresAt is when the password expires (zero: never).
	PasswordExpiresAt time.Time
	// DisplayNameEditable: the policy lets the person change their
	// display name.
	DisplayNameEditable bool
	// TOTPEnrolledAt is when the person set up an authenticator app
	// (zero: none).
	TOTPEnrolledAt time.Time
}

// selfFields are the fields a person may change themselves.
func (s *Service) selfFields() map[string]bool {
	return map[string]bool{"email": true, "phone": true, "display_name": s.cfg.Policy.SelfServiceDisplayName}
}

// GetOwnProfile returns the profile of user id, the person of the
// signed-in session.
func (s *Service) GetOwnProfile(ctx context.Context, id string) (*OwnProfile, error) {
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.ownProfile(ctx, u)
}

func (s *Service) ownProfile(ctx context.Context, u *User) (*OwnProfile, error) {
	p := &OwnProfile{User: u, PasswordExpiresAt: s.cfg.Policy.ExpiresAt(u), DisplayNameEditable: s.cfg.Policy.SelfServiceDisplayName}
	at, err := s.TOTPEnrolledAt(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	p.TOTPEnrolledAt = at
	if u.OrgID != "" {
		o, err := s.store.GetOrg(ctx, u.OrgID)
		switch {
		case err == nil:
			p.OrgName = o.Name
		case !errors.Is(err, ErrNotFound):
			return nil, err
		}
	}
	return p, nil
}

// errNoOwnPassword refuses a person without a password their own change
// (it needs the password re-entered).
var errNoOwnPassword = apierr.New(apierr.FailedPrecondition, "NO_OWN_PASSWORD",
	"you have no password to confirm the change with; your administrator changes these details")

// ownPassword refuses (errNoOwnPassword) a person with no password to
// re-enter: none kept here and no directory that checks one. A directory
// person (identity.ldap_auth) has no hash here but a password all the
// same, which checkPassword asks the directory about (review sec27a M3).
func (s *Service) ownPassword(ctx context.Context, u *User) error {
	if u.PasswordHash != "" {
		return nil
	}
	src, err := s.sourceOf(ctx, u)
	if err != nil {
		return err
	}
	if src == nil {
		return errNoOwnPassword
	}
	return nil
}

// errSelfServiceField refuses a change of a field that is the
// administrator's.
func errSelfServiceField(field string) error {
	return apierr.New(apierr.PermissionDenied, "SELF_SERVICE_FIELD", "only an administrator may change "+truncate(field, 40)).
		WithMeta(apierr.MetaField, truncate(field, 40))
}

// UpdateOwnProfile changes the contact fields of user id (the person of
// the signed-in session) named in up.Mask: email, phone, and display_name
// when the policy allows it. The fields are checked first (UpdateUser's
// rules: a typing error costs no password check), then the current
// password as at login, through the same login gate (a wrong one is a
// counted failure; a locked or disabled account is refused), then the
// change is written as UpdateUser writes it, audited as user.update_self
// with the person as the actor. Only at the person's home centre.
func (s *Service) UpdateOwnProfile(ctx context.Context, id, currentPassword string, up UserUpdate) (*OwnProfile, error) {
	start := s.now()
	if len(up.Mask) == 0 {
		return nil, badField("update_mask", "update_mask must name at least one field")
	}
	allowed := s.selfFields()
	for _, f := range up.Mask {
		if !allowed[f] {
			return nil, errSelfServiceField(f)
		}
	}
	// Only the person's contact fields reach updateUser.
	up = UserUpdate{Mask: up.Mask, DisplayName: up.DisplayName, Phone: up.Phone, Email: up.Email}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	if err := checkContactFields(up); err != nil {
		return nil, err
	}
	if err := s.ownPassword(ctx, u); err != nil {
		// nothing to re-enter (a person who signs in with a certificate
		// only): not a failed login, and the administrator's to change
		return nil, err
	}
	// The person is the actor of the check, the change and their records.
	ctx = asSelf(ctx, u)
	if err := s.reauth(ctx, u, currentPassword, "sso.profile.verify", start); err != nil {
		return nil, err
	}
	// The check wrote the login gate's state (counts, lock) to the
	// person's row: the change starts from the row as it is now.
	u, err = s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	u, err = s.updateUser(ctx, u, up, "user.update_self", start)
	if err != nil {
		return nil, err
	}
	return s.ownProfile(ctx, u)
}

// asSelf makes the person the actor of the calls and records that follow.
func asSelf(ctx context.Context, u *User) context.Context {
	c := *caller.From(ctx)
	c.Principal, c.PrincipalLogin = u.ID, u.LoginName
	return caller.With(ctx, &c)
}

// reauth checks the person's current password as at login (the login
// gate; a wrong one is a counted failure): VERIFICATION_FAILED with the
// verdict otherwise.
func (s *Service) reauth(ctx context.Context, u *User, password, api string, start time.Time) error {
	r, err := s.checkPassword(ctx, u, password, api, start, s.newEarlyAttempt(ssoLoginSource(ctx), api))
	if err != nil {
		return err
	}
	if r != ReasonOK && r != ReasonPasswordExpired {
		return errVerification(r).WithMeta("verdict", r.String())
	}
	return nil
}
