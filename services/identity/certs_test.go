package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/x509cert"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// testCertDER makes a self-signed client certificate valid from nb to na
// (identity does not verify the chain: the edge did).
func testCertDER(t *testing.T, cn string, nb, na time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: nb, NotAfter: na,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// edge is the context of the CAS page's call: the browser's address and
// the thumbprint of the certificate the edge verified.
func edge(thumb string) context.Context {
	return caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr("198.51.100.7"), RequestID: "req-cas", ClientCert: thumb})
}

// TestCertificateBindings: an administrator binds a certificate (from the
// certificate, or by its thumbprint as openssl prints it), lists and
// unbinds it; one certificate is one person's; each change is audited and
// announced without anything of the certificate but its thumbprint.
func TestCertificateBindings(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	root := evRoot(t, e.svc)
	other, err := e.svc.CreateUser(ctx, identity.NewUser{LoginName: "otto", DisplayName: "Otto", OrgID: root.ID, Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	valid := time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	der := testCertDER(t, "Mia 110101199003071233", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), valid)
	fp := x509cert.Thumbprint(der)

	m := e.mark(t)
	c, err := e.svc.BindUserCert(ctx, w.user.ID, der, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.SHA256 != fp || c.UserID != w.user.ID || !c.NotAfter.Equal(valid) {
		t.Fatalf("bound %+v", c)
	}
	rows := e.outbox(t, m)
	rec := audit(t, rows, "user.certificate.bind")
	if rec.Result != "success" || rec.Subject != "user:"+w.user.ID || rec.Detail["sha256"] != fp {
		t.Fatalf("bind audit: %+v", rec)
	}
	wantChange(t, rows, "user", "certificate_bound", w.user.ID, rec.Actor)
	for _, r := range rows {
		if strings.Contains(string(r.Payload), "110101199003071233") || strings.Contains(string(r.Payload), "Mia 1") {
			t.Fatalf("the certificate's subject in an event: %s", r.Payload)
		}
	}

	// The same certificate again, to anyone: CERTIFICATE_BOUND.
	for _, id := range []string{w.user.ID, other.ID} {
		if _, err := e.svc.BindUserCert(ctx, id, der, ""); reasonOf(err) != "CERTIFICATE_BOUND" {
			t.Fatalf("bound twice (to %s): %v", id, err)
		}
	}
	if _, err := e.svc.BindUserCert(ctx, other.ID, nil, strings.ToUpper(fp)); reasonOf(err) != "CERTIFICATE_BOUND" {
		t.Fatalf("bound twice by thumbprint: %v", err)
	}
	// Bad input.
	for name, tc := range map[string]struct {
		der  []byte
		sha  string
		want string
	}{
		"nothing":           {nil, "", "BAD_REQUEST"},
		"not a thumbprint":  {nil, "abc", "BAD_REQUEST"},
		"not a certificate": {[]byte("junk"), "", "CERTIFICATE_INVALID"},
		"another's thumb":   {der, strings.Repeat("ab", 32), "CERTIFICATE_INVALID"},
	} {
		if _, err := e.svc.BindUserCert(ctx, other.ID, tc.der, tc.sha); reasonOf(err) != tc.want {
			t.Errorf("%s: %v, want %s", name, err, tc.want)
		}
	}
	if _, err := e.svc.BindUserCert(ctx, "nobody", der, ""); reasonOf(err) != "NOT_FOUND" {
		t.Fatalf("unknown person: %v", err)
	}

	// By thumbprint with colons (openssl x509 -fingerprint -sha256).
	der2 := testCertDER(t, "Otto", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), valid)
	fp2 := x509cert.Thumbprint(der2)
	var colons []string
	for i := 0; i < len(fp2); i += 2 {
		colons = append(colons, strings.ToUpper(fp2[i:i+2]))
	}
	c2, err := e.svc.BindUserCert(ctx, other.ID, nil, strings.Join(colons, ":"))
	if err != nil || c2.SHA256 != fp2 || !c2.NotAfter.IsZero() {
		t.Fatalf("bound by thumbprint: %+v %v", c2, err)
	}
	list, err := e.svc.ListUserCerts(ctx, other.ID)
	if err != nil || len(list) != 1 || list[0].SHA256 != fp2 {
		t.Fatalf("list: %+v %v", list, err)
	}

	// Unbind: another person's certificate is NOT_FOUND; then the
	// certificate signs no one in.
	if err := e.svc.UnbindUserCert(ctx, w.user.ID, fp2); reasonOf(err) != "NOT_FOUND" {
		t.Fatalf("unbind another's: %v", err)
	}
	m = e.mark(t)
	if err := e.svc.UnbindUserCert(ctx, other.ID, fp2); err != nil {
		t.Fatal(err)
	}
	rows = e.outbox(t, m)
	audit(t, rows, "user.certificate.unbind")
	wantChange(t, rows, "user", "certificate_unbound", other.ID, rec.Actor)
	res, err := e.svc.CertLogin(edge(fp2), der2)
	if err != nil || res.Verdict != identity.CertNotRegistered {
		t.Fatalf("login with an unbound certificate: %+v %v", res, err)
	}
}

// TestCertificateLogin: the verdicts of a certificate login, each audited
// as sso.login with method certificate.
func TestCertificateLogin(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	jan, dec := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	der := testCertDER(t, "Mia", jan, dec)
	fp := x509cert.Thumbprint(der)
	if _, err := e.svc.BindUserCert(ctx, w.user.ID, der, ""); err != nil {
		t.Fatal(err)
	}
	login := func(t *testing.T, c context.Context, der []byte, want identity.CertVerdict) {
		t.Helper()
		m := e.mark(t)
		res, err := e.svc.CertLogin(c, der)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != want {
			t.Fatalf("verdict %v, want %v", res.Verdict, want)
		}
		rec := audit(t, e.outbox(t, m), "sso.login")
		wantResult := map[bool]string{true: "success", false: "failure"}[want == identity.CertOK]
		if rec.Result != wantResult || rec.Reason != want.String() || rec.Detail["method"] != "certificate" || rec.ClientIP != "198.51.100.7" {
			t.Fatalf("audit %+v", rec)
		}
		if want == identity.CertOK && (res.User == nil || res.User.ID != w.user.ID || rec.Subject != "user:"+w.user.ID) {
			t.Fatalf("signed in %+v (audit subject %s)", res.User, rec.Subject)
		}
	}
	login(t, edge(fp), der, identity.CertOK)

	// The edge must have verified this very certificate.
	login(t, edge(""), der, identity.CertNotVerified)
	login(t, edge(strings.Repeat("ab", 32)), der, identity.CertNotVerified)

	// Not bound to anyone.
	stranger := testCertDER(t, "Stranger", jan, dec)
	login(t, edge(x509cert.Thumbprint(stranger)), stranger, identity.CertNotRegistered)

	// Expired, and not valid yet (bound by thumbprint: the login checks the
	// certificate presented, not what was recorded).
	for _, c := range [][]byte{testCertDER(t, "Old", jan, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)),
		testCertDER(t, "Early", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), dec)} {
		if _, err := e.svc.BindUserCert(ctx, w.user.ID, nil, x509cert.Thumbprint(c)); err != nil {
			t.Fatal(err)
		}
		login(t, edge(x509cert.Thumbprint(c)), c, identity.CertExpired)
	}

	// Locked, disabled, password-only.
	if _, err := e.svc.LockUser(ctx, w.user.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	login(t, edge(fp), der, identity.CertAccountLocked)
	if _, err := e.svc.UnlockUser(ctx, w.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUserStatus(ctx, w.user.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	login(t, edge(fp), der, identity.CertAccountDisabled)
	if _, err := e.svc.SetUserStatus(ctx, w.user.ID, identity.StatusActive); err != nil {
		t.Fatal(err)
	}
	login(t, edge(fp), der, identity.CertOK)

	// A refused certificate does not count against the account's lockout.
	u, err := e.svc.GetUser(ctx, w.user.ID)
	if err != nil || u.FailedCount != 0 {
		t.Fatalf("failed count %d (%v)", u.FailedCount, err)
	}
}

// TestCertificateLoginThrottled: refusals count against the browser's
// address like wrong passwords: a stream of them is throttled.
func TestCertificateLoginThrottled(t *testing.T) {
	w := setup(t)
	der := testCertDER(t, "Stranger", time.Now().Add(-time.Hour), time.Now().Add(time.Hour*24*365*5))
	var err error
	for range 200 {
		if _, err = w.svc.CertLogin(edge(x509cert.Thumbprint(der)), der); err != nil {
			break
		}
	}
	wantThrottled(t, "certificate refusals", err)
}

// TestCertificateLoginHomedElsewhere: a binding of a person whose org is
// homed at another centre (moved there; the binding stayed behind here)
// is not registered at this centre; a person homed here signs in.
func TestCertificateLoginHomedElsewhere(t *testing.T) {
	ctx := context.Background()
	db, sealer, hasher := testDB(t), testSealer(t), cheapHasher()
	newSvc := func(h *centre.Homes) *identity.Service {
		return testService(t, identity.Deps{Store: sqlstore.New(db), Hasher: hasher, Sealer: sealer,
			Sleep: func(context.Context, time.Duration) error { return nil }, Homes: h})
	}
	one := newSvc(nil)
	if _, _, err := one.Bootstrap(ctx, evAdminPass); err != nil {
		t.Fatal(err)
	}
	admin, _ := adminCtx(t, one, "10.0.0.1", "r1")
	root := evRoot(t, one)
	var (
		ders [2][]byte
		orgA string
	)
	for i, code := range []string{"bureau-a", "bureau-b"} {
		o, err := one.CreateOrg(admin, code, code, root.ID)
		if err != nil {
			t.Fatal(err)
		}
		u, err := one.CreateUser(admin, identity.NewUser{LoginName: "in-" + code, DisplayName: code, OrgID: o.ID, Password: "First-Pass-1"})
		if err != nil {
			t.Fatal(err)
		}
		ders[i] = testCertDER(t, code, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
		if _, err := one.BindUserCert(admin, u.ID, ders[i], ""); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			orgA = o.ID
		}
	}
	// Bureau A is this level-2 centre's; bureau B (and its person, whose
	// binding is still in this database) is level 1's.
	l2 := newSvc(&centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: map[string]string{orgA: "l2a"}})
	for j, want := range []identity.CertVerdict{identity.CertOK, identity.CertNotRegistered} {
		res, err := l2.CertLogin(edge(x509cert.Thumbprint(ders[j])), ders[j])
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != want || (want != identity.CertOK && res.User != nil) {
			t.Errorf("person %d at the level-2 centre: %v, want %v", j, res.Verdict, want)
		}
	}
}

// TestReplicaOfCertificateBinding: a certificate bound at the person's
// home centre reaches the centre holding their replica, where it then
// signs them in (the expiry kept); its unbinding reaches it too; a
// certificate moved at the home to another of its people follows.
func TestReplicaOfCertificateBinding(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-c", "Bureau C", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	svc2 := l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	var people [2]*identity.User
	for i, login := range []string{"pilot", "mate"} {
		if people[i], err = svc2.CreateUser(admin2, identity.NewUser{LoginName: login, DisplayName: login, OrgID: bureau.ID,
			Password: "Harbour-Pass-1"}); err != nil {
			t.Fatal(err)
		}
	}
	expiry := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	der := testCertDER(t, "Pilot", time.Now().Add(-time.Hour), expiry)
	fp := x509cert.Thumbprint(der)
	if _, err := svc2.BindUserCert(admin2, people[0].ID, der, ""); err != nil {
		t.Fatal(err)
	}
	var last int64
	replicate := func() {
		t.Helper()
		var cs []identity.ReplicaChange
		cs, last, _ = l2.changes(t, last)
		if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
			t.Fatal(err)
		}
	}
	loginAtL1 := func(want identity.CertVerdict, who string) {
		t.Helper()
		res, err := svc1.CertLogin(edge(fp), der)
		if err != nil || res.Verdict != want || (want == identity.CertOK && (res.User == nil || res.User.ID != who)) {
			t.Fatalf("certificate login at the replica centre: %+v %v, want %v for %s", res, err, want, who)
		}
	}
	loginAtL1(identity.CertNotRegistered, "")
	replicate()
	loginAtL1(identity.CertOK, people[0].ID)
	if got, err := svc1.ListUserCerts(ctx, people[0].ID); err != nil || len(got) != 1 || got[0].SHA256 != fp || !got[0].NotAfter.Equal(expiry) || got[0].Origin != "l2a" {
		t.Fatalf("bindings at the replica centre: %+v %v", got, err)
	}
	// moved at the home: unbound from the pilot, bound to the mate
	if err := svc2.UnbindUserCert(admin2, people[0].ID, fp); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.BindUserCert(admin2, people[1].ID, nil, fp); err != nil {
		t.Fatal(err)
	}
	replicate()
	loginAtL1(identity.CertOK, people[1].ID)
	if err := svc2.UnbindUserCert(admin2, people[1].ID, fp); err != nil {
		t.Fatal(err)
	}
	replicate()
	loginAtL1(identity.CertNotRegistered, "")
}

