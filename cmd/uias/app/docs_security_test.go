package app_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// TestOperatorsSecurityExample loads the production example of
// docs/operators.md "Security" as uias serve would and checks it says what
// the text around it promises (the settings themselves are exercised by
// the tests the section names).
func TestOperatorsSecurityExample(t *testing.T) {
	cfg := operatorsExample(t, "security-example", nil)
	if config.Loopback(cfg.GRPCAddr) || config.Loopback(cfg.HTTPAddr) {
		t.Error("the example should listen beyond loopback")
	}
	if cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "" || cfg.TLS.ClientCAFile == "" {
		t.Error("the example should serve TLS and verify client certificates")
	}
	if !cfg.MetricsOn() || cfg.ReflectionOn() {
		t.Errorf("metrics %v reflection %v, want metrics on, reflection off", cfg.MetricsOn(), cfg.ReflectionOn())
	}
	if cfg.DB.PasswordFile == "" || cfg.NATS.PasswordFile == "" || cfg.Etcd.PasswordFile == "" ||
		cfg.Etcd.TLS.CAFile == "" || cfg.Etcd.TLS.CertFile == "" || cfg.InternalKeyFile == "" {
		t.Errorf("the example should take every secret from a file: %+v", cfg.Redacted())
	}
	for _, s := range append([]string{cfg.DB.DSN, cfg.NATS.URL}, cfg.Etcd.Endpoints...) {
		if u, err := url.Parse(s); err != nil || u.User != nil && u.User.String() != u.User.Username() {
			t.Errorf("a password inside %q", s)
		}
	}
}

// operatorsExample loads the YAML block of docs/operators.md after
// "<!-- marker -->" as uias serve would, with the environment env, and
// validates it.
func operatorsExample(t *testing.T, marker string, env map[string]string) config.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- "+marker+" -->\n```yaml\n")
	if !ok {
		t.Fatalf("docs/operators.md lost its <!-- %s --> YAML block", marker)
	}
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated YAML block")
	}
	path := filepath.Join(t.TempDir(), "uias.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := app.LoadConfig(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestOperatorsReportMailExample: the example of "Reports by e-mail"
// loads, mails the weekly PDF to two addresses over STARTTLS, and takes
// its password from the environment only.
func TestOperatorsReportMailExample(t *testing.T) {
	cfg := operatorsExample(t, "report-mail-example", map[string]string{"UIAS_AUDIT_REPORTS_SMTP_PASSWORD": "from-a-secret"})
	m := auditcomponent.Settings(&cfg).Reports.Mail
	if len(m.To) != 2 || m.SMTPAddr != "mail.example.org:587" || m.SMTPSecurity != "" || m.SMTPPassword != "from-a-secret" ||
		len(m.Schedule) != 1 || m.Schedule[0] != "weekly" || len(m.Formats) != 1 || m.Formats[0] != "pdf" {
		t.Fatalf("mail settings: %+v", m)
	}
}

// TestOperatorsLDAPAuthExample: the example of "Directory passwords" loads
// and validates: an Active Directory source that searches by
// sAMAccountName over ldaps (the service account's password from a file)
// and a template source with StartTLS on by default.
func TestOperatorsLDAPAuthExample(t *testing.T) {
	cfg := operatorsExample(t, "ldap-auth-example", nil)
	l := identitycomponent.Settings(&cfg).LDAPAuth
	if len(l) != 2 || l[0].Name != "corp-ad" || !strings.Contains(l[0].Filter, "sAMAccountName={login}") ||
		l[0].BindPasswordFile == "" || l[0].Plaintext() || l[1].BindDNTemplate == "" || l[1].StartTLS != nil || l[1].Plaintext() {
		t.Fatalf("ldap_auth: %+v", l)
	}
}

// TestOperatorsExternalAuthExample: the example of "External
// authenticators" loads and validates: a face server over TLS with a
// client certificate (level 1, one org) and an SMS gateway on loopback in
// plain text, a second factor of level 2.
func TestOperatorsExternalAuthExample(t *testing.T) {
	cfg := operatorsExample(t, "external-auth-example", nil)
	x := identitycomponent.Settings(&cfg).ExternalAuthenticators
	if len(x) != 2 || x[0].Name != "face" || x[0].Level != 1 || x[0].CAFile == "" || x[0].CertFile == "" || x[0].Plaintext ||
		len(x[0].Orgs) != 1 || x[1].Name != "sms" || !x[1].Plaintext || !x[1].RequirePassword || x[1].Level != 2 {
		t.Fatalf("external_authenticators: %+v", x)
	}
}

// TestExternalAuthConfigRefusals: plain text to another host than
// loopback, level 3, a duplicate name and a bad name are refused at
// validation, each naming its key.
func TestExternalAuthConfigRefusals(t *testing.T) {
	for _, c := range []struct{ yaml, field string }{
		{"- {name: face, address: 'face.example.com:9443', plaintext: true, level: 1}", "external_authenticators[0].plaintext"},
		{"- {name: face, address: '127.0.0.1:9443', plaintext: true, level: 3}", "external_authenticators[0].level"},
		{"- {name: Face, address: '127.0.0.1:9443', level: 1}", "external_authenticators[0].name"},
		{"- {name: face, address: 'nohost', level: 1}", "external_authenticators[0].address"},
		{"- {name: face, address: '127.0.0.1:1', level: 1}\n    - {name: face, address: '127.0.0.1:2', level: 1}", "external_authenticators[1].name"},
	} {
		path := filepath.Join(t.TempDir(), "uias.yaml")
		if err := os.WriteFile(path, []byte("identity:\n  external_authenticators:\n    "+c.yaml+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := app.LoadConfig(path, func(string) (string, bool) { return "", false }, nil, nil)
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Fatalf("%s: %v, want an error naming %s", c.yaml, err, c.field)
		}
	}
}
