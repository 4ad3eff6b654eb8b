package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" // #nosec G505 -- RFC 6238 TOTP as authenticator apps compute it is HMAC-SHA1
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/totp"
)

// Authenticator apps (动态口令, maritime SSO design 004 §2.1.1; the
// fingerprint server design 002 names it among the methods a module may
// require): a person enrols a TOTP secret (RFC 6238: HMAC-SHA1, 6 digits,
// 30 s steps, what Google Authenticator, Microsoft Authenticator and
// FreeOTP compute) on My profile, after re-entering their password, once
// a first code verifies. The secret is sealed with the data keys, never
// returned after the enrolment page and never logged; the last accepted
// time step is stored so that a code is accepted once. A password login
// of an enrolled person at the single sign-on pages then asks for a code
// (SSOLoginBound answers OTP_REQUIRED with a sealed half-done login; the
// code goes through the same login gate as a password: a wrong one is a
// counted failed login). Authenticate checks a code when the application
// sends one (AuthRequest.OTP).

// TOTP parameters (what every common authenticator app uses).
const (
	TOTPPeriod = 30 * time.Second
	TOTPDigits = totp.Digits
	// totpSkew is how many steps either side of the server's are
	// accepted (a phone's clock a little off, a code typed at a step's end).
	totpSkew = 1
	// totpSecretBytes: 160 bits, RFC 4226's recommended secret length.
	totpSecretBytes = 20
	// OTPLoginTTL is how long a half-done login waits for its code.
	OTPLoginTTL = 5 * time.Minute
	// TOTPEnrolTTL is how long an enrolment page's secret may be confirmed.
	TOTPEnrolTTL = 10 * time.Minute
	// DefaultTOTPIssuer names the service in the authenticator app
	// (identity.totp_issuer).
	DefaultTOTPIssuer = "UIAS"
)

// Associated data of the sealed TOTP values.
const (
	aadTOTPSecret   = "user.totp:"
	aadOTPLogin     = "sso.otp_login"
	aadTOTPEnrolTok = "sso.totp_enrol"
)

// UserTOTP is a person's authenticator app enrolment as the store keeps it.
type UserTOTP struct {
	UserID string
	// SecretEnc is the secret sealed with the data keys (associated data
	// "user.totp:<user id>").
	SecretEnc string
	// LastStep is the last time step (Unix time / 30 s) whose code was
	// accepted: no code of it or before is accepted again.
	LastStep  int64
	CreatedAt time.Time
}

// TOTPStore is the persistence of authenticator app enrolments (part of
// Store; the conformance suite in storetest covers it).
type TOTPStore interface {
	// PutTOTP stores a person's enrolment with evs. ErrNotFound when the
	// user does not exist; ErrConflict when one is enrolled already.
	PutTOTP(ctx context.Context, t *UserTOTP, evs []events.Event) error
	// GetTOTP returns a person's enrolment; ErrNotFound when none.
	GetTOTP(ctx context.Context, userID string) (*UserTOTP, error)
	// UseTOTPStep records step as the last accepted one if it is later
	// than the stored one, in one statement; false when it is not (the
	// code of that step, or an earlier one, was accepted: a replay).
	// ErrNotFound when the person has no enrolment.
	UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// DeleteTOTP removes a person's enrolment with evs; ErrNotFound when
	// none.
	DeleteTOTP(ctx context.Context, userID string, evs []events.Event) error
	// AdmitTOTPCode counts a code about to be checked for the person at
	// now, atomically: ok false (until: when codes are taken again) while
	// their codes are blocked, or when this one is the limit's first past
	// max since the last right code, which blocks them for block(n) (n:
	// the blocks so far, this one included). UseTOTPStep's success resets
	// the count and the blocks. ErrNotFound when the person has no
	// enrolment.
	AdmitTOTPCode(ctx context.Context, userID string, now time.Time, max int, block func(n int) time.Duration) (ok bool, until time.Time, err error)
}

// MaxTOTPCodeFailures is how many codes a person's authenticator app takes
// without a right one, from any address, before its codes are blocked
// (TOTPCodeBlock); only a right code resets the count. The login gate's
// lockout counts wrong codes too, but its per-address rule and a right
// password's success would otherwise give someone who knows the password
// a fresh run of guesses.
const MaxTOTPCodeFailures = 5

