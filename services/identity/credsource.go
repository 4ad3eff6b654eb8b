package identity

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/cache"
)

// Credential sources (docs/adr/0023-directory-credential-sources.md): the
// people of configured org subtrees prove their password to a directory
// (LDAP, Active Directory: identity.ldap_auth, package ldapauth) instead of
// to a hash UIAS keeps. Only where the password is compared changes
// (checkPassword): the account's status, the org chain, the lock, the
// login gate's counting and spacing, levels, authenticator apps and every
// audit record stay as for a local password. UIAS never sets such a
// person's password (setPassword refuses it): the directory owns it, its
// changes and its expiry.

// CredentialSource checks passwords somewhere else than UIAS.
type CredentialSource interface {
	// Name names the source (identity.ldap_auth[].name).
	Name() string
	// Check: true for the right password of login, false for a wrong one
	// or a login the source does not know; an error when it could not
	// tell (unreachable, too slow). Neither logs nor returns the password.
	Check(ctx context.Context, login, password string) (bool, error)
}

// DirectorySource is a credential source and the org codes whose
// subtrees' people use it (the nearest org up a person's chain decides).
type DirectorySource struct {
	Source CredentialSource
	Orgs   []string
}

// LocalCredentialSource is GetUser's credential_source of a person whose
// password UIAS keeps.
const LocalCredentialSource = "local"

// Reasons of directory-managed passwords.
const (
	// ReasonCredentialSourceUnavailable: the directory that checks the
	// person's password did not answer.
	ReasonCredentialSourceUnavailable = "CREDENTIAL_SOURCE_UNAVAILABLE"
	// ReasonPasswordManagedByDirectory: a password set or change for a
	// person whose password a directory keeps.
	ReasonPasswordManagedByDirectory = "PASSWORD_MANAGED_BY_DIRECTORY"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonCredentialSourceUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "The person's password is checked by a directory (identity.ldap_auth: LDAP, Active Directory) that did not answer in time or could not be reached. Nothing was decided: it is not a failed login and counts towards no lockout. Retry later; operators see the cause in the identity log."},
		apierr.Reason{Name: ReasonPasswordManagedByDirectory, Code: apierr.FailedPrecondition, Legacy: -5,
			Doc: "The person's password is kept by a directory (identity.ldap_auth: LDAP, Active Directory), not by UIAS: it is changed or reset there (e.g. in Active Directory), never through UIAS (set, reset, change, import)."},
	)
}

var (
	errSourceUnavailable = apierr.New(apierr.Unavailable, ReasonCredentialSourceUnavailable,
		"the directory that checks this person's password cannot be reached; try again later")
	errManagedByDirectory = apierr.New(apierr.FailedPrecondition, ReasonPasswordManagedByDirectory,
		"this person's password is kept by the organisation's directory (LDAP / Active Directory): "+
			"change or reset it there, not in UIAS")
)

// orgCodeTTL is how long an org code's id is reused by the sources' look-up.
const orgCodeTTL = time.Minute

// credSources is the service's configured sources with their org codes'
// ids.
type credSources struct {
	list []DirectorySource
	// ids caches org code -> id (of the codes that name an org).
	ids *cache.TTL[string]
}

func newCredSources(list []DirectorySource) *credSources {
	return &credSources{list: list, ids: cache.NewTTL[string](orgCodeTTL, 0)}
}

