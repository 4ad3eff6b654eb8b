package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/x509cert"
	"github.com/uias/uias/services/identity"
)

// peopleCA is a throwaway people's CA issuing client certificates.
type peopleCA struct {
	t      *testing.T
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial int64
	nb, na time.Time
}

func newPeopleCA(t *testing.T) *peopleCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := &peopleCA{t: t, key: key, serial: 100, nb: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), na: time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "People CA"}, NotBefore: c.nb, NotAfter: c.na,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c.cert, _ = x509.ParseCertificate(der)
	return c
}

func (c *peopleCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// issue makes a client certificate of the CA for subject.
func (c *peopleCA) issue(subject pkix.Name) []byte {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	c.serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(c.serial), Subject: subject, NotBefore: c.nb, NotAfter: c.na,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		c.t.Fatal(err)
	}
	return der
}

// certPeople registers 张三 and 李四 (with ID numbers) and Otto (without).
func certPeople(t *testing.T, e *evEnv) (admin context.Context, zhang, li *identity.User) {
	t.Helper()
	if _, _, err := e.svc.Bootstrap(context.Background(), evAdminPass); err != nil {
		t.Fatal(err)
	}
	admin, _ = adminCtx(t, e.svc, "10.0.0.9", "req-admin")
	root := evRoot(t, e.svc)
	var err error
	zhang, err = e.svc.CreateUser(admin, identity.NewUser{LoginName: "zhangsan", DisplayName: "张三", OrgID: root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: "11010519491231002X", Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	li, err = e.svc.CreateUser(admin, identity.NewUser{LoginName: "lisi", DisplayName: "李四", OrgID: root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: "110101199003071233", Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "otto", DisplayName: "Otto", OrgID: root.ID, Password: "First-Pass-1"}); err != nil {
		t.Fatal(err)
	}
	return admin, zhang, li
}

// TestBindCertificatesByIdentity: the certificates a CA issued are bound
// in bulk to the people they name (gap1 G27, the maritime design 1.3);
// each line says what became of one; a dry run binds nothing; nothing but
// a certificate of a people's CA naming one registered person by ID number
// and name is bound.
func TestBindCertificatesByIdentity(t *testing.T) {
	ca := newPeopleCA(t)
	e := newEvEnvWith(t, "", func(d *identity.Deps) { d.Config.Policy.CertIdentityCheck, d.PeopleCAs = true, ca.pool() })
	admin, zhang, li := certPeople(t, e)

	zhangCert := ca.issue(pkix.Name{CommonName: "张三 11010519491231002x"}) // any case of the X
	liCert := ca.issue(pkix.Name{CommonName: "李四", SerialNumber: "110101199003071233"})
	batch := [][]byte{
		zhangCert,
		liCert,
		ca.issue(pkix.Name{CommonName: "赵六 110101199001011234"}), // nobody registered
		ca.issue(pkix.Name{CommonName: "李四 11010519491231002X"}), // 张三's number, 李四's name
		ca.issue(pkix.Name{CommonName: "Otto"}),                  // no number
		testCertDER(t, "张三 11010519491231002X", ca.nb, ca.na),    // self-signed: not the CA's
		[]byte("not a certificate"),                              // junk
		zhangCert,                                                // twice in one batch
	}
	want := func(rs []identity.CertBindResult, outcomes ...identity.CertBindOutcome) {
		t.Helper()
		if len(rs) != len(outcomes) {
			t.Fatalf("%d lines for %d certificates: %+v", len(rs), len(outcomes), rs)
		}
		for i, o := range outcomes {
			if rs[i].Outcome != o {
				t.Errorf("line %d: %s (%s), want %s", i, rs[i].Outcome, rs[i].Message, o)
			}
		}
	}
	// Dry run: what would be bound, nothing bound.
	m := e.mark(t)
	rs, err := e.svc.BindCertsByIdentity(admin, batch, true)
	if err != nil {
		t.Fatal(err)
	}
	want(rs, identity.CertWouldBind, identity.CertWouldBind, identity.CertNoPerson, identity.CertNoPerson, identity.CertNoPerson,
		identity.CertNoPerson, identity.CertInvalid, identity.CertWouldBind)
	if rs[0].UserID != zhang.ID || rs[1].UserID != li.ID || rs[0].SHA256 != x509cert.Thumbprint(zhangCert) {
		t.Fatalf("dry run lines %+v", rs[:2])
	}
	if rows := e.outbox(t, m); len(rows) != 0 {
		t.Fatalf("a dry run wrote %d events", len(rows))
	}
	if cs, _ := e.svc.ListUserCerts(admin, zhang.ID); len(cs) != 0 {
		t.Fatalf("a dry run bound %+v", cs)
	}

	// For real: two bound, announced and audited as bulk bindings; the
	// same certificate twice is bound once.
	m = e.mark(t)
	rs, err = e.svc.BindCertsByIdentity(admin, batch, false)
	if err != nil {
		t.Fatal(err)
	}
	want(rs, identity.CertBound, identity.CertBound, identity.CertNoPerson, identity.CertNoPerson, identity.CertNoPerson,
		identity.CertNoPerson, identity.CertInvalid, identity.CertAlreadyBound)
	for _, who := range []*identity.User{zhang, li} {
		cs, err := e.svc.ListUserCerts(admin, who.ID)
		if err != nil || len(cs) != 1 || cs[0].NotAfter.IsZero() {
			t.Fatalf("%s's certificates %+v (%v)", who.LoginName, cs, err)
		}
	}
	binds := 0
	for _, r := range e.outbox(t, m) {
		if r.Type != "audit.user.certificate.bind" {
			continue
		}
		binds++
		var rec struct {
			Result string            `json:"result"`
			Detail map[string]string `json:"detail"`
		}
		if err := json.Unmarshal(r.Payload, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Result != "success" || rec.Detail["by"] != "bulk" || strings.Contains(string(r.Payload), "110101") {
			t.Errorf("bulk binding record %s", r.Payload)
		}
	}
	if binds != 2 {
		t.Fatalf("%d binding records, want 2", binds)
	}
	// Messages name no one's number.
	for _, r := range rs {
		if strings.Contains(r.Message, "110101") || strings.Contains(r.Message, "张三") {
			t.Errorf("a line's message carries personal data: %q", r.Message)
		}
	}

	// Too many at once: INVALID_ARGUMENT; nothing done.
	if _, err := e.svc.BindCertsByIdentity(admin, make([][]byte, identity.MaxBulkCerts+1), false); reasonOf(err) != "BAD_REQUEST" {
		t.Fatalf("501 certificates: %v", err)
	}
}

// TestBindCertificatesNeedsCAs: without a people's CA (or with shared ID
// numbers) certificates are mapped to no one: FAILED_PRECONDITION saying
// what to configure.
func TestBindCertificatesNeedsCAs(t *testing.T) {
	ca := newPeopleCA(t)
	for name, change := range map[string]func(*identity.Deps){
		"no people's CA":    func(*identity.Deps) {},
		"shared ID numbers": func(d *identity.Deps) { d.PeopleCAs, d.Config.Policy.SharedIDNumbers = ca.pool(), true },
	} {
		e := newEvEnvWith(t, "", change)
		admin, _, _ := certPeople(t, e)
		_, err := e.svc.BindCertsByIdentity(admin, [][]byte{ca.issue(pkix.Name{CommonName: "张三 11010519491231002X"})}, false)
		if reasonOf(err) != identity.ReasonCertIdentity || !strings.Contains(err.Error(), "people's CA") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestCertificateAutoBind: with identity.policy.cert_auto_bind a
// certificate login with a certificate bound to no one binds it to the
// person it names and signs them in; one naming no one is not registered;
// without the policy nothing is bound.
func TestCertificateAutoBind(t *testing.T) {
	ca := newPeopleCA(t)
	for _, on := range []bool{true, false} {
		e := newEvEnvWith(t, "", func(d *identity.Deps) {
			d.Config.Policy.CertIdentityCheck, d.Config.Policy.CertAutoBind, d.PeopleCAs = true, on, ca.pool()
		})
		admin, zhang, _ := certPeople(t, e)
		der := ca.issue(pkix.Name{CommonName: "张三 11010519491231002X"})
		m := e.mark(t)
		res, err := e.svc.CertLogin(edge(x509cert.Thumbprint(der)), der)
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := e.svc.ListUserCerts(admin, zhang.ID)
		if !on {
			if res.Verdict != identity.CertNotRegistered || len(cs) != 0 {
				t.Fatalf("policy off: %v, bound %+v", res.Verdict, cs)
			}
			continue
		}
		if res.Verdict != identity.CertOK || res.User == nil || res.User.ID != zhang.ID || len(cs) != 1 {
			t.Fatalf("auto bind: %v %+v, bound %+v", res.Verdict, res.User, cs)
		}
		if rec := audit(t, e.outbox(t, m), "user.certificate.bind"); rec.Detail["by"] != "login" || rec.Subject != "user:"+zhang.ID {
			t.Fatalf("auto binding record %+v", rec)
		}
		// the second login finds the binding
		if res, err := e.svc.CertLogin(edge(x509cert.Thumbprint(der)), der); err != nil || res.Verdict != identity.CertOK {
			t.Fatalf("second login: %v %v", res, err)
		}
		// a certificate naming no one registered; a self-signed one naming 张三
		for _, c := range [][]byte{ca.issue(pkix.Name{CommonName: "赵六 110101199001011234"}), testCertDER(t, "张三 11010519491231002X", ca.nb, ca.na)} {
			if res, err := e.svc.CertLogin(edge(x509cert.Thumbprint(c)), c); err != nil || res.Verdict != identity.CertNotRegistered {
				t.Fatalf("a certificate naming no one: %v %v", res, err)
			}
		}
		if cs, _ := e.svc.ListUserCerts(admin, zhang.ID); len(cs) != 1 {
			t.Fatalf("bound %+v", cs)
		}
	}
}

// autoBindEnv is an identity with cert_auto_bind and a people's CA.
func autoBindEnv(t *testing.T, ca *peopleCA) *evEnv {
	return newEvEnvWith(t, "", func(d *identity.Deps) {
		d.Config.Policy.CertIdentityCheck, d.Config.Policy.CertAutoBind, d.PeopleCAs = true, true, ca.pool()
	})
}

// Review sec30a H1: a certificate finds a person only by an ID its subject
// carries that is valid by its check character (a resident ID number, a
// unit's code), and only with the person's name as a word of its own: a
// namesake whose longer name holds the person's, or a run of digits equal
// to a person's passport/other number, maps to no one.
func TestCertificateMapsOnlyByCheckedIDAndWholeName(t *testing.T) {
	ca := newPeopleCA(t)
	e := autoBindEnv(t, ca)
	admin, zhang, _ := certPeople(t, e)
	root := evRoot(t, e.svc)
	wei, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "zhangwei", DisplayName: "张伟", OrgID: root.ID,
		IDType: identity.IDTypeOther, IDNumber: "100234", Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	for name, subject := range map[string]pkix.Name{
		"an other-type number in OU": {CommonName: "张伟东", SerialNumber: "110101199001011234", OrganizationalUnit: []string{"100234"}},
		"an other-type number in CN": {CommonName: "张伟 100234"},
		"a longer name holding 张三":   {CommonName: "张三丰 11010519491231002X"},
	} {
		der := ca.issue(subject)
		rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{der}, true)
		if err != nil || len(rs) != 1 || rs[0].Outcome != identity.CertNoPerson {
			t.Errorf("%s: bulk %+v %v", name, rs, err)
		}
		res, err := e.svc.CertLogin(edge(x509cert.Thumbprint(der)), der)
		if err != nil || res.Verdict != identity.CertNotRegistered {
			t.Errorf("%s: login %v %v", name, res, err)
		}
	}
	for _, u := range []*identity.User{wei, zhang} {
		if cs, _ := e.svc.ListUserCerts(admin, u.ID); len(cs) != 0 {
			t.Fatalf("%s got bindings %+v", u.LoginName, cs)
		}
	}
	// the name delimited by punctuation still names the person
	der := ca.issue(pkix.Name{CommonName: "张三(11010519491231002X)"})
	if rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{der}, true); err != nil || rs[0].Outcome != identity.CertWouldBind {
		t.Fatalf("张三(number): %+v %v", rs, err)
	}
}

// Review sec30a L2: a login refused (disabled person) leaves no binding.
func TestCertificateAutoBindRefusedLoginBindsNothing(t *testing.T) {
	ca := newPeopleCA(t)
	e := autoBindEnv(t, ca)
	admin, zhang, _ := certPeople(t, e)
	if _, err := e.svc.SetUserStatus(admin, zhang.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	der := ca.issue(pkix.Name{CommonName: "张三 11010519491231002X"})
	res, err := e.svc.CertLogin(edge(x509cert.Thumbprint(der)), der)
	if err != nil || res.Verdict != identity.CertAccountDisabled {
		t.Fatalf("a disabled person's login: %v %v", res, err)
	}
	if cs, _ := e.svc.ListUserCerts(admin, zhang.ID); len(cs) != 0 {
		t.Fatalf("a refused login left a binding %+v", cs)
	}
}

// Review sec30a M2: a certificate an administrator unbound (a lost one) is
// not bound again by a login nor by a bulk binding; an administrator's
// bind-cert binds it again (and clears the mark).
func TestCertificateUnboundStaysUnbound(t *testing.T) {
	ca := newPeopleCA(t)
	e := autoBindEnv(t, ca)
	admin, zhang, _ := certPeople(t, e)
	der := ca.issue(pkix.Name{CommonName: "张三 11010519491231002X"})
	fp := x509cert.Thumbprint(der)
	if rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{der}, false); err != nil || rs[0].Outcome != identity.CertBound {
		t.Fatalf("bulk: %+v %v", rs, err)
	}
	if err := e.svc.UnbindUserCert(admin, zhang.ID, fp); err != nil {
		t.Fatal(err)
	}
	if res, err := e.svc.CertLogin(edge(fp), der); err != nil || res.Verdict != identity.CertNotRegistered {
		t.Fatalf("login with the unbound certificate: %v %v", res, err)
	}
	if rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{der}, false); err != nil || rs[0].Outcome != identity.CertWasUnbound {
		t.Fatalf("bulk after unbinding: %+v %v", rs, err)
	}
	if cs, _ := e.svc.ListUserCerts(admin, zhang.ID); len(cs) != 0 {
		t.Fatalf("bound again by itself: %+v", cs)
	}
	if _, err := e.svc.BindUserCert(admin, zhang.ID, der, ""); err != nil {
		t.Fatal(err)
	}
	if res, err := e.svc.CertLogin(edge(fp), der); err != nil || res.Verdict != identity.CertOK {
		t.Fatalf("after bind-cert: %v %v", res, err)
	}
}

// Review sec30a L3: a CA's bundle holds its intermediate CA: the leaves
// issued by it chain through it; the CA certificate itself is not bound.
func TestBindCertificatesThroughIntermediate(t *testing.T) {
	root := newPeopleCA(t)
	e := newEvEnvWith(t, "", func(d *identity.Deps) { d.Config.Policy.CertIdentityCheck, d.PeopleCAs = true, root.pool() })
	admin, zhang, _ := certPeople(t, e)
	// an intermediate CA under the root
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "People sub-CA"}, NotBefore: root.nb, NotAfter: root.na,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	subDER, err := x509.CreateCertificate(rand.Reader, tmpl, root.cert, &key.PublicKey, root.key)
	if err != nil {
		t.Fatal(err)
	}
	sub := &peopleCA{t: t, key: key, serial: 500, nb: root.nb, na: root.na}
	sub.cert, _ = x509.ParseCertificate(subDER)
	leaf := sub.issue(pkix.Name{CommonName: "张三 11010519491231002X"})
	// alone, the leaf does not chain to the root
	if rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{leaf}, true); err != nil || rs[0].Outcome != identity.CertNoPerson {
		t.Fatalf("leaf alone: %+v %v", rs, err)
	}
	rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{subDER, leaf}, false)
	if err != nil || rs[0].Outcome != identity.CertCA || rs[1].Outcome != identity.CertBound || rs[1].UserID != zhang.ID {
		t.Fatalf("bundle: %+v %v", rs, err)
	}
}

