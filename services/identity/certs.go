package identity

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emmansun/gmsm/smx509"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/x509cert"
)

// X.509 certificate login (the maritime SSO design, 2.1.2.2 and 2.1.2.3):
// an administrator binds a person's client certificate by the SHA-256
// thumbprint of its DER encoding (Keycloak's "certificate thumbprint"
// mapping); the CAS login page, reached over TLS with a client certificate
// the edge verified against tls.client_ca_file, turns that certificate into
// the person (CertificateLogin) and opens a level-2 session. Nothing of a
// certificate but its thumbprint and expiry is stored, logged or audited:
// subject names carry names and ID numbers.

// MaxUserCerts is how many certificates may be bound to one person (a
// renewal binds the new one before the old one is removed).
const MaxUserCerts = 10

// UserCert is a client certificate bound to a person.
type UserCert struct {
	// SHA256 is the thumbprint: SHA-256 of the DER, 64 lower case hex digits.
	SHA256 string
	UserID string
	// NotAfter is the certificate's expiry when it was bound from the
	// certificate itself; zero when bound by thumbprint.
	NotAfter  time.Time
	CreatedAt time.Time
	// Origin is the centre whose replica change bound it ("" bound here).
	Origin string
}

// CertStore is the persistence of certificate bindings (part of Store;
// the conformance suite in storetest covers it).
type CertStore interface {
	// BindCert stores c with evs. ErrNotFound when the user does not
	// exist; ErrConflict when the thumbprint is bound already (to anyone)
	// or the user has max bindings.
	BindCert(ctx context.Context, c *UserCert, max int, evs []events.Event) error
	// GetCert returns the binding of thumbprint sha; ErrNotFound when none.
	GetCert(ctx context.Context, sha string) (*UserCert, error)
	// ListCerts returns userID's bindings, oldest first (none: empty).
	ListCerts(ctx context.Context, userID string) ([]*UserCert, error)
	// UnbindCert deletes userID's binding of sha with evs, and marks sha
	// unbound (CertUnbound) until BindCert binds it again; ErrNotFound
	// when userID has no such binding.
	UnbindCert(ctx context.Context, userID, sha string, evs []events.Event) error
	// CertUnbound reports whether an administrator unbound sha and nobody
	// bound it since: a certificate that finds its person by its subject
	// is not bound again by itself (certmap.go).
	CertUnbound(ctx context.Context, sha string) (bool, error)
}

func init() {
	apierr.Register(
		apierr.Reason{Name: "CERTIFICATE_BOUND", Code: apierr.AlreadyExists,
			Doc: "BindUserCertificate: the certificate is already bound to a person (this one or another: a certificate signs in one person); unbind it there first."},
		apierr.Reason{Name: "TOO_MANY_CERTIFICATES", Code: apierr.FailedPrecondition,
			Doc: "BindUserCertificate: the person has 10 certificates bound already; unbind one first."},
		apierr.Reason{Name: "CERTIFICATE_INVALID", Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "BindUserCertificate: the certificate is not a DER-encoded X.509 certificate, or the thumbprint given with it is not its own."},
		apierr.Reason{Name: ReasonCertIdentity, Code: apierr.FailedPrecondition,
			Doc: "BindUserCertificate with `identity.policy.cert_identity_check`: the certificate is not of a people's CA, or its subject does not carry the person's name and ID number (one answer for either), or the person has no ID number, or only a thumbprint was given: a certificate signs in only the person it names. Nothing was bound; the refusal is recorded."},
	)
}

// ReasonCertIdentity: the certificate does not name the person it is bound
// to (identity.policy.cert_identity_check).
const ReasonCertIdentity = "CERTIFICATE_IDENTITY_MISMATCH"

func certIdentity(msg string) *apierr.Error {
	return apierr.New(apierr.FailedPrecondition, ReasonCertIdentity, msg+" (identity.policy.cert_identity_check); nothing was bound").
		WithMeta(apierr.MetaField, "certificate")
}

// errCertNotPerson answers any certificate whose subject does not name the
// person: one answer whether the name or the ID number is missing, so that
// binding attempts cannot be used to search for a person's ID number
// (review sec22 M4).
var errCertNotPerson = certIdentity("the certificate's subject does not name this person (their display name and ID number)")