// TOTPCodeBlock is the n-th block of a person's codes (n from 1): 15
// minutes, doubling each time, at most a day. Some 35 guesses a day at
// most, against a one-in-a-million-ish chance each (±1 step: 3 codes).
func TOTPCodeBlock(n int) time.Duration {
	d := 15 * time.Minute
	for i := 1; i < n && d < 24*time.Hour; i++ {
		d *= 2
	}
	return min(d, 24*time.Hour)
}

func init() {
	apierr.Register(
		apierr.Reason{Name: "TOTP_ALREADY_ENROLLED", Code: apierr.FailedPrecondition,
			Doc: "My profile: an authenticator app is enrolled already; remove it first to set up another."},
		apierr.Reason{Name: "TOTP_NOT_ENROLLED", Code: apierr.NotFound,
			Doc: "ResetUserTotp, or removing one's own authenticator app: the person has none enrolled."},
		apierr.Reason{Name: "TOTP_CODE_WRONG", Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "Setting up an authenticator app: the first code does not match the new secret (check the phone's clock, or scan the code again); nothing was saved."},
		apierr.Reason{Name: "TOTP_ENROLMENT_EXPIRED", Code: apierr.FailedPrecondition,
			Doc: "Setting up an authenticator app: the page's secret is older than 10 minutes, or not this person's; start again."},
		apierr.Reason{Name: ReasonChangeNeedsOTP, Code: apierr.FailedPrecondition,
			Doc: "AuthService.ChangePassword for a person with an authenticator app: the old password alone does not change the password (nor end their sessions); they change it at the sign-in page (/cas/password), which asks for the code. Nothing was checked or counted."},
		apierr.Reason{Name: ReasonAdminOTPRequired, Code: apierr.FailedPrecondition,
			Doc: "AdminLogin: the password was right, and the administrator has an authenticator app: log in again with its current code (`otp`; `uias ctl login --otp CODE`). No token was issued."},
		apierr.Reason{Name: ReasonAdminOTPSetup, Code: apierr.FailedPrecondition,
			Doc: "AdminLogin with `identity.policy.admin_requires_otp`: the password was right, but administrators must log in with an authenticator app and this one has none: they set one up on their profile page (`/cas/profile/totp`), then log in with its code. No token was issued."},
	)
}

// ReasonAdminOTPSetup: administrators must log in with an authenticator
// app (identity.policy.admin_requires_otp) and this one has none.
const ReasonAdminOTPSetup = "ADMIN_TOTP_SETUP_REQUIRED"

// ReasonAdminOTPRequired: an administrator's login needs the code of their
// authenticator app.
const ReasonAdminOTPRequired = "TOTP_CODE_REQUIRED"

var (
	errTOTPEnrolled    = apierr.New(apierr.FailedPrecondition, "TOTP_ALREADY_ENROLLED", "an authenticator app is already set up; remove it first")
	errTOTPNotEnrolled = apierr.New(apierr.NotFound, "TOTP_NOT_ENROLLED", "no authenticator app is set up for this person")
	errTOTPEnrolExp    = apierr.New(apierr.FailedPrecondition, "TOTP_ENROLMENT_EXPIRED", "the set-up has expired; start again")
)

func errTOTPCodeWrong() error {
	return apierr.New(apierr.InvalidArgument, "TOTP_CODE_WRONG", "the code does not match; check the phone's time and try the next code").
		WithMeta(apierr.MetaField, "code")
}

// HOTP is RFC 4226's one-time password of key at counter with digits
// digits (HMAC-SHA1, dynamic truncation).
func HOTP(key []byte, counter uint64, digits int) string {
	m := hmac.New(sha1.New, key)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// TOTPStep is the RFC 6238 time step of t (30 s steps from the Unix epoch).
func TOTPStep(t time.Time) int64 { return t.Unix() / int64(TOTPPeriod/time.Second) }

// TOTPCode is the 6-digit code of key at step.
func TOTPCode(key []byte, step int64) string { return HOTP(key, uint64(step), TOTPDigits) } // #nosec G115 -- steps are positive

// matchTOTP returns the step within totpSkew of now whose code is code
// (0 and false when none). Every candidate is compared, in constant time.
func matchTOTP(key []byte, code string, now time.Time) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := TOTPStep(now)
	var (
		found int64
		ok    bool
	)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		if subtle.ConstantTimeCompare([]byte(TOTPCode(key, cur+d)), []byte(code)) == 1 && !ok {
			found, ok = cur+d, true
		}
	}
	return found, ok
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TOTPURI is the otpauth URI an authenticator app scans (Google
// Authenticator's Key Uri Format).
func TOTPURI(issuer, account, secret string) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", secret)
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", "6")
	q.Set("period", "30")
	return "otpauth://totp/" + label + "?" + q.Encode()
}

