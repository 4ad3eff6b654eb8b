package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/x509cert"
)

// Certificate login by a signed challenge (the maritime SSO design 004
// §2.1.2.3 (1)-(2), ADR 0033): UIAS hands out a random challenge sealed
// with the key ring (so that any replica opens it), valid CertChallengeTTL
// and bound to its use (the CAS page, or one application); the person's
// USB key (or any holder of the certificate's private key) signs the
// challenge string's UTF-8 bytes; UIAS checks the challenge (genuine,
// unexpired, unused: remembered in the nonce bucket every replica
// shares), the signature with the certificate's public key (RSA PKCS#1
// v1.5 or PSS with SHA-256, ECDSA P-256 with SHA-256, Ed25519, SM2 with
// SM3 and the default user ID 1234567812345678), the certificate's chain
// to a people's CA (tls.people_ca_file, SM2 CAs too), its validity and
// revocation (tls.crl_file), and then signs in the person the certificate
// is bound to, exactly as the TLS certificate login does.

// CertChallengeTTL is how long a challenge may be answered.
const CertChallengeTTL = 60 * time.Second

// certChallengeMemory is how long an answered challenge is remembered:
// beyond its life (a later answer is refused as expired anyway).
const certChallengeMemory = CertChallengeTTL + time.Minute

// aadCertChallenge is the associated data of a sealed challenge (with
// its purpose appended: a challenge opens only for its own use).
const aadCertChallenge = "cert.challenge:"

// ChallengePurposeSSO is the purpose of the CAS login page's challenges.
const ChallengePurposeSSO = "sso"

// ChallengePurposeApp is the purpose of an application's challenges
// (Authenticate with a certificate): answered to that application only.
func ChallengePurposeApp(appID string) string { return "app:" + appID }

// The reasons of a refused answer to a challenge (registered below; the
// CAS page's verdicts carry the same names).
const (
	ReasonCertChallengeInvalid   = "CERTIFICATE_CHALLENGE_INVALID"
	ReasonCertChallengeExpired   = "CERTIFICATE_CHALLENGE_EXPIRED"
	ReasonCertChallengeReplayed  = "CERTIFICATE_CHALLENGE_REPLAYED"
	ReasonCertSignatureInvalid   = "CERTIFICATE_SIGNATURE_INVALID"
	ReasonCertUntrusted          = "CERTIFICATE_UNTRUSTED"
	ReasonCertRevoked            = "CERTIFICATE_REVOKED"
	ReasonCertExpired            = "CERTIFICATE_EXPIRED"
	ReasonCertCheckUnavailable   = "CERTIFICATE_CHECK_UNAVAILABLE"
	reasonCertChallengeMalformed = "CERTIFICATE_INVALID"
)

