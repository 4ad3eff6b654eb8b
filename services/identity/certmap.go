package identity

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/x509cert"
)

// Certificates found their person (the maritime design §1.3: the CA issues
// certificates to the people UIAS registers, 「查出用户信息，直接制作证书」;
// §2.1.2.3 (3): 「从证书中解析出证书的唯一标识，在后台数据库中进行比对」;
// gap1 G27): a certificate of a people's CA whose subject carries a
// registered person's ID number and name is that person's. Two uses:
//   - BindCertsByIdentity: an administrator hands over the certificates
//     the CA issued, in bulk, and each is bound to the person it names;
//   - identity.policy.cert_auto_bind: a certificate login with a
//     certificate bound to nobody binds it to the person it names first.
//
// The person is found by the ID key of the numbers in the subject (the
// blind index that makes an ID number one account's), then held to the
// certificate like any binding (checkCertIdentity: the people's CA, the
// display name and the number). Nothing of the subject is kept or logged.

// certNumberTypes are the ID types a number in a certificate is tried as.
var certNumberTypes = []IDType{IDTypeResidentID, IDTypePassport, IDTypeMilitary, IDTypeOther}

// maxCertNumbers bounds the numbers of one subject looked up.
const maxCertNumbers = 8

// certNumbers returns the runs of letters and digits in the subject's
// attribute values that may be an ID number: 6 to 32 characters, at least
// 5 of them digits (a resident ID, a passport or military number).
func certNumbers(sc *smx509.Certificate) []string {
	var out []string
	seen := map[string]bool{}
	for _, atv := range sc.Subject.Names {
		v, ok := atv.Value.(string)
		if !ok {
			continue
		}
		for _, run := range strings.FieldsFunc(strings.ToUpper(v), func(r rune) bool {
			return (r < '0' || r > '9') && (r < 'A' || r > 'Z')
		}) {
			digits := 0
			for _, r := range run {
				if r >= '0' && r <= '9' {
					digits++
				}
			}
			if len(run) < 6 || len(run) > 32 || digits < 5 || seen[run] {
				continue
			}
			seen[run] = true
			if out = append(out, run); len(out) == maxCertNumbers {
				return out
			}
		}
	}
	return out
}

// errCertNoPerson: no registered person, or more than one, is named by the
// certificate (one answer for every case, as errCertNotPerson).
var errCertNoPerson = certIdentity("the certificate names no registered person (an ID number and display name of one in its subject, " +
	"issued by a people's CA)")

// errCertMapOff: certificates cannot be mapped to people here.
var errCertMapOff = apierr.New(apierr.FailedPrecondition, ReasonCertIdentity,
	"certificates are mapped to people only with one account per ID number (identity.policy.unique_id_number) and a people's CA "+
		"(identity.policy.cert_identity_check with tls.people_ca_file or tls.client_ca_file, or identity.cert_challenge_ca_file)")

// personOfCert returns the one registered person sc names. A store
// failure is returned as it is.
func (s *Service) personOfCert(ctx context.Context, sc *smx509.Certificate) (*User, error) {
	if s.cfg.Policy.SharedIDNumbers || s.peopleCAs == nil && s.challengeCAs == nil {
		return nil, errCertMapOff
	}
	var found *User
	for _, n := range certNumbers(sc) {
		for _, t := range certNumberTypes {
			u, err := s.store.GetUserByIDKey(ctx, s.idKey(t, n))
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if found != nil && found.ID != u.ID {
				return nil, errCertNoPerson // two people: bind neither
			}
			found = u
		}
	}
	if found == nil {
		return nil, errCertNoPerson
	}
	if err := s.checkCertIdentity(ctx, found, sc); err != nil {
		if ae, ok := apierr.As(err); ok && ae.Reason == ReasonCertIdentity {
			return nil, errCertNoPerson
		}
		return nil, err
	}
	return found, nil
}

// CertBindOutcome is what became of one certificate of a bulk binding.
type CertBindOutcome string

// Outcomes of BindCertsByIdentity.
const (
	CertBound        CertBindOutcome = "bound"         // bound to the person it names
	CertWouldBind    CertBindOutcome = "would_bind"    // dry run: would be bound
	CertAlreadyBound CertBindOutcome = "already_bound" // bound already (UserID: to whom)
	CertNoPerson     CertBindOutcome = "no_person"     // names no registered person, or not of a people's CA
	CertInvalid      CertBindOutcome = "invalid"       // not a certificate, or not a signing one
	CertElsewhere    CertBindOutcome = "homed_elsewhere"
	CertTooMany      CertBindOutcome = "too_many" // the person has MaxUserCerts bound
)

// CertBindResult is one certificate's line of a bulk binding.
type CertBindResult struct {
	SHA256  string // "" when not a certificate
	UserID  string
	Outcome CertBindOutcome
	Message string
}

// MaxBulkCerts is how many certificates one BindCertsByIdentity takes.
const MaxBulkCerts = 500