// ---- sealed tokens (the pages carry them; identity alone opens them) ----

// otpLogin is a half-done login waiting for its code.
type otpLogin struct {
	User     string `json:"u"`
	Binding  string `json:"b"`
	Expires  int64  `json:"e"` // Unix ms
	LastStep int64  `json:"s"` // the enrolment's last step when issued: one use
	Enrolled int64  `json:"c"` // the enrolment's creation (Unix ms)
	// Password is when the password was set (Unix ms) as the token was
	// issued: a password changed or reset since ends the half-done login.
	Password int64 `json:"p"`
	// Method is the first factor: "" the password, "finger" a finger
	// (SSOFingerLogin), "finger+password" both, "kerberos" a Kerberos
	// ticket (SSOKerberosLogin).
	Method string `json:"m,omitempty"`
}

// totpEnrol is an enrolment page's secret.
type totpEnrol struct {
	User    string `json:"u"`
	Secret  string `json:"k"` // base32
	Expires int64  `json:"e"`
}

func (s *Service) sealToken(v any, aad string) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	defer clear(b)
	return s.sealer.Seal(b, []byte(aad))
}

// openToken opens a sealed token into v; false when it does not open
// (forged, damaged, sealed for another use, or by a retired key).
func (s *Service) openToken(ctx context.Context, tok, aad string, v any) bool {
	b, err := s.sealer.Open(tok, []byte(aad))
	if errors.Is(err, crypto.ErrUnknownKeyID) && s.keys != nil && s.keys.ReloadForUnknown(ctx) {
		b, err = s.sealer.Open(tok, []byte(aad))
	}
	if err != nil {
		return false
	}
	defer clear(b)
	return json.Unmarshal(b, v) == nil
}

// openTOTPSecret decrypts a person's secret.
func (s *Service) openTOTPSecret(ctx context.Context, t *UserTOTP) ([]byte, error) {
	aad := []byte(aadTOTPSecret + t.UserID)
	b, err := s.sealer.Open(t.SecretEnc, aad)
	if errors.Is(err, crypto.ErrUnknownKeyID) && s.keys != nil && s.keys.ReloadForUnknown(ctx) {
		// (at most every UnknownKeyReloadEvery: a value of another
		// centre's data key is unknown at every call, review sec16 M4)
		b, err = s.sealer.Open(t.SecretEnc, aad)
	}
	if err != nil {
		if u, uerr := s.store.GetUser(ctx, t.UserID); uerr == nil {
			s.logUnreadable(ctx, u, "stored authenticator app secret cannot be decrypted with the data keys", err)
		}
		return nil, apierr.Wrap(err, apierr.FailedPrecondition, reasonPersonalDataUnreadable,
			"the stored authenticator app secret of this user cannot be decrypted (key ring or data keys do not match)")
	}
	return b, nil
}

