package identity_test

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
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"github.com/uias/uias/pkg/x509cert"
	"github.com/uias/uias/services/identity"
)

// chalCA is a people's CA of the tests: ECDSA P-256, or SM2.
type chalCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	sm2  bool
}

// chalHolder is a certificate with its private key, as on a USB key.
type chalHolder struct {
	der  []byte
	key  crypto.Signer
	kind string
}

var chalFrom, chalTo = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)

func serialNo() *big.Int { n, _ := rand.Int(rand.Reader, big.NewInt(1<<62)); return n }

func newChalCA(t *testing.T, useSM2 bool) *chalCA {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: serialNo(), Subject: pkix.Name{CommonName: "People CA"}, NotBefore: chalFrom, NotAfter: chalTo,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	var (
		key crypto.Signer
		der []byte
		err error
	)
	if useSM2 {
		k, gerr := sm2.GenerateKey(rand.Reader)
		if gerr != nil {
			t.Fatal(gerr)
		}
		key = k
		der, err = smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	} else {
		k, gerr := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if gerr != nil {
			t.Fatal(gerr)
		}
		key = k
		der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	}
	if err != nil {
		t.Fatal(err)
	}
	c, err := smx509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &chalCA{cert: c.ToX509(), key: key, sm2: useSM2}
}

func (ca *chalCA) pool() *smx509.CertPool {
	p := smx509.NewCertPool()
	c, _ := smx509.ParseCertificate(ca.cert.Raw)
	p.AddCert(c)
	return p
}

