// Package ldaptest runs a real OpenLDAP slapd (installed by
// scripts/slapd.sh) for the tests of the directory credential sources: a
// fresh configuration and mdb database in a temporary directory, on a
// loopback port, with a test CA's certificate for StartTLS and ldaps, and
// people with passwords.
package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// The test directory.
const (
	Base     = "dc=example,dc=org"
	People   = "ou=people," + Base
	RootDN   = "cn=admin," + Base
	RootPW   = "slapd-root-password"
	ReaderDN = "cn=reader," + Base
	ReaderPW = "reader-Pass-1"
)

// Person is an entry of ou=people.
type Person struct {
	UID, Password string
}

// Server is a running slapd.
type Server struct {
	// URL is ldap://127.0.0.1:PORT (StartTLS offered); TLSURL
	// ldaps://127.0.0.1:PORT2.
	URL, TLSURL string
	// CAFile is the PEM CA the server's certificate chains to.
	CAFile string
	cmd    *exec.Cmd
	t      testing.TB
}

// Start runs slapd with people under ou=people (skipping the test, saying
// why, when slapd cannot be installed).
func Start(t testing.TB, people ...Person) *Server {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "../../../../scripts/slapd.sh")
	out, err := exec.Command(script).Output()
	bin := strings.TrimSpace(string(out))
	if err != nil || bin == "" {
		t.Skip("slapd is not installed and scripts/slapd.sh could not install it (apt-get install slapd ldap-utils as root): " +
			"the directory credential sources are not tested here")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	ca, cert, key := writeCerts(t, dir)
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCACertificateFile %[5]s
TLSCertificateFile %[6]s
TLSCertificateKeyFile %[7]s
database mdb
maxsize 104857600
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
index objectClass eq
index uid eq
`, dir, Base, RootDN, RootPW, ca, cert, key)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "ldap://" + freeAddr(t), TLSURL: "ldaps://" + freeAddr(t), CAFile: ca, t: t}
	s.cmd = exec.Command(bin, "-f", filepath.Join(dir, "slapd.conf"), "-h", s.URL+"/ "+s.TLSURL+"/", "-d", "0")
	var logs strings.Builder
	s.cmd.Stdout, s.cmd.Stderr = &logs, &logs
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := ldap.DialURL(s.URL)
		if err == nil {
			err = s.fill(c, people)
			_ = c.Close()
			if err != nil {
				t.Fatalf("preparing the directory: %v\n%s", err, logs.String())
			}
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not answer on %s: %v\n%s", s.URL, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends slapd (the directory is down from then on).
func (s *Server) Stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func (s *Server) fill(c *ldap.Conn, people []Person) error {
	if err := c.Bind(RootDN, RootPW); err != nil {
		return err
	}
	add := func(dn string, attrs map[string][]string) error {
		r := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			r.Attribute(k, v)
		}
		return c.Add(r)
	}
	if err := add(Base, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}); err != nil {
		return err
	}
	if err := add(People, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"people"}}); err != nil {
		return err
	}
	if err := add(ReaderDN, map[string][]string{"objectClass": {"organizationalRole", "simpleSecurityObject"}, "cn": {"reader"},
		"userPassword": {ReaderPW}}); err != nil {
		return err
	}
	for _, p := range people {
		if err := s.AddPerson(c, p); err != nil {
			return err
		}
	}
	return nil
}

// AddPerson adds p under ou=people over c (bound as the root).
func (s *Server) AddPerson(c *ldap.Conn, p Person) error {
	r := ldap.NewAddRequest("uid="+ldap.EscapeDN(p.UID)+","+People, nil)
	r.Attribute("objectClass", []string{"inetOrgPerson"})
	r.Attribute("uid", []string{p.UID})
	r.Attribute("cn", []string{p.UID})
	r.Attribute("sn", []string{p.UID})
	if p.Password != "" {
		r.Attribute("userPassword", []string{p.Password})
	}
	return c.Add(r)
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeCerts writes a test CA and a certificate of 127.0.0.1 and localhost
// it signed (PEM files in dir): their paths.
func writeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ldaptest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "PRIVATE KEY", keyDER)
}

// ADServer listens on loopback and answers every bind as Active Directory
// answers an account in a given state: result 49 with the diagnostic
// "…, data <code>, v4563" (one bind per connection); its address.
func ADServer(t *testing.T, code string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	diag := "80090308: LdapErr: DSID-0C09050F, comment: AcceptSecurityContext error, data " + code + ", v4563"
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer func() { _ = c.Close() }()
				buf := make([]byte, 1024)
				n, _ := c.Read(buf)
				if n < 5 || buf[2] != 0x02 || buf[3] != 0x01 { // SEQUENCE, short length, INTEGER id of one byte
					return
				}
				// BindResponse: resultCode 49, matchedDN "", diagnosticMessage
				res := append([]byte{0x0a, 0x01, 0x31, 0x04, 0x00, 0x04, byte(len(diag))}, diag...)
				op := append([]byte{0x61, byte(len(res))}, res...)
				msg := append([]byte{0x02, 0x01, buf[4]}, op...)
				_, _ = c.Write(append([]byte{0x30, byte(len(msg))}, msg...))
				_, _ = c.Read(buf) // the unbind, or the close
			}(c)
		}
	}()
	return ln.Addr().String()
}
