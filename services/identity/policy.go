package identity

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
)

// Policy is the account policy applied to every user; per-user flags
// (MustChange, NeverExpires, CannotChange) refine it.
type Policy struct {
	MinLength      int           // minimum password length in characters
	RequireClasses int           // how many of lower, upper, digit, symbol (0-4)
	History        int           // a new password may not repeat the last N
	MaxFailures    int           // lock after N counted failures (0: never; see loginguard.go)
	SourceFailures int           // one source counts at most N failures against an account (default 2)
	LockDuration   time.Duration // how long an automatic lock lasts
	MaxAge         time.Duration // password expiry (0: never)
	// SharedIDNumbers lets several accounts carry the same ID type and
	// number (identity.policy.unique_id_number false); the default (false)
	// keeps one account per person: ID_NUMBER_TAKEN.
	SharedIDNumbers bool
	// SelfServiceDisplayName lets a person change their own display name
	// on the profile page (identity.policy.self_service_display_name);
	// the default (false) keeps it the administrator's.
	SelfServiceDisplayName bool
	// AuthenticateRequiresOTP: an application's password Authenticate of
	// a person with an authenticator app must carry its code (otp);
	// without one it answers OTP_REQUIRED (identity.policy.
	// authenticate_requires_otp). Default false: the password alone, as
	// before.
	AuthenticateRequiresOTP bool
	// AdminRequiresOTP: administrators log in with two factors, the
	// password and the code of their authenticator app; one without an
	// app is refused (ADMIN_TOTP_SETUP_REQUIRED) until they set one up on
	// their profile page (identity.policy.admin_requires_otp; GB/T
	// 22239-2019 level 3, 8.1.4.1 d). Default false: an app is asked for
	// only of those who have one.
	AdminRequiresOTP bool
	// RequireIPAllowList: every application has an IP allow-list — one
	// without is not created or left so (ip_allow_list is BAD_FIELD), and
	// its calls are refused IP_ALLOW_LIST_REQUIRED
	// (identity.policy.require_ip_allow_list; the fingerprint server
	// design 3.4.2: the interface's security is the address check).
	// Default false: an empty list admits any address.
	RequireIPAllowList bool
	// CertIdentityCheck: a people's certificate is bound only from the
	// certificate itself, and only when its subject carries the person's
	// display name and ID number (identity.policy.cert_identity_check;
	// the maritime design 2.1.2.1). Default false: an administrator's
	// binding is trusted, by thumbprint too.
	CertIdentityCheck bool
	// CertAutoBind: a certificate login with a certificate bound to no
	// one binds it first to the person of this centre it names (a people's
	// CA's, with their ID number and display name in its subject; see
	// certmap.go), audited user.certificate.bind by "login"
	// (identity.policy.cert_auto_bind; needs CertIdentityCheck's CAs).
	// Default false: only administrators bind.
	CertAutoBind bool
	// MinAuthLevel is the level of the people whose own User.MinAuthLevel
	// is 0 (identity.policy.min_auth_level; 0 or AuthLevelAny: any
	// method). See PersonLevel.
	MinAuthLevel int
}

// DefaultPolicy follows the provincial staff SSO standard's baseline.
func DefaultPolicy() Policy {
	return Policy{MinLength: 8, RequireClasses: 3, History: 5, MaxFailures: 5, SourceFailures: 2,
		LockDuration: 15 * time.Minute, MaxAge: 90 * 24 * time.Hour}
}

// weakPasswords are refused whatever their classes.
var weakPasswords = map[string]bool{
	"password": true, "password1": true, "p@ssw0rd": true, "Passw0rd!": true,
	"12345678": true, "123456789": true, "qwerty123": true, "Aa123456": true,
	"Admin@123": true, "admin123": true,
}

// CheckPassword returns a bad-request error naming what the password lacks.
func (p Policy) CheckPassword(pw, login string) error {
	if !utf8.ValidString(pw) {
		return weakPassword("password is not valid UTF-8")
	}
	n := utf8.RuneCountInString(pw)
	if n < p.MinLength {
		return weakPassword(fmt.Sprintf("password must be at least %d characters", p.MinLength))
	}
	if len(pw) > maxPasswordLen {
		return weakPassword(fmt.Sprintf("password must be at most %d bytes", maxPasswordLen))
	}
	var lower, upper, digit, symbol bool
	for _, r := range pw {
		switch {
		case unicode.IsControl(r):
			return weakPassword("password contains control characters")
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			symbol = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			classes++
		}
	}
	if classes < p.RequireClasses {
		return weakPassword(fmt.Sprintf("password must mix at least %d of: lower-case, upper-case, digits, symbols", p.RequireClasses))
	}
	if login != "" && len(login) >= 3 && strings.Contains(strings.ToLower(pw), strings.ToLower(login)) {
		return weakPassword("password must not contain the login name")
	}
	if weakPasswords[pw] || weakPasswords[strings.ToLower(pw)] {
		return weakPassword("password is too common")
	}
	return nil
}

func weakPassword(msg string) error {
	return apierr.New(apierr.InvalidArgument, "WEAK_PASSWORD", msg)
}

// Expired reports whether u's password has passed the policy's maximum age.
func (p Policy) Expired(u *User, now time.Time) bool {
	at := p.ExpiresAt(u)
	return !at.IsZero() && now.After(at)
}

// ExpiresAt is when u's password passes the policy's maximum age (zero:
// never: no maximum age, a password that never expires, or no password).
func (p Policy) ExpiresAt(u *User) time.Time {
	if p.MaxAge <= 0 || u.NeverExpires || u.PasswordChangedAt.IsZero() {
		return time.Time{}
	}
	return u.PasswordChangedAt.Add(p.MaxAge)
}

// Temporary password alphabets: no look-alikes (0/O, 1/l/I), no quotes,
// spaces or characters a shell or a URL would take apart.
const (
	tempLower  = "abcdefghijkmnopqrstuvwxyz"
	tempUpper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	tempDigit  = "23456789"
	tempSymbol = "!#%+-=@^_~"
	tempLength = 16
)

// Temporary returns a random password for login that meets the policy:
// at least 16 characters (the policy's minimum if longer, up to 128: the
// configuration's bound) with every class of character (about 95 bits of
// randomness at 16).
func (p Policy) Temporary(login string) (string, error) {
	n := min(max(tempLength, p.MinLength), 128)
	all := tempLower + tempUpper + tempDigit + tempSymbol
	for range 100 {
		b := make([]byte, n)
		for i := range b {
			b[i] = all[randIndex(len(all))]
		}
		// One of each class at random places.
		for _, set := range []string{tempLower, tempUpper, tempDigit, tempSymbol} {
			b[randIndex(n)] = set[randIndex(len(set))]
		}
		pw := string(b)
		if p.CheckPassword(pw, login) == nil {
			return pw, nil
		}
	}
	return "", apierr.New(apierr.FailedPrecondition, "TEMPORARY_PASSWORD_IMPOSSIBLE", "no temporary password meets the password policy "+
		"(identity.policy.min_length above 128?); set one with SetPassword")
}

func randIndex(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("crypto/rand: " + err.Error()) // the system's random source failed: nothing is safe
	}
	return int(v.Int64())
}