// issue makes a client certificate of kind (rsa, rsa-pss, ecdsa, ed25519,
// sm2) valid from nb to na.
func (ca *chalCA) issue(t *testing.T, kind string, nb, na time.Time) *chalHolder {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	switch kind {
	case "rsa", "rsa-pss":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ecdsa":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "sm2":
		key, err = sm2.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serialNo(), Subject: pkix.Name{CommonName: "Mia " + kind}, NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	pub := key.Public()
	if k, ok := key.(*sm2.PrivateKey); ok {
		pub = &k.PublicKey
	}
	var der []byte
	if ca.sm2 || kind == "sm2" {
		der, err = smx509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	} else {
		der, err = x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &chalHolder{der: der, key: key, kind: kind}
}

// sign signs the challenge string's UTF-8 bytes as a USB key does.
func (h *chalHolder) sign(t *testing.T, challenge string) []byte {
	t.Helper()
	msg := []byte(challenge)
	sum := sha256.Sum256(msg)
	var (
		sig []byte
		err error
	)
	switch k := h.key.(type) {
	case *rsa.PrivateKey:
		if h.kind == "rsa-pss" {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		}
	case *ecdsa.PrivateKey:
		sig, err = ecdsa.SignASN1(rand.Reader, k, sum[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, msg)
	case *sm2.PrivateKey:
		sig, err = k.SignWithSM2(rand.Reader, nil, msg) // the default user ID 1234567812345678
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// rawSig turns an ASN.1 ECDSA/SM2 signature into r||s (32 bytes each).
func rawSig(t *testing.T, der []byte) []byte {
	t.Helper()
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out
}

type deadNonces struct{}

func (deadNonces) Remember(context.Context, string, time.Duration) error {
	return errors.New("nats: connection closed")
}

// TestCertChallengeLogin: the CAS page's USB key sign-in: a challenge
// signed with RSA (PKCS#1 v1.5, PSS), ECDSA P-256, Ed25519 and SM2 (an SM2
// people's CA), each signing the person in; then every refusal, each
// audited with its reason.
func TestCertChallengeLogin(t *testing.T) {
	ca, smCA := newChalCA(t, false), newChalCA(t, true)
	pools := smx509.NewCertPool()
	for _, c := range []*chalCA{ca, smCA} {
		x, _ := smx509.ParseCertificate(c.cert.Raw)
		pools.AddCert(x)
	}
	var revoked *x509cert.Revocation
	e := newEvEnvWith(t, "", func(d *identity.Deps) {
		d.ChallengeCAs = pools
		d.Revocation = func() *x509cert.Revocation { return revoked }
	})
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	bind := func(h *chalHolder) {
		t.Helper()
		if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
			t.Fatalf("bind %s: %v", h.kind, err)
		}
	}
	challenge := func() string {
		t.Helper()
		c, exp, err := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
		if err != nil || exp.Sub(e.clk.now()) > identity.CertChallengeTTL || exp.Before(e.clk.now()) {
			t.Fatalf("challenge %q %v %v", c, exp, err)
		}
		return c
	}
	login := func(t *testing.T, p identity.CertProof, want identity.CertVerdict) {
		t.Helper()
		m := e.mark(t)
		res, err := e.svc.CertChallengeLogin(edge(""), p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != want {
			t.Fatalf("verdict %v, want %v", res.Verdict, want)
		}
		rows := e.outbox(t, m)
		rec := audit(t, rows, "sso.login")
		wantResult := map[bool]string{true: "success", false: "failure"}[want == identity.CertOK]
		if rec.Result != wantResult || rec.Reason != want.String() || rec.Detail["method"] != "certificate" ||
			rec.Detail["proof"] != "challenge" || rec.ClientIP != "198.51.100.7" {
			t.Fatalf("audit %+v", rec)
		}
		if want == identity.CertOK && (res.User == nil || res.User.ID != w.user.ID) {
			t.Fatalf("signed in %+v", res.User)
		}
		for _, r := range rows {
			if strings.Contains(string(r.Payload), "Mia ") {
				t.Fatalf("the certificate's subject in an event: %s", r.Payload)
			}
		}
	}

	holders := map[string]*chalHolder{}
	for _, kind := range []string{"rsa", "rsa-pss", "ecdsa", "ed25519", "sm2"} {
		issuer := ca
		if kind == "sm2" {
			issuer = smCA // SM2 certificates are bound (G5) and sign in
		}
		h := issuer.issue(t, kind, chalFrom, chalTo)
		bind(h)
		holders[kind] = h
		t.Run(kind, func(t *testing.T) {
			c := challenge()
			login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)}, identity.CertOK)
			// PEM is taken too
			c = challenge()
			p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.der})
			login(t, identity.CertProof{Challenge: c, Certificate: p, Signature: h.sign(t, c)}, identity.CertOK)
		})
	}
	h := holders["ecdsa"]

	t.Run("raw r||s", func(t *testing.T) {
		// WebCrypto's ECDSA and many USB key SDKs' SM2 give r||s
		for _, kind := range []string{"ecdsa", "sm2"} {
			c := challenge()
			login(t, identity.CertProof{Challenge: c, Certificate: holders[kind].der, Signature: rawSig(t, holders[kind].sign(t, c))}, identity.CertOK)
		}
	})
	t.Run("replayed", func(t *testing.T) {
		c := challenge()
		p := identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)}
		login(t, p, identity.CertOK)
		login(t, p, identity.CertChallengeReplayed)
	})
	t.Run("wrong key", func(t *testing.T) {
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: holders["sm2"].sign(t, c)}, identity.CertSignatureInvalid)
		c = challenge()
		other := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, other)}, identity.CertSignatureInvalid)
	})
	t.Run("forged or other use", func(t *testing.T) {
		c := challenge()
		forged := c[:len(c)-4] + strings.Repeat("A", 4)
		if forged == c {
			forged = c[:len(c)-4] + "BBBB"
		}
		login(t, identity.CertProof{Challenge: forged, Certificate: h.der, Signature: h.sign(t, forged)}, identity.CertChallengeInvalid)
		app, _, err := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeApp("some-app"))
		if err != nil {
			t.Fatal(err)
		}
		login(t, identity.CertProof{Challenge: app, Certificate: h.der, Signature: h.sign(t, app)}, identity.CertChallengeInvalid)
	})
	t.Run("expired challenge", func(t *testing.T) {
		c := challenge()
		e.clk.mu.Lock()
		e.clk.t = e.clk.t.Add(identity.CertChallengeTTL + time.Second)
		e.clk.mu.Unlock()
		login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)}, identity.CertChallengeExpired)
	})
	t.Run("certificate out of validity", func(t *testing.T) {
		old := ca.issue(t, "ecdsa", chalFrom, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
		bind(old)
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: old.der, Signature: old.sign(t, c)}, identity.CertExpired)
	})
	t.Run("untrusted CA", func(t *testing.T) {
		stranger := newChalCA(t, false).issue(t, "ecdsa", chalFrom, chalTo)
		bind(stranger)
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: stranger.der, Signature: stranger.sign(t, c)}, identity.CertUntrusted)
	})
	t.Run("not bound", func(t *testing.T) {
		loose := ca.issue(t, "ecdsa", chalFrom, chalTo)
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: loose.der, Signature: loose.sign(t, c)}, identity.CertNotRegistered)
	})
	t.Run("not a certificate", func(t *testing.T) {
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: []byte("junk"), Signature: h.sign(t, c)}, identity.CertNotVerified)
	})
	t.Run("revoked", func(t *testing.T) {
		rv := ca.issue(t, "ecdsa", chalFrom, chalTo)
		bind(rv)
		leaf, _ := x509.ParseCertificate(rv.der)
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: chalFrom, NextUpdate: chalTo,
			RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: leaf.SerialNumber, RevocationTime: chalFrom}}}, ca.cert, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		if revoked, err = x509cert.ParseCRLs(crl); err != nil {
			t.Fatal(err)
		}
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: rv.der, Signature: rv.sign(t, c)}, identity.CertRevoked)
		// others of the CA are not
		c = challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)}, identity.CertOK)
	})
	t.Run("locked and disabled", func(t *testing.T) {
		if _, err := e.svc.LockUser(ctx, w.user.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
		c := challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)}, identity.CertAccountLocked)
		if _, err := e.svc.UnlockUser(ctx, w.user.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.SetUserStatus(ctx, w.user.ID, identity.StatusDisabled); err != nil {
			t.Fatal(err)
		}
		c = challenge()
		login(t, identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)}, identity.CertAccountDisabled)
		if _, err := e.svc.SetUserStatus(ctx, w.user.ID, identity.StatusActive); err != nil {
			t.Fatal(err)
		}
	})
	// No refusal counted against the account's lockout.
	u, err := e.svc.GetUser(ctx, w.user.ID)
	if err != nil || u.FailedCount != 0 {
		t.Fatalf("failed count %d (%v)", u.FailedCount, err)
	}
}

