package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"github.com/uias/uias/pkg/x509cert"
	"github.com/uias/uias/services/identity"
)

// Tests of the sec29a review's findings (certificate sign-in by challenge).

func revEnv(t *testing.T, ca *chalCA, rev **x509cert.Revocation) (*evEnv, *world, context.Context) {
	t.Helper()
	e := newEvEnvWith(t, "", func(d *identity.Deps) {
		d.ChallengeCAs = ca.pool()
		d.Revocation = func() *x509cert.Revocation { return *rev }
	})
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	return e, w, ctx
}

func challengeLogin(t *testing.T, e *evEnv, h *chalHolder) identity.CertVerdict {
	t.Helper()
	c, _, err := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Verdict
}

// smCheck verifies a list with gmsm's smx509 (as the component does).
func smCheck(list *x509.RevocationList, issuer *x509.Certificate) error {
	rl, err := smx509.ParseRevocationList(list.Raw)
	if err != nil {
		return err
	}
	ca, err := smx509.ParseCertificate(issuer.Raw)
	if err != nil {
		return err
	}
	return rl.CheckSignatureFrom(ca)
}

// TestCertChallengeSM2Revoked (sec29a H1): an SM2 certificate its SM2 CA's
// list revokes is refused as revoked; the others of the CA sign in.
func TestCertChallengeSM2Revoked(t *testing.T) {
	smCA := newChalCA(t, true)
	var rev *x509cert.Revocation
	e, w, ctx := revEnv(t, smCA, &rev)
	h, other := smCA.issue(t, "sm2", chalFrom, chalTo), smCA.issue(t, "sm2", chalFrom, chalTo)
	for _, c := range []*chalHolder{h, other} {
		if _, err := e.svc.BindUserCert(ctx, w.user.ID, c.der, ""); err != nil {
			t.Fatal(err)
		}
	}
	leaf, _ := smx509.ParseCertificate(h.der)
	issuer, _ := smx509.ParseCertificate(smCA.cert.Raw)
	crl, err := smx509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: chalFrom, NextUpdate: chalTo,
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: leaf.SerialNumber, RevocationTime: chalFrom}}}, issuer, smCA.key)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err = x509cert.ParseCRLsChecked(crl, smCheck); err != nil {
		t.Fatal(err)
	}
	if bad := rev.Unverifiable([]*x509.Certificate{smCA.cert}); len(bad) != 0 {
		t.Fatalf("the SM2 list is not verified: %v", bad)
	}
	if v := challengeLogin(t, e, h); v != identity.CertRevoked {
		t.Fatalf("the revoked SM2 certificate: %v", v)
	}
	if v := challengeLogin(t, e, other); v != identity.CertOK {
		t.Fatalf("another of the CA: %v", v)
	}
	// crypto/x509 alone cannot verify it: such a list is reported, not applied silently
	plain, err := x509cert.ParseCRLs(crl)
	if err != nil {
		t.Fatal(err)
	}
	if bad := plain.Unverifiable([]*x509.Certificate{smCA.cert}); len(bad) != 1 {
		t.Fatalf("Unverifiable: %v", bad)
	}
}
