package module

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"

	"github.com/uias/uias/pkg/config"
)

// handshake runs a TLS handshake over a pipe: the server's view of it,
// and each side's error.
func handshake(t *testing.T, srv, cli *tls.Config) (st tls.ConnectionState, serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		st  tls.ConnectionState
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer b.Close()
		s := tls.Server(b, srv)
		err = s.Handshake()
		done <- result{s.ConnectionState(), err}
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c := tls.Client(a, cli)
	clientErr = c.Handshake()
	_ = a.Close()
	r := <-done
	return r.st, r.err, clientErr
}

// tls.people_ca_file: browsers' certificates of the people's CA are
// verified like those of tls.client_ca_file, but the people's CA is no
// root of the internal hops: a server certificate it issued is refused by
// the components' client, with or without tls.client_ca_file.
func TestPeopleCANotAnInternalRoot(t *testing.T) {
	compDir, peopleDir := t.TempDir(), t.TempDir()
	comp, people := newNamedTestCA(t, compDir, "UIAS components CA"), newNamedTestCA(t, peopleDir, "People's USB key CA")
	personCert, personKey := people.issue(t, peopleDir, "person", "Person", 10)
	person, err := tls.LoadX509KeyPair(personCert, personKey)
	if err != nil {
		t.Fatal(err)
	}
	rogueCert, rogueKey := people.issue(t, peopleDir, "rogue", "uias", 11)
	rogue, err := tls.LoadX509KeyPair(rogueCert, rogueKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, withClientCA := range map[string]bool{"with client_ca_file": true, "people_ca_file alone": false} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Default()
			cfg.TLS.CertFile, cfg.TLS.KeyFile = comp.issue(t, compDir, "uias", "uias", 2)
			cfg.TLS.PeopleCAFile = people.file
			if withClientCA {
				cfg.TLS.ClientCAFile = comp.file
			}
			server, client, err := LoadTLS(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if server.ClientAuth != tls.VerifyClientCertIfGiven {
				t.Fatalf("client auth %v", server.ClientAuth)
			}
			// A person's certificate is verified by the server.
			browser := &tls.Config{RootCAs: comp.pool, ServerName: "localhost", Certificates: []tls.Certificate{person}}
			st, serr, cerr := handshake(t, server, browser)
			if serr != nil || cerr != nil || len(st.VerifiedChains) == 0 {
				t.Fatalf("a person's certificate: %v / %v, chains %d", serr, cerr, len(st.VerifiedChains))
			}
			// The components' client trusts our server ...
			if _, serr, cerr := handshake(t, server, client); serr != nil || cerr != nil {
				t.Fatalf("internal hop to our server: %v / %v", serr, cerr)
			}
			// ... and not a server certificate of the people's CA.
			fake := server.Clone()
			fake.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &rogue, nil }
			_, _, cerr = handshake(t, fake, client)
			var unknown x509.UnknownAuthorityError
			if !errors.As(cerr, &unknown) {
				t.Fatalf("internal hop to a server of the people's CA: %v", cerr)
			}
			pool, err := PeopleCAs(cfg)
			if err != nil || pool == nil {
				t.Fatalf("PeopleCAs: %v", err)
			}
		})
	}
	cfg := config.Default()
	if pool, err := PeopleCAs(cfg); pool != nil || err != nil {
		t.Fatalf("PeopleCAs without the setting: %v %v", pool, err)
	}
	cfg.TLS.PeopleCAFile = personKey // no certificate in it
	if _, err := PeopleCAs(cfg); err == nil {
		t.Fatal("a people's CA file without certificates accepted")
	}
}