// sourceOf is the credential source of u (nil: UIAS's own hash): the source
// listing the nearest org up u's chain.
func (s *Service) sourceOf(ctx context.Context, u *User) (CredentialSource, error) {
	if s.creds == nil || len(s.creds.list) == 0 || u.OrgID == "" {
		return nil, nil
	}
	o, err := s.store.GetOrg(ctx, u.OrgID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return s.sourceOfOrg(ctx, o)
}

// sourceOfOrg is the credential source of the people of org o (nil: UIAS's
// own hash).
func (s *Service) sourceOfOrg(ctx context.Context, o *Org) (CredentialSource, error) {
	if s.creds == nil || len(s.creds.list) == 0 {
		return nil, nil
	}
	byID := map[string]CredentialSource{}
	for _, d := range s.creds.list {
		for _, code := range d.Orgs {
			id, err := s.orgIDOf(ctx, code)
			if err != nil {
				return nil, err
			}
			if id != "" {
				if _, taken := byID[id]; !taken {
					byID[id] = d.Source
				}
			}
		}
	}
	chain := orgChain(o)
	for i := len(chain) - 1; i >= 0; i-- {
		if src, ok := byID[chain[i]]; ok {
			return src, nil
		}
	}
	return nil, nil
}

func (s *Service) orgIDOf(ctx context.Context, code string) (string, error) {
	now := s.now()
	if id, ok := s.creds.ids.Get(code, now); ok {
		return id, nil
	}
	o, err := s.store.GetOrgByCode(ctx, code)
	if errors.Is(err, ErrNotFound) {
		// not cached: the org may be created any time
		return "", nil
	}
	if err != nil {
		return "", err
	}
	s.creds.ids.Put(code, o.ID, now)
	return o.ID, nil
}

// CredentialSourceOf names where u's password is checked: "local" (UIAS's
// own hash) or "ldap:NAME" (GetUser's credential_source).
func (s *Service) CredentialSourceOf(ctx context.Context, u *User) (string, error) {
	src, err := s.sourceOf(ctx, u)
	if err != nil || src == nil {
		return LocalCredentialSource, err
	}
	return "ldap:" + src.Name(), nil
}

// directoryManaged reports whether u's password is a directory's, and when
// it is, clears on this copy of u what only a password UIAS keeps has: a
// pending change (must change, set by another) and its expiry (the
// directory decides both). The stored row is not changed.
func (s *Service) directoryManaged(ctx context.Context, u *User) (CredentialSource, error) {
	src, err := s.sourceOf(ctx, u)
	if err != nil || src == nil {
		return nil, err
	}
	u.MustChange, u.PasswordByOther, u.NeverExpires = false, false, true
	return src, nil
}

// refuseDirectoryPassword refuses setting or changing u's password when a
// directory keeps it.
func (s *Service) refuseDirectoryPassword(ctx context.Context, u *User) error {
	src, err := s.sourceOf(ctx, u)
	if err != nil {
		return err
	}
	if src != nil {
		return errManagedByDirectory
	}
	return nil
}

// checkAtSource asks src about u's password: a verdict, or
// errSourceUnavailable (logged without the password) when it gave none.
func (s *Service) checkAtSource(ctx context.Context, src CredentialSource, u *User, password string) (bool, error) {
	ok, err := src.Check(ctx, u.LoginName, password)
	if err == nil {
		return ok, nil
	}
	var st interface{ AccountState() string }
	if errors.As(err, &st) {
		return false, &sourceAccountState{state: st.AccountState()}
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	s.log.Warn("credential source did not answer", zap.String("source", src.Name()), zap.String("user_id", u.ID), zapErr(err))
	return false, errSourceUnavailable
}

// sourceAccountState is a directory's refusal of the account itself
// (Active Directory: locked out, disabled, password expired or to be
// changed; review sec27a L1): not a wrong password, so not counted.
type sourceAccountState struct{ state string }

func (e *sourceAccountState) Error() string { return "directory account " + e.state }

// reason is the sign-in's verdict of the state: locked and disabled as
// UIAS's own; an expired password (AD answers it only to the right one)
// as an expired password, which the person changes at the directory.
func (e *sourceAccountState) reason() Reason {
	switch e.state {
	case "locked":
		return ReasonAccountLocked
	case "password_expired":
		return ReasonPasswordExpired
	}
	return ReasonAccountDisabled
}

// withDetail is detail (not changed) with k set to v.
func withDetail(detail map[string]string, k, v string) map[string]string {
	d := make(map[string]string, len(detail)+1)
	for dk, dv := range detail {
		d[dk] = dv
	}
	d[k] = v
	return d
}

// orgChain is the ids of o's ancestors and o, from the root.
func orgChain(o *Org) []string {
	chain := strings.Split(strings.Trim(o.Path, "/"), "/")
	if len(chain) == 0 || chain[len(chain)-1] != o.ID {
		chain = append(chain, o.ID)
	}
	return chain
}
