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

// certID is an ID a certificate's subject may carry.
type certID struct {
	t IDType
	n string
}

// maxCertNumbers bounds the IDs of one subject looked up.
const maxCertNumbers = 8

// certNumbers returns the IDs the subject's attribute values carry as words
// of their own that are valid by their check character: an 18-character
// resident ID number, a unified social credit code, an organisation code
// (with or without its hyphen). Passport, military and other numbers have
// no check character to tell them from any other run of digits, so a
// certificate finds no one by them (review sec30a H1): bind those by hand.
//
// A certificate that carries a resident ID number is a person's (an
// employee's certificate carries their employer's name and code beside
// their own): its unit codes are not looked up, so it never finds a unit
// account (review sec30c H2).
func certNumbers(sc *smx509.Certificate) []certID {
	ids := certIDs(sc)
	person := false
	for _, id := range ids {
		person = person || id.t == IDTypeResidentID
	}
	if !person {
		return ids
	}
	out := ids[:0]
	for _, id := range ids {
		if id.t == IDTypeResidentID {
			out = append(out, id)
		}
	}
	return out
}

// certIDs is every ID certNumbers considers, of any kind.
func certIDs(sc *smx509.Certificate) []certID {
	var out []certID
	seen := map[certID]bool{}
	add := func(c certID) bool {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
		return len(out) == maxCertNumbers
	}
	for _, atv := range sc.Subject.Names {
		v, ok := atv.Value.(string)
		if !ok {
			continue
		}
		for _, w := range strings.FieldsFunc(strings.ToUpper(v), func(r rune) bool {
			return (r < '0' || r > '9') && (r < 'A' || r > 'Z') && r != '-'
		}) {
			w = strings.Trim(w, "-")
			switch oc := normalUnitCode(IDTypeOrgCode, w); {
			case validResidentID(w):
				if add(certID{IDTypeResidentID, w}) {
					return out
				}
			case len(w) == 18 && validUSCC(w):
				if add(certID{IDTypeUSCC, w}) {
					return out
				}
			case len(oc) == 9 && validOrgCode(oc):
				if add(certID{IDTypeOrgCode, oc}) {
					return out
				}
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
func (s *Service) personOfCert(ctx context.Context, sc *smx509.Certificate, inter []*smx509.Certificate) (*User, error) {
	if s.cfg.Policy.SharedIDNumbers || s.peopleCAs == nil && s.challengeCAs == nil {
		return nil, errCertMapOff
	}
	var found *User
	for _, id := range certNumbers(sc) {
		u, err := s.store.GetUserByIDKey(ctx, s.idKey(id.t, id.n))
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
	if found == nil {
		return nil, errCertNoPerson
	}
	if err := s.checkCertIdentityWith(ctx, found, sc, inter); err != nil {
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
	CertWasUnbound   CertBindOutcome = "unbound"  // an administrator unbound it: bound again only by bind-cert
	CertCA           CertBindOutcome = "ca"       // a CA certificate of the batch: an intermediate of the others' chains
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
	// The batch's CA certificates (a CA's bundle holds its intermediates)
	// are the chains' intermediates, not bound (review sec30a L3).
	parsed := make([]*smx509.Certificate, len(ders))
	var inter []*smx509.Certificate
	for i, der := range ders {
		if c, err := smx509.ParseCertificate(der); err == nil {
			parsed[i] = c
			if c.IsCA {
				inter = append(inter, c)
			}
		}
	}
	out := make([]CertBindResult, 0, len(ders))
	for i, der := range ders {
		r, err := s.bindCertByIdentity(ctx, der, parsed[i], inter, dryRun)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *Service) bindCertByIdentity(ctx context.Context, der []byte, sc *smx509.Certificate, inter []*smx509.Certificate,
	dryRun bool) (CertBindResult, error) {
	start := s.now()
	if sc == nil {
		return CertBindResult{Outcome: CertInvalid, Message: "not a DER-encoded X.509 certificate"}, nil
	}
	r := CertBindResult{SHA256: x509cert.Thumbprint(der)}
	if sc.IsCA {
		r.Outcome, r.Message = CertCA, "a CA certificate: taken as an intermediate of the others' chains, not bound"
		return r, nil
	}
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
	if un, err := s.store.CertUnbound(ctx, r.SHA256); err != nil {
		return r, err
	} else if un {
		r.Outcome, r.Message = CertWasUnbound, "an administrator unbound it: bind it to its person with bind-cert to use it again"
		return r, nil
	}
	u, err := s.personOfCert(ctx, sc, inter)
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
	// One an administrator unbound (a lost or replaced certificate) is
	// not bound again by itself (review sec30a M2).
	if un, err := s.store.CertUnbound(ctx, fp); err != nil {
		return nil, err
	} else if un {
		return nil, ErrNotFound
	}
	u, err := s.personOfCert(ctx, sc, nil)
	if err != nil {
		if ae, ok := apierr.As(err); ok && ae.Reason == ReasonCertIdentity {
			return nil, ErrNotFound
		}
		return nil, err
	}
	if !s.homedHere(ctx, u) {
		return nil, ErrNotFound // bound at their home, which owns them
	}
	// A person who cannot sign in now gets no binding: the login goes on
	// with one not stored, to answer why (review sec30a L2).
	if r, _, err := s.unusable(ctx, u); err != nil {
		return nil, err
	} else if r != 0 || u.PasswordOnly { // 0: usable
		return &UserCert{SHA256: fp, UserID: u.ID}, nil
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
