package app_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
)

// TestOperatorsSecurityExample loads the production example of
// docs/operators.md "Security" as uias serve would and checks it says what
// the text around it promises (the settings themselves are exercised by
// the tests the section names).
func TestOperatorsSecurityExample(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- security-example -->\n```yaml\n")
	if !ok {
		t.Fatal("docs/operators.md lost its <!-- security-example --> YAML block")
	}
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated YAML block")
	}
	path := filepath.Join(t.TempDir(), "uias.yaml")
	if err := os.WriteFile(path, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := app.LoadConfig(path, func(string) (string, bool) { return "", false }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
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
