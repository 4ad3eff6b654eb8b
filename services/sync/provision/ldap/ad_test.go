package ldap_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/ldap"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// The Samba AD domain the AD tests write to: provisioned once per test
// binary run (startSamba), stopped by TestMain.
const (
	adDomain = "DC=uias,DC=test"
	adAdmin  = "CN=Administrator,CN=Users," + adDomain
	adPass   = "Adm1n-Passw0rd!" // a throwaway domain's, on loopback only
	adURL    = "ldaps://127.0.0.1:636"
)

var samba struct {
	once   sync.Once
	skip   string // why the AD tests skip ("": they run)
	fail   string
	dir    string
	caFile string
	cmd    *exec.Cmd
	lock   *os.File
	// provisioned is how long samba-tool domain provision took
	provisioned time.Duration
}

func TestMain(m *testing.M) {
	code := m.Run()
	if samba.cmd != nil {
		_ = syscall.Kill(-samba.cmd.Process.Pid, syscall.SIGKILL)
		_ = samba.cmd.Wait()
	}
	if samba.dir != "" {
		_ = os.RemoveAll(samba.dir)
	}
	if samba.lock != nil {
		_ = samba.lock.Close()
	}
	os.Exit(code)
}

// startSamba provisions a throwaway Samba AD domain (uias.test) in a
// temporary directory and runs its LDAP server on 127.0.0.1 (389 and 636:
// Samba's ports are fixed, so test binaries take turns through a lock
// file) with a certificate for 127.0.0.1 from a CA written to
// samba.caFile. Once per test binary run; it skips the test when Samba
// is missing and scripts/samba.sh cannot install it.
func startSamba(t *testing.T) {
	t.Helper()
	samba.once.Do(func() {
		start := time.Now()
		samba.skip, samba.fail = provisionSamba()
		if samba.skip != "" && !requireSamba() {
			// printed without -v too: a skipped AD test is visible in any run
			fmt.Fprintln(os.Stderr, "services/sync/provision/ldap: the Active Directory tests skip: "+samba.skip+
				" (UIAS_REQUIRE_SAMBA=1 makes this a failure)")
		}
		t.Logf("Samba AD provisioned and started in %s (samba-tool domain provision: %s)",
			time.Since(start).Round(100*time.Millisecond), samba.provisioned.Round(100*time.Millisecond))
	})
	if samba.skip != "" {
		if requireSamba() {
			t.Fatal(samba.skip + " (UIAS_REQUIRE_SAMBA=1: the AD tests must run here)")
		}
		t.Skip(samba.skip)
	}
	if samba.fail != "" {
		t.Fatal(samba.fail)
	}
}

// requireSamba: with UIAS_REQUIRE_SAMBA=1 (CI) the AD tests fail where
// they would skip (Samba missing, its ports taken, the lock held).
func requireSamba() bool { return os.Getenv("UIAS_REQUIRE_SAMBA") == "1" }