// checkCertIdentity holds a certificate to the person it is bound to (the
// maritime design 2.1.2.1: the name and ID number of the certificate and
// of the registered person must agree): it must chain to a people's CA
// (when they are known: Deps.PeopleCAs), and some attribute of its subject
// must contain the person's display name, and some the person's ID number
// (not as part of a longer number). Chinese CAs put the number in the
// common name ("张三 110101199003071233") or in serialNumber (2.5.4.5);
// both are looked at. Nothing of the subject is kept or logged.
func (s *Service) checkCertIdentity(ctx context.Context, u *User, sc *smx509.Certificate) error {
	return s.checkCertIdentityWith(ctx, u, sc, nil)
}

// checkCertIdentityWith is checkCertIdentity with intermediate CA
// certificates to build the chain through (a CA's bundle: review sec30a
// L3); a certificate a revocation list in force names (or an
// intermediate of its chain) is refused too.
func (s *Service) checkCertIdentityWith(ctx context.Context, u *User, sc *smx509.Certificate, inter []*smx509.Certificate) error {
	if s.challengeCAs != nil || s.peopleCAs != nil {
		chains, ok := s.peopleChains(sc, inter)
		if !ok {
			return certIdentity("the certificate is not one of a people's CA (identity.cert_challenge_ca_file, tls.people_ca_file, " +
				"else tls.client_ca_file), or not for client authentication")
		}
		if s.revocation != nil {
			if rev := s.revocation(); rev != nil {
				for _, chain := range chains {
					if rev.Check(chain) != nil {
						return certIdentity("the certificate (or a CA of its chain) is revoked")
					}
				}
			}
		}
	}
	idNumber, _, err := s.openPersonal(ctx, u)
	if err != nil {
		return err
	}
	if idNumber == "" {
		return certIdentity("the person has no ID number to hold the certificate's to")
	}
	name := strings.ToUpper(strings.TrimSpace(u.DisplayName))
	id := strings.ToUpper(idNumber)
	var hasName, hasID bool
	for _, atv := range sc.Subject.Names {
		v, ok := atv.Value.(string)
		if !ok {
			continue
		}
		v = strings.ToUpper(v)
		// the name as a word of its own: 张伟 is not in 张伟东 (review
		// sec30a H1)
		hasName = hasName || name != "" && containsWord(v, name)
		if u.UserType.Norm() == UserTypeUnit {
			hasID = hasID || containsUnitCode(v, u.IDType, id)
		} else {
			hasID = hasID || containsNumber(v, id)
		}
	}
	if !hasID || !hasName {
		return errCertNotPerson
	}
	if u.UserType.Norm() == UserTypeUnit && carriesResidentID(sc) {
		// a person's certificate (an employee's, naming the employer) is
		// not the unit's (review sec30c H2)
		return errCertNotPerson
	}
	return nil
}

// carriesResidentID reports whether sc's subject holds a resident ID
// number (a person's certificate).
func carriesResidentID(sc *smx509.Certificate) bool {
	for _, id := range certIDs(sc) {
		if id.t == IDTypeResidentID {
			return true
		}
	}
	return false
}

