package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
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

// TestCertChallengeEncryptionCertRefused (sec29a L1): a certificate whose
// key usage lacks digitalSignature (an SM2 encryption certificate) is not
// bound, and one bound by its thumbprint does not sign in; a certificate
// without a key usage extension still does.
func TestCertChallengeEncryptionCertRefused(t *testing.T) {
	smCA := newChalCA(t, true)
	var rev *x509cert.Revocation
	e, w, ctx := revEnv(t, smCA, &rev)
	mk := func(ku x509.KeyUsage) *chalHolder {
		k, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := smx509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serialNo(), Subject: pkix.Name{CommonName: "Mia"},
			NotBefore: chalFrom, NotAfter: chalTo, KeyUsage: ku}, smCA.cert, &k.PublicKey, smCA.key)
		if err != nil {
			t.Fatal(err)
		}
		return &chalHolder{der: der, key: k, kind: "sm2"}
	}
	enc := mk(x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, enc.der, ""); err == nil || !strings.Contains(err.Error(), "digitalSignature") {
		t.Fatalf("an encryption certificate bound: %v", err)
	}
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, nil, x509cert.Thumbprint(enc.der)); err != nil {
		t.Fatal(err)
	}
	if v := challengeLogin(t, e, enc); v != identity.CertUntrusted {
		t.Fatalf("an encryption certificate signing in: %v", v)
	}
	c, _, _ := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	_, err := e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: enc.der, Signature: enc.sign(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	for _, ku := range []x509.KeyUsage{0, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment} {
		h := mk(ku)
		if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
			t.Fatalf("key usage %v: %v", ku, err)
		}
		if v := challengeLogin(t, e, h); v != identity.CertOK {
			t.Fatalf("key usage %v: %v", ku, v)
		}
	}
}

// TestCertChallengeJunkCertUsesUpChallenge (sec29a I1): a challenge
// answered with a certificate that does not parse is used up.
func TestCertChallengeJunkCertUsesUpChallenge(t *testing.T) {
	ca := newChalCA(t, false)
	var rev *x509cert.Revocation
	e, w, ctx := revEnv(t, ca, &rev)
	h := ca.issue(t, "ecdsa", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
		t.Fatal(err)
	}
	c, _, _ := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	res, err := e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: []byte("junk"), Signature: h.sign(t, c)})
	if err != nil || res.Verdict != identity.CertNotVerified {
		t.Fatalf("%v %v", res, err)
	}
	res, err = e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)})
	if err != nil || res.Verdict != identity.CertChallengeReplayed {
		t.Fatalf("the challenge answered again: %v %v", res, err)
	}
}

// TestCertChallengeExpiredIntermediate (sec29a I2): a chain whose
// intermediate has expired is reported as expired, not untrusted.
func TestCertChallengeExpiredIntermediate(t *testing.T) {
	ca := newChalCA(t, false)
	var rev *x509cert.Revocation
	e, w, ctx := revEnv(t, ca, &rev)
	ik, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	interDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serialNo(), Subject: pkix.Name{CommonName: "Old intermediate"},
		NotBefore: chalFrom, NotAfter: e.clk.t.Add(-time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign},
		ca.cert, &ik.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	inter, _ := x509.ParseCertificate(interDER)
	h := (&chalCA{cert: inter, key: ik}).issue(t, "ecdsa", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
		t.Fatal(err)
	}
	c, _, _ := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	res, err := e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: h.der, Chain: [][]byte{interDER}, Signature: h.sign(t, c)})
	if err != nil || res.Verdict != identity.CertExpired {
		t.Fatalf("an expired intermediate: %v %v", res, err)
	}
}

// TestCertIdentityCheckChallengePool (sec29a L2): with
// identity.policy.cert_identity_check, a binding's chain is checked
// against the challenge sign-in's CAs also when no TLS people's CA is set
// (behind a TLS-terminating balancer), and a certificate of the TLS
// people's CA is accepted when both are set.
func TestCertIdentityCheckChallengePool(t *testing.T) {
	chal, tlsCA, stranger := newChalCA(t, false), newChalCA(t, false), newChalCA(t, false)
	named := func(ca *chalCA) []byte {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serialNo(), Subject: pkix.Name{CommonName: "张三 11010519491231002X"},
			NotBefore: chalFrom, NotAfter: chalTo, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, ca.cert, &k.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	tlsPool := x509.NewCertPool()
	tlsPool.AddCert(tlsCA.cert)
	for name, tc := range map[string]struct {
		people *x509.CertPool
		ok     []*chalCA
		no     []*chalCA
	}{
		"challenge CAs only": {nil, []*chalCA{chal}, []*chalCA{stranger, tlsCA}},
		"both":               {tlsPool, []*chalCA{chal, tlsCA}, []*chalCA{stranger}},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEvEnvWith(t, "", func(d *identity.Deps) {
				d.Config.Policy.CertIdentityCheck, d.PeopleCAs, d.ChallengeCAs = true, tc.people, chal.pool()
			})
			if _, _, err := e.svc.Bootstrap(context.Background(), evAdminPass); err != nil {
				t.Fatal(err)
			}
			admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
			zhang, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "zhangsan", DisplayName: "张三", OrgID: evRoot(t, e.svc).ID,
				IDType: identity.IDTypeResidentID, IDNumber: "11010519491231002X", Password: "First-Pass-1"})
			if err != nil {
				t.Fatal(err)
			}
			for _, ca := range tc.ok {
				if _, err := e.svc.BindUserCert(admin, zhang.ID, named(ca), ""); err != nil {
					t.Errorf("%s: %v", ca.cert.Subject, err)
				}
			}
			for _, ca := range tc.no {
				if _, err := e.svc.BindUserCert(admin, zhang.ID, named(ca), ""); reasonOf(err) != identity.ReasonCertIdentity ||
					!strings.Contains(err.Error(), "identity.cert_challenge_ca_file") {
					t.Errorf("a certificate of a CA not configured: %v", err)
				}
			}
		})
	}
}
