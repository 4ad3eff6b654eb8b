package ctl

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeCertAdmin adds the certificate binding calls to fakeAdmin.
type fakeCertAdmin struct {
	*fakeAdmin

	mu     sync.Mutex
	bind   *identityv1.BindUserCertificateRequest
	unbind *identityv1.UnbindUserCertificateRequest
	bulk   *identityv1.BindCertificatesRequest
}

func (f *fakeCertAdmin) BindCertificates(ctx context.Context, r *identityv1.BindCertificatesRequest) (*identityv1.BindCertificatesResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.bulk = r
	f.mu.Unlock()
	out := &identityv1.BindCertificatesResponse{}
	for i := range r.GetCertificates() {
		l := &identityv1.BindCertificatesResponse_Line{Sha256: fmt.Sprintf("%064d", i), Outcome: "no_person", Message: "names no one"}
		if i == 0 {
			l.Outcome, l.UserId, l.Message = "bound", "u1", "bound"
			out.Bound++
		}
		out.Lines = append(out.Lines, l)
	}
	return out, nil
}

func (f *fakeCertAdmin) BindUserCertificate(ctx context.Context, r *identityv1.BindUserCertificateRequest) (*identityv1.UserCertificate, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.bind = r
	f.mu.Unlock()
	sha := r.GetSha256()
	if len(r.GetCertificate()) > 0 {
		sum := sha256.Sum256(r.GetCertificate())
		sha = hex.EncodeToString(sum[:])
	}
	return &identityv1.UserCertificate{UserId: r.GetUserId(), Sha256: sha, CreateTime: timestamppb.Now()}, nil
}

func (f *fakeCertAdmin) ListUserCertificates(ctx context.Context, r *identityv1.ListUserCertificatesRequest) (*identityv1.ListUserCertificatesResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	return &identityv1.ListUserCertificatesResponse{Certificates: []*identityv1.UserCertificate{{UserId: r.GetUserId(),
		Sha256: strings.Repeat("ab", 32), CreateTime: timestamppb.Now(),
		NotAfter: timestamppb.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))}}}, nil
}

func (f *fakeCertAdmin) UnbindUserCertificate(ctx context.Context, r *identityv1.UnbindUserCertificateRequest) (*identityv1.UnbindUserCertificateResponse, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.unbind = r
	f.mu.Unlock()
	return &identityv1.UnbindUserCertificateResponse{}, nil
}

// TestCertCommands: user bind-cert reads the PEM and sends the DER (or the
// thumbprint as given), user certs lists, user unbind-cert sends the
// thumbprint (computed from --cert too); usage errors exit non-zero.
func TestCertCommands(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	admin := &fakeAdmin{}
	certs := &fakeCertAdmin{fakeAdmin: admin}
	identityv1.RegisterAdminServiceServer(gs, certs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cfg := filepath.Join(t.TempDir(), "uias")
	h := &harness{t: t, addr: lis.Addr().String(), srv: admin, cfg: cfg,
		env: map[string]string{"UIAS_ADDR": lis.Addr().String(), "UIAS_CONFIG_DIR": cfg}}
	h.login()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "Mia"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	fp := hex.EncodeToString(sum[:])
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "mia.pem")
	// a key block first: the certificate block is found after it
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte("x")}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(pemFile, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}

	out := h.mustRun("user", "bind-cert", "u1", "--cert", pemFile)
	if certs.bind.GetUserId() != "u1" || string(certs.bind.GetCertificate()) != string(der) || certs.bind.GetSha256() != "" {
		t.Fatalf("bind request %v", certs.bind)
	}
	if !strings.Contains(out, fp) {
		t.Fatalf("bind output %q", out)
	}
	// An expired certificate is bound with a warning (it signs no one in).
	oldTmpl := &x509.Certificate{SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "Mia old"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	oldDER, err := x509.CreateCertificate(rand.Reader, oldTmpl, oldTmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	oldFile := filepath.Join(dir, "old.pem")
	if err := os.WriteFile(oldFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: oldDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := h.run("user", "bind-cert", "u1", "--cert", oldFile); code != 0 || !strings.Contains(errs, "Warning: this certificate expired on") {
		t.Fatalf("expired certificate: exit %d, stderr %q", code, errs)
	}
	// An SM2 certificate (national commercial cryptography): read and
	// sent as any other.
	smKey, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	smTmpl := &x509.Certificate{SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "Mia SM2"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	smDER, err := smx509.CreateCertificate(rand.Reader, smTmpl, smTmpl, &smKey.PublicKey, smKey)
	if err != nil {
		t.Fatal(err)
	}
	smFile := filepath.Join(dir, "sm2.pem")
	if err := os.WriteFile(smFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: smDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	h.mustRun("user", "bind-cert", "u1", "--cert", smFile)
	if string(certs.bind.GetCertificate()) != string(smDER) {
		t.Fatalf("SM2 bind request %v", certs.bind)
	}
	h.mustRun("user", "bind-cert", "u2", "--sha256", "AB:CD")
	if certs.bind.GetUserId() != "u2" || certs.bind.GetSha256() != "AB:CD" || len(certs.bind.GetCertificate()) != 0 {
		t.Fatalf("bind by thumbprint %v", certs.bind)
	}
	if out := h.mustRun("user", "certs", "u1"); !strings.Contains(out, strings.Repeat("ab", 32)) || !strings.Contains(out, "2030-01-02T03:04:05Z") {
		t.Fatalf("certs output %q", out)
	}
	h.mustRun("user", "unbind-cert", "u1", "--cert", pemFile)
	if certs.unbind.GetUserId() != "u1" || certs.unbind.GetSha256() != fp {
		t.Fatalf("unbind request %v", certs.unbind)
	}
	h.mustRun("user", "unbind-cert", "u1", "--sha256", "ef01")
	if certs.unbind.GetSha256() != "ef01" {
		t.Fatalf("unbind by thumbprint %v", certs.unbind)
	}
	// bind-certs: every certificate of every file (a PEM bundle), one line
	// each and the count.
	bundle := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(bundle, append(pemData, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: oldDER})...), 0o600); err != nil {
		t.Fatal(err)
	}
	out = h.mustRun("user", "bind-certs", "--dry-run", bundle, smFile)
	if n := len(certs.bulk.GetCertificates()); n != 3 || !certs.bulk.GetDryRun() || string(certs.bulk.GetCertificates()[2]) != string(smDER) {
		t.Fatalf("bulk request: %d certificates, dry run %v", n, certs.bulk.GetDryRun())
	}
	if !strings.Contains(out, "bound") || !strings.Contains(out, "no_person") || !strings.Contains(out, "1 of 3 certificates would be bound.") {
		t.Fatalf("bind-certs output %q", out)
	}
	for _, args := range [][]string{
		{"user", "bind-certs"},
		{"user", "bind-certs", junk},
		{"user", "bind-cert", "u1"},
		{"user", "bind-cert", "u1", "--cert", pemFile, "--sha256", fp},
		{"user", "bind-cert", "u1", "--cert", junk},
		{"user", "bind-cert", "u1", "--cert", filepath.Join(dir, "missing.pem")},
		{"user", "bind-cert", "--sha256", fp},
		{"user", "unbind-cert", "u1"},
		{"user", "certs"},
	} {
		if code, _, _ := h.run(args...); code == 0 {
			t.Errorf("ctl %v: exit 0, want a usage error", args)
		}
	}
}