func provisionSamba() (skip, fail string) {
	script := "../../../../scripts/samba.sh"
	if s := os.Getenv("UIAS_TEST_SAMBA_SCRIPT"); s != "" {
		script = s // TestADTestsFailWhenSambaIsRequired: a Samba that cannot be found
	}
	out, err := exec.Command(script).Output()
	bins := strings.Fields(string(out))
	if err != nil || len(bins) != 2 {
		return "Samba AD is not installed and scripts/samba.sh could not install it (as root: apt-get install samba " +
			"samba-ad-provision samba-dsdb-modules samba-vfs-modules): the ldap transport's profile ad is not tested here", ""
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "uias-samba-ad-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err.Error()
	}
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(time.Second) {
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = lock.Close()
			return "another test run has held the Samba AD lock for 10 minutes: the ldap transport's profile ad is not tested here", ""
		}
	}
	samba.lock = lock
	// a directory left by a test binary that was killed (only the lock's
	// holder has a live one)
	if old, _ := filepath.Glob(filepath.Join(os.TempDir(), "uias-samba-ad-[0-9]*")); len(old) > 0 {
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	for _, port := range []string{"389", "636"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			return fmt.Sprintf("port %s on 127.0.0.1 is taken (another directory?): Samba AD cannot run here, "+
				"the ldap transport's profile ad is not tested", port), ""
		}
		_ = l.Close()
	}
	dir, err := os.MkdirTemp("", "uias-samba-ad-")
	if err != nil {
		return "", err.Error()
	}
	samba.dir = dir
	prov := exec.Command(bins[1], "domain", "provision", "--use-rfc2307", "--realm=UIAS.TEST", "--domain=UIAS",
		"--server-role=dc", "--dns-backend=NONE", "--targetdir="+dir, "--adminpass="+adPass,
		"--option=interfaces=lo", "--option=bind interfaces only=yes")
	start := time.Now()
	if out, err := prov.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("samba-tool domain provision: %v\n%s", err, tail(string(out)))
	}
	samba.provisioned = time.Since(start)
	tlsDir := filepath.Join(dir, "uias-tls")
	if err := writeCerts(tlsDir); err != nil {
		return "", err.Error()
	}
	samba.caFile = filepath.Join(tlsDir, "ca.pem")
	var logs strings.Builder
	cmd := exec.Command(bins[0], "-i", "-M", "single", "-s", filepath.Join(dir, "etc", "smb.conf"),
		"--option=server services=ldap", "--option=pid directory="+dir, "--option=log file="+filepath.Join(dir, "samba.log"),
		"--option=tls certfile="+filepath.Join(tlsDir, "cert.pem"), "--option=tls keyfile="+filepath.Join(tlsDir, "key.pem"),
		"--option=tls cafile="+samba.caFile)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// samba -i stops at the end of its standard input: when this test
	// binary ends, however it ends
	if _, err := cmd.StdinPipe(); err != nil {
		return "", err.Error()
	}
	if err := cmd.Start(); err != nil {
		return "", err.Error()
	}
	samba.cmd = cmd
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		c, err := adConn()
		if err == nil {
			_ = c.Close()
			return "", ""
		}
		if time.Now().After(deadline) {
			return "", fmt.Sprintf("Samba AD did not answer on %s: %v\n%s", adURL, err, tail(logs.String()))
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// writeCerts writes a CA (ca.pem) and a certificate for 127.0.0.1 signed
// by it (cert.pem, key.pem) into dir.
func writeCerts(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "uias test AD CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	for name, b := range map[string]*pem.Block{"ca.pem": {Type: "CERTIFICATE", Bytes: caDER},
		"cert.pem": {Type: "CERTIFICATE", Bytes: leafDER}, "key.pem": {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// adConn is an administrator's connection to the test domain.
func adConn() (*goldap.Conn, error) {
	pem, err := os.ReadFile(samba.caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := goldap.DialURL(adURL, goldap.DialWithTLSConfig(tlsConfig(pool)))
	if err != nil {
		return nil, err
	}
	if err := c.Bind(adAdmin, adPass); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// adBase creates an OU of its own for a test under the domain.
func adBase(t *testing.T, name string) (*dir, string) {
	t.Helper()
	c, err := adConn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	base := "OU=" + name + "," + adDomain
	add := goldap.NewAddRequest(base, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	if err := c.Add(add); err != nil {
		t.Fatal(err)
	}
	return &dir{t: t, c: c}, base
}

func adSub(base string, sel provision.Selection, settings map[string]string) *provision.Subscription {
	s := map[string]string{"base_dn": base, "bind_dn": adAdmin, "profile": "ad", "ca_file": samba.caFile}
	for k, v := range settings {
		s[k] = v
	}
	return &provision.Subscription{App: "mail", Name: "active directory", Selection: sel, Transport: provision.LDAP,
		Endpoint: adURL, Secret: adPass, Settings: s}
}

// TestPeopleGroupsAndOrgsInSambaAD: people become user objects named by
// their display name (a namesake gets their login name added) with
// sAMAccountName, userPrincipalName and userAccountControl; a rename is a
// modrdn that Active Directory follows in the groups; a disabled person
// and one who left the selection with on_leave=disable are kept with
// userAccountControl 514; orgs become nested OUs; groups are group
// objects whose member values are their people's DNs (none when empty);
// a deleted person is removed; a resync doubles nothing.
func TestPeopleGroupsAndOrgsInSambaAD(t *testing.T) {
	startSamba(t)
	d, base := adBase(t, "people-groups")
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	sub := env.Subscribe(adSub(base, provision.Selection{Orgs: []string{"o1"}}, map[string]string{"on_leave": "disable"}))
	settled := func() bool { return len(env.Deliveries(sub.ID)) > 0 && env.Count(sub.ID, provision.Pending) == 0 }
	wait := func(what string, cond func() bool) {
		t.Helper()
		env.Wait(what, func() bool { return settled() && cond() })
	}
	people, orgs, groups := "OU=people,"+base, "OU=orgs,"+base, "OU=groups,"+base
	lower := func(ss ...string) []string {
		for i := range ss {
			ss[i] = strings.ToLower(ss[i])
		}
		slices.Sort(ss)
		return ss
	}
	long := "averyveryverylongloginname"
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "Head office"})
	env.Change("org", "created", "o2", map[string]any{"code": "east", "name": "East", "parent_id": "o1"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann Lee", "org_id": "o2",
		"email": "ann@example.org", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": long, "display_name": "Ann Lee", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u3", map[string]any{"login_name": "cy", "org_id": "o1", "status": 1})
	// review sec30a H2: a 64-character login name of a namesake (no room
	// for it in a 64-character CN: the user id's tail instead), and a
	// 62-character one with a display name longer than a CN
	login64, login62, name70 := strings.Repeat("b", 64), strings.Repeat("c", 62), strings.Repeat("D", 70)
	env.Change("user", "created", "u4", map[string]any{"login_name": login64, "display_name": "Ann Lee", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u5", map[string]any{"login_name": login62, "display_name": name70, "org_id": "o1", "status": 1})
	env.Change("group", "created", "g1", map[string]any{"code": "ops", "name": "Operations", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})
	env.Change("group", "created", "g2", map[string]any{"code": "empty", "org_id": "o1"})

	ann, namesake := "CN=Ann Lee,"+people, "CN=Ann Lee ("+long+"),"+people
	ops := "CN=ops," + groups
	wait("people, orgs and groups written", func() bool {
		return slices.Equal(d.members(ops, "member"), lower(ann, namesake)) && d.entry("CN=empty,"+groups) != nil &&
			d.entry("CN=cy,"+people) != nil && d.entry("CN=Ann Lee (#u4),"+people) != nil && d.entry("CN="+name70[:64]+","+people) != nil
	})
	if e := d.entry("CN=Ann Lee (#u4),"+people, "userPrincipalName", "employeeNumber"); e.GetAttributeValue("userPrincipalName") != login64+"@uias.test" ||
		e.GetAttributeValue("employeeNumber") != "u4" {
		t.Fatalf("the namesake with a 64-character login in AD: %+v", attrs(e))
	}
	if s := env.Summary(sub.ID); strings.Contains(s, "dead") {
		t.Fatalf("dead deliveries:%s", s)
	}
	e := d.entry(ann, "objectClass", "sAMAccountName", "userPrincipalName", "displayName", "mail", "department",
		"userAccountControl", "employeeNumber")
	if e == nil || !slices.Contains(e.GetAttributeValues("objectClass"), "user") || e.GetAttributeValue("sAMAccountName") != "ann" ||
		e.GetAttributeValue("userPrincipalName") != "ann@uias.test" || e.GetAttributeValue("displayName") != "Ann Lee" ||
		e.GetAttributeValue("mail") != "ann@example.org" || e.GetAttributeValue("department") != "East" ||
		e.GetAttributeValue("userAccountControl") != "512" || e.GetAttributeValue("employeeNumber") != "u1" {
		t.Fatalf("ann in AD: %+v", attrs(e))
	}
	if e := d.entry(namesake, "sAMAccountName", "userPrincipalName"); e == nil || e.GetAttributeValue("sAMAccountName") != long[:20] ||
		e.GetAttributeValue("userPrincipalName") != long+"@uias.test" {
		t.Fatalf("the namesake in AD: %+v", attrs(e))
	}
	if got := d.dns(orgs, "(objectClass=organizationalUnit)"); !slices.Equal(got, lower("OU=hq,"+orgs, "OU=east,OU=hq,"+orgs)) {
		t.Fatalf("orgs in AD: %v", got)
	}
	if e := d.entry("OU=east,OU=hq,"+orgs, "adminDescription", "description"); e.GetAttributeValue("adminDescription") != "uias:o2" ||
		e.GetAttributeValue("description") != "East" {
		t.Fatalf("org in AD: %+v", attrs(e))
	}
	if e := d.entry(ops, "objectClass", "sAMAccountName", "adminDescription", "description"); !slices.Contains(e.GetAttributeValues("objectClass"), "group") ||
		e.GetAttributeValue("sAMAccountName") != "ops" || e.GetAttributeValue("adminDescription") != "uias:g1" ||
		e.GetAttributeValue("description") != "Operations" {
		t.Fatalf("group in AD: %+v", attrs(e))
	}
	if m := d.members("CN=empty,"+groups, "member"); len(m) != 0 {
		t.Fatalf("the empty group has members %v", m)
	}

	// renamed: the object moves (modrdn), AD keeps the group's member
	env.Change("user", "updated", "u1", map[string]any{"display_name": "Ann Smith", "login_name": "asmith"})
	wait("ann renamed", func() bool {
		return d.entry(ann) == nil && slices.Equal(d.members(ops, "member"), lower("CN=Ann Smith,"+people, namesake))
	})
	if e := d.entry("CN=Ann Smith,"+people, "sAMAccountName", "userPrincipalName"); e.GetAttributeValue("sAMAccountName") != "asmith" ||
		e.GetAttributeValue("userPrincipalName") != "asmith@uias.test" {
		t.Fatalf("renamed ann: %+v", attrs(e))
	}
	// disabled in UIAS, and left the selection (on_leave=disable): 514
	env.Change("user", "status_changed", "u3", map[string]any{"status": 2})
	env.Change("user", "updated", "u2", map[string]any{"org_id": "o9"})
	uac := func(dn string) string {
		if e := d.entry(dn, "userAccountControl"); e != nil {
			return e.GetAttributeValue("userAccountControl")
		}
		return ""
	}
	wait("the disabled accounts", func() bool { return uac("CN=cy,"+people) == "514" && uac(namesake) == "514" })
	env.Change("user", "status_changed", "u3", map[string]any{"status": 1})
	wait("cy enabled again", func() bool { return uac("CN=cy,"+people) == "512" })
	// disabled by the level-1 centre (ADR 0048; review sec32c M1): 514
	// while the home says active, 512 once level 1 enables them
	env.CentreDisable("u3", true, true)
	wait("cy disabled by level 1", func() bool { return uac("CN=cy,"+people) == "514" })
	env.Change("user", "status_changed", "u3", map[string]any{"status": 1})
	env.CentreDisable("u3", false, true)
	wait("cy enabled again by level 1", func() bool { return uac("CN=cy,"+people) == "512" })

	// deleted in UIAS: removed, and from its groups
	env.Change("user", "deleted", "u1", nil)
	wait("ann removed", func() bool {
		return d.entry("CN=Ann Smith,"+people) == nil && !slices.Contains(d.members(ops, "member"), strings.ToLower("CN=Ann Smith,"+people))
	})
	// a resync writes what is there again: nothing doubles
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	before := d.dns(base, "(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit))")
	if _, _, _, err := svc.StartBatch(context.Background(), "mail", "", provision.Filter{}); err != nil {
		t.Fatal(err)
	}
	wait("the resync", func() bool { return env.Count(sub.ID, provision.Pending) == 0 })
	if after := d.dns(base, "(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit))"); !slices.Equal(before, after) {
		t.Fatalf("a resync changed the entries:\n%v\n%v", before, after)
	}
	if s := env.Summary(sub.ID); strings.Contains(s, "dead") {
		t.Fatalf("dead deliveries:%s", s)
	}
}

// The directory's certificate is checked: without ca_file (the system's
// CAs) the delivery fails, saying why, and is retried.
func TestSambaADCertificateChecked(t *testing.T) {
	startSamba(t)
	_, base := adBase(t, "untrusted")
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}, MaxAttempts: 1000})
	env.Start()
	s := adSub(base, provision.Selection{Orgs: []string{"o1"}}, nil)
	delete(s.Settings, "ca_file")
	sub := env.Subscribe(s)
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Wait("the refused certificate recorded", func() bool {
		ds := env.Deliveries(sub.ID)
		return len(ds) > 0 && strings.Contains(ds[0].LastError, "certificate")
	})
	if le := env.Deliveries(sub.ID)[0].LastError; strings.Contains(le, adPass) {
		t.Fatalf("the bind password is in the last error: %q", le)
	}
}

func attrs(e *goldap.Entry) map[string][]string {
	if e == nil {
		return nil
	}
	m := map[string][]string{"dn": {e.DN}}
	for _, a := range e.Attributes {
		m[a.Name] = a.Values
	}
	return m
}

func tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// StartTLS on ldap://: the delivery goes through; without it Samba (as
// AD) refuses the simple bind in clear, and the delivery fails saying so.
func TestSambaADStartTLS(t *testing.T) {
	startSamba(t)
	d, base := adBase(t, "starttls")
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}, MaxAttempts: 1000})
	env.Start()
	tlsSub := adSub(base, provision.Selection{Orgs: []string{"o1"}}, map[string]string{"start_tls": "true"})
	tlsSub.Endpoint = "ldap://127.0.0.1:389"
	ok := env.Subscribe(tlsSub)
	clear := adSub(base, provision.Selection{Orgs: []string{"o1"}}, nil)
	clear.Endpoint = "ldap://127.0.0.1:389"
	clear.App = "wiki"
	refused := env.Subscribe(clear)
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Wait("the org written over StartTLS", func() bool { return env.Count(ok.ID, provision.Delivered) == 1 })
	if d.entry("OU=hq,OU=orgs,"+base) == nil {
		t.Fatal("no org entry")
	}
	env.Wait("the bind in clear refused", func() bool {
		ds := env.Deliveries(refused.ID)
		return len(ds) > 0 && strings.Contains(ds[0].LastError, "Strong Auth Required")
	})
}

// TestRolesInSambaAD: with deliver_roles, the application's roles are group
// objects under OU=roles (CN=<code>, sAMAccountName, adminDescription
// uias:<role id>, description the name) whose member values are the
// selected holders' DNs: an org grant reaches everyone below it, a person
// disabled in UIAS (userAccountControl 514) leaves the role's members and
// comes back when enabled, a revocation empties it, a removal deletes it;
// another application's role never appears (docs/adr/0044).
func TestRolesInSambaAD(t *testing.T) {
	startSamba(t)
	d, base := adBase(t, "roles")
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	s := adSub(base, provision.Selection{Orgs: []string{"o1"}}, nil)
	s.DeliverRoles = true
	sub := env.Subscribe(s)
	wait := func(what string, cond func() bool) {
		t.Helper()
		env.Wait(what+env.Summary(sub.ID), func() bool {
			return len(env.Deliveries(sub.ID)) > 0 && env.Count(sub.ID, provision.Pending) == 0 && cond()
		})
	}
	people, roles := "OU=people,"+base, "OU=roles,"+base
	ann, bob, clerk := strings.ToLower("CN=Ann Role,"+people), strings.ToLower("CN=Bob Role,"+people), "CN=clerk,"+roles
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "Head office"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "annrole", "display_name": "Ann Role", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bobrole", "display_name": "Bob Role", "org_id": "o1", "status": 1})
	env.Role("put", "r1", "mail", "clerk", "Mail clerk", "inbox:read")
	env.Role("put", "r9", "erp", "buyer", "Buyer", "po:write")
	env.Grant("put", "gr1", "r1", "org", "o1")
	env.Grant("put", "gr9", "r9", "user", "u1")
	wait("the role with its holders", func() bool { return slices.Equal(d.members(clerk, "member"), []string{ann, bob}) })
	if e := d.entry(clerk, "objectClass", "sAMAccountName", "adminDescription", "description"); !slices.Contains(e.GetAttributeValues("objectClass"), "group") ||
		e.GetAttributeValue("sAMAccountName") != "clerk" || e.GetAttributeValue("adminDescription") != "uias:r1" ||
		e.GetAttributeValue("description") != "Mail clerk" {
		t.Fatalf("the role in AD: %+v", attrs(e))
	}
	if got := d.dns(roles, "(objectClass=group)"); !slices.Equal(got, []string{strings.ToLower(clerk)}) {
		t.Fatalf("OU=roles holds %v", got)
	}
	env.Change("user", "status_changed", "u2", map[string]any{"status": 2})
	wait("bob disabled", func() bool { return slices.Equal(d.members(clerk, "member"), []string{ann}) })
	env.Change("user", "status_changed", "u2", map[string]any{"status": 1})
	wait("bob enabled again", func() bool { return slices.Equal(d.members(clerk, "member"), []string{ann, bob}) })
	env.Grant("delete", "gr1", "", "", "")
	wait("the revocation", func() bool { return len(d.members(clerk, "member")) == 0 && d.entry(clerk) != nil })
	env.Role("delete", "r1", "", "", "")
	wait("the removal", func() bool { return d.entry(clerk) == nil })
	if s := env.Summary(sub.ID); strings.Contains(s, "dead") {
		t.Fatalf("dead deliveries:%s", s)
	}
}