// TestCertificateIdentityCheck: with identity.policy.cert_identity_check a
// certificate is bound only when it chains to a people's CA and its
// subject carries the person's name and ID number (the maritime design
// 2.1.2.1), from the certificate itself; a certificate naming someone
// else (one answer whether the name or the number is wrong: no search for
// a person's number, review sec22 M4), a longer number holding the
// person's, a thumbprint alone, a person without an ID number and a
// self-signed certificate are refused, audited, nothing bound.
func TestCertificateIdentityCheck(t *testing.T) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nb, na := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "People CA"}, NotBefore: nb, NotAfter: na,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	serial := int64(10)
	// issued makes a client certificate of the people's CA.
	issued := func(subject pkix.Name) []byte {
		t.Helper()
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		serial++
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: subject, NotBefore: nb, NotAfter: na,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	e := newEvEnvWith(t, "", func(d *identity.Deps) { d.Config.Policy.CertIdentityCheck, d.PeopleCAs = true, pool })
	if _, _, err := e.svc.Bootstrap(context.Background(), evAdminPass); err != nil {
		t.Fatal(err)
	}
	admin, _ := adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	root := evRoot(t, e.svc)
	zhang, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "zhangsan", DisplayName: "张三", OrgID: root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: "11010519491231002X", Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	noID, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "otto", DisplayName: "Otto", OrgID: root.ID, Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	const notThem = "does not name this person (their display name and ID number)"
	for name, tc := range map[string]struct {
		user, cn string
		sha      bool
		want     string
	}{
		"another person":            {zhang.ID, "李四 110101199003071233", false, notThem},
		"the name of another":       {zhang.ID, "李四 11010519491231002X", false, notThem},
		"the number of another":     {zhang.ID, "张三 110101199003071233", false, notThem},
		"a longer number":           {zhang.ID, "张三 911010519491231002X1", false, notThem},
		"a thumbprint alone":        {zhang.ID, "张三 11010519491231002X", true, "not its thumbprint"},
		"a person without a number": {noID.ID, "Otto 110101199003071233", false, "no ID number"},
	} {
		der := issued(pkix.Name{CommonName: tc.cn})
		var err error
		if tc.sha {
			_, err = e.svc.BindUserCert(admin, tc.user, nil, x509cert.Thumbprint(der))
		} else {
			_, err = e.svc.BindUserCert(admin, tc.user, der, "")
		}
		if reasonOf(err) != identity.ReasonCertIdentity || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s naming the %s", name, err, identity.ReasonCertIdentity, tc.want)
		}
	}
	// naming the person, but self-signed: not a people's CA's
	if _, err := e.svc.BindUserCert(admin, zhang.ID, testCertDER(t, "张三 11010519491231002X", nb, na), ""); reasonOf(err) != identity.ReasonCertIdentity ||
		!strings.Contains(err.Error(), "people's CA") {
		t.Errorf("a self-signed certificate naming the person: %v", err)
	}
	if cs, _ := e.svc.ListUserCerts(admin, zhang.ID); len(cs) != 0 {
		t.Fatalf("refused certificates bound: %+v", cs)
	}
	m := e.mark(t)
	_, _ = e.svc.BindUserCert(admin, zhang.ID, issued(pkix.Name{CommonName: "李四 11010519491231002X"}), "")
	if rec := audit(t, e.outbox(t, m), "user.certificate.bind"); rec.Result != "failure" || rec.Reason != identity.ReasonCertIdentity {
		t.Errorf("a refused binding's record: %+v", rec)
	}
	// the number in the common name, any case of its X, or in serialNumber
	if _, err := e.svc.BindUserCert(admin, zhang.ID, issued(pkix.Name{CommonName: "张三 11010519491231002x"}), ""); err != nil {
		t.Fatalf("a certificate naming the person: %v", err)
	}
	if _, err := e.svc.BindUserCert(admin, zhang.ID, issued(pkix.Name{CommonName: "张三", SerialNumber: "11010519491231002X"}), ""); err != nil {
		t.Fatalf("the number in serialNumber: %v", err)
	}
	// A unit's certificate (gap1 G18): the unit's name and its code, the
	// registered USCC or the organisation code in it; another unit's code,
	// or the code alone, is refused.
	acme, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "acme", DisplayName: "某某航运有限公司", OrgID: root.ID,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: "91310115MA01A2B322"})
	if err != nil {
		t.Fatal(err)
	}
	for name, subject := range map[string]pkix.Name{
		"another unit's code": {CommonName: "某某航运有限公司", SerialNumber: "91350100M000100Y43"},
		"the code alone":      {CommonName: "91310115MA01A2B322"},
		"a longer code":       {CommonName: "某某航运有限公司 91310115MA01A2B3220"},
	} {
		if _, err := e.svc.BindUserCert(admin, acme.ID, issued(subject), ""); reasonOf(err) != identity.ReasonCertIdentity {
			t.Errorf("unit, %s: %v, want %s", name, err, identity.ReasonCertIdentity)
		}
	}
	if _, err := e.svc.BindUserCert(admin, acme.ID, issued(pkix.Name{CommonName: "某某航运有限公司", SerialNumber: "91310115MA01A2B322"}), ""); err != nil {
		t.Fatalf("the unit's USCC: %v", err)
	}
	if _, err := e.svc.BindUserCert(admin, acme.ID, issued(pkix.Name{Organization: []string{"某某航运有限公司"},
		OrganizationalUnit: []string{"MA01A2B3-2"}, CommonName: "acme"}), ""); err != nil {
		t.Fatalf("the unit's organisation code: %v", err)
	}
}
