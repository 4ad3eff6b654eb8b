package identity

import "strconv"

// Authentication levels (graded authentication per person and per
// application, maritime SSO design 004 §2.1.2.2; ADR 0020). A login's
// level is its method's (MethodLevel); a person's and an application's
// minimum is one of these.
const (
	// AuthLevelDefault as a person's level is the policy's
	// (Policy.MinAuthLevel); as an application's, any.
	AuthLevelDefault = 0
	// AuthLevelAny: any method (a password alone, a finger alone).
	AuthLevelAny = 1
	// AuthLevelTwoFactor: two factors (password and the authenticator
	// app's code, finger and password, finger and code) or a certificate.
	AuthLevelTwoFactor = 2
	// AuthLevelCertificate: a certificate only.
	AuthLevelCertificate = 3
)

// Method names of a login (SSOLoginResult.Method) and their levels.
const (
	MethodPassword       = "password"
	MethodPasswordTOTP   = "password+totp"
	MethodFinger         = methodFinger
	MethodFingerPassword = methodFinger + "+password"
	MethodFingerTOTP     = methodFinger + "+totp"
	MethodCertificate    = "certificate"
)

// MethodLevel is the level a login by method reaches (0 for a method it
// does not know: it reaches no level; an external authenticator's
// methods are the service's, Service.methodLevel).
func MethodLevel(method string) int {
	switch method {
	case MethodPassword, MethodFinger, MethodKerberos:
		return AuthLevelAny
	case MethodPasswordTOTP, MethodFingerPassword, MethodFingerTOTP, MethodKerberosTOTP:
		return AuthLevelTwoFactor
	case MethodCertificate:
		return AuthLevelCertificate
	}
	return 0
}

// PersonLevel is the level u must sign in with: their own, or the
// policy's when theirs is 0 (at least AuthLevelAny).
func (p Policy) PersonLevel(u *User) int {
	if u.MinAuthLevel > AuthLevelDefault {
		return u.MinAuthLevel
	}
	return max(p.MinAuthLevel, AuthLevelAny)
}

// authLevel is the level an Authenticate call reaches by its auth type:
// a password with the code, or a finger and the password, two factors; a
// password or a finger alone (also a finger's call the application's
// bypass answers with the password), one; a certificate (auth type 4),
// the certificate level; an external authenticator's credential (auth
// type 5), its configured level (two factors with the password).
func (req *AuthRequest) authLevel() int {
	switch {
	case req.AuthType == AuthCertificate:
		return AuthLevelCertificate
	case req.AuthType == AuthExternal && req.ext != nil:
		// the authenticator's level; two factors with the password
		return externalLevel(req.ext, req.Password != "")
	case req.AuthType == AuthPassword && req.OTP != "":
		return AuthLevelTwoFactor
	case req.AuthType == AuthPasswordFingerprint:
		return AuthLevelTwoFactor
	}
	return AuthLevelAny
}

// checkLevel checks a minimum level of a person or application (0 to 3;
// the proto's rules already bound what a request carries).
func checkLevel(field string, level int) error {
	if level < AuthLevelDefault || level > AuthLevelCertificate {
		return badField(field, "min_auth_level must be 0 (default), 1 (any), 2 (two factors or a certificate) or 3 (a certificate only)")
	}
	return nil
}

// checkPersonLevel checks a person's level with their password-only flag:
// a person who may use neither a finger nor a certificate could never
// reach a certificate's level.
func checkPersonLevel(level int, passwordOnly bool) error {
	if err := checkLevel("min_auth_level", level); err != nil {
		return err
	}
	if level == AuthLevelCertificate && passwordOnly {
		return badField("min_auth_level", "a person set to password-only authentication cannot be required to use a certificate "+
			"(min_auth_level 3): clear password_only first, or choose 2 (two factors: the password and an authenticator app's code)")
	}
	return nil
}

// levelDetail is the audit detail of a refusal for a level: whose minimum
// (the "person" or the "app") and the levels.
func levelDetail(whose string, need, have int) map[string]string {
	return map[string]string{"min_auth_level_of": whose, "min_auth_level": strconv.Itoa(need), "auth_level": strconv.Itoa(have)}
}
