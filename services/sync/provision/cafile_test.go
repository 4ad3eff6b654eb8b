package provision_test

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
)

// Review sec30a I4: an ldap subscription's ca_file is checked when the
// subscription is created and when the setting changes: an absolute path
// of a readable PEM file with a certificate. Every other file is refused
// with one message that quotes nothing of the file and does not tell a
// missing file from an unreadable one or one without a certificate.
func TestLDAPCAFileCheckedAtCreateAndUpdate(t *testing.T) {
	dir := t.TempDir()
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	tlsSrv.Close()
	good := filepath.Join(dir, "ca.pem")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})))
	secretText := "root:x:0:0:SECRET-LINE:/root:/bin/bash"
	bad := map[string]string{
		"missing":      filepath.Join(dir, "nope.pem"),
		"a directory":  dir,
		"not PEM":      write("passwd", secretText+"\n"),
		"a key only":   write("key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte(secretText)}))),
		"broken cert":  write("broken.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte(secretText)}))),
		"relative":     "ca.pem",
		"empty file":   write("empty.pem", ""),
		"traversal ..": dir + "/../" + filepath.Base(dir) + "/nope.pem",
	}
	env := provtest.New(t, provision.Options{})
	svc := &provision.Service{Store: env.Store}
	ldapSub := func(ca string) *provision.Subscription {
		s := subTo(provision.LDAP, "ldaps://dir.example.com")
		s.Settings["ca_file"] = ca
		return s
	}
	var msg string
	for what, path := range bad {
		_, err := svc.Create(context.Background(), ldapSub(path))
		if err == nil {
			t.Fatalf("%s: created", what)
		}
		if strings.Contains(err.Error(), "SECRET-LINE") || !strings.Contains(err.Error(), "settings.ca_file must be the absolute path") {
			t.Fatalf("%s: %v", what, err)
		}
		m := strings.ReplaceAll(err.Error(), path, "")
		if msg != "" && m != msg {
			t.Fatalf("%s: the message differs from another refusal's: %q vs %q", what, m, msg)
		}
		msg = m
	}
	created, err := svc.Create(context.Background(), ldapSub(good))
	if err != nil {
		t.Fatal(err)
	}
	// an edit to another file is checked; an edit that keeps the setting
	// is not (the file may be replaced later; the delivery then says so)
	upd := *created
	upd.Settings = map[string]string{"base_dn": "dc=example,dc=org", "ca_file": bad["not PEM"]}
	if _, err := svc.Update(context.Background(), &upd); err == nil || strings.Contains(err.Error(), "SECRET-LINE") {
		t.Fatalf("update to a file without a certificate: %v", err)
	}
	if err := os.Remove(good); err != nil {
		t.Fatal(err)
	}
	upd.Settings = map[string]string{"base_dn": "dc=example,dc=org", "ca_file": good}
	upd.Name = "renamed"
	if _, err := svc.Update(context.Background(), &upd); err != nil {
		t.Fatalf("an edit keeping ca_file: %v", err)
	}
	_, err = provision.ReadCAFile(good)
	if err == nil || strings.Contains(err.Error(), "no such file") {
		t.Fatalf("the delivery's error: %v", err)
	}
	s := provision.Subscription{Transport: provision.LDAP, Settings: map[string]string{"ca_file": good}}
	var ve *provision.ValidationError
	if err := s.CheckFiles(); !errors.As(err, &ve) || ve.Field != "settings.ca_file" {
		t.Fatalf("CheckFiles of a removed file: %v", err)
	}
}