// Errors of an answer to a challenge.
var (
	ErrCertChallengeInvalid = apierr.New(apierr.Unauthenticated, ReasonCertChallengeInvalid,
		"the challenge was not issued by UIAS for this use (damaged, made up, or issued for another application or the sign-in page): get a new one")
	ErrCertChallengeExpired = apierr.New(apierr.Unauthenticated, ReasonCertChallengeExpired,
		"the challenge has expired (it may be answered for 60 seconds): get a new one and sign it at once")
	ErrCertChallengeReplayed = apierr.New(apierr.Unauthenticated, ReasonCertChallengeReplayed,
		"the challenge was answered before (each is answered once): get a new one")
	ErrCertSignatureInvalid = apierr.New(apierr.Unauthenticated, ReasonCertSignatureInvalid,
		"the signature is not one of the certificate's key over the challenge (sign the challenge string's UTF-8 bytes: "+
			"RSA PKCS#1 v1.5 or PSS with SHA-256, ECDSA P-256 with SHA-256, Ed25519, or SM2 with SM3 and the default user ID)")
	ErrCertUntrusted = apierr.New(apierr.Unauthenticated, ReasonCertUntrusted,
		"the certificate is not issued by a people's CA UIAS trusts (identity.cert_challenge_ca_file, else tls.people_ca_file, "+
			"else tls.client_ca_file), or is not for client authentication")
	// ErrCertNoSignUsage: the certificate's key usage does not allow
	// signatures (an SM2 encryption certificate, whose key the CA's key
	// management centre holds too; review sec29a L1).
	ErrCertNoSignUsage = apierr.New(apierr.Unauthenticated, ReasonCertUntrusted,
		"the certificate's key usage does not include digitalSignature (an encryption certificate?): sign with the USB key's signing certificate")
	ErrCertRevoked = apierr.New(apierr.Unauthenticated, ReasonCertRevoked,
		"the certificate is revoked by its CA (identity.cert_challenge_crl_file, else tls.crl_file)")
	ErrCertOutOfValidity = apierr.New(apierr.Unauthenticated, ReasonCertExpired,
		"the certificate has expired or is not valid yet")
	ErrCertCheckUnavailable = apierr.New(apierr.Unavailable, ReasonCertCheckUnavailable,
		"the certificate sign-in cannot be checked now (the store of answered challenges is unreachable); sign in with the password, or try again later")
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonCertChallengeInvalid, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge (Authenticate auth type 4, the CAS page's USB key): the challenge was not issued by UIAS's key ring for this use (damaged, made up, issued to another application or for the sign-in page). Get a new one. Audited; counted at the caller's address."},
		apierr.Reason{Name: ReasonCertChallengeExpired, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge: the challenge is older than 60 seconds. Get a new one and sign it at once."},
		apierr.Reason{Name: ReasonCertChallengeReplayed, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge: the challenge was answered before, at this or another replica (each is answered once, whatever the verdict). Get a new one."},
		apierr.Reason{Name: ReasonCertSignatureInvalid, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge: the signature does not verify with the certificate's public key over the challenge string's UTF-8 bytes (RSA PKCS#1 v1.5/PSS SHA-256, ECDSA P-256 SHA-256, Ed25519, SM2 with SM3 and user ID 1234567812345678)."},
		apierr.Reason{Name: ReasonCertUntrusted, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge: the certificate does not chain to a people's CA (identity.cert_challenge_ca_file, else tls.people_ca_file, else tls.client_ca_file; none configured: no certificate), or is not for client authentication (an extended key usage without clientAuth or any), or its key usage does not include digitalSignature (an encryption certificate)."},
		apierr.Reason{Name: ReasonCertRevoked, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge: a revocation list (identity.cert_challenge_crl_file, else tls.crl_file) lists the certificate (or an intermediate of its chain)."},
		apierr.Reason{Name: ReasonCertExpired, Code: apierr.Unauthenticated, Legacy: -1,
			Doc: "Certificate sign-in by challenge: the certificate, or an intermediate or root of its chain, is out of its validity (expired or not valid yet)."},
		apierr.Reason{Name: ReasonCertCheckUnavailable, Code: apierr.Unavailable, Legacy: -6,
			Doc: "Certificate sign-in by challenge: the answered challenges cannot be looked up (the shared store, NATS JetStream, is unreachable): refused rather than taken unchecked. Sign in with the password, or retry later."},
	)
}

// certChallenge is a challenge as sealed.
type certChallenge struct {
	Nonce   string `json:"n"` // 128 random bits, hex
	Purpose string `json:"p"`
	Expires int64  `json:"e"` // Unix milliseconds
}

// CertChallenge issues a challenge for purpose (ChallengePurposeSSO, or
// ChallengePurposeApp), with when it expires. Nothing is stored.
func (s *Service) CertChallenge(_ context.Context, purpose string) (string, time.Time, error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", time.Time{}, err
	}
	exp := s.now().Add(CertChallengeTTL)
	tok, err := s.sealToken(certChallenge{Nonce: hex.EncodeToString(n[:]), Purpose: purpose, Expires: exp.UnixMilli()},
		aadCertChallenge+purpose)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp.UTC().Truncate(time.Millisecond), nil
}

// SSOCertChallenge issues a challenge for the CAS login page's USB key
// (GET /cas/cert/challenge, which needs no credential): through the login
// gate's per-source rule (rule 1, loginguard.go) at the browser's address,
// as the login form's password checks are, with the same settings
// (identity.login_throttle) but a count of its own (challengeSource), so
// that fetching challenges does not slow the address's password logins.
// Each challenge counts from its issue; a certificate sign-in by
// challenge that succeeds from the address takes one back (CertChallengeLogin),
// so people signing in behind one NAT address are not held up. Past the
// free ones a challenge waits (1 s, doubling); past MaxDelay it is refused
// LOGIN_THROTTLED with retry_after_seconds (audited, thinned, as
// sso.cert_challenge), which the page answers 429.
func (s *Service) SSOCertChallenge(ctx context.Context) (string, time.Time, error) {
	start := s.now()
	a := s.newEarlyAttempt(challengeSource(ctx), "sso.cert_challenge")
	if err := a.admitSource(ctx, "certificate", "", start); err != nil {
		return "", time.Time{}, err
	}
	if err := a.wait(ctx); err != nil {
		return "", time.Time{}, err
	}
	c, exp, err := s.CertChallenge(ctx, ChallengePurposeSSO)
	if err != nil {
		a.refund(ctx)
	}
	return c, exp, err
}

// challengeSource is the rule-1 source of the CAS page's challenges: the
// browser's address (IPv6 by /64), apart from its password checks'.
func challengeSource(ctx context.Context) loginSource {
	src := ssoLoginSource(ctx)
	if src.gate != "" {
		src.gate = "challenge:" + src.gate
	}
	return loginSource{gate: src.gate}
}

// AppCertChallenge issues a challenge for the calling application.
func (s *Service) AppCertChallenge(ctx context.Context) (string, time.Time, error) {
	c := caller.From(ctx)
	if c.App == nil {
		return "", time.Time{}, caller.ErrBadAppCredentials
	}
	return s.CertChallenge(ctx, ChallengePurposeApp(c.App.ID))
}

// CertProof is an answer to a challenge.
type CertProof struct {
	Challenge string
	// Certificate is the person's certificate, DER or PEM; a PEM may hold
	// intermediates after it (the chain).
	Certificate []byte
	// Chain are intermediate certificates (DER), optional.
	Chain     [][]byte
	Signature []byte
}

// certOf parses the certificates of p: the leaf first.
func certsOf(p CertProof) ([]*smx509.Certificate, error) {
	var ders [][]byte
	rest := p.Certificate
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	if len(ders) == 0 {
		ders = [][]byte{p.Certificate}
	}
	ders = append(ders, p.Chain...)
	out := make([]*smx509.Certificate, 0, len(ders))
	for _, der := range ders {
		c, err := smx509.ParseCertificate(der)
		if err != nil {
			return nil, certInvalid("certificate is not an X.509 certificate (DER, or PEM \"CERTIFICATE\" blocks), nor are the chain's")
		}
		out = append(out, c)
	}
	return out, nil
}

// checkCertProof checks an answer for purpose: the challenge, the
// signature, the chain, validity and revocation (in that order; the
// challenge is used up once it opens, whatever comes after). It returns
// the person's certificate, or one of the errors above
// (CERTIFICATE_INVALID for certificates that do not parse).
func (s *Service) checkCertProof(ctx context.Context, purpose string, p CertProof) (*smx509.Certificate, error) {
	var ch certChallenge
	if !s.openToken(ctx, p.Challenge, aadCertChallenge+purpose, &ch) || ch.Purpose != purpose || len(ch.Nonce) != 32 {
		return nil, ErrCertChallengeInvalid
	}
	now := s.now()
	if now.UnixMilli() > ch.Expires {
		return nil, ErrCertChallengeExpired
	}
	// Used up before anything else is looked at, also when the
	// certificate does not parse (review sec29a I1).
	switch err := s.nonces.Remember(ctx, "certchal."+ch.Nonce, certChallengeMemory); {
	case errors.Is(err, caller.ErrNonceSeen):
		return nil, ErrCertChallengeReplayed
	case err != nil:
		s.log.Warn("answered certificate challenges cannot be looked up", zapErr(err))
		return nil, ErrCertCheckUnavailable
	}
	certs, err := certsOf(p)
	if err != nil {
		return nil, err
	}
	leaf := certs[0]
	if !verifyChallengeSignature(leaf.PublicKey, []byte(p.Challenge), p.Signature) {
		return nil, ErrCertSignatureInvalid
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return nil, ErrCertOutOfValidity
	}
	if !maySign(leaf) {
		return nil, ErrCertNoSignUsage
	}
	if s.challengeCAs == nil {
		// No people's CA configured: no certificate is trusted (a
		// binding alone, made from a thumbprint, is no CA's word).
		return nil, ErrCertUntrusted
	}
	{
		inter := smx509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		chains, err := leaf.Verify(smx509.VerifyOptions{Roots: s.challengeCAs, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err != nil {
			var inv x509.CertificateInvalidError
			if errors.As(err, &inv) && inv.Reason == x509.Expired {
				// an intermediate or root out of its dates (review sec29a I2)
				return nil, ErrCertOutOfValidity
			}
			return nil, ErrCertUntrusted
		}
		if s.revocation != nil {
			if rev := s.revocation(); rev != nil {
				for _, chain := range chains {
					xs := make([]*x509.Certificate, len(chain))
					for i, c := range chain {
						xs[i] = c.ToX509()
					}
					if rev.Check(xs) != nil {
						return nil, ErrCertRevoked
					}
				}
			}
		}
	}
	return leaf, nil
}

// oidKeyUsage is the key usage extension (RFC 5280 §4.2.1.3).
var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// maySign reports whether c's key may make the signatures that sign a
// person in: without a key usage extension any use is allowed; with one,
// digitalSignature must be among them (an SM2 encryption certificate
// carries keyEncipherment/dataEncipherment only, and its key is escrowed
// by the CA's key management centre). The extended key usage is held to
// client authentication (or any) by the chain's verification.
func maySign(c *smx509.Certificate) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oidKeyUsage) {
			return c.KeyUsage&x509.KeyUsageDigitalSignature != 0
		}
	}
	return true
}

// verifyChallengeSignature verifies sig over msg with pub: RSA (PKCS#1
// v1.5, then PSS, SHA-256), ECDSA P-256 (SHA-256), SM2 (SM3 with the
// default user ID), Ed25519. ECDSA and SM2 signatures are ASN.1 DER, or
// the 64 bytes r||s.
func verifyChallengeSignature(pub any, msg, sig []byte) bool {
	if len(sig) == 0 {
		return false
	}
	sum := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig) == nil {
			return true
		}
		return rsa.VerifyPSS(k, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	case *ecdsa.PublicKey:
		verify := func(sig []byte) bool {
			switch k.Curve {
			case sm2.P256():
				return sm2.VerifyASN1WithSM2(k, nil, msg, sig)
			case elliptic.P256():
				return ecdsa.VerifyASN1(k, sum[:], sig)
			}
			return false
		}
		if verify(sig) {
			return true
		}
		if len(sig) != 64 {
			return false
		}
		// r||s of 32 bytes each (IEEE P1363: WebCrypto's ECDSA, and many
		// USB key SDKs' SM2), as ASN.1
		der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])})
		return err == nil && verify(der)
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	}
	return false
}