// TestCertChallengeUntrustedWithoutCA: with no people's CA configured, no
// certificate signs in by challenge (a thumbprint binding is no CA's word).
func TestCertChallengeUntrustedWithoutCA(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	h := newChalCA(t, false).issue(t, "ecdsa", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
		t.Fatal(err)
	}
	c, _, err := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)})
	if err != nil || res.Verdict != identity.CertUntrusted {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestCertChallengeStoreDown: when the answered challenges cannot be
// looked up, the sign-in is refused (fail closed), not taken unchecked.
func TestCertChallengeStoreDown(t *testing.T) {
	ca := newChalCA(t, false)
	e := newEvEnvWith(t, "", func(d *identity.Deps) { d.ChallengeCAs, d.Nonces = ca.pool(), deadNonces{} })
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	h := ca.issue(t, "ecdsa", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
		t.Fatal(err)
	}
	c, _, err := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CertChallengeLogin(edge(""), identity.CertProof{Challenge: c, Certificate: h.der, Signature: h.sign(t, c)})
	if reasonOf(err) != identity.ReasonCertCheckUnavailable {
		t.Fatalf("store down: %v", err)
	}
}

// TestAuthenticateCertificate: Authenticate auth type 4, the answer to the
// calling application's challenge: the person of the account signs in at
// the certificate level; another person's certificate is
// BAD_CREDENTIALS; challenges of the page or of another application,
// replays and bad signatures are errors with their reasons; malformed
// calls are BAD_REQUEST.
func TestAuthenticateCertificate(t *testing.T) {
	ca := newChalCA(t, true) // an SM2 people's CA
	e := newEvEnvWith(t, "", func(d *identity.Deps) { d.ChallengeCAs = ca.pool() })
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	h := ca.issue(t, "sm2", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, h.der, ""); err != nil {
		t.Fatal(err)
	}
	root := evRoot(t, e.svc)
	otto, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "otto", DisplayName: "Otto", OrgID: root.ID, Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	oh := ca.issue(t, "sm2", chalFrom, chalTo)
	if _, err := e.svc.BindUserCert(ctx, otto.ID, oh.der, ""); err != nil {
		t.Fatal(err)
	}
	auth := func(c string, holder *chalHolder, sig []byte) (*identity.AuthResult, error) {
		if sig == nil {
			sig = holder.sign(t, c)
		}
		return e.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", AuthType: identity.AuthCertificate,
			Challenge: c, Certificate: holder.der, Signature: sig})
	}
	appChallenge := func() string {
		c, _, err := e.svc.AppCertChallenge(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	m := e.mark(t)
	c := appChallenge()
	res, err := auth(c, h, nil)
	if err != nil || res.Reason != identity.ReasonOK || res.User == nil || res.User.ID != w.user.ID {
		t.Fatalf("certificate: %+v %v", res, err)
	}
	rec := audit(t, e.outbox(t, m), "authenticate")
	if rec.Result != "success" || rec.Detail["method"] != "certificate" || rec.Detail["proof"] != "challenge" {
		t.Fatalf("audit %+v", rec)
	}
	if _, err := auth(c, h, nil); reasonOf(err) != identity.ReasonCertChallengeReplayed {
		t.Fatalf("replay: %v", err)
	}
	// Otto's certificate does not prove m001.
	m = e.mark(t)
	if res, err := auth(appChallenge(), oh, nil); err != nil || res.Reason != identity.ReasonBadCredentials {
		t.Fatalf("another's certificate: %+v %v", res, err)
	}
	if rec := audit(t, e.outbox(t, m), "authenticate"); rec.Result != "failure" || rec.Reason != "CERTIFICATE_NOT_REGISTERED" {
		t.Fatalf("audit %+v", rec)
	}
	// The page's challenge is not the application's.
	sso, _, _ := e.svc.CertChallenge(context.Background(), identity.ChallengePurposeSSO)
	m = e.mark(t)
	if _, err := auth(sso, h, nil); reasonOf(err) != identity.ReasonCertChallengeInvalid {
		t.Fatalf("the page's challenge: %v", err)
	}
	if rec := audit(t, e.outbox(t, m), "authenticate"); rec.Result != "failure" || rec.Reason != identity.ReasonCertChallengeInvalid {
		t.Fatalf("audit %+v", rec)
	}
	if _, err := auth(appChallenge(), h, []byte("not a signature")); reasonOf(err) != identity.ReasonCertSignatureInvalid {
		t.Fatalf("bad signature: %v", err)
	}
	// Malformed calls.
	for name, req := range map[string]identity.AuthRequest{
		"no signature":            {AppUserID: "m001", AuthType: 4, Challenge: "x", Certificate: h.der},
		"no challenge":            {AppUserID: "m001", AuthType: 4, Certificate: h.der, Signature: []byte{1}},
		"no certificate":          {AppUserID: "m001", AuthType: 4, Challenge: "x", Signature: []byte{1}},
		"with password":           {AppUserID: "m001", AuthType: 4, Challenge: "x", Certificate: h.der, Signature: []byte{1}, Password: "p"},
		"type 1 with certificate": {AppUserID: "m001", AuthType: 1, Password: "First-Pass-1", Certificate: h.der},
	} {
		if _, err := e.svc.Authenticate(w.ctx, req); reasonOf(err) != "BAD_REQUEST" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := auth(appChallenge(), &chalHolder{der: []byte("junk"), key: h.key, kind: "sm2"}, nil); reasonOf(err) != "CERTIFICATE_INVALID" {
		t.Fatalf("junk certificate: %v", err)
	}
}