// getTOTP is a person's enrolment, nil when none.
func (s *Service) getTOTP(ctx context.Context, userID string) (*UserTOTP, error) {
	t, err := s.store.GetTOTP(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return t, err
}

// TOTPEnrolledAt is when user id enrolled an authenticator app (zero:
// none), for the administrator's GetUser.
func (s *Service) TOTPEnrolledAt(ctx context.Context, id string) (time.Time, error) {
	t, err := s.getTOTP(ctx, id)
	if err != nil || t == nil {
		return time.Time{}, err
	}
	return t.CreatedAt, nil
}

// ---- the code through the login gate ----

// checkOTP checks code against t, the enrolment of u, through the login
// gate as checkPassword checks a password (status, org, lock, the gate's
// admission, spacing and counting, lockout): a wrong or already used code
// is a counted failure (BAD_CREDENTIALS), a right one settles the check
// as a success (the gate forgets the failures) and makes the code's step
// the last accepted. detail goes into both records.
func (s *Service) checkOTP(ctx context.Context, u *User, t *UserTOTP, code, api string, start time.Time, a *loginAttempt, detail map[string]string) (Reason, error) {
	subject := "user:" + u.ID
	now := s.now()
	with := func(k, v string) map[string]string {
		m := make(map[string]string, len(detail)+1)
		maps.Copy(m, detail)
		m[k] = v
		return m
	}
	if r, err := s.refuseUnusable(ctx, u, api, start, a, detail); err != nil || r != 0 {
		return r, err
	}
	if err := a.admitSource(ctx, subject, u.OrgID, start); err != nil {
		return 0, err
	}
	if r, err := a.admitAccount(ctx, u, start); err != nil || r != 0 {
		a.refund(ctx)
		return r, err
	}
	if err := a.wait(ctx); err != nil {
		return 0, err
	}
	key, err := s.openTOTPSecret(ctx, t)
	if e, ok := apierr.As(err); ok && e.Reason == reasonPersonalDataUnreadable && s.elsewhere(ctx, u) {
		// The app's secret of a person of another centre does not open
		// here (its key ring is not this one's; sealed data between
		// centres): no app to check here, as with none enrolled, never a
		// wrong code that counts towards the lockout; the answer is a
		// result, not an RPC error (trial10 design question 5), as for
		// fingers. The call still counts towards its source's rate
		// (review sec16 M4). One of this centre's own people whose
		// secret does not open is a fault of this centre: an error.
		a.refundAccount(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonNoOTP.String(), start,
			with("otp", "unreadable at this centre")))
		return ReasonNoOTP, nil
	}
	if err != nil {
		a.refund(ctx)
		return 0, err
	}
	defer clear(key)
	// The app's own count, whatever the address and whatever the
	// password's successes: past MaxTOTPCodeFailures codes without a
	// right one, codes are refused for a while (TOTPCodeBlock).
	admitted, until, err := s.store.AdmitTOTPCode(ctx, u.ID, now, MaxTOTPCodeFailures, TOTPCodeBlock)
	if err != nil {
		a.refund(ctx)
		return 0, err
	}
	if !admitted {
		a.refund(ctx)
		blocked := map[string]string{"otp": "blocked", "otp_blocked_until": until.UTC().Format(time.RFC3339)}
		maps.Copy(blocked, detail)
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAccountLocked.String(), start, blocked))
		return ReasonAccountLocked, nil
	}
	step, ok := matchTOTP(key, code, s.now())
	why := "wrong"
	if ok && step <= t.LastStep {
		ok, why = false, "reused"
	}
	if ok {
		used, err := s.store.UseTOTPStep(ctx, u.ID, step)
		if err != nil {
			a.refund(ctx)
			return 0, err
		}
		if !used { // accepted meanwhile by a parallel check
			ok, why = false, "reused"
		}
	}
	if !ok {
		ev := s.audit(ctx, api, subject, u.OrgID, "failure", ReasonBadCredentials.String(), start, with("otp", why))
		locked, err := a.failed(ctx, u, eventsOf(ev), start)
		if err != nil {
			return 0, err
		}
		if locked {
			return ReasonAccountLocked, nil
		}
		return ReasonBadCredentials, nil
	}
	evLocked := func() []events.Event {
		return eventsOf(s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAccountLocked.String(), start, detail))
	}
	ev := s.audit(ctx, api, subject, u.OrgID, "success", ReasonOK.String(), start,
		with("must_change_password", fmtBool(u.MustChange)))
	return a.succeeded(ctx, u, "", eventsOf(ev), evLocked)
}

// SSOLoginBound is SSOLogin for a page that can ask for a second factor:
// binding is a value only the browser holds (the page's hash of a cookie
// of its own). For a person with an authenticator app enrolled a right
// password answers ReasonOTPRequired with OTPToken, the half-done login
// sealed (the person, binding, OTPLoginTTL, the enrolment's last step),
// which SSOLoginOTP takes with the code. The password step then does not
// clear the login gate's failures (only a right code does), so that
// knowing the password gives no fresh run of code guesses.
func (s *Service) SSOLoginBound(ctx context.Context, login, password, binding string) (*SSOLoginResult, error) {
	return s.ssoLogin(ctx, login, password, binding, true)
}