// BindCertsByIdentity binds each certificate (DER) to the person it names
// (see above); dryRun only says what it would do. Every binding made is
// audited and announced as BindUserCert's; a store failure stops it and is
// returned with the lines done so far. An administrator's call (the
// system administrator's: the people are found, not named).
func (s *Service) BindCertsByIdentity(ctx context.Context, ders [][]byte, dryRun bool) ([]CertBindResult, error) {
	if len(ders) > MaxBulkCerts {
		return nil, badField("certificates", "at most 500 certificates at a time")
	}
	if s.cfg.Policy.SharedIDNumbers || s.peopleCAs == nil && s.challengeCAs == nil {
		return nil, errCertMapOff
	}
	out := make([]CertBindResult, 0, len(ders))
	for _, der := range ders {
		r, err := s.bindCertByIdentity(ctx, der, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Service) bindCertByIdentity(ctx context.Context, der []byte, dryRun bool) (CertBindResult, error) {
	start := s.now()
	sc, err := smx509.ParseCertificate(der)
	if err != nil {
		return CertBindResult{Outcome: CertInvalid, Message: "not a DER-encoded X.509 certificate"}, nil //nolint:nilerr // the line's outcome, not a failure
	}
	r := CertBindResult{SHA256: x509cert.Thumbprint(der)}
	if !maySign(sc) {
		r.Outcome, r.Message = CertInvalid, "the key usage does not include digitalSignature (an encryption certificate?)"
		return r, nil
	}
	if b, err := s.store.GetCert(ctx, r.SHA256); err == nil {
		r.Outcome, r.UserID, r.Message = CertAlreadyBound, b.UserID, "bound already"
		return r, nil
	} else if !errors.Is(err, ErrNotFound) {
		return r, err
	}
	u, err := s.personOfCert(ctx, sc)
	if err != nil {
		if ae, ok := apierr.As(err); ok && ae.Reason == ReasonCertIdentity {
			r.Outcome, r.Message = CertNoPerson, ae.Message
			return r, nil //nolint:nilerr // the line's outcome, not a failure
		}
		return r, err
	}
	r.UserID = u.ID
	if err := s.ownUser(ctx, u); err != nil {
		if ae, ok := apierr.As(err); ok && ae.Reason == centre.ReasonElsewhere {
			r.Outcome, r.Message = CertElsewhere, "the person is managed at another centre: bind it there"
			return r, nil
		}
		return r, err
	}
	if dryRun {
		r.Outcome, r.Message = CertWouldBind, "names this person"
		return r, nil
	}
	switch _, err := s.bindCert(ctx, u, r.SHA256, sc.NotAfter, start, "bulk"); {
	case errors.Is(err, errCertBound):
		r.Outcome, r.Message = CertAlreadyBound, "bound already"
	case errors.Is(err, errTooManyCerts):
		r.Outcome, r.Message = CertTooMany, "the person has 10 certificates bound already"
	case err != nil:
		return r, err
	default:
		r.Outcome, r.Message = CertBound, "bound"
	}
	return r, nil
}

// bindCert writes the binding of certificate fp (expiring notAfter) to u,
// announced and audited (how: "" an administrator's binding of that
// person, else how it was found: "bulk", "login").
func (s *Service) bindCert(ctx context.Context, u *User, fp string, notAfter time.Time, start time.Time, how string) (*UserCert, error) {
	c := &UserCert{SHA256: fp, UserID: u.ID, CreatedAt: s.now().UTC().Truncate(time.Millisecond)}
	if !notAfter.IsZero() {
		c.NotAfter = notAfter.UTC().Truncate(time.Millisecond)
	}
	detail := map[string]string{"sha256": c.SHA256}
	if how != "" {
		detail["by"] = how
	}
	err := s.write(ctx, func(evs []events.Event) error { return s.store.BindCert(ctx, c, MaxUserCerts, evs) },
		s.changeWith(ctx, "user", "certificate_bound", u.ID, map[string]any{"sha256": c.SHA256}, s.certReplicaOf(c)),
		s.audit(ctx, "user.certificate.bind", "user:"+u.ID, u.OrgID, "success", "OK", start, detail))
	if errors.Is(err, ErrConflict) {
		if _, gerr := s.store.GetCert(ctx, c.SHA256); gerr == nil {
			return nil, errCertBound
		}
		return nil, errTooManyCerts
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// autoBindCert binds certificate der (thumbprint fp), bound to nobody, to
// the person of this centre it names (identity.policy.cert_auto_bind),
// for the login under way; ErrNotFound when it names no one here.
func (s *Service) autoBindCert(ctx context.Context, der []byte, fp string, start time.Time) (*UserCert, error) {
	sc, err := smx509.ParseCertificate(der)
	if err != nil || !maySign(sc) {
		return nil, ErrNotFound
	}
	u, err := s.personOfCert(ctx, sc)
	if err != nil {
		if ae, ok := apierr.As(err); ok && ae.Reason == ReasonCertIdentity {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if !s.homedHere(ctx, u) {
		return nil, ErrNotFound // bound at their home, which owns them
	}
	c, err := s.bindCert(ctx, u, fp, sc.NotAfter, start, "login")
	switch {
	case errors.Is(err, errCertBound):
		return s.store.GetCert(ctx, fp) // a concurrent login bound it
	case errors.Is(err, errTooManyCerts):
		return nil, ErrNotFound
	}
	return c, err
}