// peopleChains verifies sc to a people's CA (the challenge pool, SM2 CAs
// included, then the TLS login's people's CAs), through inter, for client
// authentication; its chains (as x509) when it does.
func (s *Service) peopleChains(sc *smx509.Certificate, inter []*smx509.Certificate) ([][]*x509.Certificate, bool) {
	var pool *smx509.CertPool
	if len(inter) > 0 {
		pool = smx509.NewCertPool()
		for _, c := range inter {
			pool.AddCert(c)
		}
	}
	if s.challengeCAs != nil {
		if chains, err := sc.Verify(smx509.VerifyOptions{Roots: s.challengeCAs, Intermediates: pool, CurrentTime: s.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			out := make([][]*x509.Certificate, len(chains))
			for i, chain := range chains {
				for _, c := range chain {
					out[i] = append(out[i], c.ToX509())
				}
			}
			return out, true
		}
	}
	if s.peopleCAs != nil {
		var xpool *x509.CertPool
		if len(inter) > 0 {
			xpool = x509.NewCertPool()
			for _, c := range inter {
				xpool.AddCert(c.ToX509())
			}
		}
		if chains, err := sc.ToX509().Verify(x509.VerifyOptions{Roots: s.peopleCAs, Intermediates: xpool, CurrentTime: s.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			return chains, true
		}
	}
	return nil, false
}

// containsWord reports whether v holds w with no letter or digit right
// before or after it (a name inside a longer name is not it).
func containsWord(v, w string) bool {
	for from := 0; ; {
		i := strings.Index(v[from:], w)
		if i < 0 {
			return false
		}
		i += from
		before, _ := utf8.DecodeLastRuneInString(v[:i])
		after, _ := utf8.DecodeRuneInString(v[i+len(w):])
		if !wordRune(before) && !wordRune(after) {
			return true
		}
		from = i + 1
	}
}

func wordRune(r rune) bool {
	return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// containsUnitCode reports whether v (upper case) holds the code of the
// unit whose ID is (t, id): a unit's certificate carries its unified
// social credit code or its organisation code (with or without the hyphen;
// a USCC's characters 9-17), each the same unit's, as a word of its own.
func containsUnitCode(v string, t IDType, id string) bool {
	oc := orgCodeOf(t, id)
	if oc == "" {
		return false
	}
	words := strings.FieldsFunc(v, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' || r == '-')
	})
	for _, w := range words {
		switch n := normalUnitCode(IDTypeOrgCode, w); {
		case n == id, n == oc:
			return true
		case len(n) == 18 && validUSCC(n) && n[8:17] == oc:
			return true
		}
	}
	return false
}

// containsNumber reports whether v holds id with no digit right before or
// after it.
func containsNumber(v, id string) bool {
	digit := func(i int) bool { return i >= 0 && i < len(v) && v[i] >= '0' && v[i] <= '9' }
	for from := 0; ; {
		i := strings.Index(v[from:], id)
		if i < 0 {
			return false
		}
		i += from
		if !digit(i-1) && !digit(i+len(id)) {
			return true
		}
		from = i + 1
	}
}

var (
	errCertBound    = apierr.New(apierr.AlreadyExists, "CERTIFICATE_BOUND", "this certificate is already bound to a person")
	errTooManyCerts = apierr.New(apierr.FailedPrecondition, "TOO_MANY_CERTIFICATES", "at most 10 certificates per person; unbind one first")
)

func certInvalid(msg string) error {
	return apierr.New(apierr.InvalidArgument, "CERTIFICATE_INVALID", msg).WithMeta(apierr.MetaField, "certificate")
}

// BindUserCert binds a certificate to user id: der (the certificate, whose
// expiry is then kept) or sha (its thumbprint, as tools print it), or both
// when they agree. An administrator's call.
func (s *Service) BindUserCert(ctx context.Context, userID string, der []byte, sha string) (*UserCert, error) {
	start := s.now()
	fp, err := certFingerprint(sha)
	if err != nil {
		return nil, badField("sha256", "sha256 is not a SHA-256 thumbprint (64 hex digits)")
	}
	c := &UserCert{SHA256: fp}
	var cert *smx509.Certificate
	switch {
	case len(der) > 0:
		// Go's parser and, for SM2 certificates, gmsm's (which takes both)
		cert, err = smx509.ParseCertificate(der)
		if err != nil {
			return nil, certInvalid("certificate is not a DER-encoded X.509 certificate")
		}
		if !maySign(cert) {
			return nil, certInvalid("the certificate's key usage does not include digitalSignature (an encryption certificate?): " +
				"bind the person's signing certificate")
		}
		own := x509cert.Thumbprint(der)
		if fp != "" && fp != own {
			return nil, certInvalid("sha256 is not the thumbprint of the certificate given")
		}
		c.SHA256, c.NotAfter = own, cert.NotAfter.UTC().Truncate(time.Millisecond)
	case fp == "":
		return nil, badField("certificate", "give the certificate or its sha256 thumbprint")
	}
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	if s.cfg.Policy.CertIdentityCheck {
		if cert == nil {
			return nil, certIdentity("give the certificate itself, not its thumbprint: its subject is held to the person")
		}
		if err := s.checkCertIdentity(ctx, u, cert); err != nil {
			if ae, ok := apierr.As(err); ok && ae.Reason == ReasonCertIdentity {
				// refusals are recorded: repeated ones are someone
				// trying certificates against a person
				s.appendAudit(ctx, s.audit(ctx, "user.certificate.bind", "user:"+u.ID, u.OrgID, "failure", ReasonCertIdentity, start,
					map[string]string{"sha256": x509cert.Thumbprint(der)}))
			}
			return nil, err
		}
	}
	return s.bindCert(ctx, u, c.SHA256, c.NotAfter, start, "")
}

// ListUserCerts lists the certificates bound to user id.
func (s *Service) ListUserCerts(ctx context.Context, userID string) ([]*UserCert, error) {
	if _, err := s.loadUser(ctx, userID); err != nil {
		return nil, err
	}
	return s.store.ListCerts(ctx, userID)
}

// UnbindUserCert removes user id's binding of the certificate of
// thumbprint sha.
func (s *Service) UnbindUserCert(ctx context.Context, userID, sha string) error {
	start := s.now()
	fp, err := certFingerprint(sha)
	if err != nil || fp == "" {
		return badField("sha256", "sha256 is not a SHA-256 thumbprint (64 hex digits)")
	}
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return err
	}
	return s.write(ctx, func(evs []events.Event) error { return s.store.UnbindCert(ctx, u.ID, fp, evs) },
		s.change(ctx, "user", "certificate_unbound", u.ID, map[string]any{"sha256": fp}),
		s.audit(ctx, "user.certificate.unbind", "user:"+u.ID, u.OrgID, "success", "OK", start, map[string]string{"sha256": fp}))
}

// CertVerdict is the verdict of a certificate login.
type CertVerdict int

// Certificate login verdicts (identityv1.CertificateLoginResult has the
// same numbers).
const (
	CertOK CertVerdict = iota + 1
	CertNotVerified
	CertNotRegistered
	CertExpired
	CertAccountLocked
	CertAccountDisabled
	CertPasswordOnly
	// The verdicts of an answer to a challenge (certchal.go).
	CertChallengeInvalid
	CertChallengeExpired
	CertChallengeReplayed
	CertSignatureInvalid
	CertUntrusted
	CertRevoked
)

var certVerdictNames = map[CertVerdict]string{
	CertOK: "OK", CertNotVerified: "CERTIFICATE_NOT_VERIFIED", CertNotRegistered: "CERTIFICATE_NOT_REGISTERED",
	CertExpired: "CERTIFICATE_EXPIRED", CertAccountLocked: ReasonAccountLocked.String(),
	CertAccountDisabled: ReasonAccountDisabled.String(), CertPasswordOnly: ReasonPasswordOnly.String(),
	CertChallengeInvalid: ReasonCertChallengeInvalid, CertChallengeExpired: ReasonCertChallengeExpired,
	CertChallengeReplayed: ReasonCertChallengeReplayed, CertSignatureInvalid: ReasonCertSignatureInvalid,
	CertUntrusted: ReasonCertUntrusted, CertRevoked: ReasonCertRevoked,
}

func (v CertVerdict) String() string { return certVerdictNames[v] }

// CertLoginResult is the verdict of a certificate login with its person.
type CertLoginResult struct {
	Verdict CertVerdict
	User    *User // set when Verdict is CertOK
}

// CertLogin signs a person in with a client certificate for the single
// sign-on login page. der is the certificate the edge verified on the
// browser's TLS connection against tls.client_ca_file; the caller's
// ClientCert (the origin the edge signed) must be its thumbprint, so that
// only a certificate the edge verified signs anyone in. The certificate
// must be bound to the person, who is homed at this centre (a binding
// left behind when the person's org moved elsewhere is not registered
// here), be within its validity, and the account
// may sign in (active, its org enabled, not locked, not password-only).
//
// Every call is audited as sso.login with method "certificate". Each one
// is counted against the browser's address (the login gate's rule 1,
// taken back on success), so that a stream of refused certificates is
// throttled like a stream of wrong passwords; the account's lockout count
// is not touched: a refused certificate is no guess at the person's
// secret (the TLS handshake proved its key), and a lost certificate must
// not lock its owner's password out.
func (s *Service) CertLogin(ctx context.Context, der []byte) (*CertLoginResult, error) {
	start := s.now()
	fp := x509cert.Thumbprint(der)
	detail := map[string]string{"method": "certificate", "sha256": fp}
	fail := func(subject, org string, v CertVerdict) (*CertLoginResult, error) {
		s.appendAudit(ctx, s.audit(ctx, "sso.login", subject, org, "failure", v.String(), start, detail))
		return &CertLoginResult{Verdict: v}, nil
	}
	a := s.newEarlyAttempt(ssoLoginSource(ctx), "sso.login")
	if err := a.admitSource(ctx, "certificate", "", start); err != nil {
		return nil, err
	}
	if err := a.wait(ctx); err != nil {
		return nil, err
	}
	seen := caller.From(ctx).ClientCert
	if seen == "" || subtle.ConstantTimeCompare([]byte(seen), []byte(fp)) != 1 {
		return fail("certificate", "", CertNotVerified)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fail("certificate", "", CertNotVerified)
	}
	return s.certPerson(ctx, a, fail, der, cert.NotBefore, cert.NotAfter, detail, start)
}

// certPerson is the end of a certificate login (CertLogin,
// CertChallengeLogin) once the certificate (der, valid from notBefore to
// notAfter) is proved: the person it is bound to, if they may sign in.
func (s *Service) certPerson(ctx context.Context, a *loginAttempt, fail func(subject, org string, v CertVerdict) (*CertLoginResult, error),
	der []byte, notBefore, notAfter time.Time, detail map[string]string, start time.Time) (*CertLoginResult, error) {
	fp := x509cert.Thumbprint(der)
	b, err := s.store.GetCert(ctx, fp)
	if errors.Is(err, ErrNotFound) && s.cfg.Policy.CertAutoBind {
		b, err = s.autoBindCert(ctx, der, fp, start)
	}
	if errors.Is(err, ErrNotFound) {
		return fail("certificate", "", CertNotRegistered)
	}
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	u, err := s.store.GetUser(ctx, b.UserID)
	if errors.Is(err, ErrNotFound) {
		return fail("certificate", "", CertNotRegistered)
	}
	if err != nil {
		a.refund(ctx)
		return nil, err
	}
	// A person homed elsewhere signs in here with a binding their home
	// made (replicated: kind "cert") only. This centre's own bindings of
	// them are orphaned (their org moved to another centre, which owns the
	// person and binds their certificates).
	if !s.homedHere(ctx, u) {
		home, err := s.homeOfUser(ctx, u)
		if err != nil {
			a.refund(ctx)
			return nil, err
		}
		if b.Origin == "" || b.Origin != home {
			return fail("certificate", "", CertNotRegistered)
		}
	}
	subject := "user:" + u.ID
	now := s.now()
	// Defence in depth: the edge's TLS handshake (VerifyClientCertIfGiven)
	// already refuses a certificate out of its validity, so a browser
	// never reaches the page with one; this verdict holds should a caller
	// ever hand over a certificate the handshake did not check in time.
	if now.Before(notBefore) || now.After(notAfter) {
		return fail(subject, u.OrgID, CertExpired)
	}
	if !u.Enabled() {
		return fail(subject, u.OrgID, CertAccountDisabled)
	}
	if u.OrgID != "" {
		d, err := s.store.DisabledInOrgChain(ctx, u.OrgID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			a.refund(ctx)
			return nil, err
		}
		if d != "" {
			return fail(subject, u.OrgID, CertAccountDisabled)
		}
	}
	if u.Locked(now) {
		return fail(subject, u.OrgID, CertAccountLocked)
	}
	if u.PasswordOnly {
		return fail(subject, u.OrgID, CertPasswordOnly)
	}
	a.refund(ctx)
	s.appendAudit(ctx, s.audit(ctx, "sso.login", subject, u.OrgID, "success", "OK", start, detail))
	return &CertLoginResult{Verdict: CertOK, User: u}, nil
}