// SSOLoginOTP completes a login SSOLoginBound answered with
// ReasonOTPRequired: token and binding as it was given and issued, code
// the authenticator app's code. Answers ReasonOTPExpired when the token
// does not open, has expired, is of another browser, or was used (a code
// was accepted since it was issued) or the enrolment changed; otherwise
// checkOTP's verdict. Audited as sso.login with method "password+totp"
// ("finger+totp", "kerberos+totp" after a finger or a Kerberos ticket);
// a token that does not serve is counted against the browser's address
// (the login gate's rule 1).
func (s *Service) SSOLoginOTP(ctx context.Context, token, code, binding string) (*SSOLoginResult, error) {
	start := s.now()
	const api = "sso.login"
	if !totp.WellFormed(code) {
		// Not a code at all (a typing slip the page's form lets through):
		// refused as such, not counted as a wrong code.
		return nil, badField("code", "the code is the authenticator app's 6 digits (spaces are ignored)")
	}
	detail := map[string]string{"method": "password+totp"}
	a := s.newEarlyAttempt(ssoLoginSource(ctx), api)
	if err := a.admitSource(ctx, "otp", "", start); err != nil {
		return nil, err
	}
	expired := func(subject, org string) (*SSOLoginResult, error) {
		s.appendAudit(ctx, s.audit(ctx, api, subject, org, "failure", ReasonOTPExpired.String(), start, detail))
		return &SSOLoginResult{Reason: ReasonOTPExpired, Message: reasonMessages[ReasonOTPExpired]}, nil
	}
	var tok otpLogin
	if !s.openToken(ctx, token, aadOTPLogin, &tok) || tok.User == "" {
		return expired("otp", "")
	}
	first := "password"
	switch tok.Method {
	case methodFinger, MethodFingerPassword:
		first = methodFinger
	case MethodKerberos:
		first = MethodKerberos
	}
	// the finger and the password before the code: the session is the
	// finger's and the code's, and the password's (a password change ends
	// it); a Kerberos ticket's is not the password's (the KDC checked it)
	withPassword := tok.Method != methodFinger && tok.Method != MethodKerberos
	level := 0
	if strings.HasPrefix(tok.Method, methodExternal) {
		// an external authenticator's credential (external.go): not the
		// password's either
		first, withPassword, level = tok.Method, false, externalOTPLevel
		detail["authenticator"] = strings.TrimPrefix(tok.Method, methodExternal)
	}
	detail["method"] = first + "+totp"
	subject := "user:" + tok.User
	if binding == "" || subtle.ConstantTimeCompare([]byte(binding), []byte(tok.Binding)) != 1 || s.now().UnixMilli() > tok.Expires {
		return expired(subject, "")
	}
	u, err := s.store.GetUser(ctx, tok.User)
	if errors.Is(err, ErrNotFound) {
		return expired(subject, "")
	}
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	if t == nil || t.CreatedAt.UnixMilli() != tok.Enrolled || t.LastStep != tok.LastStep || u.PasswordChangedAt.UnixMilli() != tok.Password {
		return expired(subject, u.OrgID)
	}
	if need := s.cfg.Policy.PersonLevel(u); need > AuthLevelTwoFactor {
		// Set to certificates only since the first step: the code is not
		// asked for (nor counted).
		a.refund(ctx)
		s.appendAudit(ctx, s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, detail))
		return levelVerdict(need), nil
	}
	r, err := s.checkOTP(ctx, u, t, code, api, start, a, detail)
	if err != nil {
		return nil, err
	}
	if r != ReasonOK {
		return &SSOLoginResult{Reason: r, Message: reasonMessages[r]}, nil
	}
	return &SSOLoginResult{Reason: ReasonOK, Message: reasonMessages[ReasonOK], User: u, SecondFactor: true,
		Method: detail["method"], NoPassword: !withPassword, Level: level}, nil
}

// otpLoginToken seals the half-done login of u.
func (s *Service) otpLoginToken(u *User, t *UserTOTP, binding, method string) (string, error) {
	return s.sealToken(otpLogin{User: u.ID, Binding: binding, Expires: s.now().Add(OTPLoginTTL).UnixMilli(),
		LastStep: t.LastStep, Enrolled: t.CreatedAt.UnixMilli(), Password: u.PasswordChangedAt.UnixMilli(), Method: method}, aadOTPLogin)
}

// ---- enrolment by the person (My profile) ----