// Review sec30c H2: an employee's personal certificate (their name and
// resident ID number, their employer's name and code beside them) never
// finds the employer's unit account; it finds the employee when they are
// registered; the unit's own certificate (no person's number) finds the
// unit.
func TestEmployeeCertificateIsNotTheUnits(t *testing.T) {
	ca := newPeopleCA(t)
	e := newEvEnvWith(t, "", func(d *identity.Deps) { d.Config.Policy.CertIdentityCheck, d.PeopleCAs = true, ca.pool() })
	admin, _, _ := certPeople(t, e)
	root := evRoot(t, e.svc)
	unit, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "acme", DisplayName: "某某航运有限公司", OrgID: root.ID,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: unitUSCC, Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	employee := ca.issue(pkix.Name{CommonName: "王五 440301198506151238", Organization: []string{"某某航运有限公司"},
		OrganizationalUnit: []string{unitUSCC}})
	rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{employee}, true)
	if err != nil || rs[0].Outcome != identity.CertNoPerson {
		t.Fatalf("an unregistered employee's certificate: %+v %v", rs, err)
	}
	// binding it to the unit by hand is refused too
	if _, err := e.svc.BindUserCert(admin, unit.ID, employee, ""); reasonOf(err) != identity.ReasonCertIdentity {
		t.Fatalf("an employee's certificate bound to the unit by hand: %v", err)
	}
	wang, err := e.svc.CreateUser(admin, identity.NewUser{LoginName: "wangwu", DisplayName: "王五", OrgID: root.ID,
		IDType: identity.IDTypeResidentID, IDNumber: "440301198506151238", Password: "First-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{employee}, true); err != nil || rs[0].Outcome != identity.CertWouldBind || rs[0].UserID != wang.ID {
		t.Fatalf("a registered employee's certificate: %+v %v", rs, err)
	}
	own := ca.issue(pkix.Name{CommonName: "某某航运有限公司", OrganizationalUnit: []string{unitUSCC}})
	if rs, err := e.svc.BindCertsByIdentity(admin, [][]byte{own}, true); err != nil || rs[0].Outcome != identity.CertWouldBind || rs[0].UserID != unit.ID {
		t.Fatalf("the unit's own certificate: %+v %v", rs, err)
	}
}