// proofVerdicts are the CAS page's verdicts of the errors of
// checkCertProof.
var proofVerdicts = map[string]CertVerdict{
	ReasonCertChallengeInvalid: CertChallengeInvalid, ReasonCertChallengeExpired: CertChallengeExpired,
	ReasonCertChallengeReplayed: CertChallengeReplayed, ReasonCertSignatureInvalid: CertSignatureInvalid,
	ReasonCertUntrusted: CertUntrusted, ReasonCertRevoked: CertRevoked, ReasonCertExpired: CertExpired,
	reasonCertChallengeMalformed: CertNotVerified,
}

// CertChallengeLogin signs a person in at the CAS login page with an
// answer to a challenge of ChallengePurposeSSO (the USB key option): as
// CertLogin once the answer is checked (checkCertProof), the certificate
// standing for the one the edge verified. Every call is audited as
// sso.login, method "certificate", proof "challenge"; refusals are
// counted at the browser's address as CertLogin's.
func (s *Service) CertChallengeLogin(ctx context.Context, p CertProof) (*CertLoginResult, error) {
	start := s.now()
	detail := map[string]string{"method": MethodCertificate, "proof": "challenge"}
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
	leaf, err := s.checkCertProof(ctx, ChallengePurposeSSO, p)
	if err != nil {
		ae, ok := apierr.As(err)
		v, known := proofVerdicts[ae.Reason]
		if !ok || !known {
			a.refund(ctx)
			return nil, err
		}
		return fail("certificate", "", v)
	}
	detail["sha256"] = x509cert.Thumbprint(leaf.Raw)
	res, err := s.certPerson(ctx, a, fail, leaf.Raw, leaf.NotBefore, leaf.NotAfter, detail, start)
	if err == nil && res.Verdict == CertOK {
		// A person signed in with a challenge from this address: the
		// challenge's count there is taken back (SSOCertChallenge).
		if g := challengeSource(ctx).gate; g != "" {
			s.sources.refund(g, s.now())
		}
	}
	return res, err
}