// TOTPEnrolment is a new secret shown on the enrolment page.
type TOTPEnrolment struct {
	Secret  string // base32, no padding
	URI     string // otpauth://totp/...
	Token   string // the secret sealed for ConfirmTOTPEnrolment
	Issuer  string
	Account string
}

func (s *Service) totpIssuer() string {
	if s.cfg.TOTPIssuer != "" {
		return s.cfg.TOTPIssuer
	}
	return DefaultTOTPIssuer
}

// selfUser loads the person of the signed-in session for a change of
// their own: homed here, with a password to re-enter.
func (s *Service) selfUser(ctx context.Context, id string) (*User, error) {
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	if err := s.ownPassword(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// BeginTOTPEnrolment makes a new secret for user id (the person of the
// signed-in session). Nothing is stored: the secret travels sealed in the
// token to ConfirmTOTPEnrolment.
func (s *Service) BeginTOTPEnrolment(ctx context.Context, id string) (*TOTPEnrolment, error) {
	u, err := s.selfUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if t, err := s.getTOTP(ctx, u.ID); err != nil {
		return nil, err
	} else if t != nil {
		return nil, errTOTPEnrolled
	}
	key := make([]byte, totpSecretBytes)
	_, _ = rand.Read(key)
	secret := b32.EncodeToString(key)
	clear(key)
	tok, err := s.sealToken(totpEnrol{User: u.ID, Secret: secret, Expires: s.now().Add(TOTPEnrolTTL).UnixMilli()}, aadTOTPEnrolTok)
	if err != nil {
		return nil, err
	}
	iss := s.totpIssuer()
	return &TOTPEnrolment{Secret: secret, URI: TOTPURI(iss, u.LoginName, secret), Token: tok, Issuer: iss, Account: u.LoginName}, nil
}

// ConfirmTOTPEnrolment saves the enrolment of the secret in token when
// code is its code now (±1 step) and currentPassword is right (checked as
// at login, through the login gate). The code's step is stored as the
// last accepted, so it does not sign in. Audited as user.totp.enrol with
// the person as the actor.
func (s *Service) ConfirmTOTPEnrolment(ctx context.Context, id, currentPassword, token, code string) (*OwnProfile, error) {
	start := s.now()
	u, err := s.selfUser(ctx, id)
	if err != nil {
		return nil, err
	}
	var tok totpEnrol
	if !s.openToken(ctx, token, aadTOTPEnrolTok, &tok) || tok.User != u.ID || s.now().UnixMilli() > tok.Expires {
		return nil, errTOTPEnrolExp
	}
	key, err := b32.DecodeString(tok.Secret)
	if err != nil || len(key) != totpSecretBytes {
		return nil, errTOTPEnrolExp
	}
	defer clear(key)
	// The code first: a mistyped code costs no password check.
	step, ok := matchTOTP(key, code, s.now())
	if !ok {
		return nil, errTOTPCodeWrong()
	}
	if t, err := s.getTOTP(ctx, u.ID); err != nil {
		return nil, err
	} else if t != nil {
		return nil, errTOTPEnrolled
	}
	ctx = asSelf(ctx, u)
	if err := s.reauth(ctx, u, currentPassword, "sso.totp.password", start); err != nil {
		return nil, err
	}
	enc, err := s.sealer.Seal(key, []byte(aadTOTPSecret+u.ID))
	if err != nil {
		return nil, fmt.Errorf("seal totp secret: %w", err)
	}
	t := &UserTOTP{UserID: u.ID, SecretEnc: enc, LastStep: step, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.PutTOTP(ctx, t, evs) },
		s.changeWith(ctx, "user", "totp_enrolled", u.ID, map[string]any{"enrolled_at": t.CreatedAt}, s.totpReplicaOf(t)),
		s.audit(ctx, "user.totp.enrol", "user:"+u.ID, u.OrgID, "success", "OK", start, nil))
	if errors.Is(err, ErrConflict) {
		return nil, errTOTPEnrolled
	}
	if err != nil {
		return nil, err
	}
	return s.GetOwnProfile(ctx, u.ID)
}

// RemoveOwnTOTP removes the authenticator app of user id (the person of
// the signed-in session) after currentPassword (checked as at login) and
// the app's current code (checked as at login: both factors, so that a
// session opened with the password alone, or stolen, with a phished
// password, cannot swap the app for another; a wrong code is
// TOTP_CODE_WRONG, counted). Audited as user.totp.remove with the person
// as the actor.
func (s *Service) RemoveOwnTOTP(ctx context.Context, id, currentPassword, code string) (*OwnProfile, error) {
	start := s.now()
	u, err := s.selfUser(ctx, id)
	if err != nil {
		return nil, err
	}
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		return nil, err
	} else if t == nil {
		return nil, errTOTPNotEnrolled
	}
	ctx = asSelf(ctx, u)
	if err := s.reauth(ctx, u, currentPassword, "sso.totp.password", start); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, errTOTPCodeWrong()
	}
	r, err := s.checkOTP(ctx, u, t, code, "sso.totp.code", start, s.newEarlyAttempt(ssoLoginSource(ctx), "sso.totp.code"),
		map[string]string{"method": "totp", "for": "user.totp.remove"})
	if err != nil {
		return nil, err
	}
	switch r {
	case ReasonOK:
	case ReasonAccountLocked, ReasonAccountDisabled:
		return nil, apierr.New(apierr.FailedPrecondition, "VERIFICATION_FAILED", "code not accepted: "+reasonMessages[r]).
			WithMeta("verdict", r.String())
	default:
		return nil, errTOTPCodeWrong()
	}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.DeleteTOTP(ctx, u.ID, evs) },
		s.change(ctx, "user", "totp_removed", u.ID, map[string]any{}),
		s.audit(ctx, "user.totp.remove", "user:"+u.ID, u.OrgID, "success", "OK", start, nil))
	if errors.Is(err, ErrNotFound) {
		return nil, errTOTPNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	return s.GetOwnProfile(ctx, u.ID)
}

