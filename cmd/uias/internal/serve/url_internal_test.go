package serve

import (
	"testing"

	"github.com/uias/uias/pkg/config"
)

// The start banner gives the HTTP listener's URL with the scheme it
// serves: https once tls.cert_file is set (plain HTTP is then refused).
func TestHTTPURLScheme(t *testing.T) {
	var cfg config.Config
	if got := httpURL(cfg, "127.0.0.1:8080"); got != "http://127.0.0.1:8080" {
		t.Fatalf("plaintext: %q", got)
	}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = "/etc/uias/tls.crt", "/etc/uias/tls.key"
	if got := httpURL(cfg, "127.0.0.1:8080"); got != "https://127.0.0.1:8080" {
		t.Fatalf("TLS: %q", got)
	}
}