// AuthCertificate is the auth type of Authenticate with a certificate
// and its signature of a challenge (AppCertChallenge).
const AuthCertificate = 4

// authenticateCert checks the answer to a challenge of an Authenticate
// call of auth type 4 for u (the person of the application's account):
// the answer (checkCertProof, for this application), then the
// certificate must be bound to u, and u able to sign in (active, org
// enabled, not locked). Counted at the application's source as the CAS
// page's certificate sign-in is at the browser's (taken back on success);
// the account's lockout count is not touched. Audited as authenticate,
// method "certificate", proof "challenge".
func (s *Service) authenticateCert(ctx context.Context, c *caller.Caller, req *AuthRequest, u *User, start time.Time) (Reason, error) {
	subject := "user:" + u.ID
	detail := map[string]string{"method": MethodCertificate, "proof": "challenge"}
	a := s.newEarlyAttempt(appLoginSource(c.App.ID, req.Extend, u.ID), "authenticate")
	if err := a.admitSource(ctx, subject, u.OrgID, start); err != nil {
		return 0, err
	}
	if err := a.wait(ctx); err != nil {
		return 0, err
	}
	leaf, err := s.checkCertProof(ctx, ChallengePurposeApp(c.App.ID),
		CertProof{Challenge: req.Challenge, Certificate: req.Certificate, Chain: req.Chain, Signature: req.Signature})
	if err != nil {
		if ae, ok := apierr.As(err); ok && ae.Reason != ReasonCertCheckUnavailable {
			s.appendAudit(ctx, s.audit(ctx, "authenticate", subject, u.OrgID, "failure", ae.Reason, start, detail))
		} else {
			a.refund(ctx)
		}
		return 0, err
	}
	fp := x509cert.Thumbprint(leaf.Raw)
	detail["sha256"] = fp
	b, err := s.store.GetCert(ctx, fp)
	if err != nil && !errors.Is(err, ErrNotFound) {
		a.refund(ctx)
		return 0, err
	}
	// The certificate must be bound to this person (by their home: a
	// binding this centre made of a person homed elsewhere is orphaned).
	orphan := false
	if err == nil && b.UserID == u.ID && !s.homedHere(ctx, u) {
		home, herr := s.homeOfUser(ctx, u)
		if herr != nil {
			a.refund(ctx)
			return 0, herr
		}
		orphan = b.Origin == "" || b.Origin != home
	}
	if err != nil || b.UserID != u.ID || orphan {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", subject, u.OrgID, "failure", CertNotRegistered.String(), start, detail))
		return ReasonBadCredentials, nil //nolint:nilerr // no binding (ErrNotFound) is the verdict
	}
	if r, err := s.refuseUnusable(ctx, u, "authenticate", start, a, detail); err != nil || r != 0 {
		return r, err
	}
	a.refund(ctx)
	if req.short {
		s.appendAudit(ctx, s.audit(ctx, "authenticate", subject, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, detail))
		return ReasonAuthLevelTooLow, nil
	}
	s.appendAudit(ctx, s.audit(ctx, "authenticate", subject, u.OrgID, "success", ReasonOK.String(), start, detail))
	return ReasonOK, nil
}