// ---- the administrator ----

// ResetUserTOTP removes the authenticator app of user id (lost phone):
// they sign in with the password alone until they set up a new one.
// Audited as user.totp.reset; home centre only.
func (s *Service) ResetUserTOTP(ctx context.Context, id string) (*User, error) {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.DeleteTOTP(ctx, u.ID, evs) },
		s.change(ctx, "user", "totp_removed", u.ID, map[string]any{}),
		s.adminAudit(ctx, "user.totp.reset", "user:"+u.ID, u.OrgID, start))
	if errors.Is(err, ErrNotFound) {
		return nil, errTOTPNotEnrolled
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// authenticateOTP is Authenticate with a code: the password first (a
// partial check: a right one does not clear the gate's failures), then
// the code through the gate (NO_OTP when the person has no app enrolled).
// Without a code (Policy.AuthenticateRequiresOTP) a person without an app
// is checked on the password alone, and one with an app, whose password
// is right, answers OTP_REQUIRED.
//
// pwAPI names the password check's records: "authenticate", or
// "authenticate.finger_bypass" when the application's fingerprint bypass
// takes the password instead of a finger (which, a password alone, asks
// for the code like any password-only call: the bypass must not be a way
// around identity.policy.authenticate_requires_otp).
func (s *Service) authenticateOTP(ctx context.Context, c *caller.Caller, req *AuthRequest, u *User, start time.Time, pwAPI string) (Reason, error) {
	const api = "authenticate"
	t, err := s.getTOTP(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	src := appLoginSource(c.App.ID, req.Extend, u.ID)
	a := s.newAttempt(src, api).shortOf(req.short)
	if req.OTP == "" && t == nil {
		return s.checkPassword(ctx, u, req.Password, pwAPI, start, a)
	}
	a.partial = true
	if req.OTP == "" {
		// The password step's record says pending OTP_REQUIRED; the
		// answer is a refusal.
		r, err := s.checkPassword(ctx, u, req.Password, pwAPI, start, a)
		if err != nil || r != ReasonOK {
			return r, err
		}
		return ReasonOTPRequired, nil
	}
	r, err := s.checkPassword(ctx, u, req.Password, pwAPI, start, a)
	if err != nil || r != ReasonOK || req.short {
		// short: the code would not reach the person's level either (a
		// certificate's): not checked.
		return r, err
	}
	if t == nil {
		s.appendAudit(ctx, s.audit(ctx, api, "user:"+u.ID, u.OrgID, "failure", ReasonNoOTP.String(), start, nil))
		return ReasonNoOTP, nil
	}
	return s.checkOTP(ctx, u, t, req.OTP, api, start, s.newAttempt(src, api), map[string]string{"method": "password+totp"})
}
